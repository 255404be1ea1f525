package partition

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/producer"
)

// TestReadTailWithoutCopying: a read of batches that lie back to back in
// one array (one produce request's) returns that memory, clipped so an
// append cannot write into it; batches from different arrays are copied.
func TestReadTailWithoutCopying(t *testing.T) {
	l := New("t", [16]byte{}, 0, nil, nil, 0, 1<<30)
	buf := make([]byte, 400) // the request frame; its batches end at 300
	frame := buf[:300]
	for i := range frame {
		frame[i] = byte(i)
	}
	other := bytes.Repeat([]byte{0xee}, 50) // another request's batch
	for i, data := range [][]byte{frame[0:100], frame[100:300], other} {
		b := &Batch{Base: int64(i), Last: int64(i), Data: data}
		if ok, err := l.Recover(b, producer.Batch{ID: -1}, 0); !ok || err != nil {
			t.Fatalf("recover batch %d: %v %v", i, ok, err)
		}
	}
	ctx := context.Background()

	res, err := l.Read(ctx, 0, 300, true)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.Data, frame) {
		t.Fatal("read of adjacent batches returned other bytes")
	}
	if &res.Data[0] != &frame[0] {
		t.Error("adjacent batches were copied")
	}
	_ = append(res.Data, 0xff) // must not write into the frame after them
	if buf[300] == 0xff {
		t.Fatal("an append to a read result wrote past the batches")
	}

	res, err = l.Read(ctx, 1, 1000, true)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(append([]byte(nil), frame[100:]...), other...); !bytes.Equal(res.Data, want) {
		t.Fatal("read across arrays returned other bytes")
	}
	if &res.Data[0] == &frame[100] {
		t.Error("batches from two arrays were returned as one span instead of copied")
	}
}

// TestReadIntoUsesAlloc: batches a read must copy go into the array alloc
// gives, so a fetch can recycle it; memory the log owns is never handed to
// alloc's caller as its own.
func TestReadIntoUsesAlloc(t *testing.T) {
	l := New("t", [16]byte{}, 0, nil, nil, 0, 1<<30)
	a := bytes.Repeat([]byte{0xaa}, 100)
	b := bytes.Repeat([]byte{0xbb}, 60)
	for i, data := range [][]byte{a, b} {
		if ok, err := l.Recover(&Batch{Base: int64(i), Last: int64(i), Data: data}, producer.Batch{ID: -1}, 0); !ok || err != nil {
			t.Fatalf("recover batch %d: %v %v", i, ok, err)
		}
	}
	var given [][]byte
	alloc := func(n int) []byte {
		buf := make([]byte, 0, n+10)
		given = append(given, buf)
		return buf
	}
	ctx := context.Background()

	res, err := l.ReadInto(ctx, 0, 1000, true, ReadUncommitted, alloc)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(append([]byte(nil), a...), b...); !bytes.Equal(res.Data, want) {
		t.Fatal("read returned other bytes")
	}
	if len(given) != 1 || cap(given[0]) < 160 {
		t.Fatalf("alloc calls %d (caps %v), want one of at least 160 bytes", len(given), given)
	}
	if &res.Data[0] != &given[0][:1][0] {
		t.Error("copied batches are not in the array alloc gave")
	}

	given = nil
	res, err = l.ReadInto(ctx, 1, 1000, true, ReadUncommitted, alloc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.Data, b) || len(given) != 0 {
		t.Errorf("one batch: got %d bytes and %d alloc calls, want the batch itself and none", len(res.Data), len(given))
	}
}

// TestEpochEnd: OffsetForLeaderEpoch's answers, as Kafka's leader-epoch
// cache gives them. Before any takeover the log is at epoch 0 (one
// broker). Then a history: epoch 1 wrote 0-9, epoch 2 began at 10 and
// wrote nothing, epoch 3 wrote 10-24, epoch 5 (current) writes from 25.
func ep(epoch int32, offset int64) meta.EpochStart {
	return meta.EpochStart{Epoch: epoch, Offset: offset}
}

