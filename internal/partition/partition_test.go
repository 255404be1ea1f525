package partition

import (
	"bytes"
	"context"
	"testing"

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

	res, err := l.ReadInto(ctx, 0, 1000, true, alloc)
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
	res, err = l.ReadInto(ctx, 1, 1000, true, alloc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.Data, b) || len(given) != 0 {
		t.Errorf("one batch: got %d bytes and %d alloc calls, want the batch itself and none", len(res.Data), len(given))
	}
}

// TestEpochEnd: OffsetForLeaderEpoch's answers. Before any takeover the log
// is at epoch 0 (one broker); a takeover at epoch 3 starts where the log
// ended, which is then the end of every earlier epoch; the current epoch
// ends at the high watermark; -1 and later epochs are unknown.
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

	l.SetLeader(3)
	add(10, 24)
	check(0, 0, 10)
	check(2, 2, 10)
	check(3, 3, 25)
	check(4, -1, -1)
}
