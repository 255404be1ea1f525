package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/group"
	"github.com/vigilhq/vigil/internal/txn"
)

// groupConfig shortens the group timers so tests do not wait for Kafka's
// production defaults (3 s initial rebalance delay, 6 s minimum session).
func groupConfig(c *config.Broker) {
	c.GroupInitialRebalance = 100 * time.Millisecond
	c.GroupMinSession = 500 * time.Millisecond
}

// produceIDs produces records whose values are the ids [from, to), spread
// round-robin over the partitions.
func produceIDs(t *testing.T, ctx context.Context, ts *testServer, topic string, partitions, from, to int) {
	t.Helper()
	cl := ts.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := from; i < to; i++ {
		wg.Add(1)
		r := &kgo.Record{Topic: topic, Partition: int32(i % partitions), Value: []byte(strconv.Itoa(i))}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("produce: %v", firstErr)
	}
}

// cuttableDialer hands kgo connections it can later sever all at once,
// with every later dial failing: the process "dies" without a LeaveGroup.
type cuttableDialer struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func (d *cuttableDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return nil, errors.New("test: network cut")
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, host)
	if err == nil {
		d.conns = append(d.conns, c)
	}
	return c, err
}

func (d *cuttableDialer) sever() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = true
	for _, c := range d.conns {
		c.Close()
	}
}

// groupConsumer polls, processes and commits synchronously before it lets
// a rebalance happen (BlockRebalanceOnPoll), so a live consumer never
// loses a partition with processed but uncommitted records.
type groupConsumer struct {
	cl *kgo.Client
}

func newGroupConsumer(t *testing.T, ts *testServer, groupID, topic string, dialer *cuttableDialer, opts ...kgo.Opt) *groupConsumer {
	t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(ts.addr),
		kgo.ConsumerGroup(groupID),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(2 * time.Second),
		kgo.HeartbeatInterval(200 * time.Millisecond),
		kgo.RebalanceTimeout(10 * time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.FetchMaxPartitionBytes(4 << 10), // small fetches: the kill lands mid-stream
		kgo.MetadataMinAge(100 * time.Millisecond),
	}
	if dialer != nil {
		base = append(base, kgo.Dialer(dialer.dial), kgo.RetryTimeout(time.Second))
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatalf("new consumer: %v", err)
	}
	return &groupConsumer{cl: cl}
}

// pollOnce processes one poll with fn and commits it; it returns the
// records processed.
func (gc *groupConsumer) pollOnce(ctx context.Context, fn func(*kgo.Record)) ([]*kgo.Record, error) {
	pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	fs := gc.cl.PollRecords(pctx, 50)
	cancel()
	defer gc.cl.AllowRebalance()
	var recs []*kgo.Record
	fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	for _, r := range recs {
		fn(r)
	}
	if len(recs) > 0 {
		if err := gc.cl.CommitRecords(ctx, recs...); err != nil {
			return recs, fmt.Errorf("commit: %w", err)
		}
	}
	return recs, nil
}

// waitStable waits until groupID is Stable with members members.
func waitStable(t *testing.T, ctx context.Context, adm *kadm.Client, groupID string, members int) kadm.DescribedGroup {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		dg, err := adm.DescribeGroups(ctx, groupID)
		if err != nil {
			t.Fatal(err)
		}
		d := dg[groupID]
		if d.State == "Stable" && len(d.Members) == members {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s never became Stable with %d members: %s with %d", groupID, members, d.State, len(d.Members))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processed counts how often each id was processed, across consumers.
type processed struct {
	mu     sync.Mutex
	counts map[int]int
}

func (p *processed) add(r *kgo.Record) {
	id, _ := strconv.Atoi(string(r.Value))
	p.mu.Lock()
	p.counts[id]++
	p.mu.Unlock()
}

func (p *processed) distinct() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.counts)
}

