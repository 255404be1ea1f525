package parse

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/ocsf"
)

// Splunk HTTP Event Collector events: the envelope's sourcetype picks the
// parser, its host, source, sourcetype, index and fields are kept in the
// event (unmapped.hec; the host also as device.hostname when the event
// names no host of its own, and as the record key), and its time stands
// in for events whose data has none.

// HECEvent is one event of a HEC request.
type HECEvent struct {
	Event      json.RawMessage
	Host       string
	Source     string
	Sourcetype string
	Index      string
	Fields     map[string]any
	// Time is the envelope's time; zero when it has none.
	Time time.Time
}

// HECSource maps a Splunk sourcetype to a parser source.
func HECSource(st string) string {
	st = strings.ToLower(st)
	switch {
	case strings.HasPrefix(st, "aws:cloudtrail"):
		return SourceCloudTrail
	case strings.HasPrefix(st, "zeek") || strings.HasPrefix(st, "bro"):
		return SourceZeek
	case strings.Contains(st, "wineventlog") || strings.HasPrefix(st, "winlog") || strings.Contains(st, "sysmon"):
		return SourceWinlog
	case strings.HasPrefix(st, "okta"):
		return SourceOkta
	case strings.HasPrefix(st, "github"):
		return SourceGitHub
	case strings.HasPrefix(st, "azure:") || strings.HasPrefix(st, "mscs:azure"):
		return SourceAzure
	case strings.HasPrefix(st, "google:gcp") || strings.HasPrefix(st, "gcp:"):
		return SourceGCP
	case strings.HasPrefix(st, "o365:") || strings.HasPrefix(st, "ms:o365"):
		return SourceM365
	case st == "linux_secure" || st == "syslog" || strings.HasPrefix(st, "syslog") || st == "linux_messages_syslog":
		return SourceSyslog
	case strings.Contains(st, "audit"):
		return SourceAuditd
	case strings.HasPrefix(st, "squid"):
		return SourceSquid
	case strings.HasPrefix(st, "access_") || strings.HasSuffix(st, ":access") || st == "nginx" || st == "apache":
		return SourceAccess
	}
	return SourceAuto
}

// HEC parses one HEC event; remote keys it when the envelope names no
// host.
func (p *Parsers) HEC(h HECEvent, remote string) []Result {
	host := h.Host
	if host == "" {
		host = remote
	}
	q := p
	if !h.Time.IsZero() {
		at := h.Time
		q = &Parsers{Now: func() time.Time { return at }}
	}
	src := HECSource(h.Sourcetype)
	var results []Result
	var text string
	if err := json.Unmarshal(h.Event, &text); err == nil {
		// A string event is a line of text: of its sourcetype's text
		// source, or a log line.
		switch {
		case src == SourceSyslog || !TextSource(src):
			for _, l := range strings.Split(text, "\n") {
				if strings.TrimSpace(l) != "" {
					results = append(results, q.syslog([]byte(strings.TrimRight(l, "\r")), host, h.Source)...)
				}
			}
		default:
			results = q.Body(src, []byte(text), host)
		}
	} else {
		results = q.JSON(src, h.Event, host)
	}
	meta := map[string]any{}
	for k, v := range map[string]string{"host": h.Host, "source": h.Source, "sourcetype": h.Sourcetype, "index": h.Index} {
		if v != "" {
			meta[k] = v
		}
	}
	if len(h.Fields) > 0 {
		meta["fields"] = h.Fields
	}
	if !h.Time.IsZero() {
		meta["time"] = h.Time.UnixMilli()
	}
	for i := range results {
		e := results[i].Event
		if e == nil {
			continue
		}
		if len(meta) > 0 {
			u, ok := e["unmapped"].(map[string]any)
			if !ok {
				u = map[string]any{}
				e["unmapped"] = u
			}
			u["hec"] = meta
		}
		if h.Host != "" && !namesHost(e) {
			setHost(e, h.Host)
		}
		if err := ocsf.Validate(e); err != nil {
			results[i] = Result{Source: results[i].Source, Raw: results[i].Raw, Err: err}
		}
	}
	return results
}

// namesHost reports whether an event already says which host it is about.
func namesHost(e ocsf.Event) bool {
	for _, p := range []string{"device.hostname", "dst_endpoint.hostname", "src_endpoint.hostname"} {
		if v, ok := e.Get(p); ok && v != "" {
			return true
		}
	}
	return false
}
