package group

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/producer"
)

// memLog is an in-memory Log for unit tests: durable at once, done runs
// inline (which the interface allows), batches kept per partition with
// their producer fields. It runs no producer checks.
type memLog struct {
	mu    sync.Mutex
	bs    [][]memBatch
	next  []int64 // offset of the next record
	start []int64
}

type memBatch struct {
	base  int64
	attrs int16
	pid   int64
	epoch int16
	recs  []Record
}

func newMemLog(parts int) *memLog {
	return &memLog{bs: make([][]memBatch, parts), next: make([]int64, parts), start: make([]int64, parts)}
}

func (l *memLog) Partitions() int32 { return int32(len(l.bs)) }

func (l *memLog) add(p int32, b memBatch) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	b.base = l.next[p]
	for i, r := range b.recs {
		b.recs[i] = Record{Key: append([]byte(nil), r.Key...), Value: r.Value}
	}
	l.bs[p] = append(l.bs[p], b)
	l.next[p] += int64(len(b.recs))
	return b.base
}

func (l *memLog) Append(p int32, recs []Record, done func(int64, error)) {
	done(l.add(p, memBatch{pid: -1, epoch: -1, recs: append([]Record(nil), recs...)}), nil)
}

func (l *memLog) TxnGuard(int32, int64, int16) (producer.Guard, bool) { return producer.NoGuard, false }

func (l *memLog) AppendBatchVerified(p int32, raw []byte, _ producer.Guard, done func(int64, error)) {
	l.AppendBatch(p, raw, done)
}

func (l *memLog) AppendBatch(p int32, raw []byte, done func(int64, error)) {
	hs, err := batch.Split(raw)
	if err != nil {
		done(0, err)
		return
	}
	first := int64(-1)
	for _, h := range hs {
		_, recs, err := batch.Records(h.Raw, nil)
		if err != nil {
			done(0, err)
			return
		}
		b := memBatch{attrs: h.Attributes, pid: h.ProducerID, epoch: h.ProducerEpoch}
		for _, r := range recs {
			b.recs = append(b.recs, Record{Key: r.Key, Value: r.Value})
		}
		if base := l.add(p, b); first < 0 {
			first = base
		}
	}
	done(first, nil)
}

func (l *memLog) NextSequence(int32, int64, int16) int32 { return 0 }

func (l *memLog) ReplayBatches(ctx context.Context, p int32, fn func(kmsg.RecordBatch, []kmsg.Record, int64) error) error {
	l.mu.Lock()
	bs := append([]memBatch(nil), l.bs[p]...)
	start := l.start[p]
	l.mu.Unlock()
	for _, b := range bs {
		rb := kmsg.RecordBatch{FirstOffset: b.base, Attributes: b.attrs, ProducerID: b.pid, ProducerEpoch: b.epoch,
			LastOffsetDelta: int32(len(b.recs) - 1), NumRecords: int32(len(b.recs))}
		var recs []kmsg.Record
		for i, r := range b.recs {
			if b.base+int64(i) >= start {
				recs = append(recs, kmsg.Record{OffsetDelta: int32(i), Key: r.Key, Value: r.Value})
			}
		}
		if len(recs) > 0 {
			if err := fn(rb, recs, rb.FirstOffset+int64(recs[0].OffsetDelta)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *memLog) SetStart(ctx context.Context, p int32, off int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.start[p] = max(l.start[p], off)
	return nil
}

// replayed counts the records a replay of partition p would read.
func (l *memLog) replayed(p int32) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.next[p] - l.start[p])
}

type allTopics struct{}

func (allTopics) PartitionExists(topic string, p int32) bool {
	return topic != "missing" && p >= 0 && p < 8
}

func (allTopics) TopicInfo(name string) ([16]byte, int32, bool) {
	if name == "missing" {
		return [16]byte{}, 0, false
	}
	var id [16]byte
	copy(id[:], name)
	return id, 8, true
}

func (allTopics) TopicNames() []string { return nil }

func newTestCoordinator(t *testing.T, l Log, snapshot int) *Coordinator {
	t.Helper()
	c := New(Config{InitialRebalanceDelay: 20 * time.Millisecond, MinSessionTimeout: 10 * time.Millisecond,
		SnapshotMinRecords: snapshot, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, l, allTopics{})
	if err := c.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func commitReq(groupID, member string, gen int32, topic string, p int32, off int64) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.MemberID, req.Generation = groupID, member, gen
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: p, Offset: off, LeaderEpoch: 3}}}}
	return req
}

