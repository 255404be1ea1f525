package batch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Broker-side recompression, as Kafka 3.9's LogValidator does it on a
// topic whose compression.type names a codec: a produced batch whose codec
// differs from the topic's is decompressed and rebuilt in the topic's
// codec (buildRecordsAndAssignOffsets); a batch already in that codec is
// stored as it came, whatever level its producer used (Kafka compares the
// codec alone).

// Codec numbers, as a batch's attributes carry them.
const (
	CodecNone   int8 = 0
	CodecGzip   int8 = 1
	CodecSnappy int8 = 2
	CodecLz4    int8 = 3
	CodecZstd   int8 = 4
)

// Kafka's defaults for the compression.*.level configs (KIP-390).
const (
	DefaultGzipLevel = -1 // Deflater.DEFAULT_COMPRESSION
	DefaultLz4Level  = 9
	DefaultZstdLevel = 3
)

// Target is what a topic's compression.type asks for: the codec its
// batches are stored in, and the Kafka level (compression.gzip.level,
// compression.lz4.level or compression.zstd.level) to compress at.
type Target struct {
	Codec int8
	Level int
}

// ParseCodec reads a compression.type value: the codec it names, or
// ok=false for "producer" (keep the producer's codec) and anything else.
func ParseCodec(compressionType string) (codec int8, ok bool) {
	switch strings.TrimSpace(compressionType) {
	case "uncompressed":
		return CodecNone, true
	case "gzip":
		return CodecGzip, true
	case "snappy":
		return CodecSnappy, true
	case "lz4":
		return CodecLz4, true
	case "zstd":
		return CodecZstd, true
	}
	return 0, false
}

