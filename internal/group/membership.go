package group

import (
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Join handles a JoinGroup request. The response arrives on the returned
// channel (buffered), at once for errors and for rejoins of a stable
// group, or when the rebalance completes.
func (c *Coordinator) Join(req *kmsg.JoinGroupRequest, clientID, host string) <-chan *kmsg.JoinGroupResponse {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	fail := func(e *kerr.Error, memberID string) <-chan *kmsg.JoinGroupResponse {
		ch <- joinError(req.Version, e, memberID)
		return ch
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID, req.MemberID)
	}
	session := ms(req.SessionTimeoutMillis)
	if session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout {
		return fail(kerr.InvalidSessionTimeout, req.MemberID)
	}
	rebalance := ms(req.RebalanceTimeoutMillis)
	if req.Version == 0 {
		rebalance = session // v0 has no rebalance timeout; Kafka uses the session timeout
	}
	protos := make([]protocol, len(req.Protocols))
	for i, p := range req.Protocols {
		protos[i] = protocol{p.Name, p.Metadata}
	}
	instance := ""
	if req.InstanceID != nil {
		instance = *req.InstanceID
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fail(kerr.CoordinatorNotAvailable, req.MemberID)
	}
	g := c.groups[req.Group]
	if g == nil {
		if req.MemberID != "" {
			return fail(kerr.UnknownMemberID, req.MemberID)
		}
		g = newGroup(req.Group)
		c.groups[req.Group] = g
	}
	j := joinReq{v: req.Version, clientID: clientID, host: host, instance: instance, session: session,
		rebalance: rebalance, ptype: req.ProtocolType, protos: protos, ch: ch}
	if g.cons != nil {
		if len(g.cons.members) > 0 {
			// A classic member joins a consumer group with members
			// (consumer_classic.go).
			c.classicJoinLocked(g, req, j, ch)
			return ch
		}
		// An empty consumer group becomes a classic one; its offsets stay.
		g.cons = nil
		g.protocolType = ""
	}
	if g.state == Dead {
		return fail(kerr.CoordinatorNotAvailable, req.MemberID)
	}
	if req.MemberID == "" {
		c.joinNewLocked(g, j)
	} else {
		c.joinKnownLocked(g, req.MemberID, j)
	}
	return ch
}

type joinReq struct {
	v                  int16
	clientID, host     string
	instance           string
	session, rebalance time.Duration
	ptype              string
	protos             []protocol
	ch                 chan *kmsg.JoinGroupResponse
}

func joinError(v int16, e *kerr.Error, memberID string) *kmsg.JoinGroupResponse {
	r := kmsg.NewPtrJoinGroupResponse()
	r.Version = v
	r.ErrorCode = e.Code
	r.Generation = -1
	r.MemberID = memberID
	return r
}

// joinNewLocked: a join without a member id.
func (c *Coordinator) joinNewLocked(g *group, j joinReq) {
	if !g.supportsProtocols(j.ptype, j.protos) {
		j.ch <- joinError(j.v, kerr.InconsistentGroupProtocol, "")
		c.maybeForgetLocked(g)
		return
	}
	// Kafka's member ids: the instance id (static) or client id, a dash,
	// and a UUID.
	id := j.clientID + "-" + uuid.NewString()
	if j.instance != "" {
		id = j.instance + "-" + uuid.NewString()
	}
	switch {
	case j.instance != "" && g.instances[j.instance] != "":
		c.replaceStaticLocked(g, g.instances[j.instance], id, j)
	case j.instance == "" && j.v >= 4:
		// KIP-394: hand out the id first, so a client that dies before
		// its second join leaves no member behind to time out.
		pm := &pendingMember{}
		g.pending[id] = pm
		pm.timer = time.AfterFunc(j.session, func() { c.expirePending(g, id, pm) })
		j.ch <- joinError(j.v, kerr.MemberIDRequired, id)
	default:
		c.addMemberLocked(g, id, j)
	}
}

