package partition

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/batch"
)

// mirrored is a copied batch: raw at base offset base, as a source's
// fetch returns it.
func mirrored(t *testing.T, raw []byte, base int64) *batch.Header {
	t.Helper()
	batch.Assign(raw, base, 7) // the source's leader epoch, which the log replaces
	hs, err := batch.SplitCopied(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &hs[0]
}

func (x *txnLog) mirror(h *batch.Header) (*Batch, bool, error) {
	return x.l.AppendMirror(h, 1, x.write)
}

// TestAppendMirror: copied batches keep their offsets, gaps stay gaps,
// a retry is recognised, an overlap or other contents are refused, and a
// copied transaction's marker moves the last stable offset and the
// aborted index as the coordinator's own marker does.
func TestAppendMirror(t *testing.T) {
	x := newTxnLog(t)
	kv := func(vs ...string) []batch.KV {
		var out []batch.KV
		for _, v := range vs {
			out = append(out, batch.KV{Key: []byte("k"), Value: []byte(v)})
		}
		return out
	}
	// [0, 2) plain, then a gap [2, 10), then producer 5's transaction at
	// [10, 12), its abort marker at 15 after a gap, a commit of producer 6.
	b0 := batch.Build(kv("a", "b"), 1000)
	if _, _, err := x.mirror(mirrored(t, b0, 0)); err != nil {
		t.Fatal(err)
	}
	txn := batch.BuildTxn(kv("c", "d"), 1000, 5, 3, 40)
	if _, _, err := x.mirror(mirrored(t, txn, 10)); err != nil {
		t.Fatal(err)
	}
	x.commitAll()
	if lso, hw := x.l.LSO(), x.l.hw; lso != 10 || hw != 12 {
		t.Fatalf("after the copied transaction's data: LSO %d HW %d, want 10 and 12", lso, hw)
	}
	if _, _, err := x.mirror(mirrored(t, batch.BuildMarker(5, 3, false, 2, 2000), 15)); err != nil {
		t.Fatal(err)
	}
	if lso := x.l.LSO(); lso != 10 {
		t.Fatalf("LSO %d before the copied marker is durable, want 10", lso)
	}
	x.commitAll()
	if lso, hw := x.l.LSO(), x.l.hw; lso != 16 || hw != 16 {
		t.Fatalf("after the copied abort: LSO %d HW %d, want 16 and 16", lso, hw)
	}
	if got, want := x.l.AbortedTxns(0, 100), []AbortedTxn{{ProducerID: 5, FirstOffset: 10, LastOffset: 15}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("aborted index %v, want %v", got, want)
	}
	// The producer keeps its id, epoch and sequences.
	if e := x.l.producers.Get(5); e == nil || e.Epoch != 3 || e.TxnFirst != -1 {
		t.Fatalf("producer 5 state %+v, want epoch 3 and no transaction", e)
	}

	// A retry of a batch in memory is the batch there; other contents at
	// its offsets, or an overlap with the end, are refused.
	if dup, cold, err := x.mirror(mirrored(t, batch.BuildTxn(kv("c", "d"), 1000, 5, 3, 40), 10)); err != nil || cold || dup == nil || dup.Base != 10 {
		t.Fatalf("retry: dup %v cold %v err %v; want the batch at 10", dup, cold, err)
	}
	if _, _, err := x.mirror(mirrored(t, batch.BuildTxn(kv("c", "X"), 1000, 5, 3, 40), 10)); !errors.Is(err, ErrMirrorConflict) {
		t.Fatalf("other contents at 10: %v, want ErrMirrorConflict", err)
	}
	if _, _, err := x.mirror(mirrored(t, batch.Build(kv("y", "z"), 1000), 15)); !errors.Is(err, ErrMirrorConflict) {
		t.Fatalf("overlapping the end: %v, want ErrMirrorConflict", err)
	}
	if n := len(x.written); n != 0 {
		t.Fatalf("%d refused or repeated batches reached the WAL", n)
	}

	// Reads see the offsets as copied, the gap skipped.
	res, err := x.l.ReadInto(context.Background(), 3, 1<<20, true, ReadUncommitted, nil)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := batch.Peek(res.Data); info.BaseOffset != 10 || res.Last != 15 {
		t.Fatalf("read at 3 (in the gap): first batch at %d, last %d; want 10 and 15", info.BaseOffset, res.Last)
	}

	// A compacted batch (fewer records than its offset span) keeps its
	// span: the next offset is past its last delta.
	compacted := batch.Build(kv("e", "f"), 1000)
	// offset deltas 0 and 1 become 0 and 4, lastOffsetDelta 4, as
	// compaction on the source leaves a batch.
	rb := mustRecordBatch(t, compacted, 4)
	if _, _, err := x.mirror(mirrored(t, rb, 20)); err != nil {
		t.Fatal(err)
	}
	if x.l.next != 25 {
		t.Fatalf("log end %d after a compacted batch at [20, 24], want 25", x.l.next)
	}

	// Recovery replays the WAL with its gaps.
	r := New("t", [16]byte{1}, 0, nil, nil, 0, 1<<30)
	for _, b := range x.l.mem {
		if _, err := r.RecoverStored(&Batch{Base: b.Base, Last: b.Last, MaxTs: b.MaxTs, Data: b.Data}, 1); err != nil {
			t.Fatalf("recover the batch at %d: %v", b.Base, err)
		}
	}
	if r.next != 25 || !reflect.DeepEqual(r.AbortedTxns(0, 100), x.l.AbortedTxns(0, 100)) {
		t.Fatalf("recovered: end %d aborted %v; want 25 and %v", r.next, r.AbortedTxns(0, 100), x.l.AbortedTxns(0, 100))
	}
}

// mustRecordBatch rewrites a built batch of two records as compaction
// leaves one: its second record at offset delta last.
func mustRecordBatch(t *testing.T, raw []byte, last int32) []byte {
	t.Helper()
	_, recs, err := batch.Records(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(raw); err != nil {
		t.Fatal(err)
	}
	recs[1].OffsetDelta = last
	var body []byte
	for _, r := range recs {
		body = r.AppendTo(body)
	}
	rb.Records, rb.LastOffsetDelta = body, last
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}
