package group

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// This file is the consumer group protocol of KIP-848 (Kafka 4.0's
// ConsumerGroupHeartbeat): the coordinator, not a client leader, computes
// the assignment, and each member converges on its share through its own
// heartbeats.
//
// The group has an epoch, bumped whenever the assignment must be computed
// again (a member joins, leaves or changes its subscription; a subscribed
// topic appears, disappears or grows). The target assignment is computed
// by the server-side assignor for the group epoch and stamped with it
// (the assignment epoch). Each member has its own epoch and reaches the
// target one heartbeat at a time, as Kafka's CurrentAssignmentBuilder:
// partitions it must give up are revoked first (it keeps its epoch and
// reports them gone in a later heartbeat), and it gets a partition only
// once no other member owns it; then it moves to the assignment epoch. So
// a partition is never owned by two members at once, and a member that
// shows an epoch it cannot have is fenced (FENCED_MEMBER_EPOCH).

// Consumer group member states, with Kafka's MemberState values (they are
// persisted).
type memberState int8

const (
	memberStable     memberState = 0 // owns exactly its share of the assignment epoch
	memberUnrevoked  memberState = 1 // must give up partitions first
	memberUnreleased memberState = 2 // waits for partitions others still own
)

// Special member epochs of ConsumerGroupHeartbeat.
const (
	leaveEpoch       = -1 // the member leaves
	staticLeaveEpoch = -2 // a static member leaves for now; its partitions wait for its instance
)

// tpart is a partition by topic id: an assignment survives a rename of
// nothing, and a topic deleted and created again is a new topic.
type tpart struct {
	id [16]byte
	p  int32
}

type pset map[tpart]struct{}

func (s pset) has(t tpart) bool { _, ok := s[t]; return ok }

func (s pset) equal(o pset) bool {
	if len(s) != len(o) {
		return false
	}
	for t := range s {
		if !o.has(t) {
			return false
		}
	}
	return true
}

// cmember is one member of a consumer group.
type cmember struct {
	id, instance, rack string
	clientID, host     string
	topics             []string // subscribed names, sorted
	regex              string   // subscribed regular expression ("" none)
	re                 *regexp.Regexp
	assignor           string // the server assignor it asked for ("" any)
	rebalance          time.Duration

	epoch, prevEpoch int32
	state            memberState
	assigned         pset
	revoking         pset
	target           pset
	// since is the member epoch each assigned partition was given at: an
	// offset commit of an older epoch is accepted for partitions owned
	// since then (KIP-1251), so a commit racing a heartbeat that moved
	// the member on is not refused.
	since map[tpart]int32

	// classic is set for a member that speaks the classic protocol
	// (consumer_classic.go).
	classic *classicInfo
	// canDescribe filters the topics its regex matches by its
	// principal's Describe permission, as Kafka does; set at each
	// heartbeat (nil: no authorizer, or none since a reload).
	canDescribe func(topic string) bool

	deadline    time.Time // session expiry
	timer       *time.Timer
	revokeTimer *time.Timer
	revokeEpoch int32
}

// consumerGroup is the KIP-848 state of a group whose type is consumer.
type consumerGroup struct {
	epoch       int32 // group epoch
	assignEpoch int32 // epoch of the target assignment
	members     map[string]*cmember
	statics     map[string]string // instance id -> member id
	owner       map[tpart]string  // partition -> member owning it (assigned or revoking)
	// meta fingerprints the subscribed topics (ids, partition counts) the
	// target was computed for; metaAt is when it was last compared.
	meta   string
	metaAt time.Time
	names  map[[16]byte]string // topic ids of meta -> names
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{members: map[string]*cmember{}, statics: map[string]string{}, owner: map[tpart]string{}, names: map[[16]byte]string{}}
}

// ConsumerGroupType and ClassicGroupType are the group types of ListGroups
// v5+ and DescribeGroups.
const (
	ClassicGroupType  = "classic"
	ConsumerGroupType = "consumer"
)

// stateString is the consumer group state Kafka reports (ConsumerGroupState).
func (cg *consumerGroup) stateString() string {
	if len(cg.members) == 0 {
		return "Empty"
	}
	if cg.epoch != cg.assignEpoch {
		return "Assigning"
	}
	for _, m := range cg.members {
		if m.epoch != staticLeaveEpoch && (m.epoch != cg.assignEpoch || m.state != memberStable) {
			return "Reconciling"
		}
	}
	return "Stable"
}

