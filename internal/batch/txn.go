package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Attribute bits of a transaction's batches.
const (
	attrTransactional = 0x10
	attrControl       = 0x20
)

// Control record types (the key's second int16), as Kafka's
// ControlRecordType.
const (
	controlAbort  = 0
	controlCommit = 1
)

// BuildTxn encodes records as one uncompressed transactional batch of a
// producer (its id, epoch and the sequence of the first record), stamped
// ts, for the broker's own transactional writes (a transaction's offsets
// in __consumer_offsets).
func BuildTxn(recs []KV, ts int64, producerID int64, epoch int16, firstSeq int32) []byte {
	raw := Build(recs, ts)
	setProducer(raw, attrTransactional, producerID, epoch, firstSeq)
	return raw
}

// BuildMarker encodes a transaction marker: the control batch a
// coordinator appends to every partition of a transaction when it ends,
// commit or abort, as Kafka writes it (one record; key version 0 and the
// type, value version 0 and the coordinator epoch; sequence -1).
func BuildMarker(producerID int64, epoch int16, commit bool, coordinatorEpoch int32, ts int64) []byte {
	typ := int16(controlAbort)
	if commit {
		typ = controlCommit
	}
	key := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 0), uint16(typ))
	value := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(nil, 0), uint32(coordinatorEpoch))
	raw := Build([]KV{{Key: key, Value: value}}, ts)
	setProducer(raw, attrTransactional|attrControl, producerID, epoch, -1)
	return raw
}

// setProducer stamps a built batch with attributes and a producer, and
// recomputes its CRC.
func setProducer(raw []byte, attrs int16, producerID int64, epoch int16, firstSeq int32) {
	binary.BigEndian.PutUint16(raw[offAttributes:], uint16(attrs))
	binary.BigEndian.PutUint64(raw[offProducerID:], uint64(producerID))
	binary.BigEndian.PutUint16(raw[offProducerEpoch:], uint16(epoch))
	binary.BigEndian.PutUint32(raw[offFirstSequence:], uint32(firstSeq))
	binary.BigEndian.PutUint32(raw[offCRC:], crc32.Checksum(raw[offAttributes:], crcTable))
}

// Header positions of the producer fields (v2).
const (
	offProducerID    = 43
	offProducerEpoch = 51
	offFirstSequence = 53
)

// ErrNotMarker is returned by ParseMarker for a batch that is not a
// transaction marker.
var ErrNotMarker = errors.New("batch: not a transaction marker")

// Marker is what a transaction marker says.
type Marker struct {
	Commit           bool
	CoordinatorEpoch int32
}

// ParseMarker reads the marker of a control batch (rb with its decoded
// records, as Records returns them).
func ParseMarker(rb kmsg.RecordBatch, recs []kmsg.Record) (Marker, error) {
	if rb.Attributes&attrControl == 0 || len(recs) != 1 {
		return Marker{}, ErrNotMarker
	}
	k, v := recs[0].Key, recs[0].Value
	if len(k) < 4 {
		return Marker{}, fmt.Errorf("%w: control key of %d bytes", ErrNotMarker, len(k))
	}
	var m Marker
	switch int16(binary.BigEndian.Uint16(k[2:])) {
	case controlAbort:
	case controlCommit:
		m.Commit = true
	default:
		return Marker{}, fmt.Errorf("%w: control type %d", ErrNotMarker, int16(binary.BigEndian.Uint16(k[2:])))
	}
	if len(v) >= 6 {
		m.CoordinatorEpoch = int32(binary.BigEndian.Uint32(v[2:]))
	}
	return m, nil
}
