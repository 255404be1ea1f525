package txn

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vigilhq/vigil/internal/wal"
)

// TestPendingIsConcurrent: while a transition's record is not yet
// durable, the state is unchanged and every request that would change it
// is CONCURRENT_TRANSACTIONS (Kafka's pendingTransitionInProgress).
func TestPendingIsConcurrent(t *testing.T) {
	ev := openEnv(t, t.TempDir(), testConfig(), newRecMarkers())
	p := ev.init("a")
	ev.gl.hold()
	type answer struct {
		p    producerAt
		code int16
	}
	ch := make(chan answer, 1)
	go func() {
		pid, epoch, code := ev.c.InitProducerID(ctx, "a", 60000, -1, -1)
		ch <- answer{producerAt{pid, epoch}, code}
	}()
	ev.gl.waitQueued(t, 1)
	if d := ev.describe("a"); d.ProducerEpoch != p.epoch {
		t.Errorf("the epoch changed before its record was durable: %+v", d)
	}
	conc := kerr.ConcurrentTransactions.Code
	if code := ev.c.AddPartitions(ctx, "a", p.pid, p.epoch, []TopicPartition{t1p0}); code != conc {
		t.Errorf("AddPartitions: %s", codeName(code))
	}
	if _, _, code := ev.c.EndTxn(ctx, "a", p.pid, p.epoch, false, true); code != conc {
		t.Errorf("EndTxn: %s", codeName(code))
	}
	if _, _, code := ev.c.InitProducerID(ctx, "a", 60000, -1, -1); code != conc {
		t.Errorf("InitProducerId: %s", codeName(code))
	}
	select {
	case a := <-ch:
		t.Fatalf("InitProducerId answered %+v before its record was durable", a)
	case <-time.After(20 * time.Millisecond):
	}
	ev.gl.release(-1)
	if a := <-ch; a.code != 0 || a.p != (producerAt{p.pid, p.epoch + 1}) {
		t.Errorf("InitProducerId: %+v", a)
	}
}

// TestAppendFailure: a transition whose append fails is answered with
// Kafka's coordinator code for the log error and dropped: the state is
// unchanged and the next request goes through.
func TestAppendFailure(t *testing.T) {
	ev := openEnv(t, t.TempDir(), testConfig(), newRecMarkers())
	p := ev.init("a")
	for _, tc := range []struct {
		err  error
		code int16
	}{
		{errors.New("some failure"), kerr.CoordinatorNotAvailable.Code},
		{fmt.Errorf("append: %w", wal.ErrFull), kerr.NotCoordinator.Code},
	} {
		ev.gl.fail(1, tc.err)
		if code := ev.c.AddPartitions(ctx, "a", p.pid, p.epoch, []TopicPartition{t1p0}); code != tc.code {
			t.Errorf("AddPartitions when the append fails with %v: %s, want %s", tc.err, codeName(code), codeName(tc.code))
		}
		if d := ev.describe("a"); d.State != "Empty" || ev.pending("a") {
			t.Errorf("after the failure: %+v (pending %v)", d, ev.pending("a"))
		}
	}
	ev.add("a", p, t1p0)
	ev.restart(newRecMarkers())
	if d := ev.describe("a"); d.State != "Ongoing" || len(d.Topics) != 1 {
		t.Errorf("after a restart: %+v", d)
	}
}

// TestFailedFence: when the abort of a timed-out transaction cannot be
// written, the raised epoch still fences the producer (it is in memory,
// as in Kafka) and the next attempt does not raise it again.
func TestFailedFence(t *testing.T) {
	ev := openEnv(t, t.TempDir(), testConfig(), newRecMarkers())
	pid, epoch, code := ev.c.InitProducerID(ctx, "a", 100, -1, -1)
	if code != 0 {
		t.Fatal(codeName(code))
	}
	p := producerAt{pid, epoch}
	ev.add("a", p, t1p0)
	ev.gl.fail(1, errors.New("injected"))
	later := time.Now().Add(time.Second)
	ev.c.AbortTimedOut(later)
	ev.waitIdle("a")
	if d := ev.describe("a"); d.State != "Ongoing" || d.ProducerEpoch != p.epoch+1 || ev.pending("a") {
		t.Fatalf("after the failed fence: %+v", d)
	}
	if _, _, code := ev.c.EndTxn(ctx, "a", p.pid, p.epoch, true, true); code != kerr.ProducerFenced.Code {
		t.Errorf("EndTxn of the fenced producer: %s", codeName(code))
	}
	if n := ev.c.AbortTimedOut(later); n != 1 {
		t.Fatalf("second abort: %d", n)
	}
	w := waitWrites(t, ev.mk, 1)
	if w[0].Epoch != p.epoch+2 {
		t.Errorf("abort marker at epoch %d, want %d (the fence's epoch is not raised twice)", w[0].Epoch, p.epoch+2)
	}
	ev.waitState("a", CompleteAbort)
}

// TestSnapshotWaitsForAppends: a snapshot is taken only when no append is
// in flight on its partition, so a record in flight is never followed in
// the log by an older value of its key.
func TestSnapshotWaitsForAppends(t *testing.T) {
	cfg := testConfig()
	cfg.Partitions = 1
	cfg.SnapshotMinRecords = 1
	ev := openEnv(t, t.TempDir(), cfg, newRecMarkers())
	a := ev.init("a")
	b := ev.init("b")
	a = ev.init("a")
	b = ev.init("b")
	// Four records for two keys: the next one crosses 2*2+1.
	ev.gl.hold()
	done := make(chan int16, 2)
	go func() { done <- ev.c.AddPartitions(ctx, "a", a.pid, a.epoch, []TopicPartition{t1p0}) }()
	ev.gl.waitQueued(t, 1)
	go func() { done <- ev.c.AddPartitions(ctx, "b", b.pid, b.epoch, []TopicPartition{t1p1}) }()
	ev.gl.waitQueued(t, 2)
	ev.gl.release(1) // a's record is durable, b's still in flight
	if code := <-done; code != 0 {
		t.Fatal(codeName(code))
	}
	ev.gl.release(-1)
	if code := <-done; code != 0 {
		t.Fatal(codeName(code))
	}
	// The snapshot taken once nothing was in flight.
	deadline := time.Now().Add(5 * time.Second)
	for ev.recordsOf("a") > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot: %d records", ev.recordsOf("a"))
		}
		time.Sleep(time.Millisecond)
	}
	before := ev.c.Describe([]string{"a", "b"})
	time.Sleep(20 * time.Millisecond)
	ev.restart(newRecMarkers())
	if after := ev.c.Describe([]string{"a", "b"}); !reflect.DeepEqual(before, after) {
		t.Errorf("before the restart %+v\nafter %+v", before, after)
	}
}