// assignors are the server-side assignors; the first is the default, as
// Kafka's group.consumer.assignors.
var assignors = []string{"uniform", "range"}

// ConsumerHeartbeat handles a ConsumerGroupHeartbeat request. The
// response arrives on the returned channel once every change it made to
// the group is durable in the offsets log (at once when there is none or
// on errors), so a coordinator that takes the group over after a crash
// knows every epoch and assignment a member was told. canDescribe, if not
// nil, tells whether the member's principal may describe a topic: its
// regex only matches those.
func (c *Coordinator) ConsumerHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest, clientID, host string, canDescribe func(topic string) bool) <-chan *kmsg.ConsumerGroupHeartbeatResponse {
	ch := make(chan *kmsg.ConsumerGroupHeartbeatResponse, 1)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	resp.HeartbeatIntervalMillis = int32(c.cfg.ConsumerHeartbeatInterval / time.Millisecond)
	fail := func(e *kerr.Error, msg string) <-chan *kmsg.ConsumerGroupHeartbeatResponse {
		resp.ErrorCode = e.Code
		if msg != "" {
			resp.ErrorMessage = &msg
		}
		ch <- resp
		return ch
	}
	if req.Version == 0 && req.MemberEpoch == 0 && req.MemberID == "" {
		req.MemberID = uuid.NewString() // v0: the coordinator names the member
	}
	if e, msg := validateHeartbeat(req); e != nil {
		c.log.Debug("consumer group heartbeat refused", "group", req.Group, "member", req.MemberID, "err", e, "reason", msg)
		return fail(e, msg)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fail(kerr.CoordinatorNotAvailable, "")
	}
	g := c.groups[req.Group]
	if g == nil {
		if req.MemberEpoch != 0 {
			return fail(kerr.GroupIDNotFound, "consumer group "+req.Group+" not found")
		}
		g = newGroup(req.Group)
		c.groups[req.Group] = g
	}
	if g.state == Dead {
		return fail(kerr.CoordinatorNotAvailable, "")
	}
	var recs []Record
	if g.cons == nil {
		switch {
		case req.MemberEpoch != 0:
			return fail(kerr.GroupIDNotFound, "group "+req.Group+" is not a consumer group")
		case len(g.members) > 0 || len(g.pending) > 0:
			// A consumer-protocol member joins a classic group with
			// members: the group converts, keeping them
			// (consumer_classic.go).
			up, e, msg := c.upgradeLocked(g)
			if e != nil {
				return fail(e, msg)
			}
			recs = append(recs, up...)
		default:
			recs = append(recs, c.toConsumerLocked(g)...)
		}
	}
	switch req.MemberEpoch {
	case leaveEpoch:
		return c.consumerLeaveLocked(g, req, resp, ch, recs)
	case staticLeaveEpoch:
		return c.consumerStaticLeaveLocked(g, req, resp, ch, recs)
	}
	return c.consumerHeartbeatLocked(g, req, resp, ch, clientID, host, canDescribe, recs)
}

