package group

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// someTopics is a topic catalog tests change: name -> partitions.
type someTopics map[string]int32

func (s someTopics) PartitionExists(topic string, p int32) bool { return p >= 0 && p < s[topic] }

func (s someTopics) TopicInfo(name string) ([16]byte, int32, bool) {
	n, ok := s[name]
	return topicID(name), n, ok
}

func (s someTopics) TopicNames() []string {
	var out []string
	for t := range s {
		out = append(out, t)
	}
	return out
}

func topicID(name string) [16]byte {
	var id [16]byte
	copy(id[:], name)
	return id
}

func newConsumerTestCoordinator(t *testing.T, l Log, topics someTopics) *Coordinator {
	t.Helper()
	c := New(Config{ConsumerSessionTimeout: time.Minute, ConsumerHeartbeatInterval: time.Second,
		OffsetsRetentionCheck: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, l, topics)
	if err := c.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// hb is one member's view of its heartbeats.
type hb struct {
	t        *testing.T
	c        *Coordinator
	group    string
	id       string
	instance *string
	epoch    int32
	owned    map[[16]byte][]int32
	topics   []string
	regex    *string
	assignor string
	// canDescribe is the member's topic permission (nil: all).
	canDescribe func(string) bool
}

func (h *hb) req(full bool) *kmsg.ConsumerGroupHeartbeatRequest {
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.Version = 1
	r.Group, r.MemberID, r.MemberEpoch, r.InstanceID = h.group, h.id, h.epoch, h.instance
	r.RebalanceTimeoutMillis = -1
	if full || h.epoch == 0 {
		r.RebalanceTimeoutMillis = 60000
		r.SubscribedTopicNames, r.SubscribedTopicRegex = h.topics, h.regex
		if h.topics == nil && h.regex == nil {
			r.SubscribedTopicNames = []string{}
		}
		if h.assignor != "" {
			r.ServerAssignor = &h.assignor
		}
		r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		if h.epoch != 0 {
			for id, ps := range h.owned {
				r.Topics = append(r.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: id, Partitions: ps})
			}
		}
	}
	return r
}

// beat sends a heartbeat and, like a client, adopts the epoch and the
// assignment (revoking at once what it lost).
func (h *hb) beat(full bool) *kmsg.ConsumerGroupHeartbeatResponse {
	h.t.Helper()
	resp := <-h.c.ConsumerHeartbeat(h.req(full), "client", "/127.0.0.1", h.canDescribe)
	if resp.ErrorCode != 0 {
		return resp
	}
	h.epoch = resp.MemberEpoch
	if resp.Assignment != nil {
		h.owned = map[[16]byte][]int32{}
		for _, t := range resp.Assignment.Topics {
			h.owned[t.TopicID] = t.Partitions
		}
	}
	return resp
}

func (h *hb) must(full bool) *kmsg.ConsumerGroupHeartbeatResponse {
	h.t.Helper()
	resp := h.beat(full)
	if resp.ErrorCode != 0 {
		h.t.Fatalf("member %s heartbeat: %v", h.id, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp
}

func (h *hb) count() int {
	n := 0
	for _, ps := range h.owned {
		n += len(ps)
	}
	return n
}

// noOverlap fails if two members own the same partition.
func noOverlap(t *testing.T, members ...*hb) {
	t.Helper()
	seen := map[tpart]string{}
	for _, m := range members {
		for id, ps := range m.owned {
			for _, p := range ps {
				if o, ok := seen[tpart{id, p}]; ok {
					t.Fatalf("partition %s/%d owned by %s and %s", id, p, o, m.id)
				}
				seen[tpart{id, p}] = m.id
			}
		}
	}
}

// TestConsumerGroupRevokeBeforeAssign: a second member gets its share
// only after the first revoked it, and then both are at the new epoch.
func TestConsumerGroupRevokeBeforeAssign(t *testing.T) {
	c := newConsumerTestCoordinator(t, newMemLog(4), someTopics{"t": 8})
	a := &hb{t: t, c: c, group: "g", id: "a", topics: []string{"t"}}
	a.must(false)
	if a.epoch != 1 || a.count() != 8 {
		t.Fatalf("first member: epoch %d with %d partitions, want 1 with 8", a.epoch, a.count())
	}
	b := &hb{t: t, c: c, group: "g", id: "b", topics: []string{"t"}}
	b.must(false)
	if b.count() != 0 || b.epoch != 2 {
		t.Fatalf("second member before the revocation: epoch %d with %d partitions, want 2 with 0", b.epoch, b.count())
	}
	// a learns it must revoke 4: its epoch stays until it reports so.
	resp := a.must(false)
	if a.epoch != 1 || a.count() != 4 || resp.Assignment == nil {
		t.Fatalf("first member told to revoke: epoch %d with %d partitions", a.epoch, a.count())
	}
	b.must(false)
	if b.count() != 0 {
		t.Fatalf("second member got %d partitions before the first revoked them", b.count())
	}
	a.must(true) // reports owning only its 4
	if a.epoch != 2 {
		t.Fatalf("first member after revoking: epoch %d, want 2", a.epoch)
	}
	b.must(false)
	if b.count() != 4 || b.epoch != 2 {
		t.Fatalf("second member after the revocation: epoch %d with %d partitions, want 2 with 4", b.epoch, b.count())
	}
	noOverlap(t, a, b)

	// An epoch the member cannot have is fenced.
	stale := &hb{t: t, c: c, group: "g", id: "a", epoch: 7}
	if resp := stale.beat(false); resp.ErrorCode != kerr.FencedMemberEpoch.Code {
		t.Errorf("heartbeat at a future epoch: %v, want FENCED_MEMBER_EPOCH", kerr.ErrorForCode(resp.ErrorCode))
	}
	unknown := &hb{t: t, c: c, group: "g", id: "nobody", epoch: 2}
	if resp := unknown.beat(false); resp.ErrorCode != kerr.UnknownMemberID.Code {
		t.Errorf("heartbeat of an unknown member: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(resp.ErrorCode))
	}

	// b leaves: a gets everything back at the next epoch.
	b.epoch = leaveEpoch
	if resp := b.must(false); resp.MemberEpoch != leaveEpoch {
		t.Fatalf("leave answered epoch %d", resp.MemberEpoch)
	}
	a.must(true)
	if a.count() != 8 || a.epoch != 3 {
		t.Fatalf("after the leave: epoch %d with %d partitions, want 3 with 8", a.epoch, a.count())
	}
}

// TestConsumerGroupResumesAfterReload: a coordinator loading the offsets
// log knows the members, their epochs and assignments, so they go on
// heartbeating without rejoining.
func TestConsumerGroupResumesAfterReload(t *testing.T) {
	l := newMemLog(4)
	topics := someTopics{"t": 6}
	c := newConsumerTestCoordinator(t, l, topics)
	a := &hb{t: t, c: c, group: "g", id: "a", topics: []string{"t"}, assignor: "range"}
	b := &hb{t: t, c: c, group: "g", id: "b", topics: []string{"t"}, assignor: "range"}
	a.must(false)
	b.must(false)
	for range 3 {
		a.must(true)
		b.must(true)
	}
	if a.count() != 3 || b.count() != 3 || a.epoch != b.epoch {
		t.Fatalf("before reload: a epoch %d with %d, b epoch %d with %d", a.epoch, a.count(), b.epoch, b.count())
	}
	before := c.DescribeConsumer("g")
	c.Close()

	c2 := newConsumerTestCoordinator(t, l, topics)
	after := c2.DescribeConsumer("g")
	if after.ErrorCode != 0 || after.Epoch != before.Epoch || after.AssignmentEpoch != before.AssignmentEpoch ||
		len(after.Members) != 2 || after.State != "Stable" || after.AssignorName != "range" {
		t.Fatalf("after reload: %+v, before %+v", after, before)
	}
	for i, m := range after.Members {
		bm := before.Members[i]
		if m.MemberID != bm.MemberID || m.MemberEpoch != bm.MemberEpoch || len(m.Assignment.TopicPartitions) != 1 ||
			!slices.Equal(m.Assignment.TopicPartitions[0].Partitions, bm.Assignment.TopicPartitions[0].Partitions) {
			t.Errorf("member %d after reload %+v, before %+v", i, m, bm)
		}
	}
	a.c, b.c = c2, c2
	epoch := a.epoch
	a.must(true)
	b.must(false)
	if a.epoch != epoch || a.count() != 3 {
		t.Errorf("after reload a is at epoch %d with %d partitions, want %d with 3", a.epoch, a.count(), epoch)
	}
	// A new partition count is a new assignment.
	topics["t"] = 8
	c2.mu.Lock()
	c2.groups["g"].cons.metaAt = time.Time{}
	c2.mu.Unlock()
	for range 3 {
		a.must(true)
		b.must(true)
	}
	if a.count()+b.count() != 8 || a.epoch != epoch+1 {
		t.Errorf("after the topic grew: %d + %d partitions at epoch %d, want 8 at %d", a.count(), b.count(), a.epoch, epoch+1)
	}
	noOverlap(t, a, b)
}

// TestConsumerGroupStaticMember: a static member that leaves with epoch
// -2 keeps its partitions for its instance; the instance rejoining under
// a new member id gets them back without a new assignment, and a second
// process claiming the instance while it is active is refused.
func TestConsumerGroupStaticMember(t *testing.T) {
	c := newConsumerTestCoordinator(t, newMemLog(4), someTopics{"t": 4})
	inst := "instance-1"
	a := &hb{t: t, c: c, group: "g", id: "a1", instance: &inst, topics: []string{"t"}}
	b := &hb{t: t, c: c, group: "g", id: "b", topics: []string{"t"}}
	a.must(false)
	b.must(false)
	for range 3 {
		a.must(true)
		b.must(true)
	}
	owned := a.owned
	epoch := c.DescribeConsumer("g").Epoch

	dup := &hb{t: t, c: c, group: "g", id: "a2", instance: &inst, topics: []string{"t"}}
	if resp := dup.beat(false); resp.ErrorCode != kerr.UnreleasedInstanceID.Code {
		t.Fatalf("second member of an active instance: %v, want UNRELEASED_INSTANCE_ID", kerr.ErrorForCode(resp.ErrorCode))
	}
	a.epoch = staticLeaveEpoch
	if resp := a.must(false); resp.MemberEpoch != staticLeaveEpoch {
		t.Fatalf("static leave answered epoch %d", resp.MemberEpoch)
	}
	b.must(true)
	if b.count() != 2 {
		t.Fatalf("other member took partitions of a static member that left: %d", b.count())
	}
	dup.must(false)
	if !mapsEqual(dup.owned, owned) {
		t.Errorf("rejoined instance got %v, want its old %v", dup.owned, owned)
	}
	if d := c.DescribeConsumer("g"); d.Epoch != epoch || len(d.Members) != 2 {
		t.Errorf("after the instance rejoined: group epoch %d with %d members, want %d with 2", d.Epoch, len(d.Members), epoch)
	}
	// The old member id is fenced.
	a.epoch = dup.epoch
	if resp := a.beat(false); resp.ErrorCode != kerr.UnknownMemberID.Code && resp.ErrorCode != kerr.FencedInstanceID.Code {
		t.Errorf("heartbeat of the replaced member id: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
}

func mapsEqual(a, b map[[16]byte][]int32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestConsumerGroupRegexSubscription: a regex is evaluated on the
// coordinator, over the topics as they are created and deleted.
func TestConsumerGroupRegexSubscription(t *testing.T) {
	topics := someTopics{"logs-a": 2, "metrics": 2}
	c := newConsumerTestCoordinator(t, newMemLog(4), topics)
	re := "^logs-.*"
	a := &hb{t: t, c: c, group: "g", id: "a", regex: &re}
	a.must(false)
	if a.count() != 2 || len(a.owned) != 1 || a.owned[topicID("logs-a")] == nil {
		t.Fatalf("regex member owns %v", a.owned)
	}
	topics["logs-b"] = 3
	c.mu.Lock()
	c.groups["g"].cons.metaAt = time.Time{} // skip the once-a-second pacing
	c.mu.Unlock()
	a.must(true)
	if a.count() != 5 {
		t.Fatalf("after logs-b was created the regex member owns %d partitions, want 5", a.count())
	}
	delete(topics, "logs-a")
	c.mu.Lock()
	c.groups["g"].cons.metaAt = time.Time{}
	c.mu.Unlock()
	a.must(true) // told to revoke logs-a
	a.must(true)
	if a.count() != 3 || a.owned[topicID("logs-b")] == nil {
		t.Fatalf("after logs-a was deleted the regex member owns %v", a.owned)
	}
	// A member matches only the topics it may describe.
	re2 := "^logs-.*"
	d := &hb{t: t, c: c, group: "g2", id: "d", regex: &re2, canDescribe: func(t string) bool { return t != "logs-b" }}
	d.must(false)
	if d.count() != 0 {
		t.Errorf("member without Describe on logs-b owns %v", d.owned)
	}
	topics["logs-c"] = 1
	c.mu.Lock()
	c.groups["g2"].cons.metaAt = time.Time{}
	c.mu.Unlock()
	d.must(true)
	if d.count() != 1 || d.owned[topicID("logs-c")] == nil {
		t.Errorf("member allowed logs-c only owns %v", d.owned)
	}

	bad := "logs-("
	b := &hb{t: t, c: c, group: "g", id: "b", regex: &bad}
	if resp := b.beat(false); resp.ErrorCode != kerr.InvalidRegularExpression.Code {
		t.Errorf("bad regex: %v, want INVALID_REGULAR_EXPRESSION", kerr.ErrorForCode(resp.ErrorCode))
	}
}

// TestConsumerGroupOffsetsShared: a consumer group commits with its
// member epoch (KIP-1251: an older epoch for partitions owned since),
// and an empty consumer group becomes a classic one that keeps its
// offsets.
func TestConsumerGroupOffsetsShared(t *testing.T) {
	c := newConsumerTestCoordinator(t, newMemLog(4), someTopics{"t": 2})
	a := &hb{t: t, c: c, group: "g", id: "a", topics: []string{"t"}}
	a.must(false)
	commit := func(member string, epoch int32, p int32, off int64) int16 {
		r := kmsg.NewPtrOffsetCommitRequest()
		r.Version, r.Group, r.MemberID, r.Generation = 9, "g", member, epoch
		r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: p, Offset: off, LeaderEpoch: -1}}}}
		return (<-c.Commit(r)).Topics[0].Partitions[0].ErrorCode
	}
	if code := commit("a", a.epoch, 0, 10); code != 0 {
		t.Fatalf("commit at the member epoch: %v", kerr.ErrorForCode(code))
	}
	if code := commit("a", a.epoch+1, 0, 11); code != kerr.StaleMemberEpoch.Code {
		t.Errorf("commit at a future epoch: %v, want STALE_MEMBER_EPOCH", kerr.ErrorForCode(code))
	}
	if code := commit("x", 1, 0, 11); code != kerr.UnknownMemberID.Code {
		t.Errorf("commit of an unknown member: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(code))
	}
	if code := commit("", -1, 0, 11); code != kerr.UnknownMemberID.Code {
		t.Errorf("commit without membership to a group with members: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(code))
	}
	old := a.epoch
	b := &hb{t: t, c: c, group: "g", id: "b", topics: []string{"t"}}
	b.must(false)
	a.must(false)
	a.must(true)
	if a.epoch == old {
		t.Fatalf("member a did not move to a new epoch")
	}
	kept := a.owned[topicID("t")][0]
	if code := commit("a", old, kept, 12); code != 0 {
		t.Errorf("commit at the previous epoch of a partition owned since: %v", kerr.ErrorForCode(code))
	}
	if code := c.CheckConsumerFetch("g", &a.id, old); code != kerr.StaleMemberEpoch.Code {
		t.Errorf("fetch at an old epoch: %v, want STALE_MEMBER_EPOCH", kerr.ErrorForCode(code))
	}
	if code := c.CheckConsumerFetch("g", &a.id, a.epoch); code != 0 {
		t.Errorf("fetch at the member epoch: %v", kerr.ErrorForCode(code))
	}

	for _, m := range []*hb{a, b} {
		m.epoch = leaveEpoch
		m.must(false)
	}
	// Empty: a classic member may join and sees the offsets.
	j := kmsg.NewPtrJoinGroupRequest()
	j.Version, j.Group, j.ProtocolType, j.SessionTimeoutMillis, j.RebalanceTimeoutMillis = 3, "g", "consumer", 10000, 10000
	j.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0}}}
	if resp := <-c.Join(j, "client", "/127.0.0.1"); resp.ErrorCode != 0 && resp.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("classic join of an empty consumer group: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	offs, _ := c.FetchOffsets("g", map[string][]int32{"t": {kept}}, false)
	if len(offs) != 1 || offs[0].Offset != 12 {
		t.Errorf("offsets after the group became classic: %+v", offs)
	}
	if l := c.List(nil); len(l) != 1 || l[0].Type != ClassicGroupType {
		t.Errorf("listed %+v, want one classic group", l)
	}
}

// TestUniformAssignorSticky: the uniform assignor balances within one
// partition and moves only what balance needs when a member joins.
func TestUniformAssignorSticky(t *testing.T) {
	tm := []topicMeta{{"t", topicID("t"), 10}}
	subs := map[string][]topicMeta{"a": tm, "b": tm}
	first := assignUniform([]string{"a", "b"}, subs, map[string]pset{})
	if len(first["a"]) != 5 || len(first["b"]) != 5 {
		t.Fatalf("two members: %d and %d", len(first["a"]), len(first["b"]))
	}
	subs["c"] = tm
	second := assignUniform([]string{"a", "b", "c"}, subs, first)
	moved := 0
	for _, id := range []string{"a", "b"} {
		for p := range first[id] {
			if !second[id].has(p) {
				moved++
			}
		}
	}
	sizes := []int{len(second["a"]), len(second["b"]), len(second["c"])}
	slices.Sort(sizes)
	if !slices.Equal(sizes, []int{3, 3, 4}) || moved != len(second["c"]) {
		t.Errorf("third member: sizes %v, %d moved (want 3, 3, 4 and only the new member's)", sizes, moved)
	}
	r := assignRange([]string{"a", "b", "c"}, subs)
	if len(r["a"]) != 4 || !r["a"].has(tpart{topicID("t"), 0}) || !r["c"].has(tpart{topicID("t"), 9}) {
		t.Errorf("range: %v", r)
	}
}

// TestConsumerGroupMigrationReload: a classic group converted by a
// consumer-protocol join keeps its classic member across a reload, and
// converts back into a classic group when the consumer-protocol member
// leaves, which a reload keeps too.
func TestConsumerGroupMigrationReload(t *testing.T) {
	l := newMemLog(4)
	topics := someTopics{"t": 4}
	c := newConsumerTestCoordinator(t, l, topics)
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = []string{"t"}
	j := kmsg.NewPtrJoinGroupRequest()
	j.Version, j.Group, j.ProtocolType, j.SessionTimeoutMillis, j.RebalanceTimeoutMillis = 3, "g", "consumer", 30000, 30000
	j.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: md.AppendTo(nil)}}
	jr := <-c.Join(j, "client", "/127.0.0.1")
	if jr.ErrorCode != 0 || jr.LeaderID != jr.MemberID {
		t.Fatalf("classic join: %v leader %q member %q", kerr.ErrorForCode(jr.ErrorCode), jr.LeaderID, jr.MemberID)
	}
	as := kmsg.NewConsumerMemberAssignment()
	as.Topics = []kmsg.ConsumerMemberAssignmentTopic{{Topic: "t", Partitions: []int32{0, 1, 2, 3}}}
	s := kmsg.NewPtrSyncGroupRequest()
	s.Version, s.Group, s.MemberID, s.Generation = 3, "g", jr.MemberID, jr.Generation
	s.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: jr.MemberID, MemberAssignment: as.AppendTo(nil)}}
	if sr := <-c.Sync(s); sr.ErrorCode != 0 {
		t.Fatalf("classic sync: %v", kerr.ErrorForCode(sr.ErrorCode))
	}

	b := &hb{t: t, c: c, group: "g", id: "b", topics: []string{"t"}}
	b.must(false)
	d := c.DescribeConsumer("g")
	if d.ErrorCode != 0 || len(d.Members) != 2 {
		t.Fatalf("after the consumer-protocol join: %+v", d)
	}
	c.Close()
	c = newConsumerTestCoordinator(t, l, topics)
	b.c = c
	d2 := c.DescribeConsumer("g")
	if d2.Epoch != d.Epoch || len(d2.Members) != 2 {
		t.Fatalf("after reload: %+v, before %+v", d2, d)
	}
	classic := 0
	for _, m := range d2.Members {
		if m.MemberType == 0 {
			classic++
			if m.MemberID != jr.MemberID || m.MemberEpoch != jr.Generation || len(m.Assignment.TopicPartitions) != 1 {
				t.Errorf("classic member after reload: %+v", m)
			}
		}
	}
	if classic != 1 {
		t.Errorf("%d classic members after reload, want 1", classic)
	}
	h := kmsg.NewPtrHeartbeatRequest()
	h.Group, h.MemberID, h.Generation = "g", jr.MemberID, jr.Generation
	if code := c.Heartbeat(h); code != kerr.RebalanceInProgress.Code {
		t.Errorf("classic member's heartbeat with a new target: %v, want REBALANCE_IN_PROGRESS", kerr.ErrorForCode(code))
	}

	b.epoch = leaveEpoch
	b.must(false)
	if ls := c.List(nil); len(ls) != 1 || ls[0].Type != ClassicGroupType {
		t.Fatalf("after the last consumer-protocol member left: %+v", ls)
	}
	c.Close()
	c = newConsumerTestCoordinator(t, l, topics)
	dg := c.Describe("g", 5)
	if dg.ProtocolType != "consumer" || len(dg.Members) != 1 || dg.Members[0].MemberID != jr.MemberID {
		t.Errorf("classic group after reload: %+v", dg)
	}
}

