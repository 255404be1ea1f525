package batch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// split parses raw as a produce request's one batch, failing the test if
// it does not validate (framing, CRC, count).
func split(t *testing.T, raw []byte) *Header {
	t.Helper()
	hs, err := Split(raw)
	if err != nil || len(hs) != 1 {
		t.Fatalf("split: %v (%d batches)", err, len(hs))
	}
	return &hs[0]
}

// TestRecompress rebuilds a producer's batch from every codec into every
// other, at a non-default level too, and checks what Kafka's rebuild
// keeps: a batch that validates (CRC, count) in the target codec, with
// the same base offset, last offset delta, producer id, epoch and base
// sequence, transactional bit, leader epoch and first and max timestamps,
// whose records read back as the producer wrote them.
func TestRecompress(t *testing.T) {
	dec := kgo.DefaultDecompressor()
	r := NewRecompressor(dec)
	for from := CodecNone; from <= CodecZstd; from++ {
		_, want, err := Records(producedBatch(t, from, 8), dec)
		if err != nil {
			t.Fatal(err)
		}
		for to := CodecNone; to <= CodecZstd; to++ {
			if to == from {
				continue
			}
			for _, level := range []int{0, 1} {
				t.Run(fmt.Sprintf("%s to %s level %d", CodecName(from), CodecName(to), level), func(t *testing.T) {
					raw := producedBatch(t, from, 8)
					raw[offAttributes+1] |= 0x10 // transactional
					binary.BigEndian.PutUint32(raw[offCRC:], crc32.Checksum(raw[offAttributes:], crcTable))
					h := split(t, raw)
					before := h.RecordBatch
					tgt := Target{Codec: to}
					switch to {
					case CodecGzip:
						tgt.Level = []int{DefaultGzipLevel, 1}[level]
					case CodecLz4:
						tgt.Level = []int{DefaultLz4Level, 1}[level]
					case CodecZstd:
						tgt.Level = []int{DefaultZstdLevel, 19}[level]
					}
					if err := r.Recompress(h, tgt); err != nil {
						t.Fatal(err)
					}
					after := split(t, h.Raw) // the CRC and count check out
					if h.Compression() != to || after.Compression() != to {
						t.Fatalf("codec %d (reparsed %d), want %d", h.Compression(), after.Compression(), to)
					}
					if after.RecordBatch.CRC != h.RecordBatch.CRC || after.Length != h.Length || !bytes.Equal(after.Records, h.Records) {
						t.Errorf("the header does not describe the new batch")
					}
					for name, pair := range map[string][2]int64{
						"base offset":      {before.FirstOffset, after.FirstOffset},
						"last delta":       {int64(before.LastOffsetDelta), int64(after.LastOffsetDelta)},
						"records":          {int64(before.NumRecords), int64(after.NumRecords)},
						"producer id":      {before.ProducerID, after.ProducerID},
						"producer epoch":   {int64(before.ProducerEpoch), int64(after.ProducerEpoch)},
						"base sequence":    {int64(before.FirstSequence), int64(after.FirstSequence)},
						"leader epoch":     {int64(before.PartitionLeaderEpoch), int64(after.PartitionLeaderEpoch)},
						"first timestamp":  {before.FirstTimestamp, after.FirstTimestamp},
						"max timestamp":    {before.MaxTimestamp, after.MaxTimestamp},
						"other attributes": {int64(before.Attributes &^ 7), int64(after.Attributes &^ 7)},
					} {
						if pair[0] != pair[1] {
							t.Errorf("%s %d, want %d as produced", name, pair[1], pair[0])
						}
					}
					_, got, err := Records(h.Raw, dec)
					if err != nil {
						t.Fatal(err)
					}
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Errorf("records\n%v\nwant\n%v", got, want)
					}
				})
			}
		}
	}
}

