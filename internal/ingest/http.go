package ingest

import (
	"bytes"
	"compress/gzip"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/parse"
)

// HTTP endpoints:
//
//	POST /v1/events?source=auto|cloudtrail|zeek|winlog|okta|github|azure|gcp|m365|syslog|auditd|squid|access[&format=json|raw][&host=H]
//	     body: one JSON document, a JSON array, NDJSON, or lines for the
//	     text sources (format=raw: lines of a log file, syslog with or
//	     without PRI). 202 {"events":N,"deadlettered":M}.
//	POST /services/collector/event (and /services/collector): Splunk HEC,
//	     "Authorization: Splunk TOKEN".
//
// With Config.HTTPToken, /v1/events, /v1/stats and /metrics need
// "Authorization: Bearer TOKEN" (HEC keeps its own token); /healthz stays
// open.
//	GET  /v1/stats: the counters (also as Prometheus text at GET /metrics). GET /healthz.
//
// A body that cannot be decoded (JSON that is not JSON) is refused whole
// with 400, and kept in the dead-letter topic with the reason; a decoded
// piece that no parser maps becomes a generic event. A full memory budget
// answers 503 with Retry-After: nothing of that request was accepted, so
// the client can resend it whole.

func (s *Service) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/events", s.requireToken(s.handleEvents))
	if s.cfg.HECToken != "" {
		mux.HandleFunc("POST /services/collector/event", s.handleHEC)
		mux.HandleFunc("POST /services/collector", s.handleHEC)
	}
	mux.HandleFunc("GET /v1/stats", s.requireToken(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.stats.Snapshot())
	}))
	reg := prometheus.NewRegistry()
	if err := s.Register(reg); err == nil {
		mux.Handle("GET /metrics", s.requireToken(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "budget_used": s.budget.Used()})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// readBody reads at most MaxBodyBytes; ok is false when it answered.
// Gzip bodies (Content-Encoding: gzip, as HEC clients and forwarders
// send) are inflated first and the limit applies to the inflated bytes, so
// a small compressed body cannot expand past the memory it is allowed.
func (s *Service) readBody(w http.ResponseWriter, r *http.Request, hec bool) ([]byte, bool) {
	var in io.Reader = r.Body
	switch enc := strings.ToLower(r.Header.Get("Content-Encoding")); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "gzip body: " + err.Error()})
			return nil, false
		}
		defer zr.Close()
		in = zr
	default:
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "unsupported Content-Encoding " + strconv.Quote(enc)})
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(in, s.cfg.MaxBodyBytes+1))
	if err == nil && int64(len(body)) > s.cfg.MaxBodyBytes {
		err = &http.MaxBytesError{Limit: s.cfg.MaxBodyBytes}
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		s.stats.Refused.Add(1)
		msg := "request body exceeds " + strconv.FormatInt(s.cfg.MaxBodyBytes, 10) + " bytes"
		if hec {
			writeJSON(w, http.StatusRequestEntityTooLarge, hecReply{Text: msg, Code: 6})
		} else {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": msg})
		}
		return nil, false
	case err != nil:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "reading body: " + err.Error()})
		return nil, false
	}
	return body, true
}

func (s *Service) busy(w http.ResponseWriter, v any) {
	s.stats.Refused.Add(1)
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(s.cfg.RetryAfter.Seconds()+0.5))))
	writeJSON(w, http.StatusServiceUnavailable, v)
}

func countResults(rs []parse.Result) (events, dead int) {
	for _, r := range rs {
		if r.Err != nil {
			dead++
		} else {
			events++
		}
	}
	return
}

func (s *Service) handleEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	source, format := q.Get("source"), q.Get("format")
	if source == "" {
		source = parse.SourceAuto
	}
	if !parse.KnownSource(source) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unknown source " + strconv.Quote(source) + " (" + strings.Join(parse.Sources(), ", ") + ")"})
		return
	}
	switch {
	case format == "raw" && source == parse.SourceAuto:
		source = parse.SourceSyslog
	case format == "raw" && !parse.TextSource(source):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "format=raw takes lines: source syslog, auditd, squid or access"})
		return
	case format == "json" && parse.TextSource(source):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "source " + source + " takes lines, not JSON"})
		return
	case format != "" && format != "raw" && format != "json":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unknown format " + strconv.Quote(format) + " (json, raw)"})
		return
	}
	body, ok := s.readBody(w, r, false)
	if !ok {
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "empty body"})
		return
	}
	host := q.Get("host")
	if host == "" {
		host = remoteHost(r)
	}
	o := origin{listener: "http", remote: remoteHost(r)}
	var results []parse.Result
	if parse.TextSource(source) {
		results = s.parsers.Body(source, body, host)
	} else {
		docs, err := parse.SplitJSON(body)
		if err != nil {
			s.refuse(w, body, source, o, err.Error(), func(code int, msg string) any {
				return map[string]any{"error": msg, "events": 0, "deadlettered": 1}
			})
			return
		}
		for _, doc := range docs {
			results = append(results, s.parsers.JSON(source, doc, host)...)
		}
	}
	s.stats.Frames.Add(int64(len(results)))
	if err := s.pub.publish(r.Context(), results, o, false); err != nil {
		s.busy(w, map[string]string{"error": "ingest is buffering its memory budget; retry later"})
		return
	}
	ev, dead := countResults(results)
	writeJSON(w, http.StatusAccepted, map[string]int{"events": ev, "deadlettered": dead})
}

