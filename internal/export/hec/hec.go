// Package hec is the Splunk HTTP Event Collector sink of `vigil export`:
// records sent in batches to /services/collector/event, each as an HEC
// event whose "event" is the record's JSON, "time" the event's time,
// "sourcetype" its OCSF class (template "ocsf:{class}") and "fields"
// carrying vigil_id, the record's "topic:partition:offset".
//
// Delivery is confirmed two ways. Without indexer acknowledgement a 200
// answer is delivery, as far as HEC can say. With it (ack: true, the
// token's useACK), every request names a channel (the
// X-Splunk-Request-Channel header, one per sink process), the answer
// carries an ackId, and Deliver polls /services/collector/ack with it
// until the indexer says true; only then are the records delivered and
// their offsets committed. An ack that does not come within AckTimeout
// makes the whole request count as failed and it is sent again, as
// Splunk's documentation tells a client to.
//
// Splunk does not deduplicate events, so a batch sent again after a
// crash between the indexer's acknowledgement and the offset commit is
// indexed twice; vigil_id (an indexed field) lets a search drop the
// repeat (`| dedup vigil_id`). A 400 naming an invalid-event-number
// dead-letters that event and sends the others again.
package hec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/vigilhq/vigil/internal/export"
)

// Defaults of the templates.
const (
	DefaultSourcetype = "ocsf:{class}"
	DefaultSource     = "vigil:{topic}"
)

// Config is the `splunk_hec:` section of a sink.
type Config struct {
	// URL is the collector's base URL (https://splunk:8088); the event
	// and ack paths are added to it.
	URL       string `yaml:"url"`
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// Index is the Splunk index (empty: the token's default).
	Index string `yaml:"index"`
	// Sourcetype and Source are templates (export.Template); Host is
	// fixed text (empty: HEC's default, the sender).
	Sourcetype string `yaml:"sourcetype"`
	Source     string `yaml:"source"`
	Host       string `yaml:"host"`
	// Ack waits for indexer acknowledgement before a batch counts as
	// delivered; AckTimeout bounds the wait (default 2m), AckPoll is the
	// polling interval (default 500ms). Channel is the channel GUID
	// (default: a new one per process).
	Ack        bool          `yaml:"ack"`
	AckTimeout time.Duration `yaml:"ack_timeout"`
	AckPoll    time.Duration `yaml:"ack_poll_interval"`
	Channel    string        `yaml:"channel"`
	TLS        export.TLS    `yaml:"tls"`
	Timeout    time.Duration `yaml:"timeout"`
}

// Sink is a Splunk HEC sink.
type Sink struct {
	cfg                Config
	eventURL, ackURL   string
	token              string
	sourcetype, source *export.Template
	client             *http.Client
	// bodies holds request bodies between Deliver calls, which may run
	// at once; a body is back once the transport has closed it (NewPost).
	bodies sync.Pool
}

// New checks the configuration and reads the token.
func New(c Config) (*Sink, error) {
	if c.URL == "" {
		return nil, errors.New("splunk_hec: url is required")
	}
	base := strings.TrimRight(c.URL, "/")
	base = strings.TrimSuffix(base, "/services/collector/event")
	base = strings.TrimSuffix(base, "/services/collector")
	tok, err := export.Secret(c.Token, c.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("splunk_hec: token_file: %w", err)
	}
	if tok == "" {
		return nil, errors.New("splunk_hec: token or token_file is required")
	}
	if c.Sourcetype == "" {
		c.Sourcetype = DefaultSourcetype
	}
	if c.Source == "" {
		c.Source = DefaultSource
	}
	s := &Sink{cfg: c, token: tok, eventURL: base + "/services/collector/event"}
	if s.sourcetype, err = export.ParseTemplate(c.Sourcetype); err != nil {
		return nil, fmt.Errorf("splunk_hec: sourcetype: %w", err)
	}
	if s.source, err = export.ParseTemplate(c.Source); err != nil {
		return nil, fmt.Errorf("splunk_hec: source: %w", err)
	}
	if c.Ack {
		if s.cfg.Channel == "" {
			s.cfg.Channel = uuid.NewString()
		}
		if s.cfg.AckTimeout <= 0 {
			s.cfg.AckTimeout = 2 * time.Minute
		}
		if s.cfg.AckPoll <= 0 {
			s.cfg.AckPoll = 500 * time.Millisecond
		}
		s.ackURL = base + "/services/collector/ack?channel=" + url.QueryEscape(s.cfg.Channel)
	}
	if s.client, err = export.NewHTTPClient(c.TLS, c.Timeout); err != nil {
		return nil, fmt.Errorf("splunk_hec: %w", err)
	}
	return s, nil
}

// Channel is the channel the sink's requests name ("" without ack).
func (s *Sink) Channel() string { return s.cfg.Channel }

