package txn

import (
	"fmt"
	"math"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTimeoutAbortsAndFences: a transaction older than its timeout is
// aborted by the coordinator with an epoch bump (two with transaction
// version 2: the fence's and the abort's), its markers carry that epoch,
// and its producer is fenced everywhere; a younger one is left alone.
func TestTimeoutAbortsAndFences(t *testing.T) {
	ev := openEnv(t, t.TempDir(), testConfig(), newRecMarkers())
	pid, epoch, code := ev.c.InitProducerID(ctx, "slow", 100, -1, -1)
	if code != 0 {
		t.Fatal(codeName(code))
	}
	p := producerAt{pid, epoch}
	ev.add("slow", p, t1p0, t2p1)
	young := ev.init("young") // 60s timeout
	ev.add("young", young, t1p1)

	if n := ev.c.AbortTimedOut(time.Now()); n != 0 {
		t.Fatalf("aborted %d transactions before any timed out", n)
	}
	if n := ev.c.AbortTimedOut(time.Now().Add(time.Second)); n != 1 {
		t.Fatalf("aborted %d transactions, want 1", n)
	}
	w := waitWrites(t, ev.mk, 1)
	// The coordinator's own abort is transaction version 2 (serverTV).
	want := Marker{ProducerID: p.pid, Epoch: p.epoch + 2, TransactionVersion: 2, Partitions: []TopicPartition{t1p0, t2p1}}
	if !reflect.DeepEqual(w[0], want) {
		t.Errorf("abort marker %+v, want %+v", w[0], want)
	}
	d := ev.waitState("slow", CompleteAbort)
	if d.ProducerEpoch != p.epoch+2 {
		t.Errorf("epoch after the timeout %d, want %d", d.ProducerEpoch, p.epoch+2)
	}
	ev.waitIdle("slow")
	if d := ev.describe("young"); d.State != "Ongoing" {
		t.Errorf("the young transaction: %+v", d)
	}

	// The timed-out producer is fenced.
	fenced := kerr.ProducerFenced.Code
	if code := ev.c.AddPartitions(ctx, "slow", p.pid, p.epoch, []TopicPartition{t1p0}); code != fenced {
		t.Errorf("AddPartitions: %s", codeName(code))
	}
	if code := ev.c.VerifyPartition("slow", p.pid, p.epoch, t1p0); code != fenced {
		t.Errorf("VerifyPartition: %s", codeName(code))
	}
	for _, v2 := range []bool{false, true} {
		if _, _, code := ev.c.EndTxn(ctx, "slow", p.pid, p.epoch, true, v2); code != fenced {
			t.Errorf("EndTxn commit (v2 %v): %s", v2, codeName(code))
		}
	}
	if _, _, code := ev.c.InitProducerID(ctx, "slow", 100, p.pid, p.epoch); code != fenced {
		t.Errorf("InitProducerId with the fenced epoch (KIP-360): %s", codeName(code))
	}
	// A new producer takes the id over.
	if pid, epoch, code := ev.c.InitProducerID(ctx, "slow", 100, -1, -1); code != 0 || pid != p.pid || epoch != p.epoch+3 {
		t.Errorf("InitProducerId after the timeout: %d/%d %s", pid, epoch, codeName(code))
	}
}

// TestTimeoutLoop: the background timer aborts a timed-out transaction.
func TestTimeoutLoop(t *testing.T) {
	cfg := testConfig()
	cfg.AbortInterval = 10 * time.Millisecond
	ev := openEnv(t, t.TempDir(), cfg, newRecMarkers())
	pid, epoch, code := ev.c.InitProducerID(ctx, "a", 30, -1, -1)
	if code != 0 {
		t.Fatal(codeName(code))
	}
	ev.add("a", producerAt{pid, epoch}, t1p0)
	ev.waitState("a", CompleteAbort)
}

// TestTimeoutAfterRestart: a transaction that was ongoing at a restart
// comes back Ongoing and is aborted once its timeout passes.
func TestTimeoutAfterRestart(t *testing.T) {
	ev := openEnv(t, t.TempDir(), testConfig(), newRecMarkers())
	pid, epoch, code := ev.c.InitProducerID(ctx, "a", 1000, -1, -1)
	if code != 0 {
		t.Fatal(codeName(code))
	}
	ev.add("a", producerAt{pid, epoch}, t1p0)
	ev.restart(newRecMarkers())
	if d := ev.describe("a"); d.State != "Ongoing" || len(d.Topics) != 1 {
		t.Fatalf("after the restart: %+v", d)
	}
	if n := ev.c.AbortTimedOut(time.Now().Add(2 * time.Second)); n != 1 {
		t.Fatalf("aborted %d", n)
	}
	ev.waitState("a", CompleteAbort)
}

// TestIDExpiration: ids without a transaction in progress and unchanged
// for transactional.id.expiration.ms are removed durably; an ongoing one
// stays; an expired id starts over with a new producer id.
func TestIDExpiration(t *testing.T) {
	cfg := testConfig()
	cfg.IDExpiration = time.Hour
	ev := openEnv(t, t.TempDir(), cfg, newRecMarkers())
	idle := ev.init("idle")
	done := ev.init("done")
	ev.add("done", done, t1p0)
	ev.end("done", done, true, true)
	ev.waitState("done", CompleteCommit)
	ev.waitIdle("done")
	busy := ev.init("busy")
	ev.add("busy", busy, t1p1)

	if n := ev.c.ExpireIDs(time.Now().Add(30 * time.Minute)); n != 0 {
		t.Fatalf("expired %d ids before their time", n)
	}
	if n := ev.c.ExpireIDs(time.Now().Add(2 * time.Hour)); n != 2 {
		t.Fatalf("expired %d ids, want 2", n)
	}
	for _, id := range []string{"idle", "done"} {
		deadline := time.Now().Add(5 * time.Second)
		for ev.describe(id).ErrorCode != kerr.TransactionalIDNotFound.Code {
			if time.Now().After(deadline) {
				t.Fatalf("%s not expired: %+v", id, ev.describe(id))
			}
			time.Sleep(time.Millisecond)
		}
	}
	if got := ev.c.List(nil, nil, -1); len(got) != 1 || got[0].TransactionalID != "busy" {
		t.Errorf("List after expiry: %+v", got)
	}
	ev.restart(newRecMarkers())
	if d := ev.describe("idle"); d.ErrorCode != kerr.TransactionalIDNotFound.Code {
		t.Errorf("expired id back after a restart: %+v", d)
	}
	if d := ev.describe("busy"); d.State != "Ongoing" {
		t.Errorf("ongoing id after the expiry: %+v", d)
	}
	p := ev.init("idle")
	if p.pid == idle.pid || p.epoch != 0 {
		t.Errorf("an expired id came back as %+v (was %+v)", p, idle)
	}
}

// TestEpochExhaustion: at epoch Short.MaxValue-1 the producer id rotates
// (InitProducerId, EndTxn v5, and a timeout's abort), a lost answer is
// recognised on retry, and the old id's last epoch is what its markers
// carry.
func TestEpochExhaustion(t *testing.T) {
	const last = math.MaxInt16 - 1
	const oldPID = 5_000_000
	ongoing := func(tv int16, start int64) transit {
		return transit{pid: oldPID, prevPID: oldPID, nextPID: -1, epoch: last, lastEpoch: -1, timeoutMs: 1000,
			state: Ongoing, parts: partSet{t1p0: {}}, start: start, update: start, tv: tv}
	}

	t.Run("InitProducerId", func(t *testing.T) {
		ev := openEnv(t, t.TempDir(), testConfig(), newRecMarkers())
		now := time.Now().UnixMilli()
		ev.inject("a", transit{pid: oldPID, prevPID: oldPID, nextPID: -1, epoch: last, lastEpoch: -1, timeoutMs: 1000,
			state: Empty, start: -1, update: now})
		ev.restart(newRecMarkers())
		pid, epoch, code := ev.c.InitProducerID(ctx, "a", 1000, oldPID, last)
		if code != 0 || pid == oldPID || epoch != 0 {
			t.Fatalf("InitProducerId at the last epoch: %d/%d %s", pid, epoch, codeName(code))
		}
		// The answer was lost: the producer asks again with its old id.
		if p2, e2, code := ev.c.InitProducerID(ctx, "a", 1000, oldPID, last); code != 0 || p2 != pid || e2 != 0 {
			t.Errorf("retry after the rotation: %d/%d %s, want %d/0", p2, e2, codeName(code), pid)
		}
		// Another producer still at the old id is fenced.
		if _, _, code := ev.c.InitProducerID(ctx, "a", 1000, oldPID, last-1); code != kerr.ProducerFenced.Code {
			t.Errorf("old id, older epoch: %s", codeName(code))
		}
	})

	t.Run("EndTxn v5", func(t *testing.T) {
		ev := openEnv(t, t.TempDir(), testConfig(), newRecMarkers())
		ev.inject("a", ongoing(tv2, time.Now().UnixMilli()))
		ev.restart(newRecMarkers())
		pid, epoch, code := ev.c.EndTxn(ctx, "a", oldPID, last, true, true)
		if code != 0 || pid == oldPID || epoch != 0 {
			t.Fatalf("EndTxn at the last epoch: %d/%d %s", pid, epoch, codeName(code))
		}
		w := waitWrites(t, ev.mk, 1)
		if w[0].ProducerID != oldPID || w[0].Epoch != math.MaxInt16 || !w[0].Commit {
			t.Errorf("marker %+v: want the old id at Short.MaxValue", w[0])
		}
		d := ev.waitState("a", CompleteCommit)
		if d.ProducerID != pid || d.ProducerEpoch != 0 {
			t.Errorf("after the commit: %+v", d)
		}
		ev.waitIdle("a")
		// shouldReturnOkOnEndTxnV2IfEndTxnV2RetryEpochOverflow
		if p2, e2, code := ev.c.EndTxn(ctx, "a", oldPID, last, true, true); code != 0 || p2 != pid || e2 != 0 {
			t.Errorf("retry of the commit: %d/%d %s", p2, e2, codeName(code))
		}
		if code := ev.c.AddPartitions(ctx, "a", pid, 0, []TopicPartition{t1p1}); code != 0 {
			t.Errorf("AddPartitions with the new id: %s", codeName(code))
		}
		ev.restart(newRecMarkers())
		if d := ev.describe("a"); d.ProducerID != pid || d.ProducerEpoch != 0 || d.State != "Ongoing" {
			t.Errorf("after a restart: %+v", d)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		ev := openEnv(t, t.TempDir(), testConfig(), newRecMarkers())
		ev.inject("a", ongoing(tv2, time.Now().Add(-time.Minute).UnixMilli()))
		ev.restart(newRecMarkers())
		if n := ev.c.AbortTimedOut(time.Now()); n != 1 {
			t.Fatalf("aborted %d", n)
		}
		w := waitWrites(t, ev.mk, 1)
		if w[0].ProducerID != oldPID || w[0].Epoch != math.MaxInt16 || w[0].Commit {
			t.Errorf("marker %+v: want an abort of the old id at Short.MaxValue", w[0])
		}
		d := ev.waitState("a", CompleteAbort)
		if d.ProducerID == oldPID || d.ProducerEpoch != 0 {
			t.Errorf("after the timeout: %+v, want a new producer id at 0", d)
		}
		ev.waitIdle("a")
		// shouldHandleTimeoutAtEpochOverflowBoundaryCorrectlyAndLateClientAbortRequestTV2
		if p2, e2, code := ev.c.EndTxn(ctx, "a", oldPID, last, false, true); code != 0 || p2 != d.ProducerID || e2 != 0 {
			t.Errorf("late abort: %d/%d %s", p2, e2, codeName(code))
		}
	})

	t.Run("InitProducerId fences an ongoing transaction", func(t *testing.T) {
		ev := openEnv(t, t.TempDir(), testConfig(), newRecMarkers())
		ev.inject("a", ongoing(tv0, time.Now().UnixMilli()))
		ev.restart(newRecMarkers())
		if _, _, code := ev.c.InitProducerID(ctx, "a", 1000, -1, -1); code != kerr.ConcurrentTransactions.Code {
			t.Fatalf("InitProducerId over an ongoing transaction: %s", codeName(code))
		}
		d := ev.waitState("a", CompleteAbort)
		ev.waitIdle("a")
		pid, epoch, code := ev.c.InitProducerID(ctx, "a", 1000, -1, -1)
		if code != 0 || pid != d.ProducerID || pid == oldPID || epoch != 1 {
			t.Errorf("retry: %d/%d %s (after the abort %+v)", pid, epoch, codeName(code), d)
		}
	})
}

// TestCompletingIsConcurrent: while a transaction's markers are being
// written, every request that would change it is CONCURRENT_TRANSACTIONS,
// and once it completes they go through.
func TestCompletingIsConcurrent(t *testing.T) {
	ev := openEnv(t, t.TempDir(), testConfig(), newRecMarkers())
	p := ev.init("a")
	ev.add("a", p, t1p0)
	ev.mk.hold()
	ev.end("a", p, true, false)
	conc := kerr.ConcurrentTransactions.Code
	if _, _, code := ev.c.InitProducerID(ctx, "a", 60000, -1, -1); code != conc {
		t.Errorf("InitProducerId: %s", codeName(code))
	}
	if code := ev.c.AddPartitions(ctx, "a", p.pid, p.epoch, []TopicPartition{t1p1}); code != conc {
		t.Errorf("AddPartitions: %s", codeName(code))
	}
	if _, _, code := ev.c.EndTxn(ctx, "a", p.pid, p.epoch, true, false); code != conc {
		t.Errorf("EndTxn: %s", codeName(code))
	}
	if n := ev.c.ExpireIDs(time.Now().Add(30 * 24 * time.Hour)); n != 0 {
		t.Errorf("expired a completing id")
	}
	ev.mk.release()
	ev.waitState("a", CompleteCommit)
	ev.waitIdle("a")
	if _, epoch, code := ev.c.InitProducerID(ctx, "a", 60000, -1, -1); code != 0 || epoch != p.epoch+1 {
		t.Errorf("InitProducerId after: %d %s", epoch, codeName(code))
	}
}

// TestConcurrentProducers: producers racing for one transactional id
// (InitProducerId, AddPartitions, EndTxn from many goroutines) only ever
// get Kafka's answers, no two are handed the same epoch, and the state in
// memory is the state a restart reads back.
func TestConcurrentProducers(t *testing.T) {
	ev := openEnv(t, t.TempDir(), testConfig(), newRecMarkers())
	allowed := map[int16]bool{0: true, kerr.ConcurrentTransactions.Code: true, kerr.ProducerFenced.Code: true,
		kerr.InvalidTxnState.Code: true, kerr.InvalidProducerIDMapping.Code: true}
	var mu sync.Mutex
	handed := map[producerAt]int{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				pid, epoch, code := ev.c.InitProducerID(ctx, "shared", 60000, -1, -1)
				check := func(what string, code int16) bool {
					if !allowed[code] {
						t.Errorf("goroutine %d: %s: %s", g, what, codeName(code))
					}
					return code == 0
				}
				if !check("InitProducerId", code) {
					continue
				}
				mu.Lock()
				handed[producerAt{pid, epoch}]++
				mu.Unlock()
				tp := TopicPartition{"t1", int32(i % 3)}
				if !check("AddPartitions", ev.c.AddPartitions(ctx, "shared", pid, epoch, []TopicPartition{tp})) {
					continue
				}
				_, _, code = ev.c.EndTxn(ctx, "shared", pid, epoch, i%2 == 0, g%2 == 0)
				check("EndTxn", code)
			}
		}()
	}
	wg.Wait()
	for p, n := range handed {
		if n > 1 {
			t.Errorf("producer id %d epoch %d handed to %d producers", p.pid, p.epoch, n)
		}
	}
	if len(handed) == 0 {
		t.Fatal("no producer ever initialized")
	}
	ev.waitIdle("shared")
	before := ev.describe("shared")
	ev.restart(newRecMarkers())
	ev.waitIdle("shared")
	after := ev.describe("shared")
	// A transaction that was completing is completed by the load.
	if before.State == "PrepareCommit" || before.State == "PrepareAbort" {
		t.Fatalf("settled in %s", before.State)
	}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("state before the restart %+v, after %+v", before, after)
	}
}

