package parse

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SyslogMessage is one syslog message with its header split out. Both
// RFC 5424 and RFC 3164 ("BSD") messages end up here; fields the format
// lacks stay empty.
type SyslogMessage struct {
	Facility  int
	Severity  int
	Timestamp time.Time
	Hostname  string
	AppName   string
	ProcID    string
	MsgID     string
	// StructuredData is RFC 5424 STRUCTURED-DATA verbatim ("-" when none).
	StructuredData string
	Msg            string
	// RFC5424 tells which format the header was in.
	RFC5424 bool
	// NoPRI is set for a line without a valid <PRI> (a copy of a log file
	// such as /var/log/auth.log): Facility and Severity are then RFC 3164's
	// defaults for it, user.notice.
	NoPRI bool
	// File is the log file the line was read from, if any.
	File string
}

var errNoPRI = errors.New("syslog: no <PRI> header")

// ParseSyslog parses one syslog message (framing already removed). now
// supplies the year for RFC 3164 timestamps, which lack it, and the time
// for messages without a usable timestamp.
func ParseSyslog(b []byte, now time.Time) (SyslogMessage, error) {
	var m SyslogMessage
	b = bytes.TrimRight(b, "\r\n\x00")
	if len(b) < 3 || b[0] != '<' {
		return m, errNoPRI
	}
	end := bytes.IndexByte(b[:min(len(b), 5)], '>')
	if end < 2 {
		return m, errNoPRI
	}
	pri, err := strconv.Atoi(string(b[1:end]))
	if err != nil || pri < 0 || pri > 191 {
		return m, fmt.Errorf("syslog: bad PRI %q", b[1:end])
	}
	m.Facility, m.Severity = pri/8, pri%8
	rest := b[end+1:]
	// RFC 5424: VERSION (1) then SP right after PRI.
	if len(rest) >= 2 && rest[0] == '1' && rest[1] == ' ' {
		m.RFC5424 = true
		return m, parse5424(&m, string(rest[2:]), now)
	}
	parse3164(&m, string(rest), now)
	return m, nil
}

// ParseSyslogLine parses a syslog message or a log line leniently, as
// RFC 3164 section 4.3.3 asks of a relay: a line without a valid PRI is
// user.notice, with the timestamp, host and tag read from the line when
// it has them (/var/log/auth.log's "Jan  2 15:04:05 host prog[pid]:", or
// rsyslog's RFC 3339 file format); an RFC 5424 header that does not parse
// leaves its text to the message. It never fails: what it cannot read
// stays in Msg.
func ParseSyslogLine(b []byte, now time.Time) SyslogMessage {
	m, err := ParseSyslog(b, now)
	if err == nil {
		return m
	}
	b = bytes.TrimRight(b, "\r\n\x00")
	if m.RFC5424 {
		// A valid PRI and version, then a header that is not RFC 5424's.
		rest := b[bytes.IndexByte(b, '>')+3:]
		m = SyslogMessage{Facility: m.Facility, Severity: m.Severity}
		parse3164(&m, string(rest), now)
		return m
	}
	m = SyslogMessage{Facility: 1, Severity: 5, NoPRI: true}
	parse3164(&m, string(b), now)
	return m
}

func parse5424(m *SyslogMessage, s string, now time.Time) error {
	fields := make([]string, 0, 5)
	for i := 0; i < 5; i++ {
		sp := strings.IndexByte(s, ' ')
		if sp < 0 {
			if i == 4 { // MSGID then nothing: no SD, no MSG
				fields = append(fields, s)
				s = ""
				break
			}
			return fmt.Errorf("syslog: RFC 5424 header has %d of 5 fields", i)
		}
		fields = append(fields, s[:sp])
		s = s[sp+1:]
	}
	nilv := func(v string) string {
		if v == "-" {
			return ""
		}
		return v
	}
	if fields[0] == "-" {
		m.Timestamp = now
	} else {
		t, err := time.Parse(time.RFC3339Nano, fields[0])
		if err != nil {
			return fmt.Errorf("syslog: RFC 5424 timestamp: %w", err)
		}
		m.Timestamp = t
	}
	m.Hostname, m.AppName, m.ProcID, m.MsgID = nilv(fields[1]), nilv(fields[2]), nilv(fields[3]), nilv(fields[4])
	// STRUCTURED-DATA: "-" or one or more [..] elements; "]" inside values
	// is escaped as "\]".
	switch {
	case s == "":
		m.StructuredData = "-"
	case s[0] == '-':
		m.StructuredData = "-"
		s = strings.TrimPrefix(s[1:], " ")
	case s[0] == '[':
		i, inQuote := 0, false
		for i < len(s) {
			c := s[i]
			switch {
			case c == '\\' && inQuote:
				i++
			case c == '"':
				inQuote = !inQuote
			case c == ']' && !inQuote:
				if i+1 >= len(s) || s[i+1] != '[' {
					i++
					goto done
				}
			}
			i++
		}
		return errors.New("syslog: unterminated STRUCTURED-DATA")
	done:
		m.StructuredData = s[:i]
		s = strings.TrimPrefix(s[i:], " ")
	default:
		return fmt.Errorf("syslog: bad STRUCTURED-DATA %q", s[:min(len(s), 16)])
	}
	m.Msg = strings.TrimPrefix(s, "\ufeff") // the BOM only says "UTF-8"
	return nil
}

// hostField reads the HOSTNAME after an RFC 3164 timestamp, unless the
// word there is the TAG ("sshd[9]:"): some senders leave the host out.
func hostField(m *SyslogMessage, s string) string {
	sp := strings.IndexByte(s, ' ')
	if sp <= 0 || s[sp-1] == ':' {
		return s
	}
	m.Hostname = s[:sp]
	return s[sp+1:]
}

// parse3164 is lenient, as RFC 3164 section 4.3 asks relays to be: a
// message whose header does not look like "Mmm dd hh:mm:ss host tag:"
// keeps the whole rest as MSG.
func parse3164(m *SyslogMessage, s string, now time.Time) {
	m.Timestamp = now
	if len(s) >= 16 && s[15] == ' ' {
		// "Jan  2 15:04:05" in the sender's local time, which we cannot
		// know; we take UTC and the receiver's year.
		if t, err := time.Parse(time.Stamp, s[:15]); err == nil {
			t = time.Date(now.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
			// Late-December messages read in early January belong to last year.
			if t.After(now.Add(31 * 24 * time.Hour)) {
				t = t.AddDate(-1, 0, 0)
			}
			m.Timestamp = t
			s = s[16:]
			s = hostField(m, s)
		}
	} else if sp := strings.IndexByte(s, ' '); sp > 0 {
		// Some senders (rsyslog's RSYSLOG_ForwardFormat-less setups) put an
		// RFC 3339 timestamp into a BSD header.
		if t, err := time.Parse(time.RFC3339Nano, s[:sp]); err == nil {
			m.Timestamp = t
			s = hostField(m, s[sp+1:])
		}
	}
	// TAG: up to 32 alphanumerics, optionally "[pid]", then ":".
	if colon := strings.IndexByte(s, ':'); colon > 0 && colon <= 48 && !strings.ContainsAny(s[:colon], " \t") {
		tag := s[:colon]
		if lb := strings.IndexByte(tag, '['); lb > 0 && strings.HasSuffix(tag, "]") {
			m.ProcID = tag[lb+1 : len(tag)-1]
			tag = tag[:lb]
		}
		m.AppName = tag
		s = strings.TrimPrefix(s[colon+1:], " ")
	}
	m.Msg = s
}