// refuse answers 400 for a body that cannot be decoded, after keeping it
// in the dead-letter topic with the reason (503 if even that does not fit
// the budget: then nothing was kept and the client may resend).
func (s *Service) refuse(w http.ResponseWriter, body []byte, source string, o origin, reason string, answer func(int, string) any) {
	s.stats.Frames.Add(1)
	rec := s.pub.deadLetterRecord(reason, source, body, o)
	if err := s.pub.send(s.ctx, []*kgo.Record{rec}, o, false); err != nil {
		s.busy(w, answer(http.StatusServiceUnavailable, "ingest is buffering its memory budget; retry later"))
		return
	}
	writeJSON(w, http.StatusBadRequest, answer(http.StatusBadRequest, reason))
}

// hecReply is Splunk HEC's answer shape; codes follow Splunk's.
type hecReply struct {
	Text string `json:"text"`
	Code int    `json:"code"`
	// InvalidEventNumber names the event that made a request invalid.
	InvalidEventNumber *int `json:"invalid-event-number,omitempty"`
}

// hecEnvelope is one HEC event as sent.
type hecEnvelope struct {
	Event      json.RawMessage `json:"event"`
	Host       string          `json:"host"`
	Source     string          `json:"source"`
	Sourcetype string          `json:"sourcetype"`
	Index      string          `json:"index"`
	Fields     map[string]any  `json:"fields"`
	Time       json.RawMessage `json:"time"`
}

// hecTime reads HEC's time: epoch seconds, a number or a string of one.
func hecTime(raw json.RawMessage) (time.Time, bool) {
	s := strings.Trim(string(raw), `"`)
	if s == "" || s == "null" {
		return time.Time{}, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(f*1000 + 0.5)).UTC(), true
}

func (s *Service) handleHEC(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		writeJSON(w, http.StatusUnauthorized, hecReply{Text: "Token is required", Code: 2})
		return
	}
	scheme, token, _ := strings.Cut(auth, " ")
	if (scheme != "Splunk" && scheme != "Bearer") || subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.HECToken)) != 1 {
		writeJSON(w, http.StatusForbidden, hecReply{Text: "Invalid token", Code: 4})
		return
	}
	body, ok := s.readBody(w, r, true)
	if !ok {
		return
	}
	o := origin{listener: "hec", remote: remoteHost(r)}
	// HEC bodies are JSON objects back to back. The whole request is
	// checked first so a malformed one is refused whole, as Splunk does,
	// rather than half accepted; an undecodable one is also kept in the
	// dead-letter topic.
	var evs []parse.HECEvent
	dec := json.NewDecoder(bytes.NewReader(body))
	for i := 0; ; i++ {
		var e hecEnvelope
		err := dec.Decode(&e)
		if errors.Is(err, io.EOF) {
			break
		}
		n := i
		if err != nil {
			s.refuse(w, body, "hec", o, "invalid HEC JSON: "+err.Error(), func(int, string) any {
				return hecReply{Text: "Invalid data format", Code: 6, InvalidEventNumber: &n}
			})
			return
		}
		if len(e.Event) == 0 || string(e.Event) == "null" {
			writeJSON(w, http.StatusBadRequest, hecReply{Text: "Event field is required", Code: 12, InvalidEventNumber: &n})
			return
		}
		t, ok := hecTime(e.Time)
		if !ok {
			writeJSON(w, http.StatusBadRequest, hecReply{Text: "Invalid data format", Code: 6, InvalidEventNumber: &n})
			return
		}
		evs = append(evs, parse.HECEvent{Event: e.Event, Host: e.Host, Source: e.Source, Sourcetype: e.Sourcetype, Index: e.Index, Fields: e.Fields, Time: t})
	}
	if len(evs) == 0 {
		writeJSON(w, http.StatusBadRequest, hecReply{Text: "No data", Code: 5})
		return
	}
	var results []parse.Result
	for _, e := range evs {
		results = append(results, s.parsers.HEC(e, remoteHost(r))...)
	}
	s.stats.Frames.Add(int64(len(results)))
	if err := s.pub.publish(r.Context(), results, o, false); err != nil {
		s.busy(w, hecReply{Text: "Server is busy", Code: 9})
		return
	}
	writeJSON(w, http.StatusOK, hecReply{Text: "Success", Code: 0})
}