// Close closes idle connections.
func (s *Sink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// hecAnswer is HEC's answer to an event request.
type hecAnswer struct {
	Text    string `json:"text"`
	Code    int    `json:"code"`
	Invalid *int   `json:"invalid-event-number"`
	AckID   *int64 `json:"ackId"`
}

// Deliver sends docs as one batch and, with ack, waits for the indexer.
func (s *Sink) Deliver(ctx context.Context, docs []*export.Doc, res []export.Result) error {
	buf, _ := s.bodies.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	b := (*buf)[:0]
	for _, d := range docs {
		b = s.appendEvent(b, d)
	}
	*buf = b
	// The pool gets buf back once the transport is done with it.
	resp, err := s.post(ctx, s.eventURL, b, func() { s.bodies.Put(buf) })
	if err != nil {
		return err
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	var ans hecAnswer
	_ = json.Unmarshal(raw, &ans)
	if resp.StatusCode == http.StatusBadRequest && ans.Invalid != nil && *ans.Invalid >= 0 && *ans.Invalid < len(docs) {
		bad := *ans.Invalid
		for i := range res {
			res[i] = export.Result{Outcome: export.Retry, Reason: "batch refused for another event"}
		}
		res[bad] = export.Result{Outcome: export.Dead, Reason: fmt.Sprintf("HEC %d: %s (code %d)", resp.StatusCode, ans.Text, ans.Code)}
		return nil
	}
	if resp.StatusCode/100 != 2 {
		return &export.RequestError{Status: resp.StatusCode, RetryAfter: export.RetryAfter(resp.Header.Get("Retry-After"), time.Now()),
			Body: strings.TrimSpace(string(raw[:min(len(raw), 512)]))}
	}
	if s.cfg.Ack {
		if ans.AckID == nil {
			return fmt.Errorf("HEC answered without an ackId though ack is on (is indexer acknowledgement enabled on the token?): %s", raw)
		}
		if err := s.waitAck(ctx, *ans.AckID); err != nil {
			return err
		}
	}
	for i := range res {
		res[i] = export.Result{Outcome: export.Delivered}
	}
	return nil
}

// appendEvent appends one HEC event.
func (s *Sink) appendEvent(b []byte, d *export.Doc) []byte {
	b = append(b, `{"time":`...)
	ms := d.Time.UnixMilli()
	b = strconv.AppendInt(b, ms/1000, 10)
	b = append(b, '.')
	frac := ms % 1000
	b = append(b, byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	b = append(b, `,"sourcetype":`...)
	b = export.AppendJSONString(b, s.sourcetype.Render(d))
	b = append(b, `,"source":`...)
	b = export.AppendJSONString(b, s.source.Render(d))
	if s.cfg.Index != "" {
		b = append(b, `,"index":`...)
		b = export.AppendJSONString(b, s.cfg.Index)
	}
	if s.cfg.Host != "" {
		b = append(b, `,"host":`...)
		b = export.AppendJSONString(b, s.cfg.Host)
	}
	b = append(b, `,"fields":{"vigil_id":`...)
	b = export.AppendJSONString(b, d.ID)
	b = append(b, `},"event":`...)
	b = append(b, bytes.TrimSpace(d.Value())...)
	return append(b, "}\n"...)
}

func (s *Sink) post(ctx context.Context, u string, body []byte, release func()) (*http.Response, error) {
	req, err := export.NewPost(ctx, u, body, release)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Splunk "+s.token)
	req.Header.Set("Content-Type", "application/json")
	if s.cfg.Channel != "" {
		req.Header.Set("X-Splunk-Request-Channel", s.cfg.Channel)
	}
	return s.client.Do(req)
}

// waitAck polls the ack endpoint until the indexer acknowledges id.
func (s *Sink) waitAck(ctx context.Context, id int64) error {
	body := []byte(`{"acks":[` + strconv.FormatInt(id, 10) + `]}`)
	key := strconv.FormatInt(id, 10)
	deadline := time.Now().Add(s.cfg.AckTimeout)
	for {
		resp, err := s.post(ctx, s.ackURL, body, nil)
		if err != nil {
			return fmt.Errorf("HEC ack poll: %w", err)
		}
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return &export.RequestError{Status: resp.StatusCode, RetryAfter: export.RetryAfter(resp.Header.Get("Retry-After"), time.Now()),
				Body: "ack poll: " + strings.TrimSpace(string(raw))}
		}
		var ans struct {
			Acks map[string]bool `json:"acks"`
		}
		if err := json.Unmarshal(raw, &ans); err != nil {
			return fmt.Errorf("HEC ack answer is not JSON: %w", err)
		}
		if ans.Acks[key] {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("HEC ack %d not acknowledged within %s; sending the batch again", id, s.cfg.AckTimeout)
		}
		t := time.NewTimer(s.cfg.AckPoll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

var _ export.Sink = (*Sink)(nil)
