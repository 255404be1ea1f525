package server

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/config"
)

// consumerGroupConfig shortens the KIP-848 timers the coordinator hands
// out (5 s heartbeats, 45 s sessions by default).
func consumerGroupConfig(c *config.Broker) {
	groupConfig(c)
	c.GroupConsumerHeartbeat = 100 * time.Millisecond
	c.GroupConsumerSession = 3 * time.Second
}

// newConsumerProtocolMember is a groupConsumer on the KIP-848 protocol:
// franz-go uses it with ServerSideBalancer and a range or sticky
// balancer, which names the server assignor (range, uniform).
func newConsumerProtocolMember(t *testing.T, ts *testServer, groupID, topic string, bal kgo.GroupBalancer, opts ...kgo.Opt) *groupConsumer {
	t.Helper()
	return newGroupConsumer(t, ts, groupID, topic, nil, append([]kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(bal)}, opts...)...)
}

// runMember polls, processes and commits until ctx ends or stop closes.
func runMember(ctx context.Context, gc *groupConsumer, seen *processed, stop <-chan struct{}, errs chan<- error) {
	for ctx.Err() == nil {
		select {
		case <-stop:
			return
		default:
		}
		if _, err := gc.pollOnce(ctx, seen.add); err != nil && ctx.Err() == nil {
			errs <- err
			return
		}
	}
}