func commit(t *testing.T, c *Coordinator, req *kmsg.OffsetCommitRequest) int16 {
	t.Helper()
	select {
	case r := <-c.Commit(req):
		return r.Topics[0].Partitions[0].ErrorCode
	case <-time.After(5 * time.Second):
		t.Fatal("commit never answered")
		return 0
	}
}

func fetched(c *Coordinator, groupID string) map[tp]int64 {
	offs, _ := c.FetchOffsets(groupID, nil, true)
	out := map[tp]int64{}
	for _, o := range offs {
		out[tp{o.Topic, o.Partition}] = o.Offset
	}
	return out
}

// TestSnapshotBoundsReplay: many commits roll the log over snapshots; a
// new coordinator over the same log reads a bounded tail and rebuilds
// exactly the last committed offsets.
func TestSnapshotBoundsReplay(t *testing.T) {
	l := newMemLog(1)
	c := newTestCoordinator(t, l, 20)
	want := map[string]map[tp]int64{}
	groups := []string{"a", "b", "c"}
	for i := 0; i < 3000; i++ {
		g := groups[i%3]
		k := tp{"t", int32(i % 8)}
		if code := commit(t, c, commitReq(g, "", -1, k.topic, k.partition, int64(i))); code != 0 {
			t.Fatalf("commit %d: %v", i, kerr.ErrorForCode(code))
		}
		if want[g] == nil {
			want[g] = map[tp]int64{}
		}
		want[g][k] = int64(i)
	}
	// Tombstones are part of the state too.
	del := kmsg.NewPtrOffsetDeleteRequest()
	del.Group = "c"
	del.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 2}}}}
	if r := <-c.DeleteOffsets(del); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("offset delete: %+v", r)
	}
	delete(want["c"], tp{"t", 2})
	c.Close() // waits for the log-start moves
	live := 3*8 - 1
	if n := l.replayed(0); n > 2*live+20+live {
		t.Errorf("replay would read %d records for %d live ones", n, live)
	}
	c2 := newTestCoordinator(t, l, 20)
	for _, g := range groups {
		got := fetched(c2, g)
		if len(got) != len(want[g]) {
			t.Errorf("group %s: %d offsets, want %d", g, len(got), len(want[g]))
		}
		for k, v := range want[g] {
			if got[k] != v {
				t.Errorf("group %s %v: %d, want %d", g, k, got[k], v)
			}
		}
	}
}

func joinReqFor(groupID, member string, protos ...string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 3 // no MEMBER_ID_REQUIRED round trip
	req.Group, req.MemberID, req.ProtocolType = groupID, member, "consumer"
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 300, 300
	for _, p := range protos {
		req.Protocols = append(req.Protocols, kmsg.JoinGroupRequestProtocol{Name: p, Metadata: []byte(p)})
	}
	return req
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("no answer")
		var zero T
		return zero
	}
}

// TestProtocolVote: the protocol every member supports that most members
// prefer wins; one leader gets every member's metadata for it.
func TestProtocolVote(t *testing.T) {
	c := newTestCoordinator(t, newMemLog(2), 100)
	chs := []<-chan *kmsg.JoinGroupResponse{
		c.Join(joinReqFor("g", "", "range", "roundrobin", "sticky"), "c1", "/h"),
		c.Join(joinReqFor("g", "", "roundrobin", "range"), "c2", "/h"),
		c.Join(joinReqFor("g", "", "sticky", "roundrobin", "range"), "c3", "/h"),
	}
	leaders := 0
	for _, ch := range chs {
		r := recv(t, ch)
		if r.ErrorCode != 0 || r.Generation != 1 || *r.Protocol != "roundrobin" && *r.Protocol != "range" {
			t.Fatalf("join: %+v", r)
		}
		// Candidates are range and roundrobin (c1 lacks nothing, c2 lacks
		// sticky): c1 votes range, c2 roundrobin, c3 (sticky is no
		// candidate) roundrobin, so roundrobin wins 2-1.
		if *r.Protocol != "roundrobin" {
			t.Errorf("protocol %s, want roundrobin", *r.Protocol)
		}
		if r.LeaderID == r.MemberID {
			leaders++
			if len(r.Members) != 3 || string(r.Members[0].ProtocolMetadata) != "roundrobin" {
				t.Errorf("leader members: %+v", r.Members)
			}
		}
	}
	if leaders != 1 {
		t.Errorf("%d leaders", leaders)
	}
}