// TestGroupConsumerKilled: three consumers share a 24-partition topic;
// one loses its network mid-stream right after processing a poll it never
// commits. Its session expires, the other two take over its partitions
// from the committed offsets, and exactly the records it processed but did
// not commit are processed twice.
func TestGroupConsumerKilled(t *testing.T) {
	ts := startServer(t, t.TempDir(), groupConfig)
	ctx := testCtx(t, 2*time.Minute)
	const topic, partitions, groupID = "killed", 24, "g-killed"
	n := 12000
	if testing.Short() {
		n = 4000
	}
	adm := ts.admin(t)
	createTopics(t, ctx, adm, partitions, nil, topic)

	seen := &processed{counts: map[int]int{}}
	runCtx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	var survivors []*groupConsumer
	for i := 0; i < 2; i++ {
		gc := newGroupConsumer(t, ts, groupID, topic, nil)
		survivors = append(survivors, gc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil {
				if _, err := gc.pollOnce(runCtx, seen.add); err != nil && runCtx.Err() == nil {
					errs <- err
					return
				}
			}
		}()
	}
	dialer := &cuttableDialer{}
	victim := newGroupConsumer(t, ts, groupID, topic, dialer)
	uncommitted := map[int]bool{}
	victimDone := make(chan struct{})
	go func() {
		defer close(victimDone)
		processedByVictim := 0
		for runCtx.Err() == nil {
			var last []*kgo.Record
			recs, err := victim.pollOnceNoCommit(runCtx, func(r *kgo.Record) {
				seen.add(r)
				last = append(last, r)
			})
			if err != nil {
				errs <- err
				return
			}
			processedByVictim += len(recs)
			// Once it has done real work, die holding one processed
			// but uncommitted poll.
			if processedByVictim >= n/10 && len(recs) > 0 {
				for _, r := range last {
					id, _ := strconv.Atoi(string(r.Value))
					uncommitted[id] = true
				}
				dialer.sever()
				return
			}
			if len(recs) > 0 {
				if err := victim.cl.CommitRecords(runCtx, recs...); err != nil {
					errs <- fmt.Errorf("victim commit: %w", err)
					return
				}
			}
			victim.cl.AllowRebalance()
		}
	}()
	// Produce once all three share the partitions, so each has work.
	waitStable(t, ctx, adm, groupID, 3)
	produceIDs(t, ctx, ts, topic, partitions, 0, n)
	<-victimDone
	if len(uncommitted) == 0 {
		t.Fatalf("victim processed nothing before the deadline")
	}
	deadline := time.Now().Add(90 * time.Second)
	for seen.distinct() < n && time.Now().Before(deadline) {
		select {
		case err := <-errs:
			t.Fatalf("consumer: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	// Let any stray re-delivery show up before judging.
	time.Sleep(500 * time.Millisecond)
	stopAll()
	wg.Wait()
	for _, gc := range survivors {
		gc.cl.Close()
	}
	go victim.cl.Close() // its LeaveGroup can never arrive

	if got := seen.distinct(); got != n {
		t.Fatalf("processed %d distinct ids, want %d", got, n)
	}
	dups := 0
	seen.mu.Lock()
	defer seen.mu.Unlock()
	for id, c := range seen.counts {
		if id < 0 || id >= n {
			t.Errorf("unexpected id %d", id)
		}
		if c > 1 {
			dups += c - 1
			if c > 2 || !uncommitted[id] {
				t.Errorf("id %d processed %d times (uncommitted by the victim: %v)", id, c, uncommitted[id])
			}
		}
	}
	if dups != len(uncommitted) {
		t.Errorf("re-processed %d records, want exactly the %d the victim processed without committing", dups, len(uncommitted))
	}
	t.Logf("%d records, victim died with %d uncommitted, %d re-processed", n, len(uncommitted), dups)
}

// pollOnceNoCommit polls and processes without committing or allowing a
// rebalance; the caller does both.
func (gc *groupConsumer) pollOnceNoCommit(ctx context.Context, fn func(*kgo.Record)) ([]*kgo.Record, error) {
	pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	fs := gc.cl.PollRecords(pctx, 50)
	cancel()
	var recs []*kgo.Record
	fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	for _, r := range recs {
		fn(r)
	}
	return recs, nil
}

// TestGroupBalancers: franz-go's cooperative-sticky, range, round-robin
// and sticky balancers each run a two-member group that consumes and
// commits everything; the group reports the protocol they chose.
func TestGroupBalancers(t *testing.T) {
	ts := startServer(t, t.TempDir(), groupConfig)
	ctx := testCtx(t, 2*time.Minute)
	const partitions = 6
	n := 3000
	if testing.Short() {
		n = 1200
	}
	adm := ts.admin(t)
	for _, tc := range []struct {
		name string
		bal  kgo.GroupBalancer
	}{
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
		{"range", kgo.RangeBalancer()},
		{"roundrobin", kgo.RoundRobinBalancer()},
		{"sticky", kgo.StickyBalancer()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic, groupID := "bal-"+tc.name, "g-"+tc.name
			createTopics(t, ctx, adm, partitions, nil, topic)
			seen := &processed{counts: map[int]int{}}
			var perMember [2]int
			runCtx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			var cls []*groupConsumer
			errs := make(chan error, 2)
			for i := 0; i < 2; i++ {
				gc := newGroupConsumer(t, ts, groupID, topic, nil, kgo.Balancers(tc.bal))
				cls = append(cls, gc)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for runCtx.Err() == nil {
						recs, err := gc.pollOnce(runCtx, seen.add)
						if err != nil && runCtx.Err() == nil {
							errs <- err
							return
						}
						perMember[i] += len(recs)
					}
				}()
			}
			// Both members share the partitions before any data exists.
			waitStable(t, ctx, adm, groupID, 2)
			produceIDs(t, ctx, ts, topic, partitions, 0, n)
			deadline := time.Now().Add(60 * time.Second)
			for seen.distinct() < n && time.Now().Before(deadline) {
				select {
				case err := <-errs:
					t.Fatalf("consumer: %v", err)
				case <-time.After(50 * time.Millisecond):
				}
			}
			// Both members must be in the group, on the balancer's protocol.
			var desc kadm.DescribedGroup
			for time.Now().Before(deadline) {
				dg, err := adm.DescribeGroups(ctx, groupID)
				if err != nil {
					t.Fatal(err)
				}
				desc = dg[groupID]
				if desc.State == "Stable" && len(desc.Members) == 2 {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			stop()
			wg.Wait()
			if desc.Protocol != tc.name || desc.ProtocolType != "consumer" || len(desc.Members) != 2 {
				t.Errorf("described %s %s/%s with %d members, want Stable consumer/%s with 2", desc.State, desc.ProtocolType, desc.Protocol, len(desc.Members), tc.name)
			}
			if got := seen.distinct(); got != n {
				t.Fatalf("processed %d distinct ids, want %d", got, n)
			}
			if perMember[0] == 0 || perMember[1] == 0 {
				t.Errorf("records per member %v: both must have consumed", perMember)
			}
			for id, c := range seen.counts {
				if c != 1 {
					t.Errorf("id %d processed %d times", id, c)
				}
			}
			// Everything is committed: the lag is zero on every partition.
			offs, err := adm.FetchOffsets(ctx, groupID)
			if err != nil {
				t.Fatal(err)
			}
			var committed int64
			offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
			if committed != int64(n) {
				t.Errorf("committed offsets sum to %d, want %d", committed, n)
			}
			for _, gc := range cls {
				gc.cl.Close()
			}
		})
	}
}

// consumeFromCommitted joins groupID, reads until it has want records, and
// checks each partition starts exactly at start[p] and continues without
// gaps; it commits as it goes.
func consumeFromCommitted(t *testing.T, ctx context.Context, ts *testServer, groupID, topic string, start map[int32]int64, want int) map[int32]int64 {
	t.Helper()
	gc := newGroupConsumer(t, ts, groupID, topic, nil)
	defer gc.cl.Close()
	next := map[int32]int64{}
	for p, o := range start {
		next[p] = o
	}
	got := 0
	deadline := time.Now().Add(60 * time.Second)
	for got < want && time.Now().Before(deadline) {
		_, err := gc.pollOnce(ctx, func(r *kgo.Record) {
			got++
			exp, ok := next[r.Partition]
			if !ok {
				exp = 0
			}
			if r.Offset != exp {
				t.Errorf("partition %d: read offset %d, want %d (committed/next)", r.Partition, r.Offset, exp)
			}
			next[r.Partition] = r.Offset + 1
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if got != want {
		t.Fatalf("read %d records, want %d", got, want)
	}
	return next
}

// TestGroupRestartResumes: a group commits part of a topic, the broker
// restarts, and the group resumes exactly at the committed offsets.
func TestGroupRestartResumes(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir, groupConfig)
	ctx := testCtx(t, 2*time.Minute)
	const topic, partitions, groupID = "resume", 4, "g-resume"
	createTopics(t, ctx, ts.admin(t), partitions, nil, topic)
	produceIDs(t, ctx, ts, topic, partitions, 0, 2000)
	next := consumeFromCommitted(t, ctx, ts, groupID, topic, nil, 1000)
	ts.close()

	ts = startServer(t, dir, groupConfig)
	offs, err := ts.admin(t).FetchOffsets(ctx, groupID)
	if err != nil {
		t.Fatal(err)
	}
	for p, o := range next {
		if got, _ := offs.Lookup(topic, p); got.At != o {
			t.Errorf("after restart partition %d committed at %d, want %d", p, got.At, o)
		}
	}
	produceIDs(t, ctx, ts, topic, partitions, 2000, 3000)
	consumeFromCommitted(t, ctx, ts, groupID, topic, next, 2000)
}

// TestGroupRestartAfterSnapshots: many commits roll the offsets log over
// several snapshots (the log start of its partition moves), and after a
// restart the offsets are exactly the last ones committed.
func TestGroupRestartAfterSnapshots(t *testing.T) {
	dir := t.TempDir()
	mod := func(c *config.Broker) {
		groupConfig(c)
		c.OffsetsPartitions = 3
		c.OffsetsSnapshot = 50
	}
	ts := startServer(t, dir, mod)
	ctx := testCtx(t, 2*time.Minute)
	adm := ts.admin(t)
	const topic, partitions = "snap", 8
	createTopics(t, ctx, adm, partitions, nil, topic)
	groups := []string{"snap-a", "snap-b", "snap-c", "snap-d"}
	commits := 400
	want := map[string]map[int32]int64{}
	for _, g := range groups {
		want[g] = map[int32]int64{}
	}
	for i := 0; i < commits; i++ {
		g := groups[i%len(groups)]
		p := int32(i % partitions)
		off := int64(i)
		os := kadm.Offsets{}
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: off, LeaderEpoch: -1, Metadata: "m" + strconv.Itoa(i)})
		resp, err := adm.CommitOffsets(ctx, g, os)
		if err != nil {
			t.Fatal(err)
		}
		if err := resp.Error(); err != nil {
			t.Fatal(err)
		}
		want[g][p] = off
	}
	// Snapshots moved the log start of every offsets partition in use.
	var starts kadm.ListedOffsets
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		if starts, err = adm.ListStartOffsets(ctx, group.OffsetsTopic); err != nil {
			t.Fatal(err)
		}
		moved := 0
		starts.Each(func(o kadm.ListedOffset) {
			if o.Offset > 0 {
				moved++
			}
		})
		if moved > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	moved := false
	starts.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			moved = true
		}
		t.Logf("%s/%d log start %d", o.Topic, o.Partition, o.Offset)
	})
	if !moved {
		t.Fatalf("no snapshot moved a log start of %s after %d commits", group.OffsetsTopic, commits)
	}
	ts.close()

	ts = startServer(t, dir, mod)
	adm = ts.admin(t)
	for _, g := range groups {
		offs, err := adm.FetchOffsets(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		offs.Each(func(o kadm.OffsetResponse) {
			n++
			if o.Err != nil || o.At != want[g][o.Partition] {
				t.Errorf("%s %s/%d: %d (%v), want %d", g, o.Topic, o.Partition, o.At, o.Err, want[g][o.Partition])
			}
		})
		if n != len(want[g]) {
			t.Errorf("%s: %d offsets after restart, want %d", g, n, len(want[g]))
		}
	}
}

// rawGroupReq sends a request through a kgo client (which routes group
// requests to the coordinator) and fails the test on transport errors.
func rawGroupReq[R kmsg.Response](t *testing.T, ctx context.Context, cl *kgo.Client, req kmsg.Request) R {
	t.Helper()
	resp, err := cl.Request(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp.(R)
}

func wantErr(t *testing.T, what string, code int16, want *kerr.Error) {
	t.Helper()
	var got error
	if code != 0 {
		got = kerr.ErrorForCode(code)
	}
	var wantE error
	if want != nil {
		wantE = want
	}
	if !errors.Is(got, wantE) && got != wantE {
		t.Errorf("%s: got %v, want %v", what, got, wantE)
	}
}

// TestGroupStaticMembershipAndFencing drives the protocol by hand: static
// membership, member id handout, fencing errors, protocol checks, and the
// admin APIs (kadm) around an empty and a non-empty group.
func TestGroupStaticMembershipAndFencing(t *testing.T) {
	ts := startServer(t, t.TempDir(), groupConfig)
	ctx := testCtx(t, time.Minute)
	cl := ts.client(t)
	adm := kadm.NewClient(cl)
	const topic, other, groupID = "static", "static-other", "g-static"
	createTopics(t, ctx, adm, 2, nil, topic, other)

	sub := (&kmsg.ConsumerMemberMetadata{Version: 0, Topics: []string{topic}}).AppendTo(nil)
	inst := "instance-1"
	join := func(memberID string, instance *string, ptype, proto string, v int16) *kmsg.JoinGroupResponse {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version = v
		req.Group, req.MemberID, req.InstanceID = groupID, memberID, instance
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 5000, 5000
		req.ProtocolType = ptype
		req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: proto, Metadata: sub}}
		return rawGroupReq[*kmsg.JoinGroupResponse](t, ctx, cl, req)
	}
	heartbeat := func(memberID string, instance *string, gen int32) int16 {
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.MemberID, req.InstanceID, req.Generation = groupID, memberID, instance, gen
		return rawGroupReq[*kmsg.HeartbeatResponse](t, ctx, cl, req).ErrorCode
	}

	// A static member joins without a member id: no MEMBER_ID_REQUIRED.
	j1 := join("", &inst, "consumer", "range", 9)
	wantErr(t, "static join", j1.ErrorCode, nil)
	if j1.LeaderID != j1.MemberID || j1.Generation != 1 || len(j1.Members) != 1 || *j1.Protocol != "range" {
		t.Fatalf("static join: %+v", j1)
	}
	sreq := kmsg.NewPtrSyncGroupRequest()
	sreq.Group, sreq.MemberID, sreq.InstanceID, sreq.Generation = groupID, j1.MemberID, &inst, 1
	assignment := []byte("assignment-1")
	sreq.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: j1.MemberID, MemberAssignment: assignment}}
	sresp := rawGroupReq[*kmsg.SyncGroupResponse](t, ctx, cl, sreq)
	wantErr(t, "sync", sresp.ErrorCode, nil)
	if string(sresp.MemberAssignment) != string(assignment) {
		t.Errorf("sync assignment %q", sresp.MemberAssignment)
	}

	// The same instance restarts: a new member id, the same generation,
	// no rebalance; as a v9 leader it is told to skip the assignment.
	j2 := join("", &inst, "consumer", "range", 9)
	wantErr(t, "static rejoin", j2.ErrorCode, nil)
	if j2.MemberID == j1.MemberID || j2.Generation != 1 || !j2.SkipAssignment || j2.LeaderID != j2.MemberID {
		t.Errorf("static rejoin: %+v", j2)
	}
	wantErr(t, "heartbeat of the replaced member", heartbeat(j1.MemberID, &inst, 1), kerr.FencedInstanceID)
	wantErr(t, "heartbeat of the new member", heartbeat(j2.MemberID, &inst, 1), nil)
	wantErr(t, "heartbeat with a stale generation", heartbeat(j2.MemberID, &inst, 0), kerr.IllegalGeneration)
	wantErr(t, "heartbeat of an unknown member", heartbeat("nobody", nil, 1), kerr.UnknownMemberID)
	// The stable group hands the stored assignment to the new member id.
	sreq.MemberID, sreq.GroupAssignment = j2.MemberID, nil
	sresp = rawGroupReq[*kmsg.SyncGroupResponse](t, ctx, cl, sreq)
	if sresp.ErrorCode != 0 || string(sresp.MemberAssignment) != string(assignment) {
		t.Errorf("sync after static rejoin: %v %q", kerr.ErrorForCode(sresp.ErrorCode), sresp.MemberAssignment)
	}

	// A dynamic v4+ member must first get its member id.
	j3 := join("", nil, "consumer", "range", 5)
	wantErr(t, "dynamic join", j3.ErrorCode, kerr.MemberIDRequired)
	if j3.MemberID == "" {
		t.Errorf("MEMBER_ID_REQUIRED without a member id")
	}
	wantErr(t, "join with another protocol type", join("", nil, "connect", "range", 9).ErrorCode, kerr.InconsistentGroupProtocol)
	wantErr(t, "join with an unsupported protocol", join("", nil, "consumer", "roundrobin", 9).ErrorCode, kerr.InconsistentGroupProtocol)

	// Commits: a non-member may not commit to a group with members, a
	// member may, and unknown partitions are refused. By name: franz-go
	// would send this request at v10, which names topics by id alone.
	byName := kversion.Stable()
	byName.SetMaxKeyVersion(kmsg.OffsetCommit.Int16(), 9)
	v9 := ts.client(t, kgo.MaxVersions(byName))
	commit := func(memberID string, gen int32, topic string, partition int32) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.MemberID, req.Generation = groupID, memberID, gen
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: partition, Offset: 7, LeaderEpoch: -1}}}}
		return rawGroupReq[*kmsg.OffsetCommitResponse](t, ctx, v9, req).Topics[0].Partitions[0].ErrorCode
	}
	wantErr(t, "simple commit to a group with members", commit("", -1, topic, 0), kerr.UnknownMemberID)
	wantErr(t, "member commit, stale generation", commit(j2.MemberID, 5, topic, 0), kerr.IllegalGeneration)
	wantErr(t, "member commit", commit(j2.MemberID, 1, topic, 0), nil)
	wantErr(t, "member commit to another topic", commit(j2.MemberID, 1, other, 1), nil)
	wantErr(t, "commit to an unknown partition", commit(j2.MemberID, 1, topic, 9), kerr.UnknownTopicOrPartition)
	wantErr(t, "commit to an unknown topic", commit(j2.MemberID, 1, "no-such-topic", 0), kerr.UnknownTopicOrPartition)

	// Admin views of the stable group.
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lg, ok := listed[groupID]; !ok || lg.State != "Stable" || lg.ProtocolType != "consumer" {
		t.Errorf("ListGroups: %+v", listed)
	}
	if l, err := adm.ListGroups(ctx, "Empty"); err != nil || len(l) != 0 {
		t.Errorf("ListGroups(Empty) = %v, %v; want none", l, err)
	}
	dg, err := adm.DescribeGroups(ctx, groupID)
	if err != nil {
		t.Fatal(err)
	}
	d := dg[groupID]
	if d.State != "Stable" || d.Protocol != "range" || len(d.Members) != 1 || d.Members[0].MemberID != j2.MemberID ||
		d.Members[0].InstanceID == nil || *d.Members[0].InstanceID != inst {
		t.Errorf("DescribeGroups: %+v", d)
	}
	// Deleting a group with members, or offsets of a consumed topic, fails.
	del, err := adm.DeleteGroups(ctx, groupID)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(del[groupID].Err, kerr.NonEmptyGroup) {
		t.Errorf("DeleteGroups of a live group: %v", del[groupID].Err)
	}
	ts2 := kadm.TopicsSet{}
	ts2.Add(topic, 0)
	ts2.Add(other, 1)
	dres, err := adm.DeleteOffsets(ctx, groupID, ts2)
	if err != nil {
		t.Fatal(err)
	}
	if e := dres[topic][0]; !errors.Is(e, kerr.GroupSubscribedToTopic) {
		t.Errorf("DeleteOffsets of a subscribed topic: %v", e)
	}
	if e := dres[other][1]; e != nil {
		t.Errorf("DeleteOffsets of an unsubscribed topic: %v", e)
	}
	offs, err := adm.FetchOffsets(ctx, groupID)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup(topic, 0); !ok || o.At != 7 {
		t.Errorf("offset of %s/0: %+v", topic, o)
	}
	if _, ok := offs.Lookup(other, 1); ok {
		t.Errorf("deleted offset of %s/1 still fetched", other)
	}

	// The static member leaves by instance id (v5): the group empties.
	lreq := kmsg.NewPtrLeaveGroupRequest()
	lreq.Group = groupID
	lreq.Members = []kmsg.LeaveGroupRequestMember{{MemberID: j1.MemberID, InstanceID: &inst}}
	lresp := rawGroupReq[*kmsg.LeaveGroupResponse](t, ctx, cl, lreq)
	wantErr(t, "leave with the fenced member id", lresp.Members[0].ErrorCode, kerr.FencedInstanceID)
	lreq.Members[0].MemberID = ""
	lresp = rawGroupReq[*kmsg.LeaveGroupResponse](t, ctx, cl, lreq)
	wantErr(t, "leave by instance id", lresp.ErrorCode, nil)
	wantErr(t, "leave by instance id (member)", lresp.Members[0].ErrorCode, nil)
	waitState := func(state string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			dg, err := adm.DescribeGroups(ctx, groupID)
			if err == nil && dg[groupID].State == state {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("group never became %s: %+v %v", state, dg[groupID], err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitState("Empty")
	// A simple consumer may now commit (generation -1), via kadm.
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: topic, Partition: 1, At: 42, LeaderEpoch: -1})
	if cr, err := adm.CommitOffsets(ctx, groupID, os); err != nil || cr.Error() != nil {
		t.Fatalf("simple commit to an empty group: %v %v", err, cr.Error())
	}
	// Offsets of any topic may be deleted from an empty group.
	ts3 := kadm.TopicsSet{}
	ts3.Add(topic, 0)
	if dres, err := adm.DeleteOffsets(ctx, groupID, ts3); err != nil || dres.Error() != nil {
		t.Fatalf("DeleteOffsets on an empty group: %v %v", err, dres.Error())
	}
	offs, err = adm.FetchOffsets(ctx, groupID)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup(topic, 1); !ok || o.At != 42 {
		t.Errorf("simple commit not fetched: %+v", o)
	}
	if _, ok := offs.Lookup(topic, 0); ok {
		t.Errorf("deleted offset of %s/0 still fetched", topic)
	}
	if l, err := adm.ListGroups(ctx, "Empty"); err != nil || len(l) != 1 {
		t.Errorf("ListGroups(Empty) = %v, %v", l, err)
	}
	del, err = adm.DeleteGroups(ctx, groupID)
	if err != nil || del[groupID].Err != nil {
		t.Fatalf("DeleteGroups: %v %v", err, del[groupID].Err)
	}
	del, err = adm.DeleteGroups(ctx, groupID)
	if err != nil || !errors.Is(del[groupID].Err, kerr.GroupIDNotFound) {
		t.Errorf("DeleteGroups of a deleted group: %v %v", err, del[groupID].Err)
	}
	offs, err = adm.FetchOffsets(ctx, groupID)
	if err != nil || len(offs) != 0 {
		t.Errorf("offsets of a deleted group: %v %v", offs, err)
	}
	// A commit with a generation to a group that does not exist is
	// refused (v9+: GROUP_ID_NOT_FOUND; older versions ILLEGAL_GENERATION).
	wantErr(t, "commit with a generation to a missing group", commit("m", 3, topic, 0), kerr.GroupIDNotFound)
}