// TestRecompressLevelsDiffer: the level reaches the codec. JSON-like
// records compressed at zstd level 1 (fastest) and 19 (best), gzip 1
// and 9, lz4 9 (fast) and 1 (high compression) come out at different
// sizes, and the stronger level is not the larger.
func TestRecompressLevelsDiffer(t *testing.T) {
	var body []byte
	for i := 0; i < 200; i++ {
		v := fmt.Sprintf(`{"time":"2026-12-06T08:%02d:%02dZ","host":"web-%d","event":"login","user":"user%d","src_ip":"10.0.%d.%d","status":%d}`,
			i%60, i%60, i%7, i*31%97, i%256, i*7%256, 200+i%3)
		rec := kmsg.Record{OffsetDelta: int32(i), Value: []byte(strings.Repeat(v, 4))}
		rec.Length = int32(len(rec.AppendTo(nil)) - 1)
		body = rec.AppendTo(body)
	}
	rb := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: 199, FirstTimestamp: 1, MaxTimestamp: 1, ProducerID: -1, ProducerEpoch: -1,
		FirstSequence: -1, NumRecords: 200, Records: body}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[offLength:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[offCRC:], crc32.Checksum(raw[offAttributes:], crcTable))
	r := NewRecompressor(kgo.DefaultDecompressor())
	size := func(tgt Target) int {
		h := split(t, bytes.Clone(raw))
		if err := r.Recompress(h, tgt); err != nil {
			t.Fatal(err)
		}
		return len(h.Raw)
	}
	for _, c := range []struct {
		codec        int8
		weak, strong int
	}{
		{CodecZstd, 1, 19}, {CodecGzip, 1, 9}, {CodecLz4, DefaultLz4Level, 1},
	} {
		w, s := size(Target{c.codec, c.weak}), size(Target{c.codec, c.strong})
		if w == s || s > w {
			t.Errorf("%s: level %d gives %d bytes, level %d %d: want the second smaller", CodecName(c.codec), c.weak, w, c.strong, s)
		}
	}
}

