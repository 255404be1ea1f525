package producer

import (
	"errors"
	"reflect"
	"testing"
)

func txnBatch(id int64, epoch int16, seq, n int32) Batch {
	return Batch{ID: id, Epoch: epoch, FirstSeq: seq, LastDelta: n - 1, Transactional: true}
}

func mustAppend(t *testing.T, s *State, b Batch, base int64) {
	t.Helper()
	if dup, err := s.Check(b); dup != nil || err != nil {
		t.Fatalf("Check(%+v) = %+v, %v; want accepted", b, dup, err)
	}
	s.Apply(b, base, 1)
}

func mustMarker(t *testing.T, s *State, m Marker, off int64) (Txn, bool) {
	t.Helper()
	if err := s.CheckMarker(m); err != nil {
		t.Fatalf("CheckMarker(%+v) = %v; want accepted", m, err)
	}
	return s.ApplyMarker(m, off, 1)
}

func TestTransactionBeginsAndEnds(t *testing.T) {
	s := NewState()
	if _, ok := s.FirstUnstable(); ok {
		t.Fatal("empty state has an unstable offset")
	}
	mustAppend(t, s, Batch{ID: 9, FirstSeq: 0}, 5) // another, idempotent producer
	mustAppend(t, s, txnBatch(7, 0, 0, 3), 10)     // begins at 10
	mustAppend(t, s, txnBatch(7, 0, 3, 2), 20)     // continues
	if first, ok := s.FirstUnstable(); !ok || first != 10 {
		t.Fatalf("FirstUnstable = %d, %v; want 10", first, ok)
	}
	if e := s.Get(7); e.TxnFirst != 10 || e.LastOffset != 21 {
		t.Fatalf("entry %+v: want TxnFirst 10, LastOffset 21", e)
	}
	// Inside the transaction a non-transactional batch is refused.
	if _, err := s.Check(Batch{ID: 7, FirstSeq: 5}); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("non-transactional batch in a transaction: %v, want invalid txn state", err)
	}
	// A retry of a transactional batch is still a duplicate.
	if dup, err := s.Check(txnBatch(7, 0, 3, 2)); err != nil || dup == nil || dup.Base != 20 {
		t.Fatalf("retry: %+v %v", dup, err)
	}
	txn, ok := mustMarker(t, s, Marker{ID: 7, Epoch: 0, CoordinatorEpoch: 3}, 30)
	if want := (Txn{ID: 7, First: 10, Last: 30}); !ok || txn != want {
		t.Fatalf("abort completed %+v, %v; want %+v", txn, ok, want)
	}
	if _, ok := s.FirstUnstable(); ok {
		t.Fatal("transaction still unstable after its marker")
	}
	// A marker of the same epoch keeps the sequence (transaction version
	// 0/1): the next transaction continues it.
	if _, err := s.Check(txnBatch(7, 0, 0, 1)); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("sequence restarted under the same epoch: %v", err)
	}
	mustAppend(t, s, txnBatch(7, 0, 5, 1), 31)
	txn, ok = mustMarker(t, s, Marker{ID: 7, Epoch: 0, Commit: true, CoordinatorEpoch: 3}, 32)
	if want := (Txn{ID: 7, First: 31, Last: 32, Commit: true}); !ok || txn != want {
		t.Fatalf("commit completed %+v, %v; want %+v", txn, ok, want)
	}
	// A marker with nothing ongoing completes nothing.
	if _, ok := mustMarker(t, s, Marker{ID: 7, Epoch: 0, CoordinatorEpoch: 3}, 33); ok {
		t.Fatal("empty transaction completed")
	}
	// A marker for a producer the partition never saw is written.
	if _, ok := mustMarker(t, s, Marker{ID: 100, Epoch: 4}, 34); ok || s.Get(100).Epoch != 4 {
		t.Fatalf("marker of an unknown producer: entry %+v", s.Get(100))
	}
}

func TestMarkerEpochRules(t *testing.T) {
	s := NewState()
	mustAppend(t, s, txnBatch(1, 2, 0, 4), 0)
	// Older epoch: refused; older coordinator epoch after a newer one: fenced.
	if err := s.CheckMarker(Marker{ID: 1, Epoch: 1}); !errors.Is(err, ErrInvalidEpoch) {
		t.Fatalf("older marker epoch: %v", err)
	}
	// TV2 at the producer's epoch while its transaction is ongoing: a late
	// marker of the previous transaction.
	if err := s.CheckMarker(Marker{ID: 1, Epoch: 2, TV2: true}); !errors.Is(err, ErrInvalidEpoch) {
		t.Fatalf("TV2 marker at the current epoch with a transaction ongoing: %v", err)
	}
	// The coordinator bumps the epoch (abort on timeout, fencing): the
	// marker is accepted and the old epoch's batches are fenced.
	txn, ok := mustMarker(t, s, Marker{ID: 1, Epoch: 3, CoordinatorEpoch: 5, TV2: true}, 4)
	if !ok || txn.First != 0 || txn.Last != 4 {
		t.Fatalf("bumped marker completed %+v %v", txn, ok)
	}
	if _, err := s.Check(txnBatch(1, 2, 4, 1)); !errors.Is(err, ErrInvalidEpoch) {
		t.Fatalf("zombie batch of the fenced epoch: %v", err)
	}
	// The new epoch starts its sequence at 0.
	if _, err := s.Check(txnBatch(1, 3, 4, 1)); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("new epoch at sequence 4: %v", err)
	}
	// TV2 retry of the marker just written: nothing ongoing, accepted.
	if err := s.CheckMarker(Marker{ID: 1, Epoch: 3, CoordinatorEpoch: 5, TV2: true}); err != nil {
		t.Fatalf("retried TV2 marker: %v", err)
	}
	if err := s.CheckMarker(Marker{ID: 1, Epoch: 3, CoordinatorEpoch: 4}); !errors.Is(err, ErrCoordinatorFenced) {
		t.Fatalf("marker of an older coordinator: %v", err)
	}
	mustAppend(t, s, txnBatch(1, 3, 0, 1), 5)
	if e := s.Get(1); e.Epoch != 3 || e.TxnFirst != 5 || e.CoordinatorEpoch != 5 || len(e.Batches) != 1 {
		t.Fatalf("entry after the new epoch's first batch: %+v", e)
	}
}