// TestRebalanceTimeoutAndReload: a member that does not rejoin within the
// rebalance timeout is removed; a reloaded stable group keeps its
// generation so its member carries on without rejoining.
func TestRebalanceTimeoutAndReload(t *testing.T) {
	l := newMemLog(4)
	c := newTestCoordinator(t, l, 1000)
	a := recv(t, c.Join(joinReqFor("g", "", "range"), "a", "/h"))
	if a.Generation != 1 {
		t.Fatalf("first join: %+v", a)
	}
	// b joins after the first generation formed: a must rejoin.
	bch := c.Join(joinReqFor("g", "", "range"), "b", "/h")
	hb := func(member string, gen int32) int16 {
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.MemberID, req.Generation = "g", member, gen
		return c.Heartbeat(req)
	}
	if code := hb(a.MemberID, 1); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat during rebalance: %v", kerr.ErrorForCode(code))
	}
	// a rejoins; b's join is pending; both get generation 2.
	a2 := recv(t, c.Join(joinReqFor("g", a.MemberID, "range"), "a", "/h"))
	if a2.Generation != 2 || a2.ErrorCode != 0 || len(a2.Members) != 2 {
		t.Fatalf("rejoin: %+v", a2)
	}
	if b2 := recv(t, bch); b2.Generation != 2 || b2.ErrorCode != 0 || len(b2.Members) != 0 {
		t.Fatalf("b's join: %+v", b2)
	}
	sync := func(member string, gen int32, assign bool) *kmsg.SyncGroupResponse {
		req := kmsg.NewPtrSyncGroupRequest()
		req.Group, req.MemberID, req.Generation = "g", member, gen
		if assign {
			req.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: a2.MemberID, MemberAssignment: []byte("A")}}
		}
		return recv(t, c.Sync(req))
	}
	if a2.LeaderID != a2.MemberID {
		t.Fatalf("a should lead: %+v", a2)
	}
	if r := sync(a2.MemberID, 2, true); r.ErrorCode != 0 || string(r.MemberAssignment) != "A" {
		t.Fatalf("sync: %+v", r)
	}
	// b never synced nor heartbeated: its session (300ms) expires and
	// the group rebalances without it; a rejoins into generation 3 alone.
	for i := 0; i < 100; i++ {
		if code := hb(a.MemberID, 2); code == kerr.RebalanceInProgress.Code {
			break
		} else if code != 0 {
			t.Fatalf("heartbeat of a: %v", kerr.ErrorForCode(code))
		}
		time.Sleep(20 * time.Millisecond)
	}
	a3 := recv(t, c.Join(joinReqFor("g", a.MemberID, "range"), "a", "/h"))
	if a3.Generation < 3 || len(a3.Members) != 1 {
		t.Fatalf("after b expired: %+v", a3)
	}
	if r := sync(a.MemberID, a3.Generation, true); r.ErrorCode != 0 {
		t.Fatalf("sync 3: %+v", r)
	}
	gen := a3.Generation
	c.Close()

	c2 := newTestCoordinator(t, l, 1000)
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.MemberID, req.Generation = "g", a.MemberID, gen
	if code := c2.Heartbeat(req); code != 0 {
		t.Errorf("heartbeat after reload: %v", kerr.ErrorForCode(code))
	}
	d := c2.Describe("g", 5)
	if d.State != "Stable" || len(d.Members) != 1 || string(d.Members[0].MemberAssignment) != "A" {
		t.Errorf("reloaded group: %+v", d)
	}
	if code := commit(t, c2, commitReq("g", a.MemberID, gen, "t", 0, 9)); code != 0 {
		t.Errorf("commit with the reloaded generation: %v", kerr.ErrorForCode(code))
	}
	if code := commit(t, c2, commitReq("g", a.MemberID, gen+1, "t", 0, 9)); code != kerr.IllegalGeneration.Code {
		t.Errorf("commit with a future generation: %v", kerr.ErrorForCode(code))
	}
	if code := commit(t, c2, commitReq("g", a.MemberID, gen, "missing", 0, 9)); code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("commit to a missing topic: %v", kerr.ErrorForCode(code))
	}
	if code := commit(t, c2, commitReq("nope", "m", 1, "t", 0, 9)); code != kerr.IllegalGeneration.Code {
		t.Errorf("v8 commit with a generation to a missing group: %v", kerr.ErrorForCode(code))
	}
	v9 := commitReq("nope", "m", 1, "t", 0, 9)
	v9.Version = 9
	if code := commit(t, c2, v9); code != kerr.GroupIDNotFound.Code {
		t.Errorf("v9 commit with a generation to a missing group: %v", kerr.ErrorForCode(code))
	}
	if code := commit(t, c2, commitReq("g", "", -1, "t", 0, 9)); code != kerr.UnknownMemberID.Code {
		t.Errorf("simple commit to a stable group: %v", kerr.ErrorForCode(code))
	}
	// Without heartbeats the reloaded member expires and the group empties.
	deadline := time.Now().Add(5 * time.Second)
	for c2.Describe("g", 5).State != "Empty" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if st := c2.Describe("g", 5).State; st != "Empty" {
		t.Errorf("state %s after the member's session expired, want Empty", st)
	}
}