// TestRecompressCanonicalizes: a batch whose records Kafka's builder
// would encode otherwise (offset deltas not 0..n-1, a first record with a
// timestamp delta, a record attribute) comes out as the builder writes it
// (deltas 0..n-1, the first record's timestamp as the batch's), with every
// record's absolute timestamp, key and value kept.
func TestRecompressCanonicalizes(t *testing.T) {
	var body []byte
	for i, d := range []int64{5, 7, 6} {
		rec := kmsg.Record{OffsetDelta: int32(i * 2), TimestampDelta64: d, Attributes: int8(i), Value: []byte(fmt.Sprint("v", i))}
		rec.Length = int32(len(rec.AppendTo(nil)) - 1)
		body = rec.AppendTo(body)
	}
	comp, err := kgo.DefaultCompressor(kgo.SnappyCompression())
	if err != nil {
		t.Fatal(err)
	}
	body, _ = comp.Compress(new(bytes.Buffer), body)
	rb := kmsg.RecordBatch{Magic: 2, Attributes: int16(CodecSnappy), LastOffsetDelta: 2, FirstTimestamp: 1000, MaxTimestamp: 1007,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 3, Records: body}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[offLength:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[offCRC:], crc32.Checksum(raw[offAttributes:], crcTable))

	h := split(t, raw)
	if err := NewRecompressor(kgo.DefaultDecompressor()).Recompress(h, Target{Codec: CodecNone}); err != nil {
		t.Fatal(err)
	}
	split(t, h.Raw) // uncompressed: Split checks every record's offset delta
	got, recs, err := Records(h.Raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.FirstTimestamp != 1005 || got.MaxTimestamp != 1007 {
		t.Errorf("first and max timestamps %d %d, want 1005 1007", got.FirstTimestamp, got.MaxTimestamp)
	}
	for i, want := range []int64{1005, 1007, 1006} {
		r := recs[i]
		if r.OffsetDelta != int32(i) || r.Attributes != 0 || got.FirstTimestamp+r.TimestampDelta64 != want || string(r.Value) != fmt.Sprint("v", i) {
			t.Errorf("record %d: delta %d, attributes %d, timestamp %d, value %q; want %d, 0, %d, v%d",
				i, r.OffsetDelta, r.Attributes, got.FirstTimestamp+r.TimestampDelta64, r.Value, i, want, i)
		}
	}
}

// TestRecompressRefusesCorrupt: records that do not decode, or fewer than
// the header counts, are ErrCorrupt and leave the batch as it was.
func TestRecompressRefusesCorrupt(t *testing.T) {
	r := NewRecompressor(kgo.DefaultDecompressor())
	raw := producedBatch(t, CodecNone, 4)
	h := split(t, raw)
	h.NumRecords = 5 // as if the header said so
	if err := r.Recompress(h, Target{Codec: CodecZstd}); err == nil || !strings.Contains(err.Error(), "header says 5") {
		t.Errorf("count mismatch: %v", err)
	}
	if &h.Raw[0] != &raw[0] {
		t.Errorf("a refused batch was replaced")
	}
	h = split(t, producedBatch(t, CodecZstd, 4))
	h.Records = h.Records[:len(h.Records)-3]
	if err := r.Recompress(h, Target{Codec: CodecLz4}); err == nil {
		t.Errorf("truncated zstd frame recompressed")
	}
}

// BenchmarkRecompress: one core rebuilding batches of 100 JSON events of
// 1 KiB from uncompressed to each codec (zstd at Kafka's default level
// and at 1), the produce path's share of `vigil bench compression`
// (docs/benchmarks.md). Each
// event has its own numbers and a random hash, so that zstd sees what it
// would in logs rather than one value repeated.
func BenchmarkRecompress(b *testing.B) {
	rng := rand.New(rand.NewPCG(25, 2))
	words := strings.Fields("connection accepted denied session opened closed for user from port ssh2 sudo command policy rule matched outbound dns query process started exited status")
	var body []byte
	for i := 0; i < 100; i++ {
		v := fmt.Sprintf(`{"time":"2026-12-06T08:%02d:%02d.%03dZ","host":"web-%02d","user":"user%04d","src_ip":"10.0.%d.%d","sha256":"%016x%016x","message":"`,
			i%60, rng.IntN(60), rng.IntN(1000), rng.IntN(40), rng.IntN(3000), rng.IntN(256), rng.IntN(256), rng.Uint64(), rng.Uint64())
		for len(v) < 1022 {
			v += words[rng.IntN(len(words))] + " "
		}
		rec := kmsg.Record{OffsetDelta: int32(i), Value: []byte(v[:1022] + `"}`)}
		rec.Length = int32(len(rec.AppendTo(nil)) - 1)
		body = rec.AppendTo(body)
	}
	rb := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: 99, FirstTimestamp: 1, MaxTimestamp: 1, ProducerID: -1, ProducerEpoch: -1,
		FirstSequence: -1, NumRecords: 100, Records: body}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[offLength:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[offCRC:], crc32.Checksum(raw[offAttributes:], crcTable))
	r := NewRecompressor(kgo.DefaultDecompressor())
	hs, err := Split(raw)
	if err != nil {
		b.Fatal(err)
	}
	for _, tgt := range []Target{{CodecZstd, DefaultZstdLevel}, {CodecZstd, 1}, {CodecLz4, DefaultLz4Level}, {CodecSnappy, 0}, {CodecGzip, DefaultGzipLevel}} {
		b.Run(fmt.Sprintf("%s-%d", CodecName(tgt.Codec), tgt.Level), func(b *testing.B) {
			var out int
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				h := hs[0]
				if err := r.Recompress(&h, tgt); err != nil {
					b.Fatal(err)
				}
				out = len(h.Raw)
			}
			b.ReportMetric(float64(b.N)*100/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(len(raw))/float64(out), "x-smaller")
		})
	}
}