// TestOffsetsTopicIsInternal: __consumer_offsets is listed as internal,
// readable, and protected from produce, delete and record deletion;
// __transaction_state is internal too, and FindCoordinator for a
// transactional id names this broker.
func TestOffsetsTopicIsInternal(t *testing.T) {
	ts := startServer(t, t.TempDir(), groupConfig)
	ctx := testCtx(t, time.Minute)
	cl := ts.client(t)
	adm := kadm.NewClient(cl)

	md, err := adm.Metadata(ctx, group.OffsetsTopic)
	if err != nil {
		t.Fatal(err)
	}
	td := md.Topics[group.OffsetsTopic]
	if td.Err != nil || !td.IsInternal || len(td.Partitions) != 16 {
		t.Errorf("metadata of %s: internal=%v partitions=%d err=%v", group.OffsetsTopic, td.IsInternal, len(td.Partitions), td.Err)
	}
	md, err = adm.Metadata(ctx, txn.StateTopic)
	if err != nil {
		t.Fatal(err)
	}
	if td := md.Topics[txn.StateTopic]; td.Err != nil || !td.IsInternal || len(td.Partitions) != 16 {
		t.Errorf("metadata of %s: internal=%v partitions=%d err=%v", txn.StateTopic, td.IsInternal, len(td.Partitions), td.Err)
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorType = 1
	fc.CoordinatorKeys = []string{"txn-1"}
	fc.CoordinatorKey = "txn-1"
	fresp := rawGroupReq[*kmsg.FindCoordinatorResponse](t, ctx, cl, fc)
	if co := fresp.Coordinators; len(co) != 1 || co[0].ErrorCode != 0 || co[0].NodeID != 0 {
		t.Errorf("FindCoordinator for a transactional id: %+v", fresp)
	}

	pr := kmsg.NewPtrProduceRequest()
	pr.Acks, pr.TimeoutMillis = -1, 1000
	pr.Topics = []kmsg.ProduceRequestTopic{{Topic: group.OffsetsTopic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: makeBatch(1, 10)}}}}
	presp := rawGroupReq[*kmsg.ProduceResponse](t, ctx, cl, pr)
	wantErr(t, "produce to the offsets topic", presp.Topics[0].Partitions[0].ErrorCode, kerr.InvalidTopicException)

	dt, err := adm.DeleteTopics(ctx, group.OffsetsTopic)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(dt[group.OffsetsTopic].Err, kerr.InvalidTopicException) {
		t.Errorf("DeleteTopics of the offsets topic: %v", dt[group.OffsetsTopic].Err)
	}
	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.TimeoutMillis = 1000
	dr.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: group.OffsetsTopic, Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: -1}}}}
	drr := rawGroupReq[*kmsg.DeleteRecordsResponse](t, ctx, cl, dr)
	wantErr(t, "DeleteRecords on the offsets topic", drr.Topics[0].Partitions[0].ErrorCode, kerr.InvalidTopicException)

	// Commits land in the offsets topic in Kafka's record format, and a
	// consumer may read them.
	createTopics(t, ctx, adm, 1, nil, "plain")
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "plain", Partition: 0, At: 5, LeaderEpoch: -1})
	if cr, err := adm.CommitOffsets(ctx, "reader-group", os); err != nil || cr.Error() != nil {
		t.Fatalf("commit: %v %v", err, cr)
	}
	p := group.PartitionFor("reader-group", 16)
	rd := ts.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{group.OffsetsTopic: {p: kgo.NewOffset().AtStart()}}))
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fs := rd.PollFetches(fctx)
	if err := fs.Err(); err != nil {
		t.Fatal(err)
	}
	found := false
	fs.EachRecord(func(r *kgo.Record) {
		var k kmsg.OffsetCommitKey
		var v kmsg.OffsetCommitValue
		if k.ReadFrom(r.Key) == nil && v.ReadFrom(r.Value) == nil && k.Group == "reader-group" && k.Topic == "plain" && v.Offset == 5 {
			found = true
		}
	})
	if !found {
		t.Errorf("commit record not found in %s/%d", group.OffsetsTopic, p)
	}

}

