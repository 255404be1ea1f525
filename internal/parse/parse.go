// Package parse turns raw telemetry (syslog lines, JSON documents, log
// lines) into OCSF events, one file per source.
//
// Parsers never drop input: every piece either becomes an event or comes
// back as a Result with Err set, which the ingest service writes to the
// dead-letter topic.
package parse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigilhq/vigil/internal/ocsf"
)

// Result is what one piece of input became.
type Result struct {
	// Host keys the record, so one host's events stay in one partition and
	// in order.
	Host  string
	Event ocsf.Event
	// Err says why the piece did not become an event; Raw is the piece.
	Err    error
	Raw    []byte
	Source string
}

// Sources accepted by Parsers.Body (the ?source= of /v1/events).
const (
	SourceAuto       = "auto"
	SourceCloudTrail = "cloudtrail"
	SourceZeek       = "zeek"
	SourceWinlog     = "winlog"
	SourceSyslog     = "syslog" // syslog lines: Linux auth (sshd, sudo), auditd, squid
	SourceAuditd     = "auditd" // audit.log lines
	SourceSquid      = "squid"  // access.log lines
)

// KnownSource reports whether s names a source Body understands.
func KnownSource(s string) bool {
	switch s {
	case SourceAuto, SourceCloudTrail, SourceZeek, SourceWinlog, SourceSyslog, SourceAuditd, SourceSquid:
		return true
	}
	return false
}

// Parsers holds what parsing needs from outside: a clock (RFC 3164
// timestamps have no year; tests fix it).
type Parsers struct {
	Now func() time.Time
}

// New returns Parsers reading the wall clock.
func New() *Parsers { return &Parsers{Now: time.Now} }

func (p *Parsers) now() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}

func fail(source string, raw []byte, format string, args ...any) Result {
	return Result{Source: source, Raw: raw, Err: fmt.Errorf(format, args...)}
}

// finish attaches raw_data and validates: an event that misses a required
// attribute is a parse failure, not something to publish.
func finish(source, host string, raw []byte, e ocsf.Event) Result {
	e["raw_data"] = string(raw)
	if err := ocsf.Validate(e); err != nil {
		return Result{Source: source, Raw: raw, Err: err}
	}
	return Result{Source: source, Host: host, Event: e, Raw: raw}
}

// Syslog parses one syslog message (framing removed). remoteHost keys the
// event when the header has no hostname.
func (p *Parsers) Syslog(frame []byte, remoteHost string) []Result {
	if !utf8.Valid(frame) {
		// OCSF is JSON: invalid UTF-8 would be silently replaced, so raw_data
		// would no longer be the raw event.
		return []Result{fail(SourceSyslog, frame, "invalid UTF-8")}
	}
	m, err := ParseSyslog(frame, p.now())
	if err != nil {
		return []Result{{Source: SourceSyslog, Raw: frame, Err: err}}
	}
	if m.Hostname == "" {
		m.Hostname = remoteHost
	}
	switch app := strings.ToLower(m.AppName); {
	case app == "sshd" || app == "sudo" || app == "su" || strings.HasPrefix(app, "sshd-"):
		return []Result{p.linuxAuth(m, frame)}
	case isAuditMessage(m):
		return p.auditd([]byte(m.Msg), m.Hostname, frame)
	case app == "squid" || app == "(squid-1)":
		return []Result{p.squidLine([]byte(m.Msg), m.Hostname, frame)}
	default:
		return []Result{fail(SourceSyslog, frame, "syslog: no parser for app %q", m.AppName)}
	}
}

// Body parses an HTTP body of the given source: one JSON document, a JSON
// array, or NDJSON for JSON sources; lines for text sources. host keys
// events whose source names none (HEC's "host").
func (p *Parsers) Body(source string, body []byte, host string) []Result {
	switch source {
	case SourceSyslog:
		return p.lines(body, func(l []byte) []Result { return p.Syslog(l, host) })
	case SourceAuditd:
		return p.Auditd(body, host)
	case SourceSquid:
		return p.lines(body, func(l []byte) []Result { return []Result{p.squidLine(l, host, l)} })
	}
	var out []Result
	for _, doc := range splitJSON(body) {
		out = append(out, p.JSON(source, doc, host)...)
	}
	return out
}