// TestNotCoordinator: an id of a partition the coordinator does not serve
// is NOT_COORDINATOR; before Load every id is COORDINATOR_LOAD_IN_PROGRESS;
// after Close, NOT_COORDINATOR.
func TestNotCoordinator(t *testing.T) {
	ev := openEnv(t, t.TempDir(), testConfig(), newRecMarkers())
	var mine, theirs string
	for i := 0; mine == "" || theirs == ""; i++ {
		id := fmt.Sprint("id-", i)
		if PartitionFor(id, 4) == 1 {
			mine = id
		} else {
			theirs = id
		}
	}
	cfg := testConfig()
	cfg.Serve = []int32{1}
	c := New(cfg, Deps{Log: ev.it, IDs: ev.c.ids, Markers: ev.mk, Topics: ev.e})
	defer c.Close()
	if _, _, code := c.InitProducerID(ctx, mine, 1000, -1, -1); code != kerr.CoordinatorLoadInProgress.Code {
		t.Errorf("before Load: %s", codeName(code))
	}
	if err := c.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, code := c.InitProducerID(ctx, mine, 1000, -1, -1); code != 0 {
		t.Errorf("served id: %s", codeName(code))
	}
	if _, _, code := c.InitProducerID(ctx, theirs, 1000, -1, -1); code != kerr.NotCoordinator.Code {
		t.Errorf("id of another partition: %s", codeName(code))
	}
	if d := c.Describe([]string{theirs})[0]; d.ErrorCode != kerr.NotCoordinator.Code {
		t.Errorf("Describe of another partition's id: %+v", d)
	}
	c.Close()
	if _, _, code := c.InitProducerID(ctx, mine, 1000, -1, -1); code != kerr.NotCoordinator.Code {
		t.Errorf("after Close: %s", codeName(code))
	}
	s := NewShards(4, map[int32]*Coordinator{1: c})
	if s.For(mine) != c || s.For(theirs) != nil || (*Shards)(nil).For(mine) != nil {
		t.Errorf("Shards routes wrong")
	}
}