// CodecName is the compression.type value naming codec.
func CodecName(codec int8) string {
	switch codec {
	case CodecNone:
		return "uncompressed"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLz4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec %d", codec)
}

// Recompressor rebuilds batches in another codec. It keeps one compressor
// per codec and level, built when first needed, since kgo's compressors
// pool their encoders and an encoder (zstd's above all) is costly to
// build; it is safe for concurrent use.
type Recompressor struct {
	dec   kgo.Decompressor
	mu    sync.Mutex
	comps map[Target]kgo.Compressor
	bufs  sync.Pool // *bytes.Buffer: compression output, copied into the batch
}

// NewRecompressor returns a Recompressor decompressing with dec.
func NewRecompressor(dec kgo.Decompressor) *Recompressor {
	return &Recompressor{dec: dec, comps: map[Target]kgo.Compressor{},
		bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

// compressor returns the compressor for t, building it on first use.
func (r *Recompressor) compressor(t Target) (kgo.Compressor, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.comps[t]; ok {
		return c, nil
	}
	var cc kgo.CompressionCodec
	switch t.Codec {
	case CodecGzip:
		cc = kgo.GzipCompression().WithLevel(t.Level) // -1 and 1-9 mean the same to klauspost/compress's gzip
	case CodecSnappy:
		cc = kgo.SnappyCompression()
	case CodecLz4:
		cc = kgo.Lz4Compression().WithLevel(lz4Level(t.Level))
	case CodecZstd:
		cc = kgo.ZstdCompression().WithLevel(int(zstd.EncoderLevelFromZstd(t.Level)))
	default:
		return nil, fmt.Errorf("batch: no compressor for codec %d", t.Codec)
	}
	c, err := kgo.DefaultCompressor(cc)
	if err != nil {
		return nil, fmt.Errorf("batch: compressor for %s level %d: %w", CodecName(t.Codec), t.Level, err)
	}
	r.comps[t] = c
	return c, nil
}

// lz4Level maps Kafka's compression.lz4.level (1-17) onto pierrec/lz4's
// levels. Kafka compresses with lz4-java's fast compressor at its default
// level, 9, and with the high-compression one at every other level
// (Lz4BlockOutputStream); pierrec/lz4's high-compression levels stop at 9,
// so Kafka's 10 to 17 take its highest.
func lz4Level(level int) int {
	switch {
	case level == DefaultLz4Level || level < 1:
		return int(lz4.Fast)
	case level > 9:
		return int(lz4.Level9)
	}
	return int(lz4.Level1) << (level - 1) // Level1 to Level9 are successive powers of two
}

// Recompress rebuilds the produced batch h in t's codec, in place: h.Raw
// and the header fields point at the new batch afterwards. The batch is
// built as Kafka's MemoryRecordsBuilder builds it: the base offset, the
// producer id, epoch and base sequence, the partition leader epoch and the
// transactional bit stay; each record keeps its key, value, headers and
// timestamp, with offset deltas 0..n-1 and timestamp deltas from the first
// record's timestamp (the batch's first timestamp); the max timestamp is
// the records' greatest; the CRC is computed again. Records already so
// encoded (every producer writes them so) are compressed as they are.
//
// It returns an error wrapping ErrCorrupt if the records do not decode or
// their count is not the header's.
func (r *Recompressor) Recompress(h *Header, t Target) error {
	body := h.Records
	if codec := h.Compression(); codec != CodecNone {
		var err error
		if body, err = r.dec.Decompress(body, kgo.CompressionCodecType(codec)); err != nil {
			return fmt.Errorf("%w: decompress %s batch: %v", ErrCorrupt, CodecName(codec), err)
		}
	}
	body, firstTs, maxTs, err := canonicalRecords(body, h.NumRecords, h.FirstTimestamp)
	if err != nil {
		return err
	}
	rb := h.RecordBatch
	rb.Attributes = rb.Attributes&^0x07 | int16(t.Codec)
	rb.FirstTimestamp = firstTs
	if rb.Attributes&attrLogAppendTime == 0 {
		rb.MaxTimestamp = maxTs
	}
	var buf *bytes.Buffer
	if t.Codec != CodecNone {
		comp, err := r.compressor(t)
		if err != nil {
			return err
		}
		buf = r.bufs.Get().(*bytes.Buffer)
		buf.Reset()
		defer r.bufs.Put(buf)
		out, used := comp.Compress(buf, body)
		if int8(used) != t.Codec || out == nil {
			return fmt.Errorf("batch: compressing as %s failed (codec %d)", CodecName(t.Codec), used)
		}
		body = out
	}
	rb.Records = body
	raw := rb.AppendTo(make([]byte, 0, HeaderLen+len(body)))
	binary.BigEndian.PutUint32(raw[offLength:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[offCRC:], crc32.Checksum(raw[offAttributes:], crcTable))
	// Parsed again rather than patched, so that every header field
	// (Length, CRC, Records) is the new batch's; Records then points into
	// raw, not at the pooled buffer.
	if err := h.RecordBatch.ReadFrom(raw); err != nil {
		return fmt.Errorf("batch: reread rebuilt batch: %w", err)
	}
	h.Raw = raw
	return nil
}

// canonicalRecords decodes n records and returns them encoded as Kafka's
// builder encodes them (offset deltas 0..n-1, record attributes 0,
// timestamp deltas from the first record's timestamp), with that first
// timestamp and the greatest one. The body comes back unchanged when it
// is so encoded already, which spares a copy of every record.
func canonicalRecords(body []byte, n int32, firstTs int64) (_ []byte, first, maxTs int64, _ error) {
	var recs []kmsg.Record
	canonical := true
	maxTs = noTimestamp
	for rest := body; len(rest) > 0; {
		l, used := binary.Varint(rest)
		if used <= 0 || l < 0 || int64(len(rest)-used) < l {
			return nil, 0, 0, fmt.Errorf("%w: record %d is truncated", ErrCorrupt, len(recs))
		}
		var rec kmsg.Record
		if err := rec.ReadFrom(rest[:used+int(l)]); err != nil {
			return nil, 0, 0, fmt.Errorf("%w: record %d: %v", ErrCorrupt, len(recs), err)
		}
		i := len(recs)
		canonical = canonical && rec.OffsetDelta == int32(i) && rec.Attributes == 0 && (i > 0 || rec.TimestampDelta64 == 0)
		maxTs = max(maxTs, firstTs+rec.TimestampDelta64)
		recs = append(recs, rec)
		rest = rest[used+int(l):]
	}
	if len(recs) != int(n) {
		return nil, 0, 0, fmt.Errorf("%w: the batch holds %d records, its header says %d", ErrCorrupt, len(recs), n)
	}
	if canonical {
		return body, firstTs, maxTs, nil
	}
	first = firstTs + recs[0].TimestampDelta64
	out := make([]byte, 0, len(body))
	for i := range recs {
		rec := &recs[i]
		d := firstTs + rec.TimestampDelta64 - first
		rec.OffsetDelta, rec.Attributes, rec.TimestampDelta64, rec.TimestampDelta = int32(i), 0, d, int32(d)
		// Length is the size after the length varint: encode once with 0
		// (one byte) to measure.
		rec.Length = 0
		rec.Length = int32(len(rec.AppendTo(nil)) - 1)
		out = rec.AppendTo(out)
	}
	return out, first, maxTs, nil
}