func TestEpochEnd(t *testing.T) {
	l := New("t", [16]byte{}, 0, nil, nil, 0, 1<<30)
	add := func(base, last int64) {
		t.Helper()
		b := &Batch{Base: base, Last: last, Data: make([]byte, 10)}
		if ok, err := l.Recover(b, producer.Batch{ID: -1}, 0); !ok || err != nil {
			t.Fatalf("recover %d..%d: %v %v", base, last, ok, err)
		}
	}
	check := func(ask, wantEpoch int32, wantEnd int64) {
		t.Helper()
		if e, end := l.EpochEnd(ask); e != wantEpoch || end != wantEnd {
			t.Errorf("EpochEnd(%d) = (%d, %d), want (%d, %d)", ask, e, end, wantEpoch, wantEnd)
		}
	}
	add(0, 9)
	check(-1, -1, -1)
	check(0, 0, 10)
	check(1, -1, -1)

	var hist []meta.EpochStart
	hist = AssignEpoch(hist, 1, 0, 0)
	hist = AssignEpoch(hist, 2, 10, 0)
	hist = AssignEpoch(hist, 3, 10, 0) // epoch 2 wrote nothing: dropped
	add(10, 24)
	hist = AssignEpoch(hist, 5, 25, 0)
	if want := []meta.EpochStart{ep(1, 0), ep(3, 10), ep(5, 25)}; !slices.Equal(hist, want) {
		t.Fatalf("history %v, want %v", hist, want)
	}
	l.SetLeader(5, hist)
	add(25, 29)
	check(0, 0, 0)   // older than the history: itself, the first start
	check(1, 1, 10)  // ends where epoch 3 began
	check(2, 1, 10)  // never wrote: the floor epoch 1 and its end
	check(3, 3, 25)  // ends where epoch 5 began
	check(4, 3, 25)  // likewise
	check(5, 5, 30)  // current: the high watermark
	check(6, -1, -1) // later than the current epoch

	// The log start moves past epoch 1 and into epoch 3: the history is
	// read as Kafka trims it, epoch 3 starting at the new log start.
	if _, err := l.SetLogStart(12); err != nil {
		t.Fatal(err)
	}
	check(1, 1, 12)
	check(3, 3, 25)

	// Without a history ending in its epoch (a store written before
	// histories were kept), SetLeader begins one at the log end.
	l2 := New("t", [16]byte{}, 0, nil, []meta.Segment{{FirstOffset: 0, LastOffset: 9}}, 0, 1<<30)
	l2.SetLeader(7, nil)
	if e, end := l2.EpochEnd(6); e != 6 || end != 10 {
		t.Errorf("no history: EpochEnd(6) = (%d, %d), want (6, 10)", e, end)
	}
}

func TestAssignEpoch(t *testing.T) {
	for _, c := range []struct {
		name            string
		hist            []meta.EpochStart
		epoch           int32
		start, logStart int64
		want            []meta.EpochStart
	}{
		{"first", nil, 1, 0, 0, []meta.EpochStart{ep(1, 0)}},
		{"after one that wrote", []meta.EpochStart{ep(1, 0)}, 2, 5, 0, []meta.EpochStart{ep(1, 0), ep(2, 5)}},
		{"after one that wrote nothing", []meta.EpochStart{ep(1, 0), ep(2, 5)}, 4, 5, 0, []meta.EpochStart{ep(1, 0), ep(4, 5)}},
		{"a later epoch in the history goes", []meta.EpochStart{ep(1, 0), ep(6, 3)}, 4, 5, 0, []meta.EpochStart{ep(1, 0), ep(4, 5)}},
		{"trimmed to the log start", []meta.EpochStart{ep(1, 0), ep(2, 5), ep(3, 8)}, 4, 20, 6, []meta.EpochStart{ep(2, 6), ep(3, 8), ep(4, 20)}},
		{"log start at an epoch's start", []meta.EpochStart{ep(1, 0), ep(2, 5)}, 3, 9, 5, []meta.EpochStart{ep(2, 5), ep(3, 9)}},
		{"log start at the new epoch", []meta.EpochStart{ep(1, 0), ep(2, 5)}, 3, 9, 9, []meta.EpochStart{ep(3, 9)}},
	} {
		in := slices.Clone(c.hist)
		if got := AssignEpoch(c.hist, c.epoch, c.start, c.logStart); !slices.Equal(got, c.want) {
			t.Errorf("%s: AssignEpoch(%v, %d, %d, %d) = %v, want %v", c.name, c.hist, c.epoch, c.start, c.logStart, got, c.want)
		}
		if !slices.Equal(in, c.hist) {
			t.Errorf("%s: AssignEpoch changed its input to %v", c.name, c.hist)
		}
	}
}