// validateHeartbeat is Kafka's throwIfConsumerGroupHeartbeatRequestIsInvalid.
func validateHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) (*kerr.Error, string) {
	switch {
	case req.Group == "":
		return kerr.InvalidGroupID, "GroupId can't be empty."
	case req.InstanceID != nil && *req.InstanceID == "":
		return kerr.InvalidRequest, "InstanceId can't be empty."
	case req.RackID != nil && *req.RackID == "":
		return kerr.InvalidRequest, "RackId can't be empty."
	case req.MemberID == "":
		return kerr.InvalidRequest, "MemberId can't be empty."
	}
	switch {
	case req.MemberEpoch == 0:
		switch {
		case req.RebalanceTimeoutMillis == -1:
			return kerr.InvalidRequest, "RebalanceTimeoutMs must be provided in first request."
		case req.Topics == nil || len(req.Topics) > 0:
			return kerr.InvalidRequest, "TopicPartitions must be empty when (re-)joining."
		case req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil:
			return kerr.InvalidRequest, "SubscribedTopicNames or SubscribedTopicRegex must be set in first request."
		}
	case req.MemberEpoch == staticLeaveEpoch:
		if req.InstanceID == nil {
			return kerr.InvalidRequest, "InstanceId can't be null."
		}
	case req.MemberEpoch < staticLeaveEpoch:
		return kerr.InvalidRequest, "MemberEpoch is invalid."
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != "" {
		if _, err := regexp.Compile(*req.SubscribedTopicRegex); err != nil {
			return kerr.InvalidRegularExpression, fmt.Sprintf("SubscribedTopicRegex %q is not a valid RE2 regular expression: %v", *req.SubscribedTopicRegex, err)
		}
	}
	if req.ServerAssignor != nil && !slices.Contains(assignors, *req.ServerAssignor) {
		return kerr.UnsupportedAssignor, "ServerAssignor " + *req.ServerAssignor + " is not supported. Supported assignors: " + strings.Join(assignors, ", ") + "."
	}
	return nil, ""
}

// toConsumerLocked turns an empty classic group (or a new one) into a
// consumer group; its committed offsets stay. It returns the records that
// make the conversion durable: a tombstone of the classic metadata.
func (c *Coordinator) toConsumerLocked(g *group) []Record {
	var recs []Record
	if _, ok := c.parts[c.partition(g.id)].written[string(groupKey(g.id))]; ok {
		recs = append(recs, Record{Key: groupKey(g.id)})
	}
	g.stopTimers()
	g.cons = newConsumerGroup()
	g.protocolType, g.protocol, g.leader, g.generation = ConsumerGroupType, "", "", 0
	return recs
}

// consumerHeartbeatLocked is a join (epoch 0) or a heartbeat of a member.
func (c *Coordinator) consumerHeartbeatLocked(g *group, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse,
	ch chan *kmsg.ConsumerGroupHeartbeatResponse, clientID, host string, canDescribe func(string) bool, recs []Record) <-chan *kmsg.ConsumerGroupHeartbeatResponse {
	fail := func(e *kerr.Error, msg string) <-chan *kmsg.ConsumerGroupHeartbeatResponse {
		resp.ErrorCode = e.Code
		if msg != "" {
			resp.ErrorMessage = &msg
		}
		c.persistThen(g, recs, func(error) { ch <- resp })
		return ch
	}
	cg := g.cons
	instance := ""
	if req.InstanceID != nil {
		instance = *req.InstanceID
	}
	dirty := map[*cmember]bool{}
	bump := false
	var m *cmember
	if req.MemberEpoch == 0 {
		if instance != "" {
			if oldID, ok := cg.statics[instance]; ok && oldID != req.MemberID {
				if old := cg.members[oldID]; old != nil {
					if old.epoch != staticLeaveEpoch {
						return fail(kerr.UnreleasedInstanceID, "Static member "+instance+" with member id "+oldID+" is still active; it must leave first.")
					}
					// The instance comes back under a new member id and
					// takes over the old one's partitions and epoch.
					m = c.replaceStaticLocked848(g, old, req.MemberID)
					recs = append(recs, Record{Key: consumerMemberKey(g.id, oldID)})
					dirty[m] = true
				}
			}
		}
		if m == nil {
			m = cg.members[req.MemberID]
		}
		if m == nil {
			m = &cmember{id: req.MemberID, assigned: pset{}, revoking: pset{}, target: pset{}, since: map[tpart]int32{}}
			cg.members[m.id] = m
			bump, dirty[m] = true, true
			if len(cg.members) == 1 {
				g.transition(Stable)
			}
		} else if m.epoch == staticLeaveEpoch {
			m.epoch = m.prevEpoch
			dirty[m] = true
		}
		if m.classic != nil {
			// A classic member now speaks the consumer protocol.
			m.classic, dirty[m] = nil, true
		}
	} else {
		m = cg.members[req.MemberID]
		if m == nil {
			if owner, ok := cg.statics[instance]; instance != "" && ok && owner != req.MemberID {
				return fail(kerr.FencedInstanceID, "")
			}
			return fail(kerr.UnknownMemberID, "")
		}
		if instance != "" && m.instance != instance {
			return fail(kerr.FencedInstanceID, "")
		}
		if e := m.checkEpoch(req.MemberEpoch, req.Topics); e != nil {
			return fail(e, fmt.Sprintf("member epoch %d, the coordinator has %d", req.MemberEpoch, m.epoch))
		}
	}
	c.touchConsumerLocked(g, m)

	// The member's metadata: each field the request carries.
	m.clientID, m.host, m.canDescribe = clientID, host, canDescribe
	if instance != "" && m.instance != instance {
		m.instance = instance
		cg.statics[instance] = m.id
		dirty[m] = true
	}
	if req.RackID != nil && *req.RackID != m.rack {
		m.rack, dirty[m] = *req.RackID, true
	}
	if req.RebalanceTimeoutMillis > 0 && ms(req.RebalanceTimeoutMillis) != m.rebalance {
		m.rebalance, dirty[m] = ms(req.RebalanceTimeoutMillis), true
	}
	subChanged := false
	if req.SubscribedTopicNames != nil {
		names := slices.Clone(req.SubscribedTopicNames)
		slices.Sort(names)
		names = slices.Compact(names)
		if !slices.Equal(names, m.topics) {
			m.topics, subChanged = names, true
		}
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != m.regex {
		m.setRegex(*req.SubscribedTopicRegex)
		subChanged = true
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.assignor {
		m.assignor, subChanged = *req.ServerAssignor, true
	}
	if subChanged {
		bump, dirty[m] = true, true
	}

	// The subscribed topics as they are now: a topic created that a
	// regex matches, or one deleted or grown, needs a new assignment.
	// Compared on every change and at most once a second otherwise.
	now := time.Now()
	if bump || now.Sub(cg.metaAt) >= time.Second {
		cg.metaAt = now
		if meta, names := c.subscriptionMeta(cg); meta != cg.meta {
			cg.meta, cg.names = meta, names
			bump = true
		}
	}
	groupDirty := false
	if bump {
		cg.epoch++
		groupDirty = true
	}
	if cg.epoch > cg.assignEpoch {
		for _, mm := range c.computeTarget(cg) {
			dirty[mm] = true
		}
		cg.assignEpoch = cg.epoch
		groupDirty = true
	}

	// Reconcile the member towards the target.
	before := m.assigned
	var owned pset
	if req.Topics != nil {
		owned = pset{}
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				owned[tpart{t.TopicID, p}] = struct{}{}
			}
		}
	}
	if c.reconcile(cg, m, owned, subChanged) {
		dirty[m] = true
	}
	if m.state == memberUnrevoked {
		c.startRevokeTimerLocked(g, m)
	} else if m.revokeTimer != nil {
		m.revokeTimer.Stop()
		m.revokeTimer = nil
	}

	if groupDirty {
		recs = append(recs, c.consumerGroupRecord(g))
	}
	for mm := range dirty {
		if cg.members[mm.id] == mm {
			recs = append(recs, consumerMemberRecord(g.id, mm))
		}
	}
	resp.MemberID = &m.id
	resp.MemberEpoch = m.epoch
	full := req.RebalanceTimeoutMillis != -1 && (req.SubscribedTopicNames != nil || req.SubscribedTopicRegex != nil) && req.Topics != nil
	if req.MemberEpoch == 0 || full || !before.equal(m.assigned) {
		resp.Assignment = assignmentOf(m.assigned)
	}
	c.persistThen(g, recs, func(err error) {
		if err != nil {
			resp.ErrorCode, resp.MemberEpoch, resp.Assignment = kerr.CoordinatorNotAvailable.Code, 0, nil
		}
		ch <- resp
	})
	return ch
}

// checkEpoch is Kafka's throwIfMemberEpochIsInvalid: a member may be
// behind by one epoch only if its last response was lost, which shows as
// the previous epoch with owned partitions it was indeed given.
func (m *cmember) checkEpoch(got int32, owned []kmsg.ConsumerGroupHeartbeatRequestTopic) *kerr.Error {
	if got > m.epoch {
		return kerr.FencedMemberEpoch
	}
	if got < m.epoch {
		if got != m.prevEpoch || owned == nil {
			return kerr.FencedMemberEpoch
		}
		for _, t := range owned {
			for _, p := range t.Partitions {
				if !m.assigned.has(tpart{t.TopicID, p}) {
					return kerr.FencedMemberEpoch
				}
			}
		}
	}
	return nil
}

func (m *cmember) setRegex(expr string) {
	m.regex, m.re = expr, nil
	if expr != "" {
		m.re = regexp.MustCompile(expr) // validated by validateHeartbeat or when written
	}
}

// replaceStaticLocked848 moves a static member that left (epoch -2) to
// the new member id its instance rejoined with: its partitions, target
// and epoch carry over, so the group needs no new assignment.
func (c *Coordinator) replaceStaticLocked848(g *group, old *cmember, newID string) *cmember {
	cg := g.cons
	m := &cmember{}
	*m = *old
	m.id = newID
	m.epoch = old.prevEpoch
	m.timer, m.revokeTimer = nil, nil
	c.stopConsumerTimers(old)
	delete(cg.members, old.id)
	cg.members[newID] = m
	cg.statics[m.instance] = newID
	for t, id := range cg.owner {
		if id == old.id {
			cg.owner[t] = newID
		}
	}
	c.log.Info("consumer group static member replaced", "group", g.id, "instance", m.instance, "old_member", old.id, "member", newID)
	return m
}

// consumerLeaveLocked removes a member (epoch -1).
func (c *Coordinator) consumerLeaveLocked(g *group, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse,
	ch chan *kmsg.ConsumerGroupHeartbeatResponse, recs []Record) <-chan *kmsg.ConsumerGroupHeartbeatResponse {
	m := g.cons.members[req.MemberID]
	if m == nil {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		ch <- resp
		return ch
	}
	if req.InstanceID != nil && m.instance != *req.InstanceID {
		resp.ErrorCode = kerr.FencedInstanceID.Code
		ch <- resp
		return ch
	}
	resp.MemberID, resp.MemberEpoch = &m.id, leaveEpoch
	c.log.Debug("consumer group member left", "group", g.id, "member", m.id)
	c.removeConsumerMemberLocked(g, m, recs, func(error) { ch <- resp })
	return ch
}

// consumerStaticLeaveLocked is a static member leaving for now (epoch
// -2): it stays a member, its partitions reserved for its instance, until
// it rejoins or its session expires, and the group is not rebalanced.
func (c *Coordinator) consumerStaticLeaveLocked(g *group, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse,
	ch chan *kmsg.ConsumerGroupHeartbeatResponse, recs []Record) <-chan *kmsg.ConsumerGroupHeartbeatResponse {
	m := g.cons.members[req.MemberID]
	switch {
	case m == nil:
		resp.ErrorCode = kerr.UnknownMemberID.Code
	case m.instance == "":
		// A dynamic member cannot stay away: it leaves (as Kafka).
		return c.consumerLeaveLocked(g, req, resp, ch, recs)
	case m.instance != *req.InstanceID:
		resp.ErrorCode = kerr.FencedInstanceID.Code
	}
	if resp.ErrorCode != 0 {
		ch <- resp
		return ch
	}
	if m.epoch != staticLeaveEpoch {
		m.prevEpoch, m.epoch = m.epoch, staticLeaveEpoch
	}
	if m.revokeTimer != nil {
		m.revokeTimer.Stop()
		m.revokeTimer = nil
	}
	recs = append(recs, consumerMemberRecord(g.id, m))
	resp.MemberID, resp.MemberEpoch = &m.id, staticLeaveEpoch
	c.log.Debug("consumer group static member left", "group", g.id, "member", m.id, "instance", m.instance)
	c.persistThen(g, recs, func(error) { ch <- resp })
	return ch
}

// removeConsumerMemberLocked takes m out of the group, frees its
// partitions and bumps the group epoch so the others get them; done runs
// when that is durable.
func (c *Coordinator) removeConsumerMemberLocked(g *group, m *cmember, recs []Record, done func(error)) {
	cg := g.cons
	c.stopConsumerTimers(m)
	delete(cg.members, m.id)
	if m.instance != "" && cg.statics[m.instance] == m.id {
		delete(cg.statics, m.instance)
	}
	for t, id := range cg.owner {
		if id == m.id {
			delete(cg.owner, t)
		}
	}
	recs = append(recs, Record{Key: consumerMemberKey(g.id, m.id)})
	if len(cg.members) == 0 {
		// An empty consumer group keeps only its offsets in the log;
		// a replay makes it an empty group any protocol can use.
		recs = append(recs, Record{Key: consumerGroupKey(g.id)})
		cg.epoch++
		cg.assignEpoch = cg.epoch
		g.transition(Empty)
	} else if down := c.maybeDowngradeLocked(g); down != nil {
		recs = append(recs, down...)
	} else {
		cg.epoch++
		recs = append(recs, c.consumerGroupRecord(g))
	}
	c.persistThen(g, recs, done)
}

func (c *Coordinator) stopConsumerTimers(m *cmember) {
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
	if m.revokeTimer != nil {
		m.revokeTimer.Stop()
		m.revokeTimer = nil
	}
}

// touchConsumerLocked extends m's session, group.consumer.session.timeout.ms.
// A classic member keeps the session timeout it joined with.
func (c *Coordinator) touchConsumerLocked(g *group, m *cmember) {
	d := c.cfg.ConsumerSessionTimeout
	if m.classic != nil {
		d = m.classic.session
	}
	m.deadline = time.Now().Add(d)
	if m.timer == nil {
		m.timer = time.AfterFunc(d, func() { c.consumerSessionCheck(g, m) })
	}
}

func (c *Coordinator) consumerSessionCheck(g *group, m *cmember) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || g.cons == nil || g.cons.members[m.id] != m || m.timer == nil {
		return
	}
	if left := time.Until(m.deadline); left > 0 {
		m.timer = time.AfterFunc(left, func() { c.consumerSessionCheck(g, m) })
		return
	}
	m.timer = nil
	c.log.Info("consumer group member removed: session timeout", "group", g.id, "member", m.id, "session_timeout", c.cfg.ConsumerSessionTimeout)
	c.removeConsumerMemberLocked(g, m, nil, func(error) {})
}

