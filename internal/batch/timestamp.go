package batch

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	offMaxTimestamp   = 35
	attrLogAppendTime = 0x08 // the attributes' timestamp-type bit
	noTimestamp       = -1   // RecordBatch.NO_TIMESTAMP
)

// IsLogAppendTime reports whether the batch's timestamps are the broker's
// append time rather than the producer's create times.
func (h *Header) IsLogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// SetLogAppendTime stamps the batch with the broker's append time ts, as
// Kafka does on a topic with message.timestamp.type=LogAppendTime: the
// attributes' timestamp-type bit and the max timestamp change, and since
// the CRC covers both, it is computed again. Readers then take ts as every
// record's timestamp; the records' own deltas stay as the producer wrote
// them.
func SetLogAppendTime(h *Header, ts int64) {
	h.Attributes |= attrLogAppendTime
	h.MaxTimestamp = ts
	binary.BigEndian.PutUint16(h.Raw[offAttributes:], uint16(h.Attributes))
	binary.BigEndian.PutUint64(h.Raw[offMaxTimestamp:], uint64(ts))
	h.CRC = int32(crc32.Checksum(h.Raw[offAttributes:], crcTable))
	binary.BigEndian.PutUint32(h.Raw[offCRC:], uint32(h.CRC))
}

// Timestamp is a record's timestamp as a client reads it: the batch's max
// timestamp in a LogAppendTime batch, the record's own otherwise.
func Timestamp(rb *kmsg.RecordBatch, r *kmsg.Record) int64 {
	if rb.Attributes&attrLogAppendTime != 0 {
		return rb.MaxTimestamp
	}
	return rb.FirstTimestamp + r.TimestampDelta64
}

func saturatingSub(a, b int64) int64 {
	if b > 0 && a < -1<<63+b {
		return -1 << 63
	}
	return a - b
}

func saturatingAdd(a, b int64) int64 {
	if b > 0 && a > 1<<63-1-b {
		return 1<<63 - 1
	}
	return a + b
}
