package batch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// checkRebuilt checks a rewritten batch as a reader would take it: its
// CRC and length, the header fields the cleaner keeps, the delete horizon
// (want -1: none), and each record's timestamp, which must be 1000 plus
// its offset delta whatever the first timestamp now is.
func checkRebuilt(t *testing.T, out []byte, codec int8, records int, horizon, maxTs int64) {
	t.Helper()
	if crc := crc32.Checksum(out[offAttributes:], crcTable); crc != binary.BigEndian.Uint32(out[offCRC:]) {
		t.Fatalf("the rewritten batch's CRC does not check")
	}
	dec := kgo.DefaultDecompressor()
	rb, recs, err := Records(out, dec)
	if err != nil || int(binary.BigEndian.Uint32(out[offLength:]))+12 != len(out) {
		t.Fatalf("the rewritten batch does not decode (%v) or its length is wrong", err)
	}
	if rb.FirstOffset != 100 || rb.FirstOffset+int64(rb.LastOffsetDelta) != 107 || rb.ProducerID != 42 ||
		rb.ProducerEpoch != 3 || rb.FirstSequence != 17 || rb.PartitionLeaderEpoch != 7 || int8(rb.Attributes&7) != codec ||
		int(rb.NumRecords) != records || len(recs) != records {
		t.Fatalf("rewritten header %+v with %d records, want %d", rb, len(recs), records)
	}
	if h, ok := DeleteHorizon(out); ok != (horizon >= 0) || ok && (h != horizon || rb.FirstTimestamp != horizon) {
		t.Fatalf("delete horizon %d (stamped %v), first timestamp %d; want %d", h, ok, rb.FirstTimestamp, horizon)
	}
	if rb.MaxTimestamp != maxTs {
		t.Errorf("max timestamp %d, want %d (the records' own, never the horizon)", rb.MaxTimestamp, maxTs)
	}
	for _, r := range recs {
		if ts := Timestamp(&rb, &r); ts != 1000+int64(r.OffsetDelta) {
			t.Errorf("record at delta %d reads timestamp %d, want %d", r.OffsetDelta, ts, 1000+r.OffsetDelta)
		}
	}
}

// TestFilterStampsDeleteHorizon: a batch that keeps a tombstone is
// rewritten with the delete horizon (KIP-534), even when every record
// stays, and its records keep their timestamps; a stamped batch is never
// stamped again (its horizon holds through later rewrites); a batch that
// keeps no tombstone is not stamped.
func TestFilterStampsDeleteHorizon(t *testing.T) {
	dec := kgo.DefaultDecompressor()
	var comp Compressors
	all := func(*kmsg.RecordBatch, *kmsg.Record) bool { return true }
	at := func(offs ...int64) func(rb *kmsg.RecordBatch, r *kmsg.Record) bool {
		return func(rb *kmsg.RecordBatch, r *kmsg.Record) bool {
			for _, o := range offs {
				if rb.FirstOffset+int64(r.OffsetDelta) == o {
					return true
				}
			}
			return false
		}
	}
	for codec := int8(0); codec <= 4; codec++ {
		t.Run(fmt.Sprint("codec ", codec), func(t *testing.T) {
			raw := producedBatch(t, codec, 8) // record 4 (offset 104) is the tombstone
			if _, ok := DeleteHorizon(raw); ok {
				t.Fatal("a produced batch has a delete horizon")
			}

			whole, err := Filter(raw, dec, &comp, 5000, all)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(whole, raw) {
				t.Fatal("a batch keeping its tombstone came back unstamped")
			}
			checkRebuilt(t, whole, codec, 8, 5000, 1007)

			part, err := Filter(raw, dec, &comp, 5000, at(101, 104))
			if err != nil {
				t.Fatal(err)
			}
			checkRebuilt(t, part, codec, 2, 5000, 1004)

			// Stamped already: kept whole it is the same bytes; filtered,
			// it keeps the first horizon.
			again, err := Filter(whole, dec, &comp, 9000, all)
			if err != nil || !bytes.Equal(again, whole) {
				t.Fatalf("a stamped batch kept whole was rewritten (err %v)", err)
			}
			less, err := Filter(whole, dec, &comp, 9000, at(103, 104))
			if err != nil {
				t.Fatal(err)
			}
			checkRebuilt(t, less, codec, 2, 5000, 1004)

			values, err := Filter(raw, dec, &comp, 5000, at(101, 103))
			if err != nil {
				t.Fatal(err)
			}
			checkRebuilt(t, values, codec, 2, -1, 1003)
		})
	}
}

