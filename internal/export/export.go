// Package export is `vigil export`: jobs that deliver the records of
// topics to a sink outside Kafka (a search index, a SIEM, a chat
// channel), each job a consumer group of its own. The sinks live in
// subpackages (elastic, hec, webhook) and implement Sink; this package
// is what they share: the consumer loop, batching, the retry and
// backpressure policy, dead letters, offsets, metrics and the backfill of
// a time range.
//
// # Delivery
//
// At least once, made idempotent where the sink allows it. A job polls a
// batch (rebalances held back meanwhile), hands it to its sink in
// requests of at most MaxBatchRecords / MaxBatchBytes, and commits the
// batch's offsets only once every record is accounted for: acknowledged
// by the sink (for Splunk with indexer acknowledgement, once the indexer
// says so), or written to the dead-letter topic with the reason. A crash
// anywhere before the commit makes the next owner of the partitions send
// the batch again. The requests of a batch go MaxInFlight at a time, in
// lanes of consecutive records delivered side by side; the batch is
// committed once every lane is done, so no partition's commit passes a
// record the sink has not acknowledged. Every record carries an id that
// is a function of its position alone, "topic:partition:offset"
// (Doc.ID), so a sink that keys documents by id (Elasticsearch,
// OpenSearch) ends up with each record exactly once however often it was
// sent; sinks that cannot (Splunk HEC, webhooks) get the id as a field or
// header to deduplicate on.
//
// # Failures
//
// A sink answers each record Delivered, Retry or Dead. Retry (HTTP 429
// and 5xx, per item or for the whole request, and transport errors) is
// sent again after a backoff that honours Retry-After; while a job
// retries it does not poll, so franz-go stops fetching once its buffer
// is full: a slow sink slows the consumer and nothing is dropped. A wait
// holds back every lane of the job, not only the one told to wait. Dead
// (any other 4xx of an item; a request the sink refuses as malformed is
// split in halves until the record it refuses is alone) goes to the
// dead-letter topic with its reason in a header. A request refused for
// its credentials (401, 403) or a missing endpoint (404) is retried too,
// with the longest backoff and an error logged: an operator's mistake
// must not drop data.
package export

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Sink delivers documents to one destination. Deliver is called by up to
// JobConfig.MaxInFlight goroutines at once.
type Sink interface {
	// Deliver sends docs as one request (or a few, as the sink needs) and
	// fills res, one Result per doc, in order. A non-nil error means the
	// request as a whole failed and res is not read; a *RequestError says
	// how (status, Retry-After), anything else is a transport error and
	// is retried.
	Deliver(ctx context.Context, docs []*Doc, res []Result) error
	// Close releases the sink's connections.
	Close() error
}

// InFlightDefaulter is a sink with a default of its own for
// JobConfig.MaxInFlight: a webhook, whose rate limit bounds it anyway and
// whose receivers read records in order, takes one request at a time.
type InFlightDefaulter interface {
	DefaultMaxInFlight() int
}

// Outcome is what became of one document.
type Outcome uint8

const (
	// Delivered: the sink has the document (or already had it).
	Delivered Outcome = iota
	// Retry: send it again later (throttled, or a transient failure).
	Retry
	// Dead: the sink refuses it for good; it goes to the dead-letter
	// topic with Reason.
	Dead
)

// Result is one document's outcome in a Deliver call.
type Result struct {
	Outcome Outcome
	// Reason says why a document is Dead or retried ("429
	// es_rejected_execution_exception: ...").
	Reason string
	// RetryAfter is the sink's own wait for a Retry, if it named one.
	RetryAfter time.Duration
	// Throttled marks a Retry the sink asked for because it is
	// overloaded (429, 503), counted apart from errors.
	Throttled bool
}

// Doc is one record as the sinks see it: its bytes and the few OCSF
// attributes they name indexes and sourcetypes by.
type Doc struct {
	Record *kgo.Record
	// ID is "topic:partition:offset": the same for every delivery of the
	// record, and different for every other record of the cluster.
	ID string
	// ClassUID and ClassName are the event's OCSF class_uid and
	// class_name (ClassUID -1 and ClassName "" when it has none).
	ClassUID  int
	ClassName string
	// Time is the event's OCSF time (epoch milliseconds), else the
	// record's timestamp.
	Time time.Time
}

// Value is the record's value, the document's JSON.
func (d *Doc) Value() []byte { return d.Record.Value }

// Class is the class as a name fit for an index or a sourcetype:
// class_name in lower case with underscores ("detection_finding"), else
// "class_<uid>", else "unknown".
func (d *Doc) Class() string {
	if d.ClassName != "" {
		return slug(d.ClassName)
	}
	if d.ClassUID >= 0 {
		return "class_" + strconv.Itoa(d.ClassUID)
	}
	return "unknown"
}

// NewDoc reads the record's class and time. A value that is not a JSON
// object is an error: the sinks all take JSON documents, and such a
// record goes to the dead-letter topic.
func NewDoc(r *kgo.Record) (*Doc, error) {
	d := &Doc{Record: r, ID: RecordID(r.Topic, r.Partition, r.Offset), ClassUID: -1, Time: r.Timestamp}
	v := bytes.TrimLeft(r.Value, " \t\r\n")
	if len(v) == 0 || v[0] != '{' {
		return d, fmt.Errorf("value is not a JSON object")
	}
	// The sinks embed the value as it is, so it must be valid JSON; the
	// three fields are then picked from the top level without decoding
	// the rest, which a full decode spent most of an export's CPU on.
	// class_uid and time are read leniently: a value of another type
	// leaves the default, it does not make the event invalid.
	if !gjson.ValidBytes(v) {
		return d, fmt.Errorf("value is not a JSON object: invalid JSON")
	}
	head := gjson.GetManyBytes(v, "class_uid", "class_name", "time")
	if head[0].Type == gjson.Number {
		if n, err := strconv.ParseInt(head[0].Raw, 10, 64); err == nil && n >= 0 {
			d.ClassUID = int(n)
		}
	}
	if head[1].Type == gjson.String {
		d.ClassName = head[1].Str
	}
	if head[2].Type == gjson.Number {
		if ms, err := strconv.ParseFloat(head[2].Raw, 64); err == nil && ms > 0 {
			d.Time = time.UnixMilli(int64(ms))
		}
	}
	return d, nil
}

// RecordID is the id of the record at offset of topic's partition.
func RecordID(topic string, partition int32, offset int64) string {
	return topic + ":" + strconv.FormatInt(int64(partition), 10) + ":" + strconv.FormatInt(offset, 10)
}

// slug lowers s and keeps letters, digits and underscores, other runs of
// characters becoming one underscore.
func slug(s string) string {
	var b strings.Builder
	under := false
	for _, c := range strings.ToLower(s) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
			under = false
		} else if !under && b.Len() > 0 {
			b.WriteByte('_')
			under = true
		}
	}
	return strings.TrimRight(b.String(), "_")
}
