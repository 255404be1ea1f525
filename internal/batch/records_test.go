package batch

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rec is one record of a test batch: its key (nil for none) and its
// timestamp delta from the batch's first timestamp.
type rec struct {
	key     []byte
	tsDelta int64
}

// buildRecs encodes recs as one magic-v2 batch with first timestamp ts,
// gzip-compressed when gz, with attrs or'ed into the attributes.
func buildRecs(t *testing.T, recs []rec, ts int64, gz bool, attrs int16) Header {
	t.Helper()
	var body []byte
	maxTS := ts
	for i, r := range recs {
		kr := kmsg.Record{OffsetDelta: int32(i), Key: r.key, Value: []byte("v"), TimestampDelta64: r.tsDelta}
		kr.Length = int32(len(kr.AppendTo(nil)) - 1)
		body = kr.AppendTo(body)
		maxTS = max(maxTS, ts+r.tsDelta)
	}
	if gz {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(body); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		body = buf.Bytes()
		attrs |= 1
	}
	rb := kmsg.RecordBatch{Magic: 2, PartitionLeaderEpoch: -1, Attributes: attrs, LastOffsetDelta: int32(len(recs) - 1),
		FirstTimestamp: ts, MaxTimestamp: maxTS, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(recs)), Records: body}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[offLength:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[offCRC:], crc32.Checksum(raw[offAttributes:], crcTable))
	hs, err := Split(raw)
	if err != nil {
		t.Fatal(err)
	}
	return hs[0]
}

// TestCheckRecords: every bad record is reported, once, by its index in
// the batch; a missing key before a bad timestamp (Kafka's
// validateRecord); an empty key is a key; records without a timestamp
// are exempt from the bounds; a producer's LogAppendTime batch is
// refused; compressed batches are checked the same.
func TestCheckRecords(t *testing.T) {
	dec := kgo.DefaultDecompressor()
	const now = 1_000_000
	k := []byte("k")
	keyed := RecordRules{Topic: "t", Partition: 3, Keyed: true, Now: now, Before: 1<<63 - 1, After: 1<<63 - 1}
	bounded := RecordRules{Topic: "t", Bounded: true, Now: now, Before: 100, After: 10}
	both := bounded
	both.Keyed = true
	type want struct {
		index int32
		ts    bool
	}
	for _, tc := range []struct {
		name  string
		recs  []rec
		ts    int64
		attrs int16
		rules RecordRules
		want  []want
	}{
		{"keys ok, empty key is a key", []rec{{key: k}, {key: []byte{}}}, now, 0, keyed, nil},
		{"no keys at 1 and 3", []rec{{key: k}, {}, {key: k}, {}}, now, 0, keyed, []want{{1, false}, {3, false}}},
		{"no key check on a plain topic", []rec{{}, {}}, now, 0, bounded, nil},
		{"bounds: at the edges", []rec{{tsDelta: -100}, {tsDelta: 10}}, now, 0, bounded, nil},
		{"bounds: past the edges", []rec{{tsDelta: -101}, {}, {tsDelta: 11}}, now, 0, bounded, []want{{0, true}, {2, true}}},
		{"no timestamp is exempt", []rec{{}, {}}, -1, 0, bounded, nil},
		{"key reported before timestamp", []rec{{tsDelta: -500}, {key: k, tsDelta: -500}}, now, 0, both, []want{{0, false}, {1, true}}},
		{"unbounded at the int64 limits", []rec{{}}, -1 << 62, 0, RecordRules{Bounded: true, Now: now, Before: 1<<63 - 1, After: 1<<63 - 1}, nil},
		{"producer LogAppendTime on a CreateTime topic, no timestamp", []rec{{}, {}}, -1, attrLogAppendTime, RecordRules{}, []want{{0, true}, {1, true}}},
		{"producer LogAppendTime on a LogAppendTime topic", []rec{{key: k}}, now, attrLogAppendTime, RecordRules{LogAppendTime: true}, []want{{0, true}}},
		{"LogAppendTime topic ignores create-time bounds", []rec{{tsDelta: -1000}}, now, 0, RecordRules{LogAppendTime: true, Bounded: true, Now: now}, nil},
	} {
		for _, gz := range []bool{false, true} {
			h := buildRecs(t, tc.recs, tc.ts, gz, tc.attrs)
			errs, err := CheckRecords(&h, dec, tc.rules)
			if err != nil {
				t.Fatalf("%s (gzip %v): %v", tc.name, gz, err)
			}
			var got []want
			for _, e := range errs {
				got = append(got, want{e.Index, e.Timestamp})
				if e.Message == "" {
					t.Errorf("%s: record %d's error has no message", tc.name, e.Index)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s (gzip %v): errors %v, want %v", tc.name, gz, got, tc.want)
			}
		}
	}
}

// TestRejectionMessage: INVALID_TIMESTAMP wins over INVALID_RECORD, and
// the message counts every error and quotes the first three.
func TestRejectionMessage(t *testing.T) {
	var errs []RecordError
	for i := range 5 {
		errs = append(errs, RecordError{Index: int32(i * 2), Message: "no key"})
	}
	msg, ts := RejectionMessage(errs)
	if ts || !strings.Contains(msg, "5 record errors") || !strings.Contains(msg, "batchIndex=4,") || strings.Contains(msg, "batchIndex=6,") {
		t.Errorf("RejectionMessage = %q, %v", msg, ts)
	}
	msg, ts = RejectionMessage(append(errs, RecordError{Index: 11, Timestamp: true, Message: "late"}))
	if !ts || !strings.Contains(msg, "invalid timestamp") {
		t.Errorf("RejectionMessage with a timestamp error = %q, %v", msg, ts)
	}
}

// TestCheckRecordsSkipsDecode: a batch with nothing to check is not
// decoded, so a corrupt compressed body passes here (the CRC has already
// vouched for the bytes) and costs the produce path nothing; a topic
// that needs the records decodes them and finds the fault.
func TestCheckRecordsSkipsDecode(t *testing.T) {
	h := buildRecs(t, []rec{{}}, 1, true, 0)
	h.Raw = append([]byte(nil), h.Raw...)
	h.Raw[len(h.Raw)-1] ^= 0xff // the gzip trailer
	if errs, err := CheckRecords(&h, kgo.DefaultDecompressor(), RecordRules{}); err != nil || errs != nil {
		t.Errorf("nothing to check: %v, %v", errs, err)
	}
	if _, err := CheckRecords(&h, kgo.DefaultDecompressor(), RecordRules{Keyed: true}); err == nil {
		t.Errorf("a keyed topic decoded a corrupt gzip body without error")
	}
}