// joinKnownLocked: a join with a member id.
func (c *Coordinator) joinKnownLocked(g *group, id string, j joinReq) {
	if !g.supportsProtocols(j.ptype, j.protos) {
		j.ch <- joinError(j.v, kerr.InconsistentGroupProtocol, id)
		return
	}
	if pm, ok := g.pending[id]; ok && j.instance == "" {
		pm.timer.Stop()
		delete(g.pending, id)
		c.addMemberLocked(g, id, j)
		return
	}
	if e := g.fenced(j.instance, id); e != nil {
		j.ch <- joinError(j.v, e, id)
		return
	}
	m := g.members[id]
	if m == nil {
		j.ch <- joinError(j.v, kerr.UnknownMemberID, id)
		return
	}
	c.touchLocked(m)
	switch g.state {
	case PreparingRebalance:
		c.updateMemberLocked(g, m, j)
	case CompletingRebalance:
		if m.matches(j.protos) {
			// A duplicate join (its response was lost): answer with the
			// generation in progress.
			j.ch <- c.joinResponse(g, m, j.v, g.leader, m.id == g.leader, false)
			return
		}
		c.updateMemberLocked(g, m, j)
	case Stable:
		if m.id == g.leader || !m.matches(j.protos) {
			// The leader rejoining means it wants a new assignment.
			c.updateMemberLocked(g, m, j)
			return
		}
		j.ch <- c.joinResponse(g, m, j.v, g.leader, false, false)
	default:
		j.ch <- joinError(j.v, kerr.UnknownMemberID, id)
	}
}

// fenced is Kafka's static-membership check (validateMember): an unknown
// instance id is an unknown member, and an instance id now held by another
// member id means this one was replaced.
func (g *group) fenced(instance, id string) *kerr.Error {
	if instance == "" {
		return nil
	}
	cur, ok := g.instances[instance]
	switch {
	case !ok:
		return kerr.UnknownMemberID
	case cur != id:
		return kerr.FencedInstanceID
	}
	return nil
}

func (c *Coordinator) addMemberLocked(g *group, id string, j joinReq) {
	if len(g.members) == 0 {
		g.protocolType = j.ptype
	}
	g.nextOrder++
	m := &member{id: id, instanceID: j.instance, clientID: j.clientID, host: j.host, session: j.session,
		rebalance: j.rebalance, protocolType: j.ptype, protocols: j.protos, joinOrder: g.nextOrder,
		joinCh: j.ch, joinV: j.v}
	g.members[id] = m
	if j.instance != "" {
		g.instances[j.instance] = id
	}
	if g.leader == "" {
		g.leader = id
	}
	c.startSessionLocked(g, m)
	// Only the very first rebalance of a group is stretched by newcomers.
	if g.state == PreparingRebalance && g.generation == 0 {
		g.newMemberAdded = true
	}
	c.maybePrepareRebalanceLocked(g)
	c.tryCompleteJoinLocked(g)
}

func (c *Coordinator) updateMemberLocked(g *group, m *member, j joinReq) {
	if m.joinCh != nil {
		// The same member joined twice; the earlier request gets a
		// retriable error rather than hanging.
		m.joinCh <- joinError(m.joinV, kerr.RebalanceInProgress, m.id)
	}
	m.protocols, m.session, m.rebalance, m.joinCh, m.joinV = j.protos, j.session, j.rebalance, j.ch, j.v
	m.clientID, m.host = j.clientID, j.host
	c.maybePrepareRebalanceLocked(g)
	c.tryCompleteJoinLocked(g)
}

