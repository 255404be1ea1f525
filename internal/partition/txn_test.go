package partition

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"testing"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/producer"
)

// txnLog drives a log the way the engine does: appends go to a fake WAL
// (the written list) and are committed on demand.
type txnLog struct {
	t       *testing.T
	l       *Log
	written []*Batch
}

func newTxnLog(t *testing.T) *txnLog {
	return &txnLog{t: t, l: New("t", [16]byte{1}, 0, nil, nil, 0, 1<<30)}
}

func (x *txnLog) write(b *Batch) { x.written = append(x.written, b) }

// data appends a batch of n records of producer pid (transactional or
// not) at sequence seq and returns its base offset.
func (x *txnLog) data(pid int64, epoch int16, seq int32, n int, txn bool) (int64, error) {
	x.t.Helper()
	recs := make([]batch.KV, n)
	for i := range recs {
		recs[i] = batch.KV{Key: []byte("k"), Value: []byte("v")}
	}
	raw := batch.BuildTxn(recs, 1000, pid, epoch, seq)
	if !txn {
		// The same producer's batch, idempotent only.
		raw[22] &^= 0x10
		binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	}
	hs, err := batch.Split(raw)
	if err != nil {
		x.t.Fatal(err)
	}
	before := len(x.written)
	if _, err := x.l.Append(&hs[0], 1, x.write); err != nil {
		return -1, err
	}
	return x.written[before].Base, nil
}

func (x *txnLog) marker(pid int64, epoch int16, commit bool) (int64, error) {
	b, err := x.l.AppendMarker(producer.Marker{ID: pid, Epoch: epoch, Commit: commit}, 2000, x.write)
	if err != nil {
		return -1, err
	}
	return b.Base, nil
}

// commitAll makes everything written durable.
func (x *txnLog) commitAll() {
	for _, b := range x.written {
		x.l.Commit(b)
	}
	x.written = nil
}

// D and M are data and marker that must succeed.
func (x *txnLog) D(pid int64, epoch int16, seq int32, n int, txn bool) int64 {
	x.t.Helper()
	off, err := x.data(pid, epoch, seq, n, txn)
	if err != nil {
		x.t.Fatal(err)
	}
	return off
}

func (x *txnLog) M(pid int64, epoch int16, commit bool) int64 {
	x.t.Helper()
	off, err := x.marker(pid, epoch, commit)
	if err != nil {
		x.t.Fatal(err)
	}
	return off
}

func TestLastStableOffset(t *testing.T) {
	x := newTxnLog(t)
	x.D(-1, -1, -1, 2, false)  // 0-1: plain
	a := x.D(5, 0, 0, 3, true) // 2-4: producer 5 begins
	x.D(-1, -1, -1, 1, false)  // 5
	x.D(6, 0, 0, 1, true)      // 6: producer 6 begins
	x.commitAll()
	if lso, hw := x.l.LSO(), x.l.hw; lso != a || hw != 7 {
		t.Fatalf("LSO %d HW %d; want %d and 7", lso, hw, a)
	}
	m := x.M(5, 0, false) // 7: abort producer 5
	// Not durable yet: the transaction still holds the LSO.
	if lso := x.l.LSO(); lso != a {
		t.Fatalf("LSO %d before the marker is durable; want %d", lso, a)
	}
	x.commitAll()
	if lso := x.l.LSO(); lso != 6 {
		t.Fatalf("LSO %d after the abort; want 6 (producer 6's transaction)", lso)
	}
	x.M(6, 0, true) // 8
	x.commitAll()
	if lso := x.l.LSO(); lso != 9 {
		t.Fatalf("LSO %d after every transaction ended; want the HW 9", lso)
	}
	if got, want := x.l.AbortedTxns(0, 100), []AbortedTxn{{ProducerID: 5, FirstOffset: a, LastOffset: m}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("aborted index %v, want %v", got, want)
	}
	// The log start bounds the LSO from below.
	x.D(7, 0, 0, 1, true) // 9
	x.commitAll()
	if _, err := x.l.SetLogStart(10); err != nil {
		t.Fatal(err)
	}
	if lso := x.l.LSO(); lso != 10 {
		t.Fatalf("LSO %d with a transaction begun below the log start 10", lso)
	}
}

