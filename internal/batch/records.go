package batch

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// RecordRules is what a topic asks of each record of a produced batch,
// the per-record part of Kafka's LogValidator (Kafka 3.9: validateKey and
// validateTimestamp, called for every record of the batch).
type RecordRules struct {
	// Topic and Partition name the partition in messages, as Kafka does.
	Topic     string
	Partition int32
	// Keyed: the topic is compacted, so every record needs a key.
	Keyed bool
	// LogAppendTime: the topic stamps batches with the broker's time, so a
	// producer may not (Kafka refuses a batch whose timestamp type the
	// producer set to LogAppendTime with INVALID_TIMESTAMP).
	LogAppendTime bool
	// Bounded: on a CreateTime topic, records must be stamped within
	// [Now-Before, Now+After] (message.timestamp.before.max.ms and
	// .after.max.ms); records without a timestamp (-1) are exempt.
	Bounded            bool
	Now, Before, After int64
}

// RecordError is one record's failure in a refused batch: its index in
// the batch (KIP-467's batch_index, the record's relative offset) and
// why. Timestamp marks an INVALID_TIMESTAMP failure, else the record is
// INVALID_RECORD.
type RecordError struct {
	Index     int32
	Message   string
	Timestamp bool
}

// String renders a record error as the batch-level message quotes it.
func (e RecordError) String() string {
	return fmt.Sprintf("RecordError(batchIndex=%d, message='%s')", e.Index, e.Message)
}

// NeedsRecords reports whether rules must decode the batch's records; a
// batch that needs nothing checked keeps the produce path free of
// decompression.
func (r RecordRules) NeedsRecords(h *Header) bool {
	return r.Keyed || h.IsLogAppendTime() || (r.Bounded && !r.LogAppendTime)
}

// CheckRecords applies rules to every record of the batch and returns
// the failures, at most one per record and in batch order, as Kafka's
// validateRecord does: a missing key is reported before a bad timestamp,
// and every record is checked, so that a client learns of all the bad
// records at once and can resend the others (KIP-467). The error wraps
// ErrCorrupt if the records do not decode.
func CheckRecords(h *Header, dec kgo.Decompressor, r RecordRules) ([]RecordError, error) {
	if !r.NeedsRecords(h) {
		return nil, nil
	}
	rb, recs, err := Records(h.Raw, dec)
	if err != nil {
		return nil, err
	}
	if len(recs) != int(rb.NumRecords) {
		return nil, fmt.Errorf("%w: the batch holds %d records, its header says %d", ErrCorrupt, len(recs), rb.NumRecords)
	}
	lo, hi := saturatingSub(r.Now, r.Before), saturatingAdd(r.Now, r.After)
	var errs []RecordError
	for i := range recs {
		rec := &recs[i]
		switch ts := Timestamp(&rb, rec); {
		case r.Keyed && rec.Key == nil:
			errs = append(errs, RecordError{Index: int32(i), Message: fmt.Sprintf(
				"Compacted topic cannot accept message without key in topic partition %s-%d.", r.Topic, r.Partition)})
		// Kafka's validateTimestamp: the bounds on a CreateTime topic for
		// a record with a timestamp; otherwise a batch the producer
		// stamped LogAppendTime is refused.
		case !r.LogAppendTime && ts != noTimestamp:
			if r.Bounded && (ts < lo || ts > hi) {
				errs = append(errs, RecordError{Index: int32(i), Timestamp: true, Message: fmt.Sprintf(
					"Timestamp %d of message with offset %d is out of range. The timestamp should be within [%d, %d]",
					ts, rec.OffsetDelta, lo, hi)})
			}
		case h.IsLogAppendTime():
			errs = append(errs, RecordError{Index: int32(i), Timestamp: true, Message: fmt.Sprintf(
				"Invalid timestamp type in the message with offset %d. Producer should not set timestamp type to LogAppendTime.", rec.OffsetDelta)})
		}
	}
	return errs, nil
}

// RejectionMessage is the batch-level error message for record errors,
// worded as Kafka's RecordValidationException, and whether the batch
// fails with INVALID_TIMESTAMP (some record has a bad timestamp, Kafka's
// processRecordErrors) rather than INVALID_RECORD.
func RejectionMessage(errs []RecordError) (msg string, timestamp bool) {
	for _, e := range errs {
		if e.Timestamp {
			return "One or more records have been rejected due to invalid timestamp", true
		}
	}
	shown := make([]string, 0, 3)
	for _, e := range errs[:min(len(errs), 3)] {
		shown = append(shown, e.String())
	}
	return fmt.Sprintf("One or more records have been rejected due to %d record errors in total, and only showing the first three errors at most: [%s]",
		len(errs), strings.Join(shown, ", ")), false
}
