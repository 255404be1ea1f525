package txn

import (
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

func waitWrites(t *testing.T, mk *recMarkers, n int) []Marker {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if w := mk.written(); len(w) >= n {
			return w
		}
		select {
		case <-mk.wrote:
		case <-deadline:
			t.Fatalf("%d markers written, want %d", len(mk.written()), n)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestMarkers: a commit writes one marker for exactly the transaction's
// partitions (the offsets partition AddOffsets added among them), with
// the producer id, the epoch of the PrepareCommit (bumped with EndTxn v5)
// and the coordinator epoch; the completion is durable.
func TestMarkers(t *testing.T) {
	for _, v2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v1", true: "v2"}[v2], func(t *testing.T) {
			cfg := testConfig()
			cfg.CoordinatorEpoch = func(int32) int32 { return 7 }
			ev := openEnv(t, t.TempDir(), cfg, newRecMarkers())
			p := ev.init("a")
			ev.add("a", p, t2p1, t1p0)
			ev.add("a", p, t1p1, t1p0)
			if code := ev.c.AddOffsets(ctx, "a", p.pid, p.epoch, "group-1"); code != 0 {
				t.Fatalf("AddOffsets: %s", codeName(code))
			}
			offsets := TopicPartition{OffsetsTopic, PartitionFor("group-1", 8)}
			after := ev.end("a", p, true, v2)
			w := waitWrites(t, ev.mk, 1)
			epoch := p.epoch
			if v2 {
				epoch++
				if after != (producerAt{p.pid, epoch}) {
					t.Errorf("EndTxn v5 answered %+v, want %d/%d", after, p.pid, epoch)
				}
			}
			want := Marker{ProducerID: p.pid, Epoch: epoch, Commit: true, CoordinatorEpoch: 7,
				Partitions: []TopicPartition{offsets, t1p0, t1p1, t2p1}}
			if v2 {
				want.TransactionVersion = 2
			}
			if len(w) != 1 || !reflect.DeepEqual(w[0], want) {
				t.Fatalf("markers %+v, want [%+v]", w, want)
			}
			d := ev.waitState("a", CompleteCommit)
			if len(d.Topics) != 0 || d.ProducerEpoch != epoch {
				t.Errorf("after the commit: %+v", d)
			}
			ev.waitIdle("a")
			ev.restart(newRecMarkers())
			if d := ev.describe("a"); d.State != "CompleteCommit" || d.ProducerID != p.pid || d.ProducerEpoch != epoch {
				t.Errorf("after a restart: %+v", d)
			}
			if n := len(ev.mk.written()); n != 0 {
				t.Errorf("a completed transaction wrote %d markers again after a restart", n)
			}
		})
	}
}

// TestMarkersRetried: markers that fail are written again with backoff
// until they succeed; meanwhile the transaction is completing
// (CONCURRENT_TRANSACTIONS), then it completes.
func TestMarkersRetried(t *testing.T) {
	ev := openEnv(t, t.TempDir(), testConfig(), newRecMarkers())
	p := ev.init("a")
	ev.add("a", p, t1p0)
	ev.mk.failNext(1 << 30)
	ev.end("a", p, false, false)
	deadline := time.Now().Add(5 * time.Second)
	for ev.mk.attemptsSoFar() < 4 {
		if time.Now().After(deadline) {
			t.Fatal("markers not retried")
		}
		time.Sleep(time.Millisecond)
	}
	if _, _, code := ev.c.InitProducerID(ctx, "a", 60000, -1, -1); code != kerr.ConcurrentTransactions.Code {
		t.Errorf("InitProducerId while the markers fail: %s", codeName(code))
	}
	if code := ev.c.AddPartitions(ctx, "a", p.pid, p.epoch, []TopicPartition{t1p1}); code != kerr.ConcurrentTransactions.Code {
		t.Errorf("AddPartitions while the markers fail: %s", codeName(code))
	}
	if d := ev.describe("a"); d.State != "PrepareAbort" || len(d.Topics) != 1 {
		t.Errorf("while the markers fail: %+v", d)
	}
	ev.mk.failNext(0)
	w := waitWrites(t, ev.mk, 1)
	if len(w) != 1 || w[0].Commit || !reflect.DeepEqual(w[0].Partitions, []TopicPartition{t1p0}) {
		t.Errorf("markers %+v", w)
	}
	ev.waitState("a", CompleteAbort)
	ev.waitIdle("a")
	if _, epoch, code := ev.c.InitProducerID(ctx, "a", 60000, -1, -1); code != 0 || epoch != p.epoch+1 {
		t.Errorf("InitProducerId after the abort: epoch %d %s", epoch, codeName(code))
	}
}