func TestReplayIsIdempotent(t *testing.T) {
	// A snapshot taken after txn 1 ended (with an epoch bump) and txn 2
	// began; recovery replays the WAL from txn 1's first batch.
	s := NewState()
	b1, b2 := txnBatch(4, 0, 0, 2), txnBatch(4, 1, 0, 2)
	m1 := Marker{ID: 4, Epoch: 1}
	s.Apply(b1, 0, 1)
	s.ApplyMarker(m1, 2, 1)
	s.Apply(b2, 3, 1)
	snap := s.Get(4).Encode()

	r := NewState()
	e, err := Decode(snap)
	if err != nil {
		t.Fatal(err)
	}
	r.Put(e)
	r.Apply(b1, 0, 1)
	if _, ok := r.ApplyMarker(m1, 2, 1); ok {
		t.Fatal("replayed marker completed a transaction again")
	}
	r.Apply(b2, 3, 1)
	if first, ok := r.FirstUnstable(); !ok || first != 3 {
		t.Fatalf("after replay FirstUnstable = %d, %v; want 3 (txn 2)", first, ok)
	}
	if !reflect.DeepEqual(r.Get(4), s.Get(4)) {
		t.Fatalf("replay changed the entry: %+v, want %+v", r.Get(4), s.Get(4))
	}
}

func TestGuard(t *testing.T) {
	s := NewState()
	b := txnBatch(3, 0, 0, 1)
	g, ongoing := s.Guard(3, 0)
	if ongoing {
		t.Fatal("unknown producer has a transaction")
	}
	// A marker of the producer lands between verification and append: the
	// batch would begin a transaction nobody will end.
	s.ApplyMarker(Marker{ID: 3, Epoch: 0}, 0, 1)
	if err := s.CheckGuard(b, g); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("batch verified before a marker: %v", err)
	}
	g, _ = s.Guard(3, 0)
	if err := s.CheckGuard(b, g); err != nil {
		t.Fatalf("batch verified after the marker: %v", err)
	}
	s.Apply(b, 1, 1)
	if _, ongoing := s.Guard(3, 0); !ongoing {
		t.Fatal("transaction not ongoing after its first batch")
	}
	if _, ongoing := s.Guard(3, 1); ongoing {
		t.Fatal("transaction ongoing for another epoch")
	}
	if err := s.CheckGuard(b, NoGuard); err != nil {
		t.Fatal(err)
	}
}

func TestExpireKeepsTransactions(t *testing.T) {
	s := NewState()
	s.Apply(txnBatch(1, 0, 0, 1), 0, 100)
	s.Apply(Batch{ID: 2}, 1, 100)
	if gone := s.Expire(1000); !reflect.DeepEqual(gone, []int64{2}) {
		t.Fatalf("Expire = %v, want [2]: a producer in a transaction stays", gone)
	}
	s.ApplyMarker(Marker{ID: 1}, 2, 100)
	if gone := s.Expire(1000); !reflect.DeepEqual(gone, []int64{1}) {
		t.Fatalf("Expire after the marker = %v, want [1]", gone)
	}
}

func TestEncodeVersions(t *testing.T) {
	s := NewState()
	s.Apply(Batch{ID: 1, Epoch: 2, FirstSeq: 0, LastDelta: 4}, 10, 1000)
	// An idempotent producer's entry keeps the version-1 form.
	if v := s.Get(1).Encode()[0]; v != entryVersion {
		t.Fatalf("idempotent entry encoded as version %d", v)
	}
	s.Apply(txnBatch(2, 1, 0, 1), 20, 1000)
	s.ApplyMarker(Marker{ID: 3, Epoch: 5, CoordinatorEpoch: 7}, 21, 1000) // no batches
	for _, id := range []int64{1, 2, 3} {
		enc := s.Get(id).Encode()
		got, err := Decode(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, s.Get(id)) {
			t.Fatalf("producer %d: round trip %+v, want %+v", id, got, s.Get(id))
		}
		if _, err := Decode(enc[:len(enc)-1]); err == nil {
			t.Fatalf("producer %d: truncated entry decoded", id)
		}
	}
	if v := s.Get(2).Encode()[0]; v != entryVersionV2 {
		t.Fatalf("transactional entry encoded as version %d", v)
	}
	r := NewState()
	e, _ := Decode(s.Get(2).Encode())
	r.Put(e)
	if first, ok := r.FirstUnstable(); !ok || first != 20 {
		t.Fatalf("restored transaction: FirstUnstable %d %v", first, ok)
	}
}
