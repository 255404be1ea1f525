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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigilhq/vigil/internal/parse"
)

// HTTP endpoints:
//
//	POST /v1/events?source=auto|cloudtrail|zeek|winlog|syslog|auditd|squid[&host=H]
//	     body: one JSON document, a JSON array, NDJSON, or lines for the
//	     text sources. 202 {"events":N,"deadlettered":M}.
//	POST /services/collector/event (and /services/collector): Splunk HEC,
//	     "Authorization: Splunk TOKEN".
//	GET  /v1/stats: the counters (also as Prometheus text at GET /metrics). GET /healthz.
//
// Unparsable documents go to the dead-letter topic and are counted in the
// answer; only a request that cannot be read at all gets a 4xx. A full
// memory budget answers 503 with Retry-After: nothing of that request was
// accepted, so the client can resend it whole.

func (s *Service) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/events", s.handleEvents)
	if s.cfg.HECToken != "" {
		mux.HandleFunc("POST /services/collector/event", s.handleHEC)
		mux.HandleFunc("POST /services/collector", s.handleHEC)
	}
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.stats.Snapshot())
	})
	reg := prometheus.NewRegistry()
	if err := s.Register(reg); err == nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
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
	source := r.URL.Query().Get("source")
	if source == "" {
		source = parse.SourceAuto
	}
	if !parse.KnownSource(source) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unknown source " + strconv.Quote(source) + " (auto, cloudtrail, zeek, winlog, syslog, auditd, squid)"})
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
	host := r.URL.Query().Get("host")
	if host == "" {
		host = remoteHost(r)
	}
	results := s.parsers.Body(source, body, host)
	s.stats.Frames.Add(int64(len(results)))
	o := origin{listener: "http", remote: remoteHost(r)}
	if err := s.pub.publish(r.Context(), results, o, false); err != nil {
		s.busy(w, map[string]string{"error": "ingest is buffering its memory budget; retry later"})
		return
	}
	ev, dead := countResults(results)
	writeJSON(w, http.StatusAccepted, map[string]int{"events": ev, "deadlettered": dead})
}

// hecReply is Splunk HEC's answer shape; codes follow Splunk's.
type hecReply struct {
	Text string `json:"text"`
	Code int    `json:"code"`
}

type hecEvent struct {
	Event      json.RawMessage `json:"event"`
	Host       string          `json:"host"`
	Source     string          `json:"source"`
	Sourcetype string          `json:"sourcetype"`
}

// hecSource maps a Splunk sourcetype to a parser source.
func hecSource(st string) string {
	st = strings.ToLower(st)
	switch {
	case strings.HasPrefix(st, "aws:cloudtrail"):
		return parse.SourceCloudTrail
	case strings.HasPrefix(st, "zeek") || strings.HasPrefix(st, "bro"):
		return parse.SourceZeek
	case strings.Contains(st, "wineventlog") || strings.HasPrefix(st, "winlog") || strings.Contains(st, "sysmon"):
		return parse.SourceWinlog
	case st == "linux_secure" || st == "syslog" || strings.HasPrefix(st, "syslog"):
		return parse.SourceSyslog
	case strings.Contains(st, "audit"):
		return parse.SourceAuditd
	case strings.HasPrefix(st, "squid"):
		return parse.SourceSquid
	}
	return parse.SourceAuto
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
	// HEC bodies are JSON objects back to back. The whole request is
	// checked first so a malformed one is refused whole, as Splunk does,
	// rather than half accepted.
	var evs []hecEvent
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		var e hecEvent
		err := dec.Decode(&e)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, hecReply{Text: "Invalid data format", Code: 6})
			return
		}
		if len(e.Event) == 0 || string(e.Event) == "null" {
			writeJSON(w, http.StatusBadRequest, hecReply{Text: "Event field is required", Code: 12})
			return
		}
		evs = append(evs, e)
	}
	if len(evs) == 0 {
		writeJSON(w, http.StatusBadRequest, hecReply{Text: "No data", Code: 5})
		return
	}
	var results []parse.Result
	for _, e := range evs {
		host := e.Host
		if host == "" {
			host = remoteHost(r)
		}
		src := hecSource(e.Sourcetype)
		var text string
		if err := json.Unmarshal(e.Event, &text); err == nil {
			// A string event is a raw line of a text source.
			results = append(results, s.parsers.Body(src, []byte(text), host)...)
			continue
		}
		results = append(results, s.parsers.JSON(src, e.Event, host)...)
	}
	s.stats.Frames.Add(int64(len(results)))
	o := origin{listener: "hec", remote: remoteHost(r)}
	if err := s.pub.publish(r.Context(), results, o, false); err != nil {
		s.busy(w, hecReply{Text: "Server is busy", Code: 9})
		return
	}
	writeJSON(w, http.StatusOK, hecReply{Text: "Success", Code: 0})
}
