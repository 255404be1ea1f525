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

// Filter rewrites a stored batch keeping only the records keep accepts
// (keep gets the batch too: a record's offset is the batch's FirstOffset
// plus its OffsetDelta), as Kafka's log cleaner does: the base offset, the
// last offset (so the producer's last sequence survives), the producer
// fields, the leader epoch and the attributes stay; kept records keep
// their offsets and timestamps; the codec is the batch's own. It returns
// raw itself when every record is kept and nil when none is. Control
// batches are returned as they are.
func Filter(raw []byte, dec kgo.Decompressor, comp *Compressors, keep func(rb *kmsg.RecordBatch, r *kmsg.Record) bool) ([]byte, error) {
	rb, recs, err := Records(raw, dec)
	if err != nil {
		return nil, err
	}
	if rb.Attributes&0x20 != 0 {
		return raw, nil
	}
	kept := recs[:0]
	maxTs := int64(noTimestamp)
	for i := range recs {
		if keep(&rb, &recs[i]) {
			kept = append(kept, recs[i])
			maxTs = max(maxTs, rb.FirstTimestamp+recs[i].TimestampDelta64)
		}
	}
	switch len(kept) {
	case int(rb.NumRecords):
		return raw, nil
	case 0:
		return nil, nil
	}
	var body []byte
	for i := range kept {
		body = kept[i].AppendTo(body)
	}
	if codec := int8(rb.Attributes & 0x07); codec != 0 {
		if body, err = comp.compress(codec, body); err != nil {
			return nil, err
		}
	}
	rb.Records = body
	rb.NumRecords = int32(len(kept))
	if rb.Attributes&attrLogAppendTime == 0 {
		rb.MaxTimestamp = maxTs
	}
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[offLength:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], crcTable))
	return out, nil
}