// startRevokeTimerLocked fences m if it has not given up its partitions
// within its rebalance timeout, as Kafka does; a classic member, if it
// has not rejoined to move to the assignment epoch by then.
func (c *Coordinator) startRevokeTimerLocked(g *group, m *cmember) {
	if m.revokeTimer != nil && m.revokeEpoch == m.epoch {
		return
	}
	if m.revokeTimer != nil {
		m.revokeTimer.Stop()
	}
	epoch, d := m.epoch, m.rebalance
	if d <= 0 {
		d = c.cfg.ConsumerSessionTimeout
	}
	m.revokeEpoch = epoch
	m.revokeTimer = time.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || g.cons == nil || g.cons.members[m.id] != m || m.epoch != epoch {
			return
		}
		behind := m.classic != nil && m.epoch != g.cons.assignEpoch
		if m.state != memberUnrevoked && !behind {
			return
		}
		m.revokeTimer = nil
		c.log.Info("consumer group member fenced: partitions not revoked within the rebalance timeout", "group", g.id, "member", m.id, "rebalance_timeout", d)
		c.removeConsumerMemberLocked(g, m, nil, func(error) {})
	})
}

// persistThen appends recs to the group's partition and runs done (under
// c.mu) once they are durable; at once when there are none.
func (c *Coordinator) persistThen(g *group, recs []Record, done func(error)) {
	if len(recs) == 0 {
		done(nil)
		return
	}
	c.appendLocked(c.partition(g.id), recs, func(err error) {
		if err != nil {
			c.log.Error("consumer group state not written", "group", g.id, "err", err)
		}
		done(err)
	})
}

