package producer

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

func TestSequenceRules(t *testing.T) {
	s := NewState()
	b := func(epoch int16, seq, n int32) Batch {
		return Batch{ID: 7, Epoch: epoch, FirstSeq: seq, LastDelta: n - 1}
	}
	appendOK := func(bt Batch, base int64) {
		t.Helper()
		dup, err := s.Check(bt)
		if dup != nil || err != nil {
			t.Fatalf("Check(%+v) = %+v, %v; want accepted", bt, dup, err)
		}
		s.Apply(bt, base, 1)
	}
	// An unknown producer is accepted at any sequence (Kafka 3.x).
	appendOK(b(0, 40, 10), 100) // seq 40..49 at offsets 100..109
	appendOK(b(0, 50, 5), 110)  // 50..54
	// A retry of either remembered batch is a duplicate with its offset.
	for _, c := range []struct {
		bt   Batch
		base int64
	}{{b(0, 40, 10), 100}, {b(0, 50, 5), 110}} {
		dup, err := s.Check(c.bt)
		if err != nil || dup == nil || dup.Base != c.base {
			t.Fatalf("retry %+v: dup %+v, err %v; want duplicate at %d", c.bt, dup, err, c.base)
		}
	}
	// A gap, an overlap that is not an exact retry, and a repeat of a
	// partial range are out of order.
	for _, bt := range []Batch{b(0, 56, 1), b(0, 45, 10), b(0, 54, 1)} {
		if _, err := s.Check(bt); !errors.Is(err, ErrOutOfOrder) {
			t.Fatalf("Check(%+v) err = %v, want out of order", bt, err)
		}
	}
	// A new epoch must start at 0; an older epoch is fenced.
	if _, err := s.Check(b(1, 55, 1)); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("new epoch at seq 55: err = %v, want out of order", err)
	}
	appendOK(b(1, 0, 1), 115)
	if _, err := s.Check(b(0, 55, 1)); !errors.Is(err, ErrInvalidEpoch) {
		t.Fatalf("old epoch: err = %v, want invalid epoch", err)
	}
	// The new epoch forgot the old batches.
	if dup, err := s.Check(b(1, 40, 10)); dup != nil || !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("old-epoch batch resent under new epoch: dup %+v err %v", dup, err)
	}
	// Producers without an id are never checked.
	if dup, err := s.Check(Batch{ID: -1, Epoch: -1, FirstSeq: -1}); dup != nil || err != nil {
		t.Fatalf("non-idempotent batch: %+v %v", dup, err)
	}
}

func TestOnlyLastFiveAreRemembered(t *testing.T) {
	s := NewState()
	for i := int32(0); i < 8; i++ {
		s.Apply(Batch{ID: 1, FirstSeq: i}, int64(i), 1)
	}
	if got := len(s.Get(1).Batches); got != MaxInFlight {
		t.Fatalf("remembered %d batches, want %d", got, MaxInFlight)
	}
	if dup, _ := s.Check(Batch{ID: 1, FirstSeq: 3}); dup == nil || dup.Base != 3 {
		t.Fatalf("5th most recent batch not found as duplicate: %+v", dup)
	}
	if _, err := s.Check(Batch{ID: 1, FirstSeq: 2}); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("6th most recent batch: err %v, want out of order (forgotten)", err)
	}
	// Re-applying a batch the state already has (recovery) changes nothing.
	before := *s.Get(1)
	before.Batches = append([]Appended(nil), before.Batches...)
	s.Apply(Batch{ID: 1, FirstSeq: 6}, 6, 1)
	if !reflect.DeepEqual(before, *s.Get(1)) {
		t.Fatalf("replaying an applied batch changed the state")
	}
}

func TestSequenceWraps(t *testing.T) {
	s := NewState()
	first := Batch{ID: 3, FirstSeq: math.MaxInt32 - 1, LastDelta: 1} // MaxInt32-1, MaxInt32
	if got := first.LastSeq(); got != math.MaxInt32 {
		t.Fatalf("LastSeq = %d", got)
	}
	s.Apply(first, 0, 1)
	if _, err := s.Check(Batch{ID: 3, FirstSeq: 0, LastDelta: 2}); err != nil {
		t.Fatalf("sequence after MaxInt32 must be 0: %v", err)
	}
	wrapping := Batch{ID: 3, FirstSeq: math.MaxInt32, LastDelta: 2}
	if got := wrapping.LastSeq(); got != 1 {
		t.Fatalf("wrapping LastSeq = %d, want 1", got)
	}
}

func TestExpireAndEncode(t *testing.T) {
	s := NewState()
	s.Apply(Batch{ID: 1, Epoch: 2, FirstSeq: 0, LastDelta: 4}, 10, 1000)
	s.Apply(Batch{ID: 1, Epoch: 2, FirstSeq: 5, LastDelta: 0}, 20, 2000)
	s.Apply(Batch{ID: 2, FirstSeq: 0}, 30, 500)
	got, err := Decode(s.Get(1).Encode())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s.Get(1)) {
		t.Fatalf("round trip: got %+v, want %+v", got, s.Get(1))
	}
	if _, err := Decode([]byte{entryVersion, 1, 2}); err == nil {
		t.Fatal("Decode accepted a truncated entry")
	}
	if gone := s.Expire(1000); !reflect.DeepEqual(gone, []int64{2}) || s.Len() != 1 {
		t.Fatalf("Expire(1000) = %v, %d left; want [2], 1 left", gone, s.Len())
	}
}
