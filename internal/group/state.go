package group

import (
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is a classic group's state, named as Kafka reports it in
// ListGroups and DescribeGroups.
type State int

const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

func (s State) String() string {
	switch s {
	case Empty:
		return "Empty"
	case PreparingRebalance:
		return "PreparingRebalance"
	case CompletingRebalance:
		return "CompletingRebalance"
	case Stable:
		return "Stable"
	default:
		return "Dead"
	}
}

type protocol struct {
	name     string
	metadata []byte
}

// member is one member of a group.
type member struct {
	id, instanceID     string // instanceID "" for dynamic members
	clientID, host     string
	session, rebalance time.Duration
	protocolType       string
	protocols          []protocol
	assignment         []byte
	joinOrder          uint64 // for a deterministic member order (leader choice)

	// Set while a JoinGroup or SyncGroup of this member waits for the
	// rebalance; a waiting member is kept alive by its session timer, as
	// in Kafka, because it cannot heartbeat while it waits.
	joinCh chan *kmsg.JoinGroupResponse
	joinV  int16 // version of the waiting JoinGroup
	syncCh chan *kmsg.SyncGroupResponse

	deadline time.Time // session expiry
	timer    *time.Timer
	removed  bool
}

// failWaiting answers the member's waiting JoinGroup and SyncGroup, if
// any, with e. Both channels hold one response, so this never blocks.
func (m *member) failWaiting(e *kerr.Error) {
	if m.joinCh != nil {
		m.joinCh <- joinError(m.joinV, e, m.id)
		m.joinCh = nil
	}
	if m.syncCh != nil {
		m.syncCh <- syncError(e)
		m.syncCh = nil
	}
}

func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return nil
}

func (m *member) supports(name string) bool {
	for _, p := range m.protocols {
		if p.name == name {
			return true
		}
	}
	return false
}

// matches reports whether protos equal the member's current protocols
// (names and metadata, in order): a rejoin with unchanged protocols need
// not rebalance a stable group.
func (m *member) matches(protos []protocol) bool {
	if len(protos) != len(m.protocols) {
		return false
	}
	for i, p := range protos {
		if p.name != m.protocols[i].name || string(p.metadata) != string(m.protocols[i].metadata) {
			return false
		}
	}
	return true
}

// pendingMember holds a member id handed out with MEMBER_ID_REQUIRED
// (KIP-394) until the client joins with it or its session expires.
type pendingMember struct {
	timer *time.Timer
}

// offset is one committed offset. at is the position of its record in
// the offsets log (-1 while not known), which decides between a
// transaction's offset and a plain commit of the same partition.
type offset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitTs    int64
	at          int64
}

type tp struct {
	topic     string
	partition int32
}

// group is one consumer group.
type group struct {
	id           string
	state        State
	protocolType string
	protocol     string
	generation   int32
	leader       string
	members      map[string]*member
	instances    map[string]string // group.instance.id -> member id
	pending      map[string]*pendingMember
	offsets      map[tp]offset
	// pendingCommits counts the commits of a partition appended but not
	// yet durable: expiry leaves those offsets alone, as Kafka does.
	pendingCommits map[tp]int
	// txn are the pending transactional offsets, by producer id.
	txn     map[int64]map[tp][]*txnOffset
	stateTs int64
	// cons is the KIP-848 state of a consumer group (consumer.go), nil
	// for a classic group. Both kinds share offsets, state (Empty or,
	// with members, Stable) and timestamps.
	cons      *consumerGroup
	nextOrder uint64

	// The rebalance in progress: joinTimer completes it; joinEpoch
	// invalidates a timer that fired while being replaced; initialDelay
	// marks Kafka's InitialDelayedJoin (never completed early).
	joinTimer      *time.Timer
	joinEpoch      uint64
	initialDelay   bool
	delayRemaining time.Duration
	newMemberAdded bool
	syncStoring    bool // the leader's assignment is being made durable

	// Members answered by the last completed join that have not sent
	// SyncGroup yet; syncTimer removes them at the rebalance timeout.
	pendingSync map[string]bool
	syncTimer   *time.Timer
	syncEpoch   uint64
}

func (g *group) clearPendingSync() {
	g.pendingSync = nil
	g.syncEpoch++
	if g.syncTimer != nil {
		g.syncTimer.Stop()
		g.syncTimer = nil
	}
}

func newGroup(id string) *group {
	return &group{id: id, members: map[string]*member{}, instances: map[string]string{},
		pending: map[string]*pendingMember{}, offsets: map[tp]offset{}, pendingCommits: map[tp]int{}, stateTs: time.Now().UnixMilli()}
}

func (g *group) transition(s State) {
	g.state = s
	g.stateTs = time.Now().UnixMilli()
}

// ordered returns the members in join order.
func (g *group) ordered() []*member {
	out := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].joinOrder < out[j].joinOrder })
	return out
}

func (g *group) stopTimers() {
	g.clearPendingSync()
	g.joinEpoch++
	if g.joinTimer != nil {
		g.joinTimer.Stop()
		g.joinTimer = nil
	}
	for _, m := range g.members {
		if m.timer != nil {
			m.timer.Stop()
		}
	}
	for _, p := range g.pending {
		p.timer.Stop()
	}
}

// supportsProtocols is Kafka's check that a joining member can be part of
// the group: an empty group takes any non-empty protocol list; otherwise
// the protocol type must match and one of the offered protocols must be
// supported by every current member.
func (g *group) supportsProtocols(ptype string, protos []protocol) bool {
	if len(g.members) == 0 {
		return ptype != "" && len(protos) > 0
	}
	if ptype != g.protocolType {
		return false
	}
	for _, p := range protos {
		all := true
		for _, m := range g.members {
			if !m.supports(p.name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// selectProtocol chooses the protocol of the next generation as Kafka
// does: among the protocols every member supports, each member votes for
// the first one in its own preference order, and the most votes win. Ties
// go to the candidate the leader (else the first member) prefers.
func (g *group) selectProtocol() string {
	ms := g.ordered()
	if len(ms) == 0 {
		return ""
	}
	candidate := func(name string) bool {
		for _, m := range ms {
			if !m.supports(name) {
				return false
			}
		}
		return true
	}
	votes := map[string]int{}
	for _, m := range ms {
		for _, p := range m.protocols {
			if candidate(p.name) {
				votes[p.name]++
				break
			}
		}
	}
	pref := ms[0]
	if l := g.members[g.leader]; l != nil {
		pref = l
	}
	best, bestVotes := "", -1
	for _, p := range pref.protocols {
		if v, ok := votes[p.name]; ok && v > bestVotes {
			best, bestVotes = p.name, v
		}
	}
	return best
}

func (g *group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalance)
	}
	return d
}

// allJoined: every member has rejoined and no MEMBER_ID_REQUIRED join is
// outstanding (Kafka's hasAllMembersJoined).
func (g *group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if m.joinCh == nil {
			return false
		}
	}
	return true
}

// subscribedTopics decodes the members' consumer-protocol subscriptions;
// ok is false when the group is not a consumer group or a subscription
// cannot be read, and then every topic counts as subscribed (as in Kafka).
func (g *group) subscribedTopics() (map[string]bool, bool) {
	if g.cons != nil {
		return g.cons.subscribed(), true
	}
	if g.protocolType != "consumer" || g.protocol == "" {
		return nil, false
	}
	topics := map[string]bool{}
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadataFor(g.protocol)); err != nil {
			return nil, false
		}
		for _, t := range md.Topics {
			topics[t] = true
		}
	}
	return topics, true
}
