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
	"io"
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
	SourceOkta       = "okta"   // Okta System Log events
	SourceGitHub     = "github" // GitHub audit log events
	SourceAzure      = "azure"  // Azure Monitor diagnostic records (Entra ID sign-in, audit, risk; Activity Log), Graph riskDetection
	SourceGCP        = "gcp"    // Google Cloud Audit Logs entries, Google Workspace's included
	SourceM365       = "m365"   // Office 365 Management Activity API records
	SourceSyslog     = "syslog" // syslog messages or log file lines (PRI optional): Linux auth (sshd, sudo), auditd, squid, web servers, any program
	SourceAuditd     = "auditd" // audit.log lines
	SourceSquid      = "squid"  // Squid access.log lines
	SourceAccess     = "access" // web server access log lines (Common or Combined Log Format)
)

// Sources lists the sources Body understands, in the order docs name them.
func Sources() []string {
	return []string{SourceAuto, SourceCloudTrail, SourceZeek, SourceWinlog, SourceOkta, SourceGitHub, SourceAzure, SourceGCP, SourceM365,
		SourceSyslog, SourceAuditd, SourceSquid, SourceAccess}
}

// KnownSource reports whether s names a source Body understands.
func KnownSource(s string) bool {
	for _, k := range Sources() {
		if s == k {
			return true
		}
	}
	return false
}

// TextSource reports whether a source's input is lines of text rather
// than JSON documents.
func TextSource(s string) bool {
	switch s {
	case SourceSyslog, SourceAuditd, SourceSquid, SourceAccess:
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
// event when the header has no hostname. A message without a valid PRI
// is read as RFC 3164 asks of a relay (user.notice, the header read from
// the line when it has one).
func (p *Parsers) Syslog(frame []byte, remoteHost string) []Result {
	return p.syslog(frame, remoteHost, "")
}

// LogLine parses one line of a log file (/var/log/auth.log, syslog,
// messages: syslog lines without PRI); the host and time come from the
// line, host and the receive time when it has none. file names the file
// (metadata.log_name) when known.
func (p *Parsers) LogLine(line []byte, host, file string) []Result {
	return p.syslog(line, host, file)
}

func (p *Parsers) syslog(frame []byte, remoteHost, file string) []Result {
	if !utf8.Valid(frame) {
		// OCSF is JSON: invalid UTF-8 would be silently replaced, so raw_data
		// would no longer be the raw event.
		return []Result{fail(SourceSyslog, frame, "invalid UTF-8")}
	}
	if len(bytes.TrimSpace(frame)) == 0 {
		return []Result{fail(SourceSyslog, frame, "empty message")}
	}
	m := ParseSyslogLine(frame, p.now())
	m.File = file
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
	case webServers[app] != "":
		return []Result{p.accessMessage(m, frame)}
	default:
		return []Result{p.syslogBase(m, frame, linuxProduct)}
	}
}

// Body parses an HTTP body of the given source: one JSON document, a JSON
// array, or NDJSON for JSON sources; lines for text sources. host keys
// events whose source names none (HEC's "host"). A JSON body that does
// not decode (SplitJSON) is one dead-letter result.
func (p *Parsers) Body(source string, body []byte, host string) []Result {
	switch source {
	case SourceSyslog:
		return p.lines(body, func(l []byte) []Result { return p.syslog(l, host, "") })
	case SourceAuditd:
		return p.Auditd(body, host)
	case SourceSquid:
		return p.lines(body, func(l []byte) []Result { return []Result{p.squidLine(l, host, l)} })
	case SourceAccess:
		return p.lines(body, func(l []byte) []Result { return []Result{p.accessLine(l, host, "", l)} })
	}
	docs, err := SplitJSON(body)
	if err != nil {
		return []Result{fail(source, body, "%v", err)}
	}
	var out []Result
	for _, doc := range docs {
		out = append(out, p.JSON(source, doc, host)...)
	}
	return out
}

// SplitJSON cuts a JSON body into its documents (one document, the
// elements of an array, NDJSON, or documents back to back) and fails,
// naming the line, at the first that is not JSON: a body that cannot be
// decoded is refused whole, rather than half accepted.
func SplitJSON(body []byte) ([][]byte, error) {
	var docs [][]byte
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			off := dec.InputOffset()
			var se *json.SyntaxError
			if errors.As(err, &se) {
				off = se.Offset
			}
			line := 1 + bytes.Count(body[:min(int(off), len(body))], []byte("\n"))
			return nil, fmt.Errorf("invalid JSON at line %d: %v", line, err)
		}
		docs = append(docs, raw)
	}
	if len(docs) == 1 && docs[0][0] == '[' {
		var elems []json.RawMessage
		if err := json.Unmarshal(docs[0], &elems); err != nil {
			return nil, fmt.Errorf("invalid JSON: %v", err)
		}
		docs = docs[:0]
		for _, e := range elems {
			docs = append(docs, e)
		}
	}
	return docs, nil
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

// JSON parses one JSON document of the given source ("auto" detects it).
// A document of no source Vigil maps becomes a Base Event.
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
		return []Result{p.Zeek(obj, doc, host)}
	case SourceWinlog:
		return []Result{p.Winlog(obj, doc, host)}
	case SourceOkta:
		return []Result{p.Okta(obj, doc, host)}
	case SourceGitHub:
		return []Result{p.GitHub(obj, doc, host)}
	case SourceAzure:
		return p.Azure(obj, doc, host)
	case SourceGCP:
		return []Result{p.GCP(obj, doc, host)}
	case SourceM365:
		return []Result{p.M365(obj, doc, host)}
	case "":
		return []Result{p.jsonBase(SourceAuto, obj, doc, host, unknownProduct, "")}
	default:
		// A text source given a JSON document: keep it as it is.
		return []Result{p.jsonBase(source, obj, doc, host, unknownProduct, "")}
	}
}

func detect(obj map[string]any) string {
	has := func(k string) bool { _, ok := obj[k]; return ok }
	switch {
	case has("Records"), has("eventSource") && has("eventName"):
		return SourceCloudTrail
	case has("winlog"):
		return SourceWinlog
	case has("_path"), has("id.orig_h"), has("id_orig_h"):
		return SourceZeek
	case has("eventType") && has("published") && has("actor"):
		return SourceOkta
	case has("action") && (has("@timestamp") || has("created_at")) && (has("actor") || has("org") || has("business")):
		return SourceGitHub
	case has("Workload") && has("Operation") && has("CreationTime"):
		return SourceM365
	case has("category") && (has("operationName") || has("resourceId")), has("riskEventType") && has("detectedDateTime"):
		return SourceAzure
	case strings.Contains(str(obj, "logName"), "cloudaudit.googleapis.com"):
		return SourceGCP
	}
	if recs, ok := obj["records"].([]any); ok && len(recs) > 0 {
		if r, ok := recs[0].(map[string]any); ok && detect(r) == SourceAzure {
			return SourceAzure
		}
	}
	if t, _ := obj["protoPayload"].(map[string]any); t != nil && strings.Contains(str(t, "@type"), "AuditLog") {
		return SourceGCP
	}
	if ev, ok := obj["Event"].(map[string]any); ok {
		if _, ok := ev["System"]; ok {
			return SourceWinlog
		}
	}
	if id, ok := obj["id"].(map[string]any); ok {
		if _, ok := id["orig_h"]; ok {
			return SourceZeek // Zeek through a shipper that nests id
		}
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
