package batch

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// KV is one record to build: a key and a value (nil value: a tombstone),
// and its headers (the audit trail's chain link).
type KV struct {
	Key, Value []byte
	Headers    []kmsg.Header
}

// Build encodes records as one uncompressed magic-v2 batch with base
// offset 0 (the log assigns the real one), no producer id, every record
// stamped with timestamp ts (ms), and a correct CRC-32C, so the broker's
// own records pass the same Split validation as a client's.
func Build(recs []KV, ts int64) []byte {
	var body []byte
	for i, kv := range recs {
		r := kmsg.Record{OffsetDelta: int32(i), Key: kv.Key, Value: kv.Value, Headers: kv.Headers}
		// Length is the size of the record after the length varint;
		// encode once with 0 to measure (a zero varint is one byte).
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		body = r.AppendTo(body)
	}
	rb := kmsg.RecordBatch{
		Magic:                2,
		PartitionLeaderEpoch: -1,
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       ts,
		MaxTimestamp:         ts,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(recs)),
		Records:              body,
	}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[offLength:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[offCRC:], crc32.Checksum(raw[offAttributes:], crcTable))
	return raw
}