// heldLog is a memLog whose appends become durable only when released, as
// a WAL group commit does some time after the append.
type heldLog struct {
	*memLog
	mu   sync.Mutex
	held []func()
}

func (l *heldLog) Append(p int32, recs []Record, done func(int64, error)) {
	l.memLog.Append(p, recs, func(off int64, err error) {
		l.mu.Lock()
		l.held = append(l.held, func() { done(off, err) })
		l.mu.Unlock()
	})
}

func (l *heldLog) release() {
	l.mu.Lock()
	q := l.held
	l.held = nil
	l.mu.Unlock()
	for _, fn := range q {
		fn()
	}
}

// TestCloseAnswersWaitingRequests: a coordinator closes while its broker
// keeps serving when __consumer_offsets moves to another broker. A commit
// in flight still gets its answer once durable, and members waiting in a
// rebalance get NOT_COORDINATOR, so the client looks the coordinator up
// again instead of its connection waiting forever.
func TestCloseAnswersWaitingRequests(t *testing.T) {
	l := &heldLog{memLog: newMemLog(2)}
	c := newTestCoordinator(t, l, 1000)

	joinA := c.Join(joinReqFor("g", "", "range"), "a", "/h")
	joinB := c.Join(joinReqFor("g", "", "range"), "b", "/h")
	a, b := recv(t, joinA), recv(t, joinB)
	if a.ErrorCode != 0 || b.ErrorCode != 0 || a.Generation != 1 || b.Generation != 1 {
		t.Fatalf("joins: %+v %+v", a, b)
	}
	follower := a
	if a.LeaderID == a.MemberID {
		follower = b
	}
	// The follower's SyncGroup waits for the leader's assignment.
	sreq := kmsg.NewPtrSyncGroupRequest()
	sreq.Group, sreq.MemberID, sreq.Generation = "g", follower.MemberID, 1
	syncCh := c.Sync(sreq)
	// In another, stable group, a second member's JoinGroup waits for the
	// first to rejoin.
	slow := func() *kmsg.JoinGroupRequest {
		r := joinReqFor("h", "", "range")
		r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = 60_000, 60_000
		return r
	}
	x := recv(t, c.Join(slow(), "x", "/h"))
	xs := kmsg.NewPtrSyncGroupRequest()
	xs.Group, xs.MemberID, xs.Generation = "h", x.MemberID, x.Generation
	xsync := c.Sync(xs)
	l.release() // the leader's assignment becomes durable
	if r := recv(t, xsync); r.ErrorCode != 0 {
		t.Fatalf("sync of the only member: %+v", r)
	}
	waitingJoin := c.Join(slow(), "y", "/h")

	// A simple consumer's commit, not yet durable.
	commitCh := c.Commit(commitReq("simple", "", -1, "t", 0, 42))
	select {
	case r := <-commitCh:
		t.Fatalf("commit answered before it was durable: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}

	c.Close()
	if r := recv(t, syncCh); r.ErrorCode != kerr.NotCoordinator.Code {
		t.Errorf("waiting SyncGroup after Close: error %d, want NOT_COORDINATOR", r.ErrorCode)
	}
	if r := recv(t, waitingJoin); r.ErrorCode != kerr.NotCoordinator.Code {
		t.Errorf("waiting JoinGroup after Close: error %d, want NOT_COORDINATOR", r.ErrorCode)
	}
	l.release()
	if r := recv(t, commitCh); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Errorf("commit durable after Close: error %d, want none", r.Topics[0].Partitions[0].ErrorCode)
	}
}

// TestShardsForPartition: the coordinator a marker on an offsets
// partition is reported to.
func TestShardsForPartition(t *testing.T) {
	a, b := newTestCoordinator(t, newMemLog(2), 1000), newTestCoordinator(t, newMemLog(2), 1000)
	s := NewShards(2, map[int32]*Coordinator{0: a, 1: b})
	if s.ForPartition(0) != a || s.ForPartition(1) != b || s.ForPartition(2) != nil {
		t.Errorf("ForPartition routes wrong")
	}
	if (*Shards)(nil).ForPartition(0) != nil {
		t.Errorf("the nil Shards coordinates a partition")
	}
}
