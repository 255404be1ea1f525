package batch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Compressors compresses a record body with a batch's codec; a cleaner
// keeps one, since kgo's compressors pool their buffers.
type Compressors struct {
	byCodec [5]kgo.Compressor
}

func (c *Compressors) compress(codec int8, body []byte) ([]byte, error) {
	if codec <= 0 || int(codec) >= len(c.byCodec) {
		return nil, fmt.Errorf("%w: unknown compression codec %d", ErrCorrupt, codec)
	}
	comp := c.byCodec[codec]
	if comp == nil {
		var cc kgo.CompressionCodec
		switch codec {
		case 1:
			cc = kgo.GzipCompression()
		case 2:
			cc = kgo.SnappyCompression()
		case 3:
			cc = kgo.Lz4Compression()
		case 4:
			cc = kgo.ZstdCompression()
		}
		var err error
		if comp, err = kgo.DefaultCompressor(cc); err != nil {
			return nil, fmt.Errorf("batch: compressor for codec %d: %w", codec, err)
		}
		c.byCodec[codec] = comp
	}
	var buf bytes.Buffer
	out, used := comp.Compress(&buf, body)
	if int8(used) != codec || out == nil {
		return nil, fmt.Errorf("batch: codec %d compressed as %d", codec, used)
	}
	return bytes.Clone(out), nil
}

// NoStamp is Filter's stamp argument that never stamps a delete horizon.
const NoStamp = -1

// Filter rewrites a stored batch keeping only the records keep accepts
// (keep gets the batch too: a record's offset is the batch's FirstOffset
// plus its OffsetDelta), as Kafka's log cleaner does: the base offset, the
// last offset (so the producer's last sequence survives), the producer
// fields, the leader epoch and the attributes stay; kept records keep
// their offsets and timestamps; the codec is the batch's own. It returns
// raw itself when every record is kept and nil when none is. Control
// batches are returned as they are.
//
// If a kept record is a tombstone and the batch holds no delete horizon
// yet, the batch is stamped with stamp (KIP-534; see DeleteHorizon), so a
// batch is rewritten for that alone; a batch already stamped keeps its
// horizon. stamp NoStamp never stamps.
func Filter(raw []byte, dec kgo.Decompressor, comp *Compressors, stamp int64, keep func(rb *kmsg.RecordBatch, r *kmsg.Record) bool) ([]byte, error) {
	rb, recs, err := Records(raw, dec)
	if err != nil {
		return nil, err
	}
	if rb.Attributes&0x20 != 0 {
		return raw, nil
	}
	kept := recs[:0]
	tombstone := false
	for i := range recs {
		if keep(&rb, &recs[i]) {
			kept = append(kept, recs[i])
			tombstone = tombstone || recs[i].Value == nil
		}
	}
	stamping := tombstone && stamp != NoStamp && rb.Attributes&attrDeleteHorizon == 0
	switch {
	case len(kept) == 0:
		return nil, nil
	case len(kept) == int(rb.NumRecords) && !stamping:
		return raw, nil
	}
	return rebuild(rb, kept, comp, stamp, stamping)
}

// rebuild encodes rb with the records recs, its max timestamp theirs (a
// LogAppendTime batch keeps its own, which readers take as every
// record's). With stamp, the batch gets the delete horizon horizon: the
// attribute bit, horizon as the first timestamp, and each record's delta
// from it, so its timestamp (first timestamp plus delta) is unchanged.
// The CRC covers all of these and is computed again.
func rebuild(rb kmsg.RecordBatch, recs []kmsg.Record, comp *Compressors, horizon int64, stamp bool) ([]byte, error) {
	base := rb.FirstTimestamp
	if stamp {
		base = horizon
	}
	maxTs := int64(noTimestamp)
	var body []byte
	for i := range recs {
		r := recs[i]
		ts := rb.FirstTimestamp + r.TimestampDelta64
		maxTs = max(maxTs, ts)
		if base != rb.FirstTimestamp {
			d := ts - base
			// kmsg writes TimestampDelta when TimestampDelta64 is 0.
			r.TimestampDelta64, r.TimestampDelta = d, int32(d)
			// Length counts what follows it: measure with a one-byte 0.
			r.Length = 0
			r.Length = int32(len(r.AppendTo(nil)) - 1)
		}
		body = r.AppendTo(body)
	}
	if codec := int8(rb.Attributes & 0x07); codec != 0 {
		var err error
		if body, err = comp.compress(codec, body); err != nil {
			return nil, err
		}
	}
	rb.Records = body
	rb.NumRecords = int32(len(recs))
	if rb.Attributes&attrLogAppendTime == 0 {
		rb.MaxTimestamp = maxTs
	}
	if stamp {
		rb.Attributes |= attrDeleteHorizon
		rb.FirstTimestamp = horizon
	}
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[offLength:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], crcTable))
	return out, nil
}
