package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// startProcess runs the vigil binary with args until the test ends and
// waits until addr accepts connections.
func startProcess(t *testing.T, addr string, args ...string) {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), "proc-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(vigilBin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start vigil %v: %v", args, err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			raw, _ := os.ReadFile(logf.Name())
			t.Logf("vigil %s log:\n%s", args[0], truncate(string(raw), 8000))
		}
	})
	waitListening(t, addr)
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening after 30s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRsyslog feeds `logger` lines shaped like sshd and sudo messages to a
// real rsyslogd, which forwards them to `vigil ingest` over TCP syslog
// (octet-counted RFC 5424) and, through omkafka (librdkafka), straight to
// the broker. The OCSF topics get the right classes and fields, and the
// raw topic gets the lines.
func TestRsyslog(t *testing.T) {
	t.Parallel()
	rsyslogd, err := exec.LookPath("rsyslogd")
	if err != nil {
		rsyslogd = "/usr/sbin/rsyslogd"
	}
	if _, err := os.Stat(rsyslogd); err != nil {
		t.Fatal("rsyslogd not installed: apt-get install -y rsyslog rsyslog-kafka (see .ci/install)")
	}
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/rsyslog/omkafka.so"); err != nil {
		if matches, _ := filepath.Glob("/usr/lib/*/rsyslog/omkafka.so"); len(matches) == 0 {
			t.Fatal("rsyslog's omkafka module not installed: apt-get install -y rsyslog-kafka (see .ci/install)")
		}
	}
	logger, err := exec.LookPath("logger")
	if err != nil {
		t.Fatal("logger not installed (bsdutils)")
	}

	b := startBroker(t, "", t.TempDir())
	ingestAddr, rsyslogAddr := freeAddr(t), freeAddr(t)
	startProcess(t, ingestAddr, "ingest", "--brokers", b.addr, "--syslog-tcp", ingestAddr, "--syslog-udp", "", "--http", "")

	dir := t.TempDir()
	_, ingestPort, _ := net.SplitHostPort(ingestAddr)
	_, rsyslogPort, _ := net.SplitHostPort(rsyslogAddr)
	conf := fmt.Sprintf(`global(workDirectory=%q)
module(load="imtcp")
module(load="omkafka")
input(type="imtcp" address="127.0.0.1" port=%q ruleset="fwd")
ruleset(name="fwd") {
  action(type="omfwd" target="127.0.0.1" port=%q protocol="tcp" TCP_Framing="octet-counted"
         template="RSYSLOG_SyslogProtocol23Format")
  action(type="omkafka" broker=[%q] topic="rsyslog-raw" template="RSYSLOG_SyslogProtocol23Format"
         confParam=["socket.timeout.ms=10000"])
}
`, dir, rsyslogPort, ingestPort, b.addr)
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	rs := exec.Command(rsyslogd, "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslogd.pid"))
	out, err := os.Create(filepath.Join(dir, "rsyslogd.out"))
	if err != nil {
		t.Fatal(err)
	}
	rs.Stdout, rs.Stderr = out, out
	if err := rs.Start(); err != nil {
		t.Fatalf("start rsyslogd: %v", err)
	}
	t.Cleanup(func() {
		rs.Process.Kill()
		rs.Wait()
		if t.Failed() {
			raw, _ := os.ReadFile(out.Name())
			t.Logf("rsyslogd output:\n%s", raw)
		}
	})
	waitListening(t, rsyslogAddr)

	// As sshd and sudo log them: the program as APP-NAME, the pid as PROCID.
	lines := []struct{ tag, pid, msg string }{
		{"sshd", "4242", "Failed password for invalid user admin from 203.0.113.9 port 52211 ssh2"},
		{"sshd", "4243", "Accepted password for alice from 10.0.0.5 port 50000 ssh2"},
		{"sudo", "4244", "   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id -u"},
	}
	for _, l := range lines {
		runCmd(t, 10*time.Second, logger, "--server", "127.0.0.1", "--port", rsyslogPort, "--tcp", "--octet-count",
			"--rfc5424", "-p", "authpriv.notice", "-t", l.tag, "--id="+l.pid, l.msg)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	auth := consumeJSON(t, ctx, b.addr, "ocsf.authentication", 2)
	byUser := map[string]map[string]any{}
	for _, ev := range auth {
		if u, ok := ev["user"].(map[string]any); ok {
			byUser[fmt.Sprint(u["name"])] = ev
		}
	}
	failed, accepted := byUser["admin"], byUser["alice"]
	if failed == nil || accepted == nil {
		t.Fatalf("ocsf.authentication lacks the admin failure or the alice logon: %v", auth)
	}
	for _, c := range []struct {
		ev     map[string]any
		status string
	}{{failed, "Failure"}, {accepted, "Success"}} {
		if c.ev["class_uid"] != float64(3002) || c.ev["status"] != c.status {
			t.Errorf("authentication event: class %v status %v, want 3002 %s: %v", c.ev["class_uid"], c.ev["status"], c.status, c.ev)
		}
	}
	if src, _ := failed["src_endpoint"].(map[string]any); src == nil || src["ip"] != "203.0.113.9" {
		t.Errorf("failed logon src_endpoint = %v, want ip 203.0.113.9", failed["src_endpoint"])
	}
	procs := consumeJSON(t, ctx, b.addr, "ocsf.process_activity", 1)
	if p := procs[0]; p["class_uid"] != float64(1007) || !strings.Contains(fmt.Sprint(p["process"]), "/usr/bin/id") {
		t.Errorf("sudo event: %v, want class 1007 with the command /usr/bin/id", p)
	}
	raw := consumeRaw(t, ctx, b.addr, "rsyslog-raw", len(lines))
	for _, l := range lines {
		if !strings.Contains(strings.Join(raw, "\n"), strings.TrimSpace(l.msg)) {
			t.Errorf("omkafka topic lacks %q:\n%s", l.msg, strings.Join(raw, "\n"))
		}
	}
}

