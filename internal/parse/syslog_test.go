package parse

import (
	"testing"
	"time"
)

func TestParseSyslog(t *testing.T) {
	now := time.Date(2026, 1, 3, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in                       string
		host, app, proc, sd, msg string
		ts                       string
		rfc5424                  bool
		err                      bool
	}{
		{in: `<165>1 2026-11-26T10:00:00.5+01:00 h1 app 42 ID7 [ex@1 a="x\]y" b="2"][other@2] hello world`,
			host: "h1", app: "app", proc: "42", sd: `[ex@1 a="x\]y" b="2"][other@2]`, msg: "hello world", ts: "2026-11-26T09:00:00.5Z", rfc5424: true},
		{in: "<14>1 - - - - - -", ts: "2026-01-03T12:00:00Z", sd: "-", rfc5424: true},
		{in: "<14>1 2026-11-26T10:00:00Z h a - - - \ufeffbom msg", host: "h", app: "a", sd: "-", msg: "bom msg", ts: "2026-11-26T10:00:00Z", rfc5424: true},
		// RFC 3164: a late-December message read in January is last year's.
		{in: "<38>Dec 31 23:59:59 h2 sshd[9]: bye", host: "h2", app: "sshd", proc: "9", msg: "bye", ts: "2025-12-31T23:59:59Z"},
		{in: "<38>Jan  3 11:00:00 h3 kernel: oops", host: "h3", app: "kernel", msg: "oops", ts: "2026-01-03T11:00:00Z"},
		{in: "<13>no header at all", msg: "no header at all", ts: "2026-01-03T12:00:00Z"},
		{in: "<13>2026-11-26T10:00:00Z h4 cron[1]: run", host: "h4", app: "cron", proc: "1", msg: "run", ts: "2026-11-26T10:00:00Z"},
		{in: "no pri", err: true},
		{in: "<999>1 x", err: true},
		{in: "<14>1 2026-11-26T10:00:00Z h a - - [unterminated", err: true},
		{in: "<14>1 yesterday h a - - - m", err: true},
	} {
		m, err := ParseSyslog([]byte(tc.in), now)
		if tc.err {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if m.Hostname != tc.host || m.AppName != tc.app || m.ProcID != tc.proc || m.Msg != tc.msg || m.RFC5424 != tc.rfc5424 ||
			(tc.rfc5424 && m.StructuredData != tc.sd) || m.Timestamp.UTC().Format(time.RFC3339Nano) != tc.ts {
			t.Errorf("%q:\n got %+v", tc.in, m)
		}
	}
}

// TestParseSyslogLine covers the lenient reading of lines without a
// valid PRI (log files) and of broken RFC 5424 headers.
func TestParseSyslogLine(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in, host, app, msg, ts string
		noPRI                  bool
		facility               int
	}{
		{in: "Nov 26 10:15:01 web-1 sshd[2231]: Accepted publickey for alice", host: "web-1", app: "sshd", msg: "Accepted publickey for alice", ts: "2026-11-26T10:15:01Z", noPRI: true, facility: 1},
		{in: "2026-11-26T10:41:00.123456+00:00 web-3 sudo: bob : TTY=pts/2", host: "web-3", app: "sudo", msg: "bob : TTY=pts/2", ts: "2026-11-26T10:41:00.123456Z", noPRI: true, facility: 1},
		// No host between the time and the tag.
		{in: "Nov 26 10:00:00 sshd[9]: error: Corrupted MAC on input.", app: "sshd", msg: "error: Corrupted MAC on input.", ts: "2026-11-26T10:00:00Z", noPRI: true, facility: 1},
		{in: "just text", msg: "just text", ts: "2026-11-26T12:00:00Z", noPRI: true, facility: 1},
		// An unidentifiable PRI: RFC 3164 keeps the whole as the message.
		{in: "<999>Nov 26 10:00:00 h a: m", msg: "<999>Nov 26 10:00:00 h a: m", ts: "2026-11-26T12:00:00Z", noPRI: true, facility: 1},
		{in: "<86>1 yesterday h a - - - m", msg: "yesterday h a - - - m", ts: "2026-11-26T12:00:00Z", facility: 10},
	} {
		m := ParseSyslogLine([]byte(tc.in), now)
		if m.Hostname != tc.host || m.AppName != tc.app || m.Msg != tc.msg || m.NoPRI != tc.noPRI || m.Facility != tc.facility ||
			m.Timestamp.UTC().Format(time.RFC3339Nano) != tc.ts {
			t.Errorf("%q:\n got %+v", tc.in, m)
		}
	}
}