// TestSnapshotBoundsReplay: many transactions roll the state log over
// snapshots; a restart replays a bounded tail and rebuilds the same
// state.
func TestSnapshotBoundsReplay(t *testing.T) {
	cfg := testConfig()
	cfg.Partitions = 1
	cfg.SnapshotMinRecords = 20
	ev := openEnv(t, t.TempDir(), cfg, newRecMarkers())
	ids := []string{"a", "b", "c", "d", "e"}
	ps := map[string]producerAt{}
	for _, id := range ids {
		ps[id] = ev.init(id)
	}
	for i := range 60 {
		id := ids[i%len(ids)]
		ev.add(id, ps[id], TopicPartition{"t1", int32(i % 3)})
		ps[id] = ev.end(id, ps[id], i%3 != 0, true)
		ev.waitIdle(id)
	}
	ev.add("a", ps["a"], t2p1) // one ongoing
	var before []kmsg.DescribeTransactionsResponseTransactionState
	for _, id := range ids {
		before = append(before, ev.describe(id))
	}
	// Let the snapshot's log-start move land.
	time.Sleep(50 * time.Millisecond)
	ev.restart(newRecMarkers())
	if n := ev.recordsOf("a"); n > 2*len(ids)+cfg.SnapshotMinRecords+4 {
		t.Errorf("replayed %d records of a log of about 250", n)
	}
	for i, id := range ids {
		if got := ev.describe(id); !reflect.DeepEqual(got, before[i]) {
			t.Errorf("%s after the restart: %+v, want %+v", id, got, before[i])
		}
	}
}

