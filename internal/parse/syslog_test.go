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