// TestConsumerGroupClassicMemberMustRejoin: a classic member of a
// consumer group told to rebalance that does not rejoin within its
// rebalance timeout is removed, and its partitions go to the others.
func TestConsumerGroupClassicMemberMustRejoin(t *testing.T) {
	c := newConsumerTestCoordinator(t, newMemLog(4), someTopics{"t": 4})
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = []string{"t"}
	j := kmsg.NewPtrJoinGroupRequest()
	j.Version, j.Group, j.ProtocolType, j.SessionTimeoutMillis, j.RebalanceTimeoutMillis = 3, "g", "consumer", 30000, 100
	j.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: md.AppendTo(nil)}}
	jr := <-c.Join(j, "client", "/127.0.0.1")
	as := kmsg.NewConsumerMemberAssignment()
	as.Topics = []kmsg.ConsumerMemberAssignmentTopic{{Topic: "t", Partitions: []int32{0, 1, 2, 3}}}
	s := kmsg.NewPtrSyncGroupRequest()
	s.Version, s.Group, s.MemberID, s.Generation = 3, "g", jr.MemberID, jr.Generation
	s.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: jr.MemberID, MemberAssignment: as.AppendTo(nil)}}
	if sr := <-c.Sync(s); sr.ErrorCode != 0 {
		t.Fatalf("classic sync: %v", kerr.ErrorForCode(sr.ErrorCode))
	}
	b := &hb{t: t, c: c, group: "g", id: "b", topics: []string{"t"}}
	b.must(false)
	if b.count() != 0 {
		t.Fatalf("consumer member got %d partitions the classic member still owns", b.count())
	}
	h := kmsg.NewPtrHeartbeatRequest()
	h.Group, h.MemberID, h.Generation = "g", jr.MemberID, jr.Generation
	if code := c.Heartbeat(h); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("classic heartbeat: %v, want REBALANCE_IN_PROGRESS", kerr.ErrorForCode(code))
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.count() != 4 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		b.must(true)
	}
	if b.count() != 4 {
		t.Fatalf("after the classic member's rebalance timeout the consumer member owns %d partitions, want 4", b.count())
	}
	if code := c.Heartbeat(h); code != kerr.UnknownMemberID.Code && code != kerr.IllegalGeneration.Code {
		t.Errorf("removed classic member's heartbeat: %v", kerr.ErrorForCode(code))
	}
}