// replaceStaticLocked handles a static member rejoining without its member
// id (a restarted process): the new member id takes over the old one's
// place, and the old id is fenced (FENCED_INSTANCE_ID).
func (c *Coordinator) replaceStaticLocked(g *group, oldID, newID string, j joinReq) {
	old := g.members[oldID]
	old.failWaiting(kerr.FencedInstanceID)
	leaderBefore := g.leader
	m := &member{}
	*m = *old
	old.removed = true
	if old.timer != nil {
		old.timer.Stop()
	}
	m.id, m.timer = newID, nil
	m.clientID, m.host, m.session, m.rebalance = j.clientID, j.host, j.session, j.rebalance
	delete(g.members, oldID)
	g.members[newID] = m
	if g.pendingSync[oldID] {
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = true
	}
	g.instances[j.instance] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	c.startSessionLocked(g, m)
	oldProtos := m.protocols
	m.protocols = j.protos
	m.joinCh, m.joinV = j.ch, j.v
	switch g.state {
	case Stable:
		if g.selectProtocol() != g.protocol {
			c.maybePrepareRebalanceLocked(g)
			return
		}
		// Same protocol: no rebalance, only persist the new member id so
		// that a restart knows it (Kafka does the same).
		gen := g.generation
		p := c.partition(g.id)
		c.appendLocked(p, []Record{c.groupRecord(g)}, func(err error) {
			if m.joinCh != j.ch || c.groups[g.id] != g {
				return // a rebalance answered it meanwhile
			}
			m.joinCh = nil
			if err != nil || g.generation != gen {
				c.log.Error("persist replaced static member", "group", g.id, "err", err)
				m.protocols = oldProtos
				j.ch <- joinError(j.v, kerr.UnknownServerError, newID)
				return
			}
			// KIP-814: a v9+ leader learns it leads but must not assign
			// again; older clients are told the old leader id so they do
			// not believe they lead and reassign a stable group.
			isLeader := g.leader == newID
			if isLeader && j.v >= 9 {
				j.ch <- c.joinResponse(g, m, j.v, g.leader, true, true)
			} else {
				j.ch <- c.joinResponse(g, m, j.v, leaderBefore, false, false)
			}
		})
	case CompletingRebalance:
		c.prepareRebalanceLocked(g)
	case PreparingRebalance:
		c.tryCompleteJoinLocked(g)
	}
}

// joinResponse is a successful JoinGroup answer for m in the current
// generation; withMembers lists the members for the leader.
func (c *Coordinator) joinResponse(g *group, m *member, v int16, leader string, withMembers, skip bool) *kmsg.JoinGroupResponse {
	r := kmsg.NewPtrJoinGroupResponse()
	r.Version = v
	r.Generation = g.generation
	ptype, proto := g.protocolType, g.protocol
	r.ProtocolType, r.Protocol = &ptype, &proto
	r.LeaderID = leader
	r.MemberID = m.id
	r.SkipAssignment = skip
	if withMembers {
		for _, om := range g.ordered() {
			jm := kmsg.JoinGroupResponseMember{MemberID: om.id, ProtocolMetadata: om.metadataFor(g.protocol)}
			if om.instanceID != "" {
				inst := om.instanceID
				jm.InstanceID = &inst
			}
			r.Members = append(r.Members, jm)
		}
	}
	return r
}

func (c *Coordinator) maybePrepareRebalanceLocked(g *group) {
	switch g.state {
	case Stable, CompletingRebalance, Empty:
		c.prepareRebalanceLocked(g)
	}
}

func (c *Coordinator) prepareRebalanceLocked(g *group) {
	if g.state == CompletingRebalance {
		c.resetSyncLocked(g, kerr.RebalanceInProgress)
	}
	g.clearPendingSync()
	g.joinEpoch++
	if g.joinTimer != nil {
		g.joinTimer.Stop()
	}
	epoch := g.joinEpoch
	if g.state == Empty {
		// Kafka's InitialDelayedJoin: wait for more members before the
		// first assignment instead of rebalancing once per arrival.
		g.initialDelay = true
		g.newMemberAdded = false
		g.delayRemaining = max(g.rebalanceTimeout()-c.cfg.InitialRebalanceDelay, 0)
		g.joinTimer = time.AfterFunc(c.cfg.InitialRebalanceDelay, func() { c.joinTimeout(g, epoch) })
	} else {
		g.initialDelay = false
		g.joinTimer = time.AfterFunc(g.rebalanceTimeout(), func() { c.joinTimeout(g, epoch) })
	}
	g.transition(PreparingRebalance)
}

func (c *Coordinator) joinTimeout(g *group, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || g.joinEpoch != epoch || g.state != PreparingRebalance {
		return
	}
	if g.initialDelay && g.newMemberAdded && g.delayRemaining > 0 {
		g.newMemberAdded = false
		delay := min(c.cfg.InitialRebalanceDelay, g.delayRemaining)
		g.delayRemaining = max(g.delayRemaining-delay, 0)
		g.joinEpoch++
		epoch := g.joinEpoch
		g.joinTimer = time.AfterFunc(delay, func() { c.joinTimeout(g, epoch) })
		return
	}
	c.completeJoinLocked(g)
}