// TestDescribeList: DescribeTransactions and ListTransactions fields and
// filters.
func TestDescribeList(t *testing.T) {
	ev := openEnv(t, t.TempDir(), testConfig(), newRecMarkers())
	a := ev.init("a")
	ev.add("a", a, t2p1, t1p1, t1p0)
	b := ev.init("b")
	d := ev.describe("a")
	if d.State != "Ongoing" || d.ProducerID != a.pid || d.ProducerEpoch != a.epoch || d.TimeoutMillis != 60000 || d.StartTimestamp <= 0 ||
		len(d.Topics) != 2 || d.Topics[0].Topic != "t1" || !reflect.DeepEqual(d.Topics[0].Partitions, []int32{0, 1}) {
		t.Errorf("Describe: %+v", d)
	}
	if d := ev.c.Describe([]string{"nope", ""}); d[0].ErrorCode != kerr.TransactionalIDNotFound.Code || d[1].ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("Describe unknown and empty: %+v", d)
	}
	names := func(ls []kmsg.ListTransactionsResponseTransactionState) []string {
		var out []string
		for _, s := range ls {
			out = append(out, s.TransactionalID+"/"+s.TransactionState)
		}
		return out
	}
	for _, tc := range []struct {
		states []string
		pids   []int64
		dur    int64
		want   []string
	}{
		{nil, nil, -1, []string{"a/Ongoing", "b/Empty"}},
		{[]string{"Ongoing"}, nil, -1, []string{"a/Ongoing"}},
		{[]string{"Bogus"}, nil, -1, nil},
		{nil, []int64{b.pid}, -1, []string{"b/Empty"}},
		{nil, nil, 3_600_000, []string{"b/Empty"}}, // Empty has no start: as Kafka, it passes any duration
	} {
		if got := names(ev.c.List(tc.states, tc.pids, tc.dur)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("List(%v, %v, %d) = %v, want %v", tc.states, tc.pids, tc.dur, got, tc.want)
		}
	}
	if got := UnknownStates([]string{"Ongoing", "Bogus"}); !reflect.DeepEqual(got, []string{"Bogus"}) {
		t.Errorf("UnknownStates: %v", got)
	}
}
