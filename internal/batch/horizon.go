package batch

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kgo"
)

// KIP-534's delete horizon. The log cleaner of a compacted topic keeps a
// tombstone, or a transaction marker whose transaction's data is gone,
// for delete.retention.ms counted from the first pass that could have
// removed it, not from its own timestamp (which a producer sets, and may
// set years back). That pass stamps the horizon, the time from which
// such records may go, into the batch: attribute bit 6 is set and the
// batch's first timestamp becomes the horizon, each record's timestamp
// delta being computed again against it so that readers, which add the
// delta to the first timestamp, still see every record's own timestamp.
// The max timestamp stays the records' greatest. Since Kafka 3.1 brokers
// write such batches and every client reads them.
const (
	offFirstTimestamp = 27
	attrDeleteHorizon = 0x40
)

// DeleteHorizon returns the delete horizon stamped in a stored batch (in
// Unix ms), and whether it has one. A batch without one has not yet been
// rewritten by a cleaner pass that kept a tombstone or a spent marker.
func DeleteHorizon(raw []byte) (int64, bool) {
	if len(raw) < HeaderLen || raw[offAttributes+1]&attrDeleteHorizon == 0 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(raw[offFirstTimestamp:])), true
}

// StampDeleteHorizon returns a stored batch rewritten with every record,
// stamped with the delete horizon horizon, as the log cleaner stamps a
// transaction marker whose transaction's data is gone (Kafka stamps
// control batches the same way as data batches). A batch already stamped
// comes back as it is: the first horizon stamped holds.
func StampDeleteHorizon(raw []byte, dec kgo.Decompressor, comp *Compressors, horizon int64) ([]byte, error) {
	if _, ok := DeleteHorizon(raw); ok {
		return raw, nil
	}
	rb, recs, err := Records(raw, dec)
	if err != nil {
		return nil, err
	}
	return rebuild(rb, recs, comp, horizon, true)
}