func TestMarkerAndDataErrors(t *testing.T) {
	x := newTxnLog(t)
	x.D(5, 2, 0, 1, true)
	if _, err := x.data(5, 2, 1, 1, false); !errors.Is(err, producer.ErrInvalidTxnState) {
		t.Fatalf("plain batch inside a transaction: %v", err)
	}
	if _, err := x.marker(5, 1, false); !errors.Is(err, producer.ErrInvalidEpoch) {
		t.Fatalf("marker of an older epoch: %v", err)
	}
	x.M(5, 3, false) // the coordinator fenced the producer
	if _, err := x.data(5, 2, 1, 1, true); !errors.Is(err, producer.ErrInvalidEpoch) {
		t.Fatalf("zombie batch after the fencing marker: %v", err)
	}
	if n := len(x.written); n != 2 {
		t.Fatalf("%d batches written, want 2: refused ones must not reach the WAL", n)
	}
}

func TestVerifiedAppend(t *testing.T) {
	x := newTxnLog(t)
	g, ongoing := x.l.TxnGuard(5, 0)
	if ongoing {
		t.Fatal("ongoing before any batch")
	}
	x.M(5, 0, false) // the transaction the batch was verified for ended
	raw := batch.BuildTxn([]batch.KV{{Key: []byte("k")}}, 1, 5, 0, 0)
	hs, _ := batch.Split(raw)
	if _, err := x.l.AppendVerified(&hs[0], g, 1, x.write); !errors.Is(err, producer.ErrInvalidTxnState) {
		t.Fatalf("late verified batch: %v", err)
	}
	g, _ = x.l.TxnGuard(5, 0)
	if _, err := x.l.AppendVerified(&hs[0], g, 1, x.write); err != nil {
		t.Fatalf("verified batch: %v", err)
	}
	if _, ongoing := x.l.TxnGuard(5, 0); !ongoing {
		t.Fatal("no transaction ongoing after the verified batch")
	}
}

func TestReadCommitted(t *testing.T) {
	x := newTxnLog(t)
	x.D(-1, -1, -1, 2, false) // 0-1
	x.D(5, 0, 0, 2, true)     // 2-3: ongoing
	x.D(-1, -1, -1, 1, false) // 4
	x.commitAll()
	ctx := context.Background()
	res, err := x.l.ReadInto(ctx, 0, 1<<20, true, ReadCommitted, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Last != 1 || res.LSO != 2 || res.HW != 5 {
		t.Fatalf("read_committed: last %d LSO %d HW %d; want 1, 2, 5", res.Last, res.LSO, res.HW)
	}
	res, err = x.l.ReadInto(ctx, 2, 1<<20, true, ReadCommitted, nil)
	if err != nil || len(res.Data) != 0 || res.Last != -1 {
		t.Fatalf("read_committed at the LSO: %d bytes, last %d, %v; want nothing", len(res.Data), res.Last, err)
	}
	res, err = x.l.ReadInto(ctx, 2, 1<<20, true, ReadUncommitted, nil)
	if err != nil || res.Last != 4 {
		t.Fatalf("read_uncommitted: last %d, %v; want 4", res.Last, err)
	}
	if _, err := x.l.ReadInto(ctx, 6, 1<<20, true, ReadCommitted, nil); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read_committed past the HW: %v", err)
	}
}

