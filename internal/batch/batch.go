// Package batch validates Kafka record batches (magic v2) on the produce
// path and rewrites the broker-owned header fields. Batch bytes are stored
// as the client sent them: no decompression, no re-encoding, unless the
// topic's compression.type names another codec than the batch's
// (Recompressor, as Kafka's LogValidator rebuilds it) or the log cleaner
// of a compacted topic rewrites them (Filter, and StampDeleteHorizon for
// KIP-534's delete horizon).
package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/producer"
)

// HeaderLen is the fixed size of a v2 batch header (through NumRecords).
const HeaderLen = 61

// Fixed positions in the v2 header.
const (
	offBaseOffset  = 0
	offLength      = 8
	offLeaderEpoch = 12
	offMagic       = 16
	offCRC         = 17
	offAttributes  = 21
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Errors, mapped by the broker to Kafka error codes.
var (
	ErrCorrupt = errors.New("batch: corrupt") // CORRUPT_MESSAGE
	ErrInvalid = errors.New("batch: invalid") // INVALID_RECORD
)

// Header is the parsed header of one batch, plus its bytes.
type Header struct {
	kmsg.RecordBatch
	Raw []byte // the whole batch: header and records
}

// LastOffset is the offset of the batch's last record.
func (h *Header) LastOffset() int64 { return h.FirstOffset + int64(h.LastOffsetDelta) }

// Compression is the codec from the attributes (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
func (h *Header) Compression() int8 { return int8(h.Attributes & 0x07) }

// IsTransactional and IsControl follow the attribute bits.
func (h *Header) IsTransactional() bool { return h.Attributes&0x10 != 0 }
func (h *Header) IsControl() bool       { return h.Attributes&0x20 != 0 }

// Split validates a produce request's records field and returns its
// batches. Every batch must be whole, magic 2, with a correct CRC-32C;
// anything else is an error wrapping ErrCorrupt or ErrInvalid.
func Split(records []byte) ([]Header, error) { return splitBatches(records, false) }

// SplitCopied is Split for batches copied from another cluster's log (a
// mirror's appends): framing, magic and CRC are checked as Split checks
// them, but a batch may hold fewer records than its offset span, or none,
// as compaction leaves them (Kafka keeps lastOffsetDelta, and empty
// batches that hold producer state), and its records' offset deltas need
// only rise; control batches are allowed.
func SplitCopied(records []byte) ([]Header, error) { return splitBatches(records, true) }

func splitBatches(records []byte, copied bool) ([]Header, error) {
	if len(records) == 0 {
		return nil, fmt.Errorf("%w: no record batch in request", ErrInvalid)
	}
	var out []Header
	for len(records) > 0 {
		if len(records) < HeaderLen {
			return nil, fmt.Errorf("%w: %d trailing bytes are shorter than a batch header", ErrCorrupt, len(records))
		}
		length := int32(binary.BigEndian.Uint32(records[offLength:]))
		if length < HeaderLen-12 || int64(length)+12 > int64(len(records)) {
			return nil, fmt.Errorf("%w: batch length %d does not fit the %d bytes left", ErrCorrupt, length, len(records))
		}
		raw := records[:12+int(length)]
		records = records[len(raw):]
		if magic := int8(raw[offMagic]); magic != 2 {
			return nil, fmt.Errorf("%w: record batch magic %d, only v2 is supported", ErrInvalid, magic)
		}
		var h Header
		if err := h.RecordBatch.ReadFrom(raw); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if got := crc32.Checksum(raw[offAttributes:], crcTable); got != uint32(h.CRC) {
			return nil, fmt.Errorf("%w: CRC-32C mismatch (header %08x, computed %08x)", ErrCorrupt, uint32(h.CRC), got)
		}
		switch {
		case copied && (h.NumRecords < 0 || h.LastOffsetDelta < h.NumRecords-1):
			return nil, fmt.Errorf("%w: %d records with last offset delta %d", ErrInvalid, h.NumRecords, h.LastOffsetDelta)
		case !copied && (h.NumRecords <= 0 || h.LastOffsetDelta != h.NumRecords-1):
			return nil, fmt.Errorf("%w: %d records with last offset delta %d", ErrInvalid, h.NumRecords, h.LastOffsetDelta)
		}
		if h.Compression() > 4 {
			return nil, fmt.Errorf("%w: unknown compression codec %d", ErrInvalid, h.Compression())
		}
		if h.Compression() == 0 && !h.IsControl() {
			if err := checkRecords(h.Records, h.NumRecords, copied, h.LastOffsetDelta); err != nil {
				return nil, err
			}
		}
		h.Raw = raw
		out = append(out, h)
	}
	return out, nil
}

// checkRecords decodes uncompressed records far enough to prove the count
// and the offset deltas; compressed batches are checked by their CRC only,
// since decompressing every batch would cost the produce path its speed.
//
// Copied batches (SplitCopied) need only deltas that rise, up to last.
func checkRecords(b []byte, n int32, copied bool, last int32) error {
	prev := int32(-1)
	for i := int32(0); i < n; i++ {
		l, used := binary.Varint(b)
		if used <= 0 || l < 0 || int64(len(b)-used) < l {
			return fmt.Errorf("%w: record %d of %d is truncated", ErrInvalid, i, n)
		}
		var r kmsg.Record
		if err := r.ReadFrom(b[:used+int(l)]); err != nil {
			return fmt.Errorf("%w: record %d: %v", ErrInvalid, i, err)
		}
		switch {
		case copied && (r.OffsetDelta <= prev || r.OffsetDelta > last):
			return fmt.Errorf("%w: record %d has offset delta %d after %d (last %d)", ErrInvalid, i, r.OffsetDelta, prev, last)
		case !copied && r.OffsetDelta != i:
			return fmt.Errorf("%w: record %d has offset delta %d", ErrInvalid, i, r.OffsetDelta)
		}
		prev = r.OffsetDelta
		b = b[used+int(l):]
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d bytes after the last record", ErrInvalid, len(b))
	}
	return nil
}

// Producer is the producer view of a batch header.
func (h *Header) Producer() producer.Batch {
	return producer.Batch{ID: h.ProducerID, Epoch: h.ProducerEpoch, FirstSeq: h.FirstSequence, LastDelta: h.LastOffsetDelta,
		Transactional: h.IsTransactional()}
}

// Producer is the producer view of a stored data batch (see
// ProducerMarker for a control batch).
func (i Info) Producer() producer.Batch {
	return producer.Batch{ID: i.ProducerID, Epoch: i.ProducerEpoch, FirstSeq: i.BaseSequence, LastDelta: int32(i.LastOffset - i.BaseOffset),
		Transactional: i.IsTransactional()}
}

// IsTransactional and IsControl follow the attribute bits.
func (i Info) IsTransactional() bool { return i.Attributes&attrTransactional != 0 }
func (i Info) IsControl() bool       { return i.Attributes&attrControl != 0 }

// Assign rewrites the broker-owned header fields, which the CRC does not
// cover, in place: the base offset and the partition leader epoch.
func Assign(raw []byte, baseOffset int64, leaderEpoch int32) {
	binary.BigEndian.PutUint64(raw[offBaseOffset:], uint64(baseOffset))
	binary.BigEndian.PutUint32(raw[offLeaderEpoch:], uint32(leaderEpoch))
}

// Info is what readers need from a stored batch's header.
type Info struct {
	BaseOffset   int64
	LastOffset   int64
	MaxTimestamp int64
	Size         int
	// The idempotent producer fields (ProducerID -1 when not idempotent).
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
	Attributes    int16
}

// Peek reads the header of the stored batch at the start of b without
// checking its CRC (stored batches were checked on produce).
func Peek(b []byte) (Info, error) {
	if len(b) < HeaderLen {
		return Info{}, fmt.Errorf("%w: %d bytes are shorter than a batch header", ErrCorrupt, len(b))
	}
	length := int(int32(binary.BigEndian.Uint32(b[offLength:])))
	if length < HeaderLen-12 || length+12 > len(b) {
		return Info{}, fmt.Errorf("%w: stored batch length %d exceeds %d bytes", ErrCorrupt, length, len(b))
	}
	base := int64(binary.BigEndian.Uint64(b[offBaseOffset:]))
	delta := int32(binary.BigEndian.Uint32(b[23:]))
	maxTs := int64(binary.BigEndian.Uint64(b[35:]))
	return Info{BaseOffset: base, LastOffset: base + int64(delta), MaxTimestamp: maxTs, Size: length + 12,
		ProducerID:    int64(binary.BigEndian.Uint64(b[43:])),
		ProducerEpoch: int16(binary.BigEndian.Uint16(b[51:])),
		BaseSequence:  int32(binary.BigEndian.Uint32(b[53:])),
		Attributes:    int16(binary.BigEndian.Uint16(b[offAttributes:])),
	}, nil
}

// Records decodes the records of a batch, decompressing if needed. The
// rare paths use it (ListOffsets by timestamp), and the produce path only
// for the topics whose rules need each record checked (CheckRecords);
// fetch never does.
func Records(raw []byte, dec kgo.Decompressor) (kmsg.RecordBatch, []kmsg.Record, error) {
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(raw); err != nil {
		return rb, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	body := rb.Records
	if codec := rb.Attributes & 0x07; codec != 0 {
		var err error
		body, err = dec.Decompress(body, kgo.CompressionCodecType(codec))
		if err != nil {
			return rb, nil, fmt.Errorf("%w: decompress: %v", ErrCorrupt, err)
		}
	}
	recs := make([]kmsg.Record, 0, rb.NumRecords)
	for len(body) > 0 {
		l, used := binary.Varint(body)
		if used <= 0 || l < 0 || int64(len(body)-used) < l {
			return rb, nil, fmt.Errorf("%w: truncated record", ErrCorrupt)
		}
		var r kmsg.Record
		if err := r.ReadFrom(body[:used+int(l)]); err != nil {
			return rb, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		recs = append(recs, r)
		body = body[used+int(l):]
	}
	return rb, recs, nil
}

// ProducerMarker reads the marker of a stored control batch as the
// producer state applies it (recovery, uploads): rare paths, so it
// decodes the record. A control batch that is not a transaction marker
// is an error wrapping ErrNotMarker.
func ProducerMarker(raw []byte) (producer.Marker, error) {
	if len(raw) < HeaderLen {
		return producer.Marker{}, fmt.Errorf("%w: %d bytes are shorter than a batch header", ErrCorrupt, len(raw))
	}
	if raw[offAttributes+1]&0x07 != 0 {
		return producer.Marker{}, fmt.Errorf("%w: compressed control batch", ErrNotMarker) // Kafka never compresses them
	}
	rb, recs, err := Records(raw, nil)
	if err != nil {
		return producer.Marker{}, err
	}
	m, err := ParseMarker(rb, recs)
	if err != nil {
		return producer.Marker{}, err
	}
	return producer.Marker{ID: rb.ProducerID, Epoch: rb.ProducerEpoch, Commit: m.Commit, CoordinatorEpoch: m.CoordinatorEpoch}, nil
}