func (c *Coordinator) tryCompleteJoinLocked(g *group) {
	if g.state == PreparingRebalance && !g.initialDelay && g.allJoined() {
		c.completeJoinLocked(g)
	}
}

// completeJoinLocked ends the join phase: members that did not rejoin are
// removed, the generation advances, a protocol is chosen, and every
// waiting member gets its answer (the leader with the member list).
func (c *Coordinator) completeJoinLocked(g *group) {
	g.joinEpoch++
	if g.joinTimer != nil {
		g.joinTimer.Stop()
		g.joinTimer = nil
	}
	g.initialDelay = false
	for _, m := range g.ordered() {
		if m.joinCh == nil {
			c.log.Info("member removed: did not rejoin within the rebalance timeout", "group", g.id, "member", m.id)
			c.dropMemberLocked(g, m)
		}
	}
	if g.leader == "" || g.members[g.leader] == nil {
		g.leader = ""
		if ms := g.ordered(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.protocol = ""
		g.leader = ""
		g.transition(Empty)
		// Persist that the group is empty at this generation, so a
		// restart does not bring back members that left.
		c.appendLocked(c.partition(g.id), []Record{c.groupRecord(g)}, func(err error) {
			if err != nil {
				c.log.Error("persist empty group", "group", g.id, "err", err)
			}
		})
		return
	}
	g.protocol = g.selectProtocol()
	g.transition(CompletingRebalance)
	g.pendingSync = map[string]bool{}
	for _, m := range g.ordered() {
		r := c.joinResponse(g, m, m.joinV, g.leader, m.id == g.leader, false)
		m.joinCh <- r
		m.joinCh = nil
		c.touchLocked(m)
		g.pendingSync[m.id] = true
	}
	// Kafka removes members that got their JoinGroup answer but do not
	// send SyncGroup within the rebalance timeout, even if they heartbeat.
	g.syncEpoch++
	epoch, gen := g.syncEpoch, g.generation
	if g.syncTimer != nil {
		g.syncTimer.Stop()
	}
	g.syncTimer = time.AfterFunc(g.rebalanceTimeout(), func() { c.pendingSyncTimeout(g, epoch, gen) })
}

func (c *Coordinator) pendingSyncTimeout(g *group, epoch uint64, gen int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || g.syncEpoch != epoch || g.generation != gen || len(g.pendingSync) == 0 ||
		(g.state != CompletingRebalance && g.state != Stable) {
		return
	}
	removed := 0
	for id := range g.pendingSync {
		if m := g.members[id]; m != nil {
			c.log.Info("member removed: no SyncGroup within the rebalance timeout", "group", g.id, "member", id)
			c.dropMemberLocked(g, m)
			removed++
		}
	}
	g.pendingSync = nil
	if removed > 0 {
		c.maybePrepareRebalanceLocked(g)
		c.tryCompleteJoinLocked(g)
	}
}

// Sync handles a SyncGroup request; the answer arrives on the channel.
func (c *Coordinator) Sync(req *kmsg.SyncGroupRequest) <-chan *kmsg.SyncGroupResponse {
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	fail := func(e *kerr.Error) <-chan *kmsg.SyncGroupResponse {
		ch <- syncError(e)
		return ch
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID)
	}
	instance := ""
	if req.InstanceID != nil {
		instance = *req.InstanceID
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fail(kerr.CoordinatorNotAvailable)
	}
	g := c.groups[req.Group]
	if g == nil {
		return fail(kerr.UnknownMemberID)
	}
	if g.state == Dead {
		return fail(kerr.CoordinatorNotAvailable)
	}
	if g.cons != nil {
		ch <- c.classicSyncLocked(g, req)
		return ch
	}
	if e := g.fenced(instance, req.MemberID); e != nil {
		return fail(e)
	}
	m := g.members[req.MemberID]
	if m == nil {
		return fail(kerr.UnknownMemberID)
	}
	if req.Generation != g.generation {
		return fail(kerr.IllegalGeneration)
	}
	if (req.ProtocolType != nil && *req.ProtocolType != g.protocolType) || (req.Protocol != nil && *req.Protocol != g.protocol) {
		return fail(kerr.InconsistentGroupProtocol)
	}
	switch g.state {
	case Empty:
		return fail(kerr.UnknownMemberID)
	case PreparingRebalance:
		return fail(kerr.RebalanceInProgress)
	case Stable:
		delete(g.pendingSync, m.id)
		c.touchLocked(m)
		ch <- c.syncResponse(g, m)
		return ch
	}
	delete(g.pendingSync, m.id)
	// CompletingRebalance: wait for the leader's assignment.
	c.touchLocked(m)
	if m.syncCh != nil {
		m.syncCh <- syncError(kerr.RebalanceInProgress)
	}
	m.syncCh = ch
	if m.id != g.leader || g.syncStoring {
		return ch
	}
	assign := map[string][]byte{}
	for _, a := range req.GroupAssignment {
		if g.members[a.MemberID] != nil {
			assign[a.MemberID] = a.MemberAssignment
		}
	}
	gen := g.generation
	g.syncStoring = true
	rec := c.groupRecordWith(g, assign)
	c.appendLocked(c.partition(g.id), []Record{rec}, func(err error) {
		if c.groups[g.id] != g || g.generation != gen || g.state != CompletingRebalance {
			return // a newer rebalance took over
		}
		g.syncStoring = false
		if err != nil {
			c.log.Error("persist group assignment", "group", g.id, "err", err)
			c.resetSyncLocked(g, kerr.CoordinatorNotAvailable)
			c.prepareRebalanceLocked(g)
			return
		}
		for _, om := range g.members {
			om.assignment = assign[om.id]
			if om.assignment == nil {
				om.assignment = []byte{}
			}
		}
		g.transition(Stable)
		for _, om := range g.members {
			if om.syncCh != nil {
				om.syncCh <- c.syncResponse(g, om)
				om.syncCh = nil
			}
		}
	})
	return ch
}