// waitConsumerGroup waits until the consumer group is Stable with
// members members, and returns its description.
func waitConsumerGroup(t *testing.T, ctx context.Context, adm *kadm.Client, groupID string, members int) kadm.DescribedConsumerGroup {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		dg, err := adm.DescribeConsumerGroups(ctx, groupID)
		d := dg[groupID]
		if err == nil && d.Err == nil && d.State == "Stable" && len(d.Members) == members {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer group %s never Stable with %d members: %s with %d (%v %v)", groupID, members, d.State, len(d.Members), err, d.Err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConsumerGroupProtocolRebalances: members on the consumer group
// protocol (KIP-848) join and leave one by one while records are
// produced, for each server assignor. Every member commits what it
// processed before it lets a revocation through, so every record is
// processed exactly once: the coordinator never gives a partition to a
// member before its previous owner revoked it.
func TestConsumerGroupProtocolRebalances(t *testing.T) {
	for _, tc := range []struct {
		name     string
		assignor string
		bal      kgo.GroupBalancer
	}{
		{"uniform", "uniform", kgo.CooperativeStickyBalancer()},
		{"range", "range", kgo.RangeBalancer()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, t.TempDir(), consumerGroupConfig)
			ctx := testCtx(t, 2*time.Minute)
			const topic, partitions = "kip848", 12
			groupID := "g-848-" + tc.name
			adm := ts.admin(t)
			createTopics(t, ctx, adm, partitions, nil, topic)
			n := 6000
			if testing.Short() {
				n = 2000
			}

			seen := &processed{counts: map[int]int{}}
			runCtx, stopAll := context.WithCancel(ctx)
			defer stopAll()
			errs := make(chan error, 8)
			var wg sync.WaitGroup
			type running struct {
				gc   *groupConsumer
				stop chan struct{}
			}
			start := func() running {
				r := running{newConsumerProtocolMember(t, ts, groupID, topic, tc.bal), make(chan struct{})}
				wg.Add(1)
				go func() {
					defer wg.Done()
					runMember(runCtx, r.gc, seen, r.stop, errs)
				}()
				return r
			}
			var members []running
			members = append(members, start())
			d := waitConsumerGroup(t, ctx, adm, groupID, 1)
			if d.AssignorName != tc.assignor {
				t.Errorf("assignor %q, want %q", d.AssignorName, tc.assignor)
			}

			// Produce in the background through every change of members.
			var produced atomic.Int64
			prodDone := make(chan struct{})
			go func() {
				defer close(prodDone)
				const step = 200
				for i := 0; i < n; i += step {
					produceIDs(t, ctx, ts, topic, partitions, i, min(i+step, n))
					produced.Store(int64(min(i+step, n)))
					time.Sleep(20 * time.Millisecond)
				}
			}()
			waitProduced := func(k int64) {
				for produced.Load() < k && ctx.Err() == nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
			// Members join, then some leave, while records flow.
			for i := 1; i < 3; i++ {
				waitProduced(int64(n * i / 8))
				members = append(members, start())
				waitConsumerGroup(t, ctx, adm, groupID, len(members))
			}
			waitProduced(int64(n * 3 / 8))
			leaving := members[0]
			members = members[1:]
			close(leaving.stop)
			leaving.gc.cl.Close() // commits were synchronous; Close leaves the group
			waitConsumerGroup(t, ctx, adm, groupID, len(members))
			waitProduced(int64(n * 5 / 8))
			members = append(members, start())
			d = waitConsumerGroup(t, ctx, adm, groupID, len(members))
			<-prodDone

			deadline := time.Now().Add(60 * time.Second)
			for seen.distinct() < n && time.Now().Before(deadline) {
				select {
				case err := <-errs:
					t.Fatalf("member: %v", err)
				case <-time.After(50 * time.Millisecond):
				}
			}
			time.Sleep(300 * time.Millisecond) // let a stray re-delivery show
			stopAll()
			wg.Wait()
			for _, r := range members {
				r.gc.cl.Close()
			}
			if got := seen.distinct(); got != n {
				t.Fatalf("processed %d distinct ids, want %d", got, n)
			}
			dups := 0
			seen.mu.Lock()
			for id, c := range seen.counts {
				if id < 0 || id >= n {
					t.Errorf("unexpected id %d", id)
				}
				dups += c - 1
			}
			seen.mu.Unlock()
			if dups != 0 {
				t.Errorf("%d records processed more than once", dups)
			}
			assigned := 0
			for _, m := range d.Members {
				for _, ps := range m.Assignment {
					assigned += len(ps)
				}
			}
			if assigned != partitions {
				t.Errorf("final assignment covers %d partitions, want %d", assigned, partitions)
			}
			t.Logf("%s: %d records through 3 joins, 1 leave, 1 join; group epoch %d; %d duplicates", tc.name, n, d.Epoch, dups)
		})
	}
}

// TestConsumerGroupOnlineMigration: a group of two classic members
// (franz-go's cooperative-sticky) converts into a consumer group when a
// member on the consumer protocol joins, all three share the partitions
// (the classic ones through JoinGroup and SyncGroup, assigned by the
// coordinator), and it converts back into a classic group when that
// member leaves, all while records are produced: every record processed
// exactly once.
func TestConsumerGroupOnlineMigration(t *testing.T) {
	ts := startServer(t, t.TempDir(), consumerGroupConfig)
	ctx := testCtx(t, 2*time.Minute)
	const topic, partitions, groupID = "migrate", 6, "g-migrate"
	adm := ts.admin(t)
	createTopics(t, ctx, adm, partitions, nil, topic)
	n := 6000
	if testing.Short() {
		n = 2000
	}
	seen := &processed{counts: map[int]int{}}
	runCtx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	start := func(gc *groupConsumer) chan struct{} {
		stop := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			runMember(runCtx, gc, seen, stop, errs)
		}()
		return stop
	}
	var classic []*groupConsumer
	for range 2 {
		gc := newGroupConsumer(t, ts, groupID, topic, nil, kgo.Balancers(kgo.CooperativeStickyBalancer()))
		classic = append(classic, gc)
		start(gc)
	}
	waitStable(t, ctx, adm, groupID, 2)
	groupType := func() string {
		ls, err := adm.ListGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ls[groupID].GroupType
	}

	var produced atomic.Int64
	prodDone := make(chan struct{})
	go func() {
		defer close(prodDone)
		for i := 0; i < n; i += 200 {
			produceIDs(t, ctx, ts, topic, partitions, i, min(i+200, n))
			produced.Store(int64(min(i+200, n)))
			time.Sleep(30 * time.Millisecond)
		}
	}()
	for produced.Load() < int64(n/4) {
		time.Sleep(10 * time.Millisecond)
	}
	modern := newConsumerProtocolMember(t, ts, groupID, topic, kgo.CooperativeStickyBalancer())
	stopModern := start(modern)
	d := waitConsumerGroup(t, ctx, adm, groupID, 3)
	if typ := groupType(); typ != "consumer" {
		t.Errorf("after a consumer-protocol member joined the group type is %q", typ)
	}
	classicMembers, assigned := 0, 0
	for _, m := range d.Members {
		for _, ps := range m.Assignment {
			assigned += len(ps)
		}
	}
	dg, err := adm.DescribeConsumerGroups(ctx, groupID)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range dg[groupID].Members {
		if m.MemberType == 0 {
			classicMembers++
		}
	}
	t.Logf("converted: epoch %d, %d members (%d classic), %d partitions assigned", d.Epoch, len(d.Members), classicMembers, assigned)
	if assigned != partitions {
		t.Errorf("the converted group assigns %d partitions, want %d", assigned, partitions)
	}
	for produced.Load() < int64(n/2) {
		time.Sleep(10 * time.Millisecond)
	}
	close(stopModern)
	modern.cl.Close() // leaves: only classic members are left
	waitStable(t, ctx, adm, groupID, 2)
	if typ := groupType(); typ != "classic" {
		t.Errorf("after the consumer-protocol member left the group type is %q", typ)
	}
	<-prodDone
	deadline := time.Now().Add(60 * time.Second)
	for seen.distinct() < n && time.Now().Before(deadline) {
		select {
		case err := <-errs:
			t.Fatalf("member: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	time.Sleep(300 * time.Millisecond)
	stopAll()
	wg.Wait()
	for _, gc := range classic {
		gc.cl.Close()
	}
	if got := seen.distinct(); got != n {
		t.Fatalf("processed %d distinct ids, want %d", got, n)
	}
	dups := 0
	seen.mu.Lock()
	for _, c := range seen.counts {
		dups += c - 1
	}
	seen.mu.Unlock()
	if dups != 0 {
		t.Errorf("%d records processed more than once", dups)
	}
	t.Logf("%d records through classic -> consumer -> classic; %d duplicates", n, dups)
}

// TestConsumerGroupSurvivesRestart: the broker coordinating a consumer
// group (KIP-848) restarts on the same port while its members consume;
// it loads the group from __consumer_offsets, so the members keep their
// ids and epochs and go on, and the only records processed twice are
// those of a poll whose commit failed during the restart.
func TestConsumerGroupSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	mod := func(c *config.Broker) {
		consumerGroupConfig(c)
		c.GroupConsumerSession = 20 * time.Second // outlives the restart
	}
	ts := startServer(t, dir, mod)
	ctx := testCtx(t, 2*time.Minute)
	const topic, partitions, groupID = "restart-848", 6, "g-restart-848"
	adm := ts.admin(t)
	createTopics(t, ctx, adm, partitions, nil, topic)
	n := 4000
	if testing.Short() {
		n = 1500
	}
	produceIDs(t, ctx, ts, topic, partitions, 0, n/2)

	seen := &processed{counts: map[int]int{}}
	var mu sync.Mutex
	uncommitted := map[int]bool{}
	runCtx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	var wg sync.WaitGroup
	var members []*groupConsumer
	for range 2 {
		gc := newConsumerProtocolMember(t, ts, groupID, topic, kgo.CooperativeStickyBalancer(), kgo.RetryTimeout(30*time.Second))
		members = append(members, gc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil {
				pctx, cancel := context.WithTimeout(runCtx, 500*time.Millisecond)
				fs := gc.cl.PollRecords(pctx, 50)
				cancel()
				var recs []*kgo.Record
				fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
				for _, r := range recs {
					seen.add(r)
				}
				if len(recs) > 0 {
					if err := gc.cl.CommitRecords(runCtx, recs...); err != nil {
						mu.Lock()
						for _, r := range recs {
							id, _ := strconv.Atoi(string(r.Value))
							uncommitted[id] = true
						}
						mu.Unlock()
					}
				}
				gc.cl.AllowRebalance()
			}
		}()
	}
	waitConsumerGroup(t, ctx, adm, groupID, 2)
	// A third member joins and leaves: the group epoch (4) is one a
	// group rebuilt by rejoins after the restart would not have.
	extra := newConsumerProtocolMember(t, ts, groupID, topic, kgo.CooperativeStickyBalancer())
	stopExtra := make(chan struct{})
	extraErrs := make(chan error, 1)
	var extraWG sync.WaitGroup
	extraWG.Add(1)
	go func() {
		defer extraWG.Done()
		runMember(runCtx, extra, seen, stopExtra, extraErrs)
	}()
	waitConsumerGroup(t, ctx, adm, groupID, 3)
	close(stopExtra)
	extraWG.Wait()
	extra.cl.Close()
	before := waitConsumerGroup(t, ctx, adm, groupID, 2)
	if before.Epoch != 4 {
		t.Fatalf("group epoch %d before the restart, want 4", before.Epoch)
	}
	for seen.distinct() < n/4 {
		time.Sleep(10 * time.Millisecond)
	}
	addr := ts.addr
	ts.close()
	ts = startServer(t, dir, func(c *config.Broker) {
		mod(c)
		c.Listen, c.Advertised = addr, addr
	})
	adm = ts.admin(t)
	produceIDs(t, ctx, ts, topic, partitions, n/2, n)
	after := waitConsumerGroup(t, ctx, adm, groupID, 2)
	ids := func(d kadm.DescribedConsumerGroup) string {
		var out []string
		for _, m := range d.Members {
			out = append(out, fmt.Sprintf("%s@%d", m.MemberID, m.MemberEpoch))
		}
		slices.Sort(out)
		return strings.Join(out, " ")
	}
	if ids(before) != ids(after) || before.Epoch != after.Epoch {
		t.Errorf("before the restart: epoch %d members %s; after: epoch %d members %s", before.Epoch, ids(before), after.Epoch, ids(after))
	}
	deadline := time.Now().Add(60 * time.Second)
	for seen.distinct() < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	stopAll()
	wg.Wait()
	for _, gc := range members {
		gc.cl.Close()
	}
	if got := seen.distinct(); got != n {
		t.Fatalf("processed %d distinct ids, want %d", got, n)
	}
	again, outside := 0, 0
	seen.mu.Lock()
	for id, c := range seen.counts {
		if c > 1 {
			again += c - 1
			if !uncommitted[id] {
				outside++
			}
		}
	}
	seen.mu.Unlock()
	if outside > 0 {
		t.Errorf("%d records processed twice though their commit succeeded", outside)
	}
	t.Logf("%d records across a restart of the coordinator: group epoch %d kept, members %s; %d processed again (%d in polls whose commit failed)", n, after.Epoch, ids(after), again, len(uncommitted))
}

// TestConsumerGroupStaticMembers: franz-go static members (an instance
// id) on the consumer group protocol: one restarts (its leave is a static
// leave, epoch -2) and its successor with the same instance id gets the
// same partitions back without a new assignment (the group epoch stays),
// while the other member never gets them meanwhile.
func TestConsumerGroupStaticMembers(t *testing.T) {
	ts := startServer(t, t.TempDir(), consumerGroupConfig)
	ctx := testCtx(t, time.Minute)
	const topic, partitions, groupID = "static-848", 6, "g-static-848"
	adm := ts.admin(t)
	createTopics(t, ctx, adm, partitions, nil, topic)
	start := func(instance string) *groupConsumer {
		return newConsumerProtocolMember(t, ts, groupID, topic, kgo.CooperativeStickyBalancer(), kgo.InstanceID(instance))
	}
	a, b := start("static-a"), start("static-b")
	for _, gc := range []*groupConsumer{a, b} {
		go func() {
			for ctx.Err() == nil {
				if _, err := gc.pollOnce(ctx, func(*kgo.Record) {}); err != nil {
					return
				}
			}
		}()
	}
	assignmentOf := func(d kadm.DescribedConsumerGroup, instance string) string {
		for _, m := range d.Members {
			if m.InstanceID != nil && *m.InstanceID == instance {
				return fmt.Sprint(m.Assignment.Sorted())
			}
		}
		return "none"
	}
	before := waitConsumerGroup(t, ctx, adm, groupID, 2)
	a.cl.Close() // a static leave: the member stays, its partitions wait
	dg, err := adm.DescribeConsumerGroups(ctx, groupID)
	if err != nil {
		t.Fatal(err)
	}
	d := dg[groupID]
	if len(d.Members) != 2 || d.Epoch != before.Epoch {
		t.Fatalf("after the static leave: epoch %d (was %d), %d members", d.Epoch, before.Epoch, len(d.Members))
	}
	time.Sleep(500 * time.Millisecond) // heartbeats of b: it must not take a's partitions
	if got, want := assignmentOf(waitConsumerGroupAny(t, ctx, adm, groupID), "static-b"), assignmentOf(before, "static-b"); got != want {
		t.Errorf("while static-a is away static-b owns %s, before %s", got, want)
	}
	a2 := start("static-a")
	go func() {
		for ctx.Err() == nil {
			if _, err := a2.pollOnce(ctx, func(*kgo.Record) {}); err != nil {
				return
			}
		}
	}()
	after := waitConsumerGroup(t, ctx, adm, groupID, 2)
	if after.Epoch != before.Epoch || assignmentOf(after, "static-a") != assignmentOf(before, "static-a") {
		t.Errorf("static-a back: epoch %d (was %d), owns %s (was %s)", after.Epoch, before.Epoch, assignmentOf(after, "static-a"), assignmentOf(before, "static-a"))
	}
	t.Logf("static-a left and came back under a new member id at group epoch %d, owning %s again", after.Epoch, assignmentOf(after, "static-a"))
}

// waitConsumerGroupAny describes the consumer group as it is.
func waitConsumerGroupAny(t *testing.T, ctx context.Context, adm *kadm.Client, groupID string) kadm.DescribedConsumerGroup {
	t.Helper()
	dg, err := adm.DescribeConsumerGroups(ctx, groupID)
	if err != nil || dg[groupID].Err != nil {
		t.Fatalf("describe %s: %v %v", groupID, err, dg[groupID].Err)
	}
	return dg[groupID]
}