// TestStampDeleteHorizon stamps a transaction marker as the cleaner
// stamps one whose transaction's data is gone: still a valid marker of
// the same producer, with the record's timestamp unchanged; a second
// stamp leaves the first.
func TestStampDeleteHorizon(t *testing.T) {
	dec := kgo.DefaultDecompressor()
	var comp Compressors
	raw := BuildMarker(42, 3, false, 9, 1000)
	binary.BigEndian.PutUint64(raw[offBaseOffset:], 100)
	out, err := StampDeleteHorizon(raw, dec, &comp, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if crc := crc32.Checksum(out[offAttributes:], crcTable); crc != binary.BigEndian.Uint32(out[offCRC:]) {
		t.Fatalf("the stamped marker's CRC does not check")
	}
	if h, ok := DeleteHorizon(out); !ok || h != 5000 {
		t.Fatalf("stamped marker's horizon %d (%v), want 5000", h, ok)
	}
	m, err := ProducerMarker(out)
	if err != nil || m.ID != 42 || m.Epoch != 3 || m.Commit || m.CoordinatorEpoch != 9 {
		t.Fatalf("stamped marker reads %+v (err %v)", m, err)
	}
	info, err := Peek(out)
	if err != nil || !info.IsControl() || !info.IsTransactional() || info.BaseOffset != 100 || info.MaxTimestamp != 1000 {
		t.Fatalf("stamped marker's header %+v (err %v)", info, err)
	}
	rb, recs, err := Records(out, dec)
	if err != nil || len(recs) != 1 || Timestamp(&rb, &recs[0]) != 1000 {
		t.Fatalf("stamped marker's record %+v (err %v), want timestamp 1000", recs, err)
	}
	again, err := StampDeleteHorizon(out, dec, &comp, 9000)
	if err != nil || !bytes.Equal(again, out) {
		t.Fatalf("a second stamp rewrote the marker (err %v)", err)
	}
}

// TestStampLogAppendTime: a LogAppendTime batch stamped with a delete
// horizon keeps its max timestamp, which readers take as every record's.
func TestStampLogAppendTime(t *testing.T) {
	dec := kgo.DefaultDecompressor()
	var comp Compressors
	h := Header{Raw: producedBatch(t, 0, 8)}
	if err := h.ReadFrom(h.Raw); err != nil {
		t.Fatal(err)
	}
	SetLogAppendTime(&h, 9999)
	out, err := Filter(h.Raw, dec, &comp, 5000, func(*kmsg.RecordBatch, *kmsg.Record) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if hz, ok := DeleteHorizon(out); !ok || hz != 5000 {
		t.Fatalf("horizon %d (%v), want 5000", hz, ok)
	}
	rb, recs, err := Records(out, dec)
	if err != nil || len(recs) != 8 || rb.Attributes&attrLogAppendTime == 0 || rb.MaxTimestamp != 9999 {
		t.Fatalf("stamped LogAppendTime batch %+v, %d records (err %v)", rb, len(recs), err)
	}
	for _, r := range recs {
		if ts := Timestamp(&rb, &r); ts != 9999 {
			t.Errorf("record at delta %d reads %d, want the append time 9999", r.OffsetDelta, ts)
		}
	}
}