func syncError(e *kerr.Error) *kmsg.SyncGroupResponse {
	r := kmsg.NewPtrSyncGroupResponse()
	r.ErrorCode = e.Code
	r.MemberAssignment = []byte{}
	return r
}

func (c *Coordinator) syncResponse(g *group, m *member) *kmsg.SyncGroupResponse {
	r := kmsg.NewPtrSyncGroupResponse()
	ptype, proto := g.protocolType, g.protocol
	r.ProtocolType, r.Protocol = &ptype, &proto
	r.MemberAssignment = m.assignment
	if r.MemberAssignment == nil {
		r.MemberAssignment = []byte{}
	}
	return r
}

// resetSyncLocked answers every waiting SyncGroup with e and forgets the
// assignment: the generation will not become stable.
func (c *Coordinator) resetSyncLocked(g *group, e *kerr.Error) {
	g.syncStoring = false
	for _, m := range g.members {
		m.assignment = nil
		if m.syncCh != nil {
			m.syncCh <- syncError(e)
			m.syncCh = nil
		}
	}
}

// Heartbeat handles a Heartbeat request and returns its error code.
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest) int16 {
	if req.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	instance := ""
	if req.InstanceID != nil {
		instance = *req.InstanceID
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return kerr.CoordinatorNotAvailable.Code
	}
	g := c.groups[req.Group]
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	if g.state == Dead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if g.cons != nil {
		return c.classicHeartbeatLocked(g, req)
	}
	if e := g.fenced(instance, req.MemberID); e != nil {
		return e.Code
	}
	m := g.members[req.MemberID]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	if req.Generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	switch g.state {
	case Empty:
		return kerr.UnknownMemberID.Code
	case PreparingRebalance:
		c.touchLocked(m)
		return kerr.RebalanceInProgress.Code
	default:
		c.touchLocked(m)
		return 0
	}
}

// LeaveMember is one member leaving (LeaveGroup v3+ batches them).
type LeaveMember struct {
	MemberID, InstanceID string
}