// DescribeConsumer fills one ConsumerGroupDescribe entry.
func (c *Coordinator) DescribeConsumer(id string) kmsg.ConsumerGroupDescribeResponseGroup {
	out := kmsg.NewConsumerGroupDescribeResponseGroup()
	out.Group = id
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[id]
	switch {
	case c.closed:
		out.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return out
	case g == nil || g.state == Dead:
		out.ErrorCode = kerr.GroupIDNotFound.Code
		msg := "group " + id + " not found"
		out.ErrorMessage = &msg
		return out
	case g.cons == nil:
		out.ErrorCode = kerr.GroupIDNotFound.Code
		msg := "group " + id + " is not a consumer group"
		out.ErrorMessage = &msg
		return out
	}
	cg := g.cons
	out.State, out.Epoch, out.AssignmentEpoch, out.AssignorName = cg.stateString(), cg.epoch, cg.assignEpoch, groupAssignor(cg)
	for _, mid := range slices.Sorted(maps.Keys(cg.members)) {
		m := cg.members[mid]
		dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		dm.MemberID, dm.MemberEpoch, dm.ClientID, dm.ClientHost = m.id, m.epoch, m.clientID, m.host
		if m.instance != "" {
			dm.InstanceID = &m.instance
		}
		if m.rack != "" {
			dm.RackID = &m.rack
		}
		dm.SubscribedTopics = slices.Clone(m.topics)
		if dm.SubscribedTopics == nil {
			dm.SubscribedTopics = []string{}
		}
		if m.regex != "" {
			dm.SubscribedTopicRegex = &m.regex
		}
		dm.Assignment = describeAssignment(m.assigned, cg.names)
		dm.TargetAssignment = describeAssignment(m.target, cg.names)
		dm.MemberType = 1 // consumer protocol (v1+)
		if m.classic != nil {
			dm.MemberType = 0
		}
		out.Members = append(out.Members, dm)
	}
	if out.Members == nil {
		out.Members = []kmsg.ConsumerGroupDescribeResponseGroupMember{}
	}
	return out
}

