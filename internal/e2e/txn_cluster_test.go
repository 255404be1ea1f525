package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTxnClusterCoordinatorKilled: the broker coordinating a transaction
// is killed mid-commit, after its PrepareCommit is durable and before
// the markers reach every partition (a partition leader is paused, so its
// marker hangs). The broker that takes the coordinator's
// __transaction_state partition over finds PrepareCommit and finishes the
// commit: every record of the transaction becomes visible to read_committed
// readers on every partition and the last stable offsets reach the high
// watermarks. Then a new producer with the same transactional id fences
// the old one.
func TestTxnClusterCoordinatorKilled(t *testing.T) {
	c := newTestCluster(t, false, "--lease-ttl", "2s")
	for id := int32(1); id <= 3; id++ {
		c.start(id, "a")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	newClient := func(seeds []string, opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(250 * time.Millisecond),
			kgo.RetryTimeout(90 * time.Second), kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond })}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	admCl := newClient(c.seeds())
	adm := kadm.NewClient(admCl)
	const topic, txnID = "txc", "tx-cluster"
	if _, err := adm.CreateTopic(ctx, 12, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	// Leadership settles a moment after the last broker joins (each
	// partition whose rendezvous owner is the newcomer is handed over):
	// the coordinator and leaders are read once they have held for 3s,
	// or the broker paused below may turn out to be the coordinator.
	var (
		leaders map[int32]int32
		coord   int32
	)
	for since := time.Now(); ; {
		l, co := leadersOf(t, ctx, adm, topic, nil), findTxnCoordinator(t, ctx, admCl, txnID)
		if co != coord || !maps.Equal(l, leaders) {
			leaders, coord, since = l, co, time.Now()
		} else if time.Since(since) >= 3*time.Second {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	paused := int32(-1) // a broker leading partitions of the topic, not the coordinator
	for _, l := range leaders {
		if l != coord {
			paused = l
			break
		}
	}
	if paused < 0 {
		t.Fatalf("the coordinator %d leads every partition: %v", coord, leaders)
	}
	t.Logf("coordinator of %s: broker %d; broker %d will be paused; leaders %v", txnID, coord, paused, leaders)

	prod := newClient(c.seeds(), kgo.TransactionalID(txnID), kgo.DefaultProduceTopic(topic),
		kgo.TransactionTimeout(60*time.Second), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	txn := func(name string, commit bool) {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for p := range int32(12) {
			r := &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "%s-%02d", name, p)}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce %s to %d: %v", name, p, err)
			}
		}
		if err := prod.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end %s (commit %v): %v", name, commit, err)
		}
	}
	txn("warm", true)
	txn("aborted", false)

	// The transaction the kill interrupts.
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for p := range int32(12) {
		if err := prod.ProduceSync(ctx, &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "cut-%02d", p)}).FirstErr(); err != nil {
			t.Fatalf("produce cut to %d: %v", p, err)
		}
	}
	if err := c.brokers[paused].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if err := c.brokers[paused].cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Error(err)
			}
		}
	}
	defer resume()
	// EndTxn is answered once PrepareCommit is durable; the markers for
	// the paused broker's partitions then hang in its socket.
	if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit of the transaction to be cut: %v", err)
	}
	coordAdm := kadm.NewClient(newClient([]string{c.brokers[coord].addr}))
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	ds, err := coordAdm.DescribeTransactions(dctx, txnID)
	dcancel()
	if err != nil {
		t.Fatal(err)
	}
	if d := ds[txnID]; d.State != "PrepareCommit" {
		t.Fatalf("before the kill the coordinator says %q, want PrepareCommit (the markers were meant to hang)", d.State)
	}
	killedAt := time.Now()
	c.brokers[coord].kill()
	delete(c.brokers, coord)
	resume()

	// The new coordinator finishes the commit. A client per attempt: one
	// keeps the dead coordinator cached while its connections fail.
	survivors := kadm.NewClient(newClient(c.seeds()))
	for {
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.RetryTimeout(4*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		ds, err := kadm.NewClient(cl).DescribeTransactions(dctx, txnID)
		cl.Close()
		dcancel()
		if err == nil && ds[txnID].State == "CompleteCommit" {
			t.Logf("the new coordinator (broker %d) completed the commit %v after the kill", ds[txnID].Coordinator, time.Since(killedAt).Round(time.Millisecond))
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the transaction was never completed after the coordinator died: %v %+v", err, ds)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Every partition: the last stable offset reaches the high watermark,
	// and read_committed readers see warm and cut on every partition,
	// never aborted.
	for {
		lso, err1 := survivors.ListCommittedOffsets(ctx, topic) // read_committed latest: the LSO
		hw, err2 := survivors.ListEndOffsets(ctx, topic)
		if err1 == nil && err2 == nil && lso.Error() == nil && hw.Error() == nil {
			same := true
			hw.Each(func(o kadm.ListedOffset) {
				if l, ok := lso.Lookup(o.Topic, o.Partition); !ok || l.Offset != o.Offset {
					same = false
				}
			})
			if same {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("the last stable offsets never reached the high watermarks: %v %v", lso, hw)
		}
		time.Sleep(200 * time.Millisecond)
	}
	got := readCommitted(t, ctx, c.seeds(), topic, 24)
	var want []string
	for _, name := range []string{"warm", "cut"} {
		for p := range 12 {
			want = append(want, fmt.Sprintf("%s-%02d", name, p))
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("read_committed after the takeover: %v, want %v", got, want)
	}

	// A new producer with the same id fences the old one.
	prod2 := newClient(c.seeds(), kgo.TransactionalID(txnID), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := prod2.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := prod2.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("after-00")}).FirstErr(); err != nil {
		t.Fatalf("the new producer: %v", err)
	}
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	zerr := prod.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte("zombie-01")}).FirstErr()
	if !errors.Is(zerr, kerr.InvalidProducerEpoch) && !errors.Is(zerr, kerr.ProducerFenced) {
		t.Errorf("the fenced producer's produce: %v, want a fencing error", zerr)
	}
	if err := prod2.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("the new producer's commit: %v", err)
	}
	got = readCommitted(t, ctx, c.seeds(), topic, 25)
	if !slices.Contains(got, "after-00") || slices.Contains(got, "zombie-01") {
		t.Errorf("after the fence: %v", got)
	}
}

// findTxnCoordinator asks FindCoordinator which broker coordinates a
// transactional id, waiting until one does.
func findTxnCoordinator(t *testing.T, ctx context.Context, cl *kgo.Client, txnID string) int32 {
	t.Helper()
	for {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorType = 1
		req.CoordinatorKeys = []string{txnID}
		req.CoordinatorKey = txnID
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			if len(resp.Coordinators) == 1 && resp.Coordinators[0].ErrorCode == 0 {
				return resp.Coordinators[0].NodeID
			}
			if len(resp.Coordinators) == 0 && resp.ErrorCode == 0 {
				return resp.NodeID
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("no coordinator for %s: %v %+v", txnID, err, resp)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readCommitted reads a topic from the start at read_committed until it
// has n records (failing on more), and returns their values sorted.
func readCommitted(t *testing.T, ctx context.Context, seeds []string, topic string, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []string
	settle := time.Time{}
	for {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
		switch {
		case len(out) > n:
			t.Fatalf("read_committed read %d records, want %d: %v", len(out), n, out)
		case len(out) == n && settle.IsZero():
			settle = time.Now()
		case len(out) == n && time.Since(settle) > time.Second:
			slices.Sort(out)
			return out
		}
		if ctx.Err() != nil {
			t.Fatalf("read_committed read %d records of %d: %v", len(out), n, out)
		}
	}
}