func TestAbortedTxns(t *testing.T) {
	l := New("t", [16]byte{}, 0, nil, []meta.Segment{
		{FirstOffset: 0, LastOffset: 99, Aborted: []AbortedTxn{{ProducerID: 1, FirstOffset: 10, LastOffset: 20}, {ProducerID: 2, FirstOffset: 5, LastOffset: 90}}},
		{FirstOffset: 100, LastOffset: 199, Aborted: []AbortedTxn{{ProducerID: 3, FirstOffset: 150, LastOffset: 160}}},
	}, 0, 0)
	cases := []struct {
		from, to int64
		want     []int64
	}{
		{0, 9, []int64{2}},      // only the long one has begun
		{0, 10, []int64{1, 2}},  // both
		{21, 89, []int64{2}},    // producer 1's marker is behind
		{91, 149, nil},          // between
		{91, 150, []int64{3}},   // producer 3 begins at the end of the range
		{160, 1000, []int64{3}}, // its marker is the first offset
		{161, 1000, nil},
	}
	for _, c := range cases {
		var got []int64
		for _, a := range l.AbortedTxns(c.from, c.to) {
			got = append(got, a.ProducerID)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("AbortedTxns(%d, %d) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
	if got := l.AbortedIn(100, 199); len(got) != 1 || got[0].ProducerID != 3 {
		t.Fatalf("AbortedIn(100, 199) = %v", got)
	}
	// A merge keeps the entries; the cleaner's rewrite replaces them.
	old := l.Segments()[:1]
	if !l.ReplaceSegments(old, meta.Segment{FirstOffset: 0, LastOffset: 99, Object: "clean", Aborted: old[0].Aborted[1:]}) {
		t.Fatal("ReplaceSegments refused")
	}
	if got := l.AbortedTxns(0, 1000); len(got) != 2 || got[0].ProducerID != 2 || got[1].ProducerID != 3 {
		t.Fatalf("after the rewrite: %v", got)
	}
	l.DropSegmentsThrough(99)
	if got := l.AbortedTxns(0, 1000); len(got) != 1 || got[0].ProducerID != 3 {
		t.Fatalf("after retention: %v", got)
	}
}

func TestRecoverMarkers(t *testing.T) {
	// The WAL as the engine replays it: data and markers, stored bytes.
	x := newTxnLog(t)
	x.D(5, 0, 0, 2, true) // 0-1
	x.M(5, 0, false)      // 2
	x.D(5, 0, 2, 1, true) // 3: a new transaction
	x.commitAll()
	var wal []*Batch
	for _, b := range x.l.mem {
		wal = append(wal, &Batch{Base: b.Base, Last: b.Last, MaxTs: b.MaxTs, Data: b.Data})
	}
	r := New("t", [16]byte{1}, 0, nil, nil, 0, 1<<30)
	for _, b := range wal {
		if ok, err := r.RecoverStored(b, 1); !ok || err != nil {
			t.Fatalf("recover %d: %v %v", b.Base, ok, err)
		}
	}
	if got := r.AbortedTxns(0, 10); len(got) != 1 || got[0] != (AbortedTxn{ProducerID: 5, FirstOffset: 0, LastOffset: 2}) {
		t.Fatalf("recovered aborted index %v", got)
	}
	if lso := r.LSO(); lso != 3 {
		t.Fatalf("recovered LSO %d, want 3 (the open transaction)", lso)
	}
	// Replayed over a snapshot that already holds it all, nothing changes
	// and uploaded batches add nothing to the index.
	up := New("t", [16]byte{1}, 0, nil, []meta.Segment{{FirstOffset: 0, LastOffset: 2, Aborted: r.AbortedIn(0, 2)}}, 0, 1<<30)
	for _, e := range r.Producers() {
		up.RestoreProducer(e)
	}
	for _, b := range wal {
		if _, err := up.RecoverStored(b, 1); err != nil {
			t.Fatal(err)
		}
	}
	if got := up.AbortedTxns(0, 10); len(got) != 1 {
		t.Fatalf("aborted index after replay over the snapshot: %v", got)
	}
	if lso := up.LSO(); lso != 3 {
		t.Fatalf("LSO after replay over the snapshot: %d", lso)
	}
	st := producer.NewState()
	for _, b := range wal {
		if err := ApplyStored(st, b.Data, 1); err != nil {
			t.Fatal(err)
		}
	}
	if first, ok := st.FirstUnstable(); !ok || first != 3 {
		t.Fatalf("ApplyStored: FirstUnstable %d %v", first, ok)
	}
}
