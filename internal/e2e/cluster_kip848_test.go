package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterConsumerProtocolCoordinatorKilled runs a consumer group on
// the KIP-848 protocol (franz-go's ServerSideBalancer) in a three-broker
// cluster while records are produced, and SIGKILLs the broker
// coordinating the group. The broker taking its __consumer_offsets
// partition over loads the group from it: the members keep their ids and
// go on heartbeating, every acknowledged record is processed, and the
// only records processed twice are those of a poll whose commit failed
// at the kill (the at-least-once window).
func TestClusterConsumerProtocolCoordinatorKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster failover: the full-size pass runs it")
	}
	c := newTestCluster(t, false, "--lease-ttl", "2s",
		"--group-consumer-heartbeat-interval", "200ms", "--group-consumer-session-timeout", "20s")
	for id := int32(1); id <= 3; id++ {
		c.start(id, "a")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	newClient := func(opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.seeds()...), kgo.MetadataMinAge(250 * time.Millisecond),
			kgo.RetryTimeout(90 * time.Second), kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond })}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	admCl := newClient()
	adm := kadm.NewClient(admCl)
	const topic, groupID, partitions = "kip848-cluster", "kip848-detection", 12
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	// The coordinator is read once it has held for 3 s: leadership
	// settles a moment after the last broker joins.
	var coord int32 = -1
	for since := time.Now(); ; {
		co := findGroupCoordinator(t, ctx, admCl, groupID)
		if co != coord {
			coord, since = co, time.Now()
		} else if time.Since(since) >= 3*time.Second {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("coordinator of %s: broker %d", groupID, coord)

	// Producer: idempotent, acks=all, unique values.
	prod := newClient(kgo.DefaultProduceTopic(topic), kgo.RecordDeliveryTimeout(2*time.Minute), kgo.ProducerLinger(5*time.Millisecond))
	var mu sync.Mutex
	acked := map[string]bool{}
	pctx, stopProducing := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	pwg.Add(1)
	go func() {
		defer pwg.Done()
		for i := 0; pctx.Err() == nil; i++ {
			v := fmt.Sprintf("rec-%07d", i)
			prod.Produce(context.Background(), &kgo.Record{Key: []byte(v), Value: []byte(v)}, func(_ *kgo.Record, err error) {
				if err == nil {
					mu.Lock()
					acked[v] = true
					mu.Unlock()
				}
			})
			if i%20 == 19 {
				time.Sleep(5 * time.Millisecond)
			}
		}
		prod.Flush(context.Background())
	}()

	// Members commit synchronously after each poll, before they let a
	// revocation through; a poll whose commit fails is the at-least-once
	// window, and only its records may be processed again.
	seen := map[string]int{}
	uncommitted := map[string]bool{}
	var smu sync.Mutex
	gctx, stopGroup := context.WithCancel(ctx)
	var gwg sync.WaitGroup
	var members []*kgo.Client
	for range 3 {
		cl := newClient(kgo.ConsumerGroup(groupID), kgo.ConsumeTopics(topic), kgo.ServerSideBalancer(),
			kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(250*time.Millisecond))
		members = append(members, cl)
		gwg.Add(1)
		go func() {
			defer gwg.Done()
			for gctx.Err() == nil {
				pc, pcancel := context.WithTimeout(gctx, 500*time.Millisecond)
				fs := cl.PollRecords(pc, 200)
				pcancel()
				var recs []*kgo.Record
				fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
				smu.Lock()
				for _, r := range recs {
					seen[string(r.Value)]++
				}
				smu.Unlock()
				if len(recs) > 0 {
					cctx, ccancel := context.WithTimeout(gctx, 30*time.Second)
					err := cl.CommitRecords(cctx, recs...)
					ccancel()
					if err != nil {
						smu.Lock()
						for _, r := range recs {
							uncommitted[string(r.Value)] = true
						}
						smu.Unlock()
					}
				}
				cl.AllowRebalance()
			}
		}()
	}
	waitConsumerGroupStable(t, ctx, adm, groupID, 3)
	// A fourth member joins and leaves before the kill: the group epoch
	// (5) is then one that a group rebuilt by rejoins on the new
	// coordinator would not have (3).
	extra := newClient(kgo.ConsumerGroup(groupID), kgo.ConsumeTopics(topic), kgo.ServerSideBalancer(),
		kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	waitConsumerGroupStable(t, ctx, adm, groupID, 4)
	extra.Close()
	before := waitConsumerGroupStable(t, ctx, adm, groupID, 3)
	if before.Epoch != 5 {
		t.Fatalf("group epoch %d before the kill, want 5", before.Epoch)
	}
	time.Sleep(2 * time.Second) // records flow through the group

	killedAt := time.Now()
	c.brokers[coord].kill()
	delete(c.brokers, coord)
	// The surviving brokers name the killed one until its lease ends; an
	// admin client that found it keeps dialing it, so a new one asks once
	// another broker coordinates.
	newCoord := coord
	for newCoord == coord {
		time.Sleep(250 * time.Millisecond)
		newCoord = findGroupCoordinator(t, ctx, admCl, groupID)
	}
	after := waitConsumerGroupStable(t, ctx, kadm.NewClient(newClient()), groupID, 3)
	t.Logf("coordinator %d killed; broker %d coordinates the group %v later at group epoch %d (was %d)",
		coord, newCoord, time.Since(killedAt).Round(100*time.Millisecond), after.Epoch, before.Epoch)
	if !slices.Equal(memberIDs(before), memberIDs(after)) || after.Epoch != before.Epoch {
		t.Errorf("before the kill epoch %d members %v, after epoch %d members %v: the group was not resumed",
			before.Epoch, memberIDs(before), after.Epoch, memberIDs(after))
	}
	time.Sleep(2 * time.Second)
	stopProducing()
	pwg.Wait()

	mu.Lock()
	want := maps.Clone(acked)
	mu.Unlock()
	if len(want) < 1000 {
		t.Fatalf("only %d records acknowledged", len(want))
	}
	for {
		smu.Lock()
		missing := 0
		for v := range want {
			if seen[v] == 0 {
				missing++
			}
		}
		smu.Unlock()
		if missing == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the group never processed %d of %d acknowledged records", missing, len(want))
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	stopGroup()
	gwg.Wait()
	for _, cl := range members {
		cl.Close()
	}
	smu.Lock()
	defer smu.Unlock()
	again, outside := 0, 0
	for v, n := range seen {
		if n > 1 {
			again += n - 1
			if !uncommitted[v] {
				outside++
			}
		}
	}
	t.Logf("%d acknowledged records all processed; %d processed again, all from the %d records of polls whose commit failed at the kill", len(want), again, len(uncommitted))
	if outside > 0 {
		t.Errorf("%d records processed twice though their commit succeeded", outside)
	}
}

// findGroupCoordinator asks FindCoordinator which broker coordinates a
// group, waiting until one does.
func findGroupCoordinator(t *testing.T, ctx context.Context, cl *kgo.Client, groupID string) int32 {
	t.Helper()
	for {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKeys = []string{groupID}
		req.CoordinatorKey = groupID
		resp, err := req.RequestWith(ctx, cl)
		if err == nil && len(resp.Coordinators) == 1 && resp.Coordinators[0].ErrorCode == 0 {
			return resp.Coordinators[0].NodeID
		}
		if ctx.Err() != nil {
			t.Fatalf("no coordinator for %s: %v", groupID, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitConsumerGroupStable waits until the consumer group is Stable with
// members members.
func waitConsumerGroupStable(t *testing.T, ctx context.Context, adm *kadm.Client, groupID string, members int) kadm.DescribedConsumerGroup {
	t.Helper()
	for {
		dg, err := adm.DescribeConsumerGroups(ctx, groupID)
		d := dg[groupID]
		if err == nil && d.Err == nil && d.State == "Stable" && len(d.Members) == members {
			return d
		}
		if ctx.Err() != nil {
			t.Fatalf("consumer group %s never Stable with %d members: %s with %d (%v %v)", groupID, members, d.State, len(d.Members), err, d.Err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func memberIDs(d kadm.DescribedConsumerGroup) []string {
	var ids []string
	for _, m := range d.Members {
		ids = append(ids, m.MemberID)
	}
	slices.Sort(ids)
	return ids
}