// TestOffsetFetchManyGroups: one OffsetFetch (v8+) asks for several groups,
// one for all its offsets, one for named partitions, one that does not
// exist (no offsets, no error, as in Kafka).
func TestOffsetFetchManyGroups(t *testing.T) {
	ts := startServer(t, t.TempDir(), groupConfig)
	ctx := testCtx(t, time.Minute)
	cl := ts.client(t)
	adm := kadm.NewClient(cl)
	createTopics(t, ctx, adm, 3, nil, "mf")
	for g, offs := range map[string][]int64{"mf-1": {10, 11, 12}, "mf-2": {20, 21, 22}} {
		os := kadm.Offsets{}
		for p, o := range offs {
			os.Add(kadm.Offset{Topic: "mf", Partition: int32(p), At: o, LeaderEpoch: -1, Metadata: g})
		}
		if r, err := adm.CommitOffsets(ctx, g, os); err != nil || r.Error() != nil {
			t.Fatalf("commit %s: %v %v", g, err, r.Error())
		}
	}
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Groups = []kmsg.OffsetFetchRequestGroup{
		{Group: "mf-1"}, // nil topics: everything
		{Group: "mf-2", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "mf", Partitions: []int32{2, 1}}}},
		{Group: "mf-none", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "mf", Partitions: []int32{0}}}},
	}
	resp := rawGroupReq[*kmsg.OffsetFetchResponse](t, ctx, cl, req)
	got := map[string]map[int32]int64{}
	for _, g := range resp.Groups {
		if g.ErrorCode != 0 {
			t.Errorf("group %s: %v", g.Group, kerr.ErrorForCode(g.ErrorCode))
		}
		got[g.Group] = map[int32]int64{}
		for _, tp := range g.Topics {
			for _, p := range tp.Partitions {
				if p.ErrorCode != 0 {
					t.Errorf("group %s %s/%d: %v", g.Group, tp.Topic, p.Partition, kerr.ErrorForCode(p.ErrorCode))
				}
				if p.Offset >= 0 && (p.Metadata == nil || *p.Metadata != g.Group) {
					t.Errorf("group %s partition %d metadata %v", g.Group, p.Partition, p.Metadata)
				}
				got[g.Group][p.Partition] = p.Offset
			}
		}
	}
	want := map[string]map[int32]int64{
		"mf-1":    {0: 10, 1: 11, 2: 12},
		"mf-2":    {1: 21, 2: 22},
		"mf-none": {0: -1},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("fetched %v, want %v", got, want)
	}
}