func consumeRaw(t *testing.T, ctx context.Context, addr, topic string, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []string
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: got %d of %d records before the deadline: %q", topic, len(out), n, out)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	return out
}

func consumeJSON(t *testing.T, ctx context.Context, addr, topic string, n int) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, v := range consumeRaw(t, ctx, addr, topic, n) {
		var m map[string]any
		if err := json.Unmarshal([]byte(v), &m); err != nil {
			t.Fatalf("%s: record is not JSON: %v: %s", topic, err, v)
		}
		out = append(out, m)
	}
	return out
}

// TestRsyslogCorrelation sends a burst of sshd failures through a real
// rsyslogd (imtcp in, omfwd with octet counting out) to the ingest
// service inside `vigil serve`, and a streaming `vigil detect` fires a
// Sigma correlation rule on them: once for the source that failed eight
// times within a minute, never for the one that failed twice.
func TestRsyslogCorrelation(t *testing.T) {
	t.Parallel()
	rsyslogd, err := exec.LookPath("rsyslogd")
	if err != nil {
		rsyslogd = "/usr/sbin/rsyslogd"
	}
	if _, err := os.Stat(rsyslogd); err != nil {
		t.Fatal("rsyslogd not installed: apt-get install -y rsyslog (see .ci/install)")
	}
	logger, err := exec.LookPath("logger")
	if err != nil {
		t.Fatal("logger not installed (bsdutils)")
	}
	rules := t.TempDir()
	if err := os.WriteFile(filepath.Join(rules, "ssh_bruteforce.yml"), []byte(`title: SSH failed password
id: 3b0f7a52-1d2e-4c8f-9a6b-0e5d4c3b2a11
name: ssh_failed_password
status: test
logsource: {product: linux, service: sshd}
detection:
  keywords: ['Failed password']
  condition: keywords
level: low
---
title: SSH brute force from one source
id: 7c1e9d40-5b3a-4f2e-8d7c-6a5b4c3d2e1f
status: test
correlation:
  type: event_count
  rules: [ssh_failed_password]
  group-by: [src_endpoint.ip]
  timespan: 1m
  condition: {gte: 5}
level: high
`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newRoutingRig(t, rules)

	dir := t.TempDir()
	rsyslogAddr := freeAddr(t)
	_, ingestPort, _ := net.SplitHostPort(r.syslog)
	_, rsyslogPort, _ := net.SplitHostPort(rsyslogAddr)
	conf := fmt.Sprintf(`global(workDirectory=%q)
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port=%q ruleset="fwd")
ruleset(name="fwd") {
  action(type="omfwd" target="127.0.0.1" port=%q protocol="tcp" TCP_Framing="octet-counted"
         template="RSYSLOG_SyslogProtocol23Format")
}
`, dir, rsyslogPort, ingestPort)
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	rs := exec.Command(rsyslogd, "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslogd.pid"))
	out, err := os.Create(filepath.Join(dir, "rsyslogd.out"))
	if err != nil {
		t.Fatal(err)
	}
	rs.Stdout, rs.Stderr = out, out
	if err := rs.Start(); err != nil {
		t.Fatalf("start rsyslogd: %v", err)
	}
	t.Cleanup(func() {
		rs.Process.Kill()
		rs.Wait()
		if t.Failed() {
			raw, _ := os.ReadFile(out.Name())
			t.Logf("rsyslogd output:\n%s", raw)
		}
	})
	waitListening(t, rsyslogAddr)

	send := func(src string, n int) {
		for i := 0; i < n; i++ {
			runCmd(t, 10*time.Second, logger, "--server", "127.0.0.1", "--port", rsyslogPort, "--tcp", "--octet-count",
				"--rfc5424", "-p", "authpriv.info", "-t", "sshd", "--id=2231",
				fmt.Sprintf("Failed password for root from %s port %d ssh2", src, 40000+i))
		}
	}
	send("203.0.113.77", 8)
	send("198.51.100.2", 2)
	hits := r.findings(10)
	if len(hits) != 1 || hits[0].rule != "7c1e9d40-5b3a-4f2e-8d7c-6a5b4c3d2e1f" || !strings.Contains(hits[0].raw, "from 203.0.113.77 ") {
		t.Fatalf("findings %+v, want one brute-force correlation for 203.0.113.77", hits)
	}
	// The correlation finding itself says what it counted.
	var f struct {
		Unmapped struct {
			Correlation struct {
				GroupBy map[string]string `json:"group_by"`
				Count   int               `json:"count"`
			} `json:"correlation"`
		} `json:"unmapped"`
	}
	raw := readAll(t, r.b.addr, "alerts")
	if err := json.Unmarshal(raw[0], &f); err != nil {
		t.Fatal(err)
	}
	if f.Unmapped.Correlation.Count < 5 || f.Unmapped.Correlation.GroupBy["src_endpoint.ip"] != "203.0.113.77" {
		t.Errorf("correlation finding: %s", raw[0])
	}
}
