package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/group"
)

// TestClusterSpreadsGroups runs three brokers on one etcd and checks that
// the group coordinators spread with __consumer_offsets's partitions, as
// in Kafka: FindCoordinator names the leader of the group's offsets
// partition, ListGroups on a broker lists only its own groups, and when a
// coordinating broker leaves, only its groups move, and every group
// resumes from the offsets it committed.
func TestClusterSpreadsGroups(t *testing.T) {
	cluster := startCluster(t, 3, func(int32) string { return "" })
	ctx := testCtx(t, 120*time.Second)
	newClient := func(opts ...kgo.Opt) *kgo.Client { return cluster.client(t, opts...) }
	adm := kadm.NewClient(newClient())
	createTopics(t, ctx, adm, 6, nil, "events")
	leaders(t, ctx, adm, "events", nil)
	offsetsLeaders := leaders(t, ctx, adm, group.OffsetsTopic, nil)
	t.Logf("%s partitions per broker: %v", group.OffsetsTopic, offsetsLeaders)
	if len(offsetsLeaders) < 2 {
		t.Fatalf("%s led by %d broker(s), want its partitions spread: %v", group.OffsetsTopic, len(offsetsLeaders), offsetsLeaders)
	}

	prod := newClient(kgo.DefaultProduceTopic("events"), kgo.RequiredAcks(kgo.AllISRAcks()))
	produce := func(prefix string, n int) {
		t.Helper()
		for i := range n {
			if err := prod.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%s-%d", prefix, i)}).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
		}
	}
	// consume reads n records as a member of group id, commits and leaves.
	consume := func(id string, n int) map[string]bool {
		t.Helper()
		// A 500 ms long poll (the Java client's default): franz-go may
		// send its first fetch before every partition's start offset is
		// known, and that fetch waits out its max wait.
		cl := newClient(kgo.FetchMaxWait(500*time.Millisecond), kgo.ConsumerGroup(id), kgo.ConsumeTopics("events"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		defer cl.Close()
		seen := map[string]bool{}
		for len(seen) < n {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("group %s read %d of %d records: %v", id, len(seen), n, err)
			}
			fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("group %s: commit: %v", id, err)
		}
		return seen
	}
	// coordinators asks FindCoordinator (v4, batched) for every group.
	coordinators := func(ids []string) map[string]int32 {
		t.Helper()
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKeys = ids
		for {
			resp, err := req.RequestWith(ctx, newClient())
			if err != nil {
				t.Fatalf("FindCoordinator: %v", err)
			}
			out := map[string]int32{}
			for _, c := range resp.Coordinators {
				if c.ErrorCode == 0 {
					out[c.Key] = c.NodeID
				}
			}
			if len(out) == len(ids) {
				return out
			}
			select {
			case <-ctx.Done():
				t.Fatalf("FindCoordinator answered %v for %v", resp.Coordinators, ids)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}

	produce("old", 300)
	var ids []string
	for i := range 8 {
		ids = append(ids, fmt.Sprintf("detect-%d", i))
	}
	for _, id := range ids {
		if got := consume(id, 300); len(got) != 300 {
			t.Fatalf("group %s read %d records, want 300", id, len(got))
		}
	}

	// Each group's coordinator is its offsets partition's leader, and the
	// groups do not all live on one broker.
	md, err := adm.Metadata(ctx, group.OffsetsTopic)
	if err != nil {
		t.Fatal(err)
	}
	parts := md.Topics[group.OffsetsTopic].Partitions
	before := coordinators(ids)
	perBroker := map[int32]int{}
	for _, id := range ids {
		p := group.PartitionFor(id, int32(len(parts)))
		if want := parts[p].Leader; before[id] != want {
			t.Errorf("group %s (offsets partition %d): coordinator %d, want the partition's leader %d", id, p, before[id], want)
		}
		perBroker[before[id]]++
	}
	t.Logf("groups per coordinator: %v", perBroker)
	if len(perBroker) < 2 {
		t.Fatalf("all %d groups coordinated by one broker: %v", len(ids), perBroker)
	}
	// kadm lists every broker's groups and says which broker listed each:
	// only its coordinator does.
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if g, ok := listed[id]; !ok || g.Coordinator != before[id] {
			t.Errorf("group %s listed by broker %d (listed: %v), want only by its coordinator %d", id, g.Coordinator, ok, before[id])
		}
	}

	// The coordinator of the first group leaves: its groups move, the
	// others stay where they are, and every group resumes after its
	// committed offsets.
	gone := before[ids[0]]
	cluster.brokers[gone-1].close()
	adm = kadm.NewClient(newClient())
	leaders(t, ctx, adm, group.OffsetsTopic, map[int32]bool{1: gone != 1, 2: gone != 2, 3: gone != 3})
	after := coordinators(ids)
	moved := 0
	for _, id := range ids {
		switch {
		case before[id] == gone && after[id] == gone:
			t.Errorf("group %s still coordinated by broker %d, which left", id, gone)
		case before[id] == gone:
			moved++
		case after[id] != before[id]:
			t.Errorf("group %s moved from %d to %d though its coordinator stayed", id, before[id], after[id])
		}
	}
	produce("new", 60)
	for _, id := range ids {
		for v := range consume(id, 60) {
			if v[:4] != "new-" {
				t.Errorf("group %s read %s again after its coordinator %s", id, v, map[bool]string{true: "moved", false: "stayed"}[before[id] == gone])
			}
		}
	}
	t.Logf("broker %d left; %d of %d groups moved with its offsets partitions, all resumed after their commits", gone, moved, len(ids))
}
