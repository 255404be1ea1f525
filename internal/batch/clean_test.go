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

// producedBatch encodes n records the way a producer does, with codec
// (0-4), producer fields, a base offset of 100 and record i stamped
// 1000+i; record i has key k<i%3>, and record 4 is a tombstone.
func producedBatch(t *testing.T, codec int8, n int) []byte {
	t.Helper()
	var body []byte
	for i := 0; i < n; i++ {
		r := kmsg.Record{OffsetDelta: int32(i), TimestampDelta64: int64(i), Key: []byte(fmt.Sprintf("k%d", i%3)),
			Value: []byte(fmt.Sprintf("value %d", i)), Headers: []kmsg.Header{{Key: "h", Value: []byte{byte(i)}}}}
		if i == 4 {
			r.Value = nil
		}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		body = r.AppendTo(body)
	}
	if codec != 0 {
		var c Compressors
		var err error
		if body, err = c.compress(codec, body); err != nil {
			t.Fatal(err)
		}
	}
	rb := kmsg.RecordBatch{FirstOffset: 100, Magic: 2, PartitionLeaderEpoch: 7, Attributes: int16(codec),
		LastOffsetDelta: int32(n - 1), FirstTimestamp: 1000, MaxTimestamp: 1000 + int64(n-1),
		ProducerID: 42, ProducerEpoch: 3, FirstSequence: 17, NumRecords: int32(n), Records: body}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[offLength:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[offCRC:], crc32.Checksum(raw[offAttributes:], crcTable))
	return raw
}

// TestFilter rewrites a batch of each codec keeping some records, and
// checks what Kafka's cleaner keeps: a valid batch (its CRC checks) with
// the same base offset, last offset, producer fields, leader epoch and
// codec, whose kept records keep their offsets, keys, values, headers and
// timestamps, and whose max timestamp is theirs.
func TestFilter(t *testing.T) {
	dec := kgo.DefaultDecompressor()
	var comp Compressors
	for codec := int8(0); codec <= 4; codec++ {
		t.Run(fmt.Sprint("codec ", codec), func(t *testing.T) {
			raw := producedBatch(t, codec, 8)
			_, orig, err := Records(raw, dec)
			if err != nil {
				t.Fatal(err)
			}
			keepOffsets := map[int64]bool{101: true, 103: true, 104: true}
			out, err := Filter(raw, dec, &comp, NoStamp, func(rb *kmsg.RecordBatch, r *kmsg.Record) bool {
				return keepOffsets[rb.FirstOffset+int64(r.OffsetDelta)]
			})
			if err != nil {
				t.Fatal(err)
			}
			// Not Split: a cleaned batch has fewer records than its offset
			// span, which Split refuses of a producer's batch.
			if crc := crc32.Checksum(out[offAttributes:], crcTable); crc != binary.BigEndian.Uint32(out[offCRC:]) {
				t.Fatalf("the filtered batch's CRC does not check")
			}
			var h Header
			if err := h.ReadFrom(out); err != nil || int(binary.BigEndian.Uint32(out[offLength:]))+12 != len(out) {
				t.Fatalf("the filtered batch does not decode (%v) or its length is wrong", err)
			}
			if h.FirstOffset != 100 || h.LastOffset() != 107 || h.ProducerID != 42 || h.ProducerEpoch != 3 ||
				h.FirstSequence != 17 || h.PartitionLeaderEpoch != 7 || h.Compression() != codec || h.NumRecords != 3 {
				t.Fatalf("filtered header %+v", h.RecordBatch)
			}
			if h.MaxTimestamp != 1004 {
				t.Errorf("max timestamp %d, want 1004 (the newest kept record's)", h.MaxTimestamp)
			}
			rb, recs, err := Records(out, dec)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 3 {
				t.Fatalf("%d records kept, want 3", len(recs))
			}
			for _, r := range recs {
				o := orig[r.OffsetDelta]
				if !keepOffsets[rb.FirstOffset+int64(r.OffsetDelta)] || !bytes.Equal(r.Key, o.Key) || !bytes.Equal(r.Value, o.Value) ||
					(r.Value == nil) != (o.Value == nil) || Timestamp(&rb, &r) != 1000+int64(r.OffsetDelta) ||
					len(r.Headers) != 1 || !bytes.Equal(r.Headers[0].Value, o.Headers[0].Value) {
					t.Errorf("kept record %+v, original %+v", r, o)
				}
			}

			all, err := Filter(raw, dec, &comp, NoStamp, func(*kmsg.RecordBatch, *kmsg.Record) bool { return true })
			if err != nil || !bytes.Equal(all, raw) {
				t.Errorf("keeping every record changed the batch (err %v)", err)
			}
			none, err := Filter(raw, dec, &comp, NoStamp, func(*kmsg.RecordBatch, *kmsg.Record) bool { return false })
			if err != nil || none != nil {
				t.Errorf("keeping no record returned %d bytes (err %v), want nil", len(none), err)
			}
		})
	}
}
