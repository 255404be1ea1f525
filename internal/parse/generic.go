package parse

import (
	"encoding/json"
	"time"

	"github.com/vigilhq/vigil/internal/ocsf"
)

// Generic events: input that decodes but that no parser maps to a
// specific class becomes an OCSF Base Event (class 0) with its message,
// host, program and time, so keyword rules and rules on the source's own
// fields still see it. Only input that cannot be decoded at all (invalid
// UTF-8, invalid JSON) is dead-lettered.

// facilities are the syslog facility keywords (RFC 5424 table 1, as
// rsyslog names them); metadata.log_name takes them, as auth.log and
// cron.log are named after them.
var facilities = [...]string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
	"ftp", "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}

// setSyslogSource records where a syslog message came from: the program
// (metadata.log_provider, which routes it to Sigma's service), the
// facility (metadata.log_name; the file for a line without PRI, when
// known), and the host.
func setSyslogSource(e ocsf.Event, m SyslogMessage) {
	e.Set("metadata.log_provider", m.AppName)
	switch {
	case !m.NoPRI && m.Facility < len(facilities):
		e.Set("metadata.log_name", facilities[m.Facility])
	case m.File != "":
		e.Set("metadata.log_name", m.File)
	}
}

// syslogSeverity maps a syslog severity onto OCSF's severity_id.
func syslogSeverity(m SyslogMessage) int {
	if m.NoPRI {
		return ocsf.SeverityInformational
	}
	switch m.Severity {
	case 0: // emerg
		return 6 // Fatal
	case 1: // alert
		return ocsf.SeverityCritical
	case 2: // crit
		return ocsf.SeverityHigh
	case 3: // err
		return ocsf.SeverityMedium
	case 4: // warning
		return ocsf.SeverityLow
	}
	return ocsf.SeverityInformational
}

// syslogBase is the Base Event of a syslog message no parser maps.
func (p *Parsers) syslogBase(m SyslogMessage, raw []byte, product ocsf.Product) Result {
	e := ocsf.New(ocsf.BaseEvent, ocsf.ActivityOther, "Other", m.Timestamp, product)
	e.SetSeverity(syslogSeverity(m))
	e.Set("message", m.Msg)
	setSyslogSource(e, m)
	setHost(e, m.Hostname)
	e["unmapped"] = syslogUnmapped(m)
	return finish(SourceSyslog, m.Hostname, raw, e)
}

// setHost records the host an event is about in device.hostname, under
// the host profile (which lets any class carry a device).
func setHost(e ocsf.Event, host string) {
	if host == "" {
		return
	}
	if _, ok := e.Get("device.hostname"); ok {
		return
	}
	e.Set("device.hostname", host)
	if e.ClassUID() != ocsf.ProcessActivity.UID { // Process Activity has device of its own
		addProfile(e, "host")
	}
}

func addProfile(e ocsf.Event, name string) {
	md, _ := e["metadata"].(map[string]any)
	if md == nil {
		return
	}
	list, _ := md["profiles"].([]any)
	for _, p := range list {
		if p == name {
			return
		}
	}
	md["profiles"] = append(list, name)
}

// unknownProduct names the product of a JSON document whose source Vigil
// cannot tell.
var unknownProduct = ocsf.Product{Name: "Unknown", Vendor: "Unknown"}

// jsonBase is the Base Event of a JSON document no parser maps: its
// fields in unmapped, its time from the first time field it has (else
// the receive time), its message when it has one.
func (p *Parsers) jsonBase(source string, o map[string]any, raw []byte, host string, product ocsf.Product, logName string) Result {
	ts, ok := docTime(o)
	if !ok {
		ts = p.now()
	}
	e := ocsf.New(ocsf.BaseEvent, ocsf.ActivityOther, "Other", ts, product)
	for _, k := range []string{"message", "msg", "Message", "displayMessage"} {
		if s, ok := o[k].(string); ok && s != "" {
			e.Set("message", s)
			break
		}
	}
	e.Set("metadata.log_name", logName)
	setHost(e, host)
	e["unmapped"] = o
	return finish(source, host, raw, e)
}

// docTime reads the time of a JSON document from the fields sources
// commonly put it in: RFC 3339 strings, or epoch seconds or milliseconds.
func docTime(o map[string]any) (time.Time, bool) {
	for _, k := range []string{"@timestamp", "timestamp", "time", "ts", "eventTime", "published", "created_at", "date"} {
		switch v := o[k].(type) {
		case string:
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				return t, true
			}
		case json.Number:
			if f, err := v.Float64(); err == nil && f > 0 {
				return epoch(f), true
			}
		case float64:
			if v > 0 {
				return epoch(v), true
			}
		}
	}
	return time.Time{}, false
}

// epoch reads a number as epoch seconds, or milliseconds when it is too
// large to be seconds (past the year 5000).
func epoch(f float64) time.Time {
	if f > 1e11 {
		return time.UnixMilli(int64(f)).UTC()
	}
	return time.UnixMilli(int64(f*1000 + 0.5)).UTC()
}

// textBase is the Base Event of a line of a known product that its parser
// does not map (a Squid cache.log line, a web server's error log).
func (p *Parsers) textBase(source string, product ocsf.Product, logName, host, line string, raw []byte) Result {
	e := ocsf.New(ocsf.BaseEvent, ocsf.ActivityOther, "Other", p.now(), product)
	e.Set("message", line)
	e.Set("metadata.log_name", logName)
	setHost(e, host)
	return finish(source, host, raw, e)
}