// TestGroupsSpreadOverOffsetsPartitions: a single broker runs one
// coordinator per __consumer_offsets partition, as a cluster does, and the
// groups of every partition keep their offsets across a restart.
func TestGroupsSpreadOverOffsetsPartitions(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir, groupConfig)
	n := ts.cfg.OffsetsPartitions
	byPart := ts.srv.groups.Map()
	if int32(len(byPart)) != n {
		t.Fatalf("%d coordinators, want one per offsets partition (%d)", len(byPart), n)
	}
	seen := map[*group.Coordinator]bool{}
	for _, co := range byPart {
		seen[co] = true
	}
	if int32(len(seen)) != n {
		t.Fatalf("%d distinct coordinators for %d partitions", len(seen), n)
	}

	ctx := testCtx(t, time.Minute)
	adm := ts.admin(t)
	createTopics(t, ctx, adm, 2, nil, "spread")
	want := map[string]int64{}
	parts := map[int32]bool{}
	for i := range 12 {
		g := fmt.Sprintf("spread-%d", i)
		want[g] = int64(100 + i)
		parts[group.PartitionFor(g, n)] = true
		os := kadm.Offsets{}
		os.Add(kadm.Offset{Topic: "spread", Partition: 1, At: want[g], LeaderEpoch: -1})
		if r, err := adm.CommitOffsets(ctx, g, os); err != nil || r.Error() != nil {
			t.Fatalf("commit %s: %v %v", g, err, r.Error())
		}
	}
	if len(parts) < 4 {
		t.Fatalf("the test's groups fall in %d offsets partitions; pick names that spread", len(parts))
	}
	check := func(when string, adm *kadm.Client) {
		t.Helper()
		listed, err := adm.ListGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for g, at := range want {
			if _, ok := listed[g]; !ok {
				t.Errorf("%s: ListGroups lacks %s", when, g)
			}
			offs, err := adm.FetchOffsets(ctx, g)
			if err != nil {
				t.Fatalf("%s: fetch %s: %v", when, g, err)
			}
			if o, ok := offs.Lookup("spread", 1); !ok || o.At != at {
				t.Errorf("%s: group %s (offsets partition %d) at %+v, want %d", when, g, group.PartitionFor(g, n), o, at)
			}
		}
	}
	check("before the restart", adm)
	ts.close()
	ts = startServer(t, dir, groupConfig)
	check("after the restart", ts.admin(t))
}