func (p *Parsers) lines(body []byte, f func([]byte) []Result) []Result {
	var out []Result
	for _, l := range bytes.Split(body, []byte("\n")) {
		l = bytes.TrimRight(l, "\r")
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		out = append(out, f(l)...)
	}
	return out
}

// splitJSON cuts a body into JSON documents: the whole body when it is one
// valid document (a pretty-printed object, or an array whose elements are
// then documents), else one per line (NDJSON), each line kept even when
// invalid so it reaches the dead-letter topic.
func splitJSON(body []byte) [][]byte {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil
	}
	if json.Valid(trimmed) {
		if trimmed[0] == '[' {
			var elems []json.RawMessage
			if err := json.Unmarshal(trimmed, &elems); err == nil {
				out := make([][]byte, len(elems))
				for i, e := range elems {
					out[i] = e
				}
				return out
			}
		}
		return [][]byte{trimmed}
	}
	var out [][]byte
	for _, l := range bytes.Split(trimmed, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}

// JSON parses one JSON document of the given source ("auto" detects it).
func (p *Parsers) JSON(source string, doc []byte, host string) []Result {
	if !utf8.Valid(doc) {
		return []Result{fail(source, doc, "invalid UTF-8")}
	}
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber() // keep 64-bit ids exact in unmapped
	if err := dec.Decode(&obj); err != nil {
		return []Result{fail(source, doc, "invalid JSON: %v", err)}
	}
	if dec.More() {
		return []Result{fail(source, doc, "invalid JSON: trailing data after the document")}
	}
	if obj == nil {
		return []Result{fail(source, doc, "JSON document is not an object")}
	}
	if source == SourceAuto || source == "" {
		source = detect(obj)
	}
	switch source {
	case SourceCloudTrail:
		return p.CloudTrail(obj, doc)
	case SourceZeek:
		return []Result{p.Zeek(obj, doc)}
	case SourceWinlog:
		return []Result{p.Winlog(obj, doc, host)}
	case "":
		return []Result{fail(SourceAuto, doc, "cannot tell the source of the JSON document")}
	default:
		return []Result{fail(source, doc, "source %q takes no JSON documents", source)}
	}
}

func detect(obj map[string]any) string {
	if _, ok := obj["Records"]; ok {
		return SourceCloudTrail
	}
	if _, ok := obj["eventSource"]; ok {
		if _, ok := obj["eventName"]; ok {
			return SourceCloudTrail
		}
	}
	if _, ok := obj["winlog"]; ok {
		return SourceWinlog
	}
	if ev, ok := obj["Event"].(map[string]any); ok {
		if _, ok := ev["System"]; ok {
			return SourceWinlog
		}
	}
	if _, ok := obj["_path"]; ok {
		return SourceZeek
	}
	if _, ok := obj["id.orig_h"]; ok {
		return SourceZeek
	}
	return ""
}

// Helpers for reading decoded JSON.

func str(m map[string]any, key string) string {
	switch v := m[key].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		if v {
			return "true"
		}
		return "false"
	}
	return ""
}

func num(m map[string]any, key string) (int64, bool) {
	switch v := m[key].(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i, true
		}
		if f, err := v.Float64(); err == nil {
			return int64(f), true
		}
	case float64:
		return int64(v), true
	case string:
		var i int64
		if _, err := fmt.Sscan(v, &i); err == nil {
			return i, true
		}
	}
	return 0, false
}

func obj(m map[string]any, key string) map[string]any {
	o, _ := m[key].(map[string]any)
	return o
}

// setNum sets path to the number at m[key] when present.
func setNum(e ocsf.Event, path string, m map[string]any, key string) {
	if n, ok := num(m, key); ok {
		e.Set(path, n)
	}
}

var errNoTime = errors.New("no timestamp")