// describeAssignment is a set as ConsumerGroupDescribe reports it: by
// topic id and name.
func describeAssignment(s pset, names map[[16]byte]string) kmsg.Assignment {
	a := kmsg.NewAssignment()
	for _, tp := range byTopic(s) {
		ap := kmsg.NewAssignmentTopicPartition()
		ap.TopicID, ap.Topic, ap.Partitions = tp.id, names[tp.id], tp.parts
		a.TopicPartitions = append(a.TopicPartitions, ap)
	}
	if a.TopicPartitions == nil {
		a.TopicPartitions = []kmsg.AssignmentTopicPartition{}
	}
	return a
}

func (cg *consumerGroup) memberIDs() []string { return slices.Sorted(maps.Keys(cg.members)) }

// subscribed is the topics some member subscribes to, by name or, as last
// resolved, by regex: their offsets do not expire while the group lives.
func (cg *consumerGroup) subscribed() map[string]bool {
	out := map[string]bool{}
	for _, m := range cg.members {
		for _, t := range m.topics {
			out[t] = true
		}
	}
	for _, name := range cg.names {
		out[name] = true
	}
	return out
}

// consumerCommitCheckLocked is Kafka's ConsumerGroup.validateOffsetCommit
// with KIP-1251's relaxed epoch: a commit without membership is taken
// only while the group has no members; a member's commit must carry its
// epoch, or an older one if every partition committed was already its own
// at that epoch (a commit racing the heartbeat that moved the member on),
// else STALE_MEMBER_EPOCH.
func (c *Coordinator) consumerCommitCheckLocked(g *group, req *kmsg.OffsetCommitRequest, gen int32, memberID string) *kerr.Error {
	cg := g.cons
	if gen < 0 && len(cg.members) == 0 {
		return nil
	}
	m := cg.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID
	}
	if m.classic != nil {
		if gen != m.epoch {
			return kerr.IllegalGeneration
		}
		return nil
	}
	if req.Version < 9 {
		return kerr.UnsupportedVersion // the consumer protocol commits with v9+
	}
	if gen == m.epoch {
		return nil
	}
	if gen > m.epoch || gen < 0 {
		return kerr.StaleMemberEpoch
	}
	for _, t := range req.Topics {
		id, _, ok := c.topics.TopicInfo(t.Topic)
		if !ok {
			continue // answered UNKNOWN_TOPIC_OR_PARTITION per partition
		}
		for _, p := range t.Partitions {
			tp := tpart{id, p.Partition}
			at, owned := m.since[tp]
			if !owned || (!m.assigned.has(tp) && !m.revoking.has(tp)) || at > gen {
				return kerr.StaleMemberEpoch
			}
		}
	}
	return nil
}

// CheckConsumerFetch is Kafka's ConsumerGroup.validateOffsetFetch for
// OffsetFetch v9+: a request naming a member of a consumer group must
// carry its current epoch. It returns 0 for classic groups, unknown
// groups and requests without membership.
func (c *Coordinator) CheckConsumerFetch(groupID string, memberID *string, epoch int32) int16 {
	if memberID == nil && epoch < 0 {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[groupID]
	if g == nil || g.cons == nil {
		return 0
	}
	id := ""
	if memberID != nil {
		id = *memberID
	}
	m := g.cons.members[id]
	switch {
	case m == nil:
		return kerr.UnknownMemberID.Code
	case m.epoch != epoch:
		return kerr.StaleMemberEpoch.Code
	}
	return 0
}

// checkMemberEpoch is Kafka's validateMemberEpoch for a transactional
// commit: the member must exist and commit at its epoch.
func (cg *consumerGroup) checkMemberEpoch(memberID string, epoch int32) *kerr.Error {
	m := cg.members[memberID]
	switch {
	case m == nil:
		return kerr.UnknownMemberID
	case m.epoch != epoch:
		return kerr.StaleMemberEpoch
	}
	return nil
}