func (r *recMarkers) attemptsSoFar() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts
}

// TestCrashMidCommit: the coordinator stops between a durable
// PrepareCommit (or PrepareAbort) and its markers; after a restart the
// load writes the markers for exactly the transaction's partitions, at
// its epoch, then completes it durably, and the producer carries on.
func TestCrashMidCommit(t *testing.T) {
	for _, tc := range []struct {
		name       string
		commit, v2 bool
	}{{"commit-v1", true, false}, {"abort-v1", false, false}, {"commit-v2", true, true}, {"abort-v2", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			ev := openEnv(t, t.TempDir(), testConfig(), newRecMarkers())
			other := ev.init("other") // an id that is not completing
			ev.add("other", other, t1p1)
			p := ev.init("a")
			ev.add("a", p, t1p0, t2p1)
			ev.mk.hold() // the markers never get written: the crash comes first
			after := ev.end("a", p, tc.commit, tc.v2)
			prepare := PrepareAbort
			if tc.commit {
				prepare = PrepareCommit
			}
			d := ev.waitState("a", prepare)

			mk := newRecMarkers()
			ev.restart(mk)
			w := waitWrites(t, mk, 1)
			want := Marker{ProducerID: d.ProducerID, Epoch: d.ProducerEpoch, Commit: tc.commit,
				Partitions: []TopicPartition{t1p0, t2p1}}
			if tc.v2 {
				want.TransactionVersion = 2
			}
			if len(w) != 1 || !reflect.DeepEqual(w[0], want) {
				t.Fatalf("markers after the restart %+v, want [%+v]", w, want)
			}
			complete := CompleteAbort
			if tc.commit {
				complete = CompleteCommit
			}
			ev.waitState("a", complete)
			ev.waitIdle("a")
			if d := ev.describe("other"); d.State != "Ongoing" {
				t.Errorf("the ongoing transaction after the restart: %+v", d)
			}

			// Completed durably: another restart writes nothing.
			mk2 := newRecMarkers()
			ev.restart(mk2)
			if d := ev.describe("a"); d.State != complete.String() {
				t.Fatalf("after a second restart: %+v", d)
			}
			time.Sleep(20 * time.Millisecond)
			if n := len(mk2.written()); n != 0 {
				t.Errorf("%d markers written again", n)
			}
			// The producer carries on with what EndTxn gave it.
			if tc.v2 {
				p = after
			}
			if code := ev.c.AddPartitions(ctx, "a", p.pid, p.epoch, []TopicPartition{t1p1}); code != 0 {
				t.Errorf("AddPartitions after the recovered transaction: %s", codeName(code))
			}
		})
	}
}

// TestDeletedTopicSkipped: a partition whose topic was deleted while the
// markers were being retried is dropped from them (Kafka skips a
// partition without a leader as "likely deleted"); a transaction left with
// none completes without writing any.
func TestDeletedTopicSkipped(t *testing.T) {
	ev := openEnv(t, t.TempDir(), testConfig(), newRecMarkers())
	a := ev.init("a")
	ev.add("a", a, t1p0, t3p0)
	b := ev.init("b")
	ev.add("b", b, t3p0)
	ev.mk.failNext(1 << 30)
	ev.end("a", a, true, false)
	ev.end("b", b, true, false)
	ev.waitState("a", PrepareCommit)
	if err := ev.e.DeleteTopic(ctx, "t3"); err != nil {
		t.Fatal(err)
	}
	ev.mk.failNext(0)
	ev.waitState("a", CompleteCommit)
	ev.waitState("b", CompleteCommit)
	waitWrites(t, ev.mk, 1)
	time.Sleep(20 * time.Millisecond)
	w := ev.mk.written()
	if len(w) != 1 || !reflect.DeepEqual(w[0].Partitions, []TopicPartition{t1p0}) {
		t.Errorf("markers %+v, want one for t1/0 only", w)
	}
}