// Leave removes members and returns the group-level error code and one
// code per member.
func (c *Coordinator) Leave(groupID string, leaving []LeaveMember) (int16, []int16) {
	codes := make([]int16, len(leaving))
	if groupID == "" {
		return kerr.InvalidGroupID.Code, codes
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return kerr.CoordinatorNotAvailable.Code, codes
	}
	g := c.groups[groupID]
	if g == nil {
		for i := range codes {
			codes[i] = kerr.UnknownMemberID.Code
		}
		return 0, codes
	}
	if g.state == Dead {
		return kerr.CoordinatorNotAvailable.Code, codes
	}
	for i, l := range leaving {
		if g.cons != nil {
			codes[i] = c.classicLeaveLocked(g, l)
			continue
		}
		if l.InstanceID != "" {
			cur, ok := g.instances[l.InstanceID]
			switch {
			case !ok:
				codes[i] = kerr.UnknownMemberID.Code
			case l.MemberID != "" && l.MemberID != cur:
				codes[i] = kerr.FencedInstanceID.Code
			default:
				c.removeMemberLocked(g, g.members[cur])
			}
			continue
		}
		if pm, ok := g.pending[l.MemberID]; ok {
			pm.timer.Stop()
			delete(g.pending, l.MemberID)
			c.tryCompleteJoinLocked(g)
			continue
		}
		m := g.members[l.MemberID]
		if m == nil {
			codes[i] = kerr.UnknownMemberID.Code
			continue
		}
		c.removeMemberLocked(g, m)
	}
	return 0, codes
}

// dropMemberLocked takes m out of the group without touching the state.
func (c *Coordinator) dropMemberLocked(g *group, m *member) {
	m.removed = true
	if m.timer != nil {
		m.timer.Stop()
	}
	m.failWaiting(kerr.UnknownMemberID)
	delete(g.members, m.id)
	delete(g.pendingSync, m.id)
	if m.instanceID != "" && g.instances[m.instanceID] == m.id {
		delete(g.instances, m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if ms := g.ordered(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
}

// removeMemberLocked removes m (leave or session expiry) and rebalances.
func (c *Coordinator) removeMemberLocked(g *group, m *member) {
	c.dropMemberLocked(g, m)
	switch g.state {
	case Stable, CompletingRebalance:
		c.maybePrepareRebalanceLocked(g)
		c.tryCompleteJoinLocked(g)
	case PreparingRebalance:
		c.tryCompleteJoinLocked(g)
	}
}

// touchLocked extends m's session: it proved it is alive.
func (c *Coordinator) touchLocked(m *member) {
	m.deadline = time.Now().Add(m.session)
}

// startSessionLocked arms m's session timer. The timer is not reset on
// every heartbeat: it fires at the first deadline and re-arms itself for
// whatever the heartbeats added meanwhile.
func (c *Coordinator) startSessionLocked(g *group, m *member) {
	c.touchLocked(m)
	m.timer = time.AfterFunc(m.session, func() { c.sessionCheck(g, m) })
}

func (c *Coordinator) sessionCheck(g *group, m *member) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || m.removed || g.members[m.id] != m {
		return
	}
	now := time.Now()
	if m.joinCh != nil || m.syncCh != nil {
		// Waiting in JoinGroup or SyncGroup counts as alive; the
		// rebalance timeout bounds the wait instead.
		m.deadline = now.Add(m.session)
	}
	if left := m.deadline.Sub(now); left > 0 {
		m.timer = time.AfterFunc(left, func() { c.sessionCheck(g, m) })
		return
	}
	c.log.Info("member removed: session timeout", "group", g.id, "member", m.id, "session_timeout", m.session)
	c.removeMemberLocked(g, m)
}

func (c *Coordinator) expirePending(g *group, id string, pm *pendingMember) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || g.pending[id] != pm {
		return
	}
	delete(g.pending, id)
	c.tryCompleteJoinLocked(g)
	c.maybeForgetLocked(g)
}

// maybeForgetLocked drops a group that never got past its first join and
// holds nothing worth keeping (no members, offsets or generation).
func (c *Coordinator) maybeForgetLocked(g *group) {
	if g.state == Empty && len(g.members) == 0 && len(g.pending) == 0 && len(g.offsets) == 0 && len(g.txn) == 0 && g.generation == 0 && c.groups[g.id] == g {
		delete(c.groups, g.id)
	}
}
