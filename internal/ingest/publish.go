package ingest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/parse"
)

// errBusy means the memory budget is full; HTTP answers 503, UDP counts
// a drop.
var errBusy = errors.New("ingest: memory budget full")

// deadLetterRawMax caps the raw bytes a dead-letter record carries, so a
// 10 MiB garbage line still fits the broker's max.message.bytes; the
// envelope says how long the original was.
const deadLetterRawMax = 64 << 10

// origin says where a piece of input came from, for dead-letter records.
type origin struct {
	listener string // "syslog-tcp", "syslog-udp", "http", "hec"
	remote   string // the peer's host
}

// publisher turns parse results into records and hands them to the
// producer within the budget.
type publisher struct {
	cl     *kgo.Client
	topics map[int]string // class_uid -> topic
	dlq    string
	budget *Budget
	stats  *Stats
	log    *slog.Logger
	// ctx outlives requests: a record accepted under a request must not be
	// failed because its request ended.
	ctx context.Context
	now func() time.Time
}

type deadLetter struct {
	Reason     string `json:"reason"`
	Source     string `json:"source"`
	Listener   string `json:"listener"`
	Remote     string `json:"remote,omitempty"`
	ReceivedAt string `json:"received_at"`
	Raw        string `json:"raw,omitempty"`
	RawBase64  string `json:"raw_base64,omitempty"`
	RawBytes   int    `json:"raw_bytes"`
	Truncated  bool   `json:"truncated,omitempty"`
}

// deadLetterRecord builds the dead-letter record for a piece that did not
// parse: a JSON envelope, with reason and source repeated as headers so
// consumers can route without decoding.
func (p *publisher) deadLetterRecord(reason, source string, raw []byte, o origin) *kgo.Record {
	return p.deadLetterSized(reason, source, raw, len(raw), o)
}

// deadLetterSized is deadLetterRecord for a piece of which only a prefix
// was kept; total is the original length.
func (p *publisher) deadLetterSized(reason, source string, raw []byte, total int, o origin) *kgo.Record {
	d := deadLetter{
		Reason: reason, Source: source, Listener: o.listener, Remote: o.remote,
		ReceivedAt: p.now().UTC().Format(time.RFC3339Nano), RawBytes: total, Truncated: total > len(raw),
	}
	if len(raw) > deadLetterRawMax {
		raw, d.Truncated = raw[:deadLetterRawMax], true
	}
	if !utf8.Valid(raw) && utf8.Valid(raw[:max(0, len(raw)-utf8.UTFMax)]) && d.Truncated {
		// A cut through a multi-byte character is not invalid input.
		raw = []byte(strings.ToValidUTF8(string(raw), ""))
	}
	if utf8.Valid(raw) {
		d.Raw = string(raw)
	} else {
		d.RawBase64 = base64.StdEncoding.EncodeToString(raw)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // raw syslog lines start with "<PRI>"
	_ = enc.Encode(d)        // only strings, ints and a bool: cannot fail
	v := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return &kgo.Record{
		Topic: p.dlq,
		Key:   []byte(o.remote),
		Value: v,
		Headers: []kgo.RecordHeader{
			{Key: "reason", Value: []byte(reason)},
			{Key: "source", Value: []byte(source)},
			{Key: "listener", Value: []byte(o.listener)},
		},
	}
}

func recordSize(r *kgo.Record) int64 {
	n := len(r.Key) + len(r.Value) + 64 // per-record overhead in kgo's buffers
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}

// records converts results to records.
func (p *publisher) records(results []parse.Result, o origin) []*kgo.Record {
	recs := make([]*kgo.Record, 0, len(results))
	for _, r := range results {
		if r.Err != nil {
			recs = append(recs, p.deadLetterRecord(r.Err.Error(), r.Source, r.Raw, o))
			continue
		}
		topic, ok := p.topics[r.Event.ClassUID()]
		v, err := r.Event.Marshal()
		if !ok || err != nil {
			reason := fmt.Sprintf("no topic for class_uid %d", r.Event.ClassUID())
			if err != nil {
				reason = "encode OCSF event: " + err.Error()
			}
			recs = append(recs, p.deadLetterRecord(reason, r.Source, r.Raw, o))
			continue
		}
		recs = append(recs, &kgo.Record{
			Topic: topic,
			Key:   []byte(r.Host),
			Value: v,
			Headers: []kgo.RecordHeader{
				{Key: "source", Value: []byte(r.Source)},
				{Key: "class_uid", Value: []byte(strconv.Itoa(r.Event.ClassUID()))},
			},
		})
	}
	return recs
}

// publish accepts results: it reserves their bytes (waiting when wait is
// set, else failing with errBusy), then produces them. The bytes are
// released per record once it is acknowledged or dead-lettered.
func (p *publisher) publish(ctx context.Context, results []parse.Result, o origin, wait bool) error {
	return p.send(ctx, p.records(results, o), o, wait)
}

// send is publish for records already built. Callers count refusals: what
// a refusal means differs (HTTP 503, UDP drop).
func (p *publisher) send(ctx context.Context, recs []*kgo.Record, o origin, wait bool) error {
	if len(recs) == 0 {
		return nil
	}
	var total int64
	sizes := make([]int64, len(recs))
	for i, r := range recs {
		sizes[i] = recordSize(r)
		total += sizes[i]
	}
	if wait {
		if err := p.budget.Acquire(ctx, total); err != nil {
			return fmt.Errorf("ingest: waiting for memory budget: %w", err)
		}
	} else if !p.budget.TryAcquire(total) {
		return errBusy
	}
	for i, r := range recs {
		p.produce(r, sizes[i], o)
	}
	return nil
}

func (p *publisher) produce(r *kgo.Record, size int64, o origin) {
	isDLQ := r.Topic == p.dlq
	if !isDLQ {
		p.stats.Events.Add(1)
	}
	p.cl.Produce(p.ctx, r, func(r *kgo.Record, err error) {
		switch {
		case err == nil && isDLQ:
			p.stats.DeadLettered.Add(1)
			p.budget.Release(size)
		case err == nil:
			p.stats.Produced.Add(1)
			p.budget.Release(size)
		case !isDLQ:
			// The broker refused the event for good (kgo retries
			// retriable errors without limit): keep it in the dead-letter
			// topic instead, still holding its budget.
			p.log.Warn("event not produced, dead-lettering it", "topic", r.Topic, "err", err)
			dl := p.deadLetterRecord("produce to "+r.Topic+": "+err.Error(), "ingest", r.Value, o)
			p.produce(dl, size, o)
		default:
			p.stats.Lost.Add(1)
			p.budget.Release(size)
			p.log.Error("dead-letter record lost", "topic", r.Topic, "err", err)
		}
	})
}
