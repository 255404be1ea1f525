package ingest

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRawLogLines posts a copy of /var/log/auth.log (no PRI) with
// format=raw: every line becomes an event, with the host and time the
// line names, and nothing is dead-lettered.
func TestRawLogLines(t *testing.T) {
	b := startBroker(t, t.TempDir(), "")
	svc := startIngest(t, b.Addr, nil)
	base := "http://" + svc.HTTPAddr().String()
	lines := "Nov 26 10:40:01 web-3 sshd[3101]: error: Corrupted MAC on input.\n" +
		"Nov 26 10:40:02 web-3 sshd[3102]: Failed password for root from 203.0.113.50 port 41000 ssh2\n" +
		"2026-11-26T10:41:00.123456+00:00 web-4 sudo:    bob : TTY=pts/2 ; PWD=/home/bob ; USER=root ; COMMAND=/usr/bin/id\n"
	resp, body := post(t, base+"/v1/events?format=raw", []byte(lines), nil)
	if resp.StatusCode != http.StatusAccepted || string(body) != `{"deadlettered":0,"events":3}`+"\n" {
		t.Fatalf("raw lines: %d %s", resp.StatusCode, body)
	}
	got := consume(t, b.Addr, []string{"ocsf.base_event", "ocsf.authentication", "ocsf.process_activity"}, 30*time.Second,
		func(rs []gotRecord) bool { return len(rs) >= 3 })
	byTopic := map[string]gotRecord{}
	for _, r := range got {
		byTopic[r.Topic] = r
	}
	mac := byTopic["ocsf.base_event"]
	if mac.Key != "web-3" || field(mac.Value, "device.hostname") != "web-3" || field(mac.Value, "metadata.log_provider") != "sshd" ||
		field(mac.Value, "message") != "error: Corrupted MAC on input." || !strings.HasPrefix(time.UnixMilli(int64(field(mac.Value, "time").(float64))).UTC().Format(time.Stamp), "Nov 26 10:40:01") {
		t.Errorf("the Corrupted MAC line: key %q %v", mac.Key, mac.Value)
	}
	if byTopic["ocsf.process_activity"].Key != "web-4" || field(byTopic["ocsf.process_activity"].Value, "unmapped.COMMAND") != "/usr/bin/id" {
		t.Errorf("the sudo line: %+v", byTopic["ocsf.process_activity"])
	}
	for _, bad := range []string{"?format=raw&source=zeek", "?format=xml", "?format=json&source=syslog"} {
		if resp, body := post(t, base+"/v1/events"+bad, []byte(lines), nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, resp.StatusCode, body)
		}
	}
	if n := svc.Stats().DeadLettered.Load(); n != 0 {
		t.Errorf("%d dead-lettered", n)
	}
}

// TestHECKeepsEnvelope checks that HEC's host, source, sourcetype, index
// and fields reach the OCSF event, and that the host keys it.
func TestHECKeepsEnvelope(t *testing.T) {
	b := startBroker(t, t.TempDir(), "")
	svc := startIngest(t, b.Addr, nil)
	body := `{"time":1795676400.5,"host":"fw-7","source":"/var/log/auth.log","sourcetype":"linux_secure","index":"sec","fields":{"dc":"eu-1"},"event":"Nov 26 10:00:00 sshd[9]: error: Corrupted MAC on input."}` +
		`{"host":"fw-8","sourcetype":"myapp:json","event":{"msg":"rotated keys","user":"ops"}}`
	resp, out := post(t, "http://"+svc.HTTPAddr().String()+"/services/collector/event", []byte(body), map[string]string{"Authorization": "Splunk s3cret"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEC: %d %s", resp.StatusCode, out)
	}
	got := consume(t, b.Addr, []string{"ocsf.base_event"}, 30*time.Second, func(rs []gotRecord) bool { return len(rs) >= 2 })
	byKey := map[string]gotRecord{}
	for _, r := range got {
		byKey[r.Key] = r
	}
	line, app := byKey["fw-7"], byKey["fw-8"]
	if line.Value == nil || app.Value == nil {
		t.Fatalf("records not keyed by the HEC host: %v", summarize(got))
	}
	for path, want := range map[string]any{
		"device.hostname": "fw-7", "unmapped.hec.index": "sec", "unmapped.hec.sourcetype": "linux_secure",
		"unmapped.hec.source": "/var/log/auth.log", "unmapped.hec.fields.dc": "eu-1", "metadata.log_provider": "sshd",
		// The line has no PRI: the file it came from is its log.
		"metadata.log_name": "/var/log/auth.log",
	} {
		if v := field(line.Value, path); v != want {
			t.Errorf("line event %s = %v, want %v", path, v, want)
		}
	}
	if field(app.Value, "device.hostname") != "fw-8" || field(app.Value, "unmapped.user") != "ops" || field(app.Value, "message") != "rotated keys" {
		t.Errorf("JSON event: %v", app.Value)
	}
}

// TestSyslogFraming checks each framing over a real TCP connection, and
// that a frame the connection ends inside of is dead-lettered and counted.
func TestSyslogFraming(t *testing.T) {
	b := startBroker(t, t.TempDir(), "")
	auto := startIngest(t, b.Addr, nil)
	nl := startIngest(t, b.Addr, func(c *Config) { c.SyslogFraming = FramingNewline; c.SyslogUDP, c.HTTP = "", "" })

	c := dialTCP(t, auto.SyslogTCPAddr())
	// A line starting with digits and a space, then one that must not be
	// swallowed as its "count", then a counted frame cut by the close.
	io.WriteString(c, "<13>Nov 26 10:00:00 h1 app: 12 apples\n<13>Nov 26 10:00:01 h2 app: next\n")
	io.WriteString(c, "200 <13>Nov 26 10:00:02 h3 app: cut")
	c.Close()
	c2 := dialTCP(t, nl.SyslogTCPAddr())
	io.WriteString(c2, "17 <13>h4 app: x\n")
	c2.Close()

	got := consume(t, b.Addr, []string{"ocsf.base_event", "ingest.deadletter"}, 30*time.Second, func(rs []gotRecord) bool { return len(rs) >= 4 })
	var keys, reasons []string
	for _, r := range got {
		if r.Topic == "ingest.deadletter" {
			reasons = append(reasons, r.Value["reason"].(string)+" raw="+r.Value["raw"].(string))
		} else {
			keys = append(keys, r.Key+":"+field(r.Value, "message").(string))
		}
	}
	wantReason := "octet-counted frame of 200 bytes cut short after 31 bytes: the connection ended raw=<13>Nov 26 10:00:02 h3 app: cut"
	if strings.Join(reasons, "|") != wantReason {
		t.Errorf("dead letters %q, want %q", reasons, wantReason)
	}
	joined := strings.Join(keys, "|")
	for _, want := range []string{"h1:12 apples", "h2:next", "127.0.0.1:17 <13>h4 app: x"} {
		if !strings.Contains(joined, want) {
			t.Errorf("events %q lack %q", keys, want)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); auto.Stats().CutFrames.Load() != 1 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := auto.Stats().CutFrames.Load(); n != 1 {
		t.Errorf("cut_frames = %d, want 1", n)
	}
}

// TestFileFollow reads a log file, follows what is appended, and follows
// the file across a rotation (rename and recreate).
func TestFileFollow(t *testing.T) {
	b := startBroker(t, t.TempDir(), "")
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	write := func(p, s string, flag int) {
		t.Helper()
		f, err := os.OpenFile(p, flag|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	write(path, "Nov 26 10:00:00 web-1 sshd[1]: Accepted password for alice from 10.0.0.5 port 5 ssh2\n", os.O_CREATE|os.O_TRUNC)
	svc := startIngest(t, b.Addr, func(c *Config) {
		c.SyslogTCP, c.SyslogUDP, c.HTTP = "", "", ""
		c.Files, c.Follow = []string{path}, true
	})
	consume(t, b.Addr, []string{"ocsf.authentication"}, 30*time.Second, func(rs []gotRecord) bool { return len(rs) >= 1 })
	// Appended in two writes: half a line waits for its end.
	write(path, "Nov 26 10:00:01 web-1 sshd[2]: Failed password for root ", os.O_APPEND)
	time.Sleep(2 * pollInterval)
	write(path, "from 203.0.113.9 port 6 ssh2\n", os.O_APPEND)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	write(path+".1", "Nov 26 10:00:02 web-1 sshd[3]: Failed password for bob from 203.0.113.9 port 7 ssh2\n", os.O_APPEND)
	write(path, "Nov 26 10:00:03 web-1 sshd[4]: Failed password for carol from 203.0.113.9 port 8 ssh2\n", os.O_CREATE)
	got := consume(t, b.Addr, []string{"ocsf.authentication"}, 30*time.Second, func(rs []gotRecord) bool { return len(rs) >= 4 })
	var users []string
	for _, r := range got {
		users = append(users, field(r.Value, "user.name").(string))
	}
	if strings.Join(users, ",") != "alice,root,bob,carol" {
		t.Errorf("users %v, want alice, root, bob, carol in order", users)
	}
	if n := svc.Stats().DeadLettered.Load(); n != 0 {
		t.Errorf("%d dead-lettered", n)
	}
}

// TestFileLongLine reads a file once: a line over --max-message-bytes is
// dead-lettered with its size, and the lines around it are events.
func TestFileLongLine(t *testing.T) {
	b := startBroker(t, t.TempDir(), "")
	path := filepath.Join(t.TempDir(), "messages")
	long := "Nov 26 10:00:01 web-1 app: " + strings.Repeat("z", 300)
	if err := os.WriteFile(path, []byte("Nov 26 10:00:00 web-1 app: before\n"+long+"\nNov 26 10:00:02 web-1 app: after"), 0o644); err != nil {
		t.Fatal(err)
	}
	svc := startIngest(t, b.Addr, func(c *Config) {
		c.SyslogTCP, c.SyslogUDP, c.HTTP = "", "", ""
		c.Files, c.MaxMessageBytes = []string{path}, 100
	})
	select {
	case <-svc.FileDone():
	case <-time.After(30 * time.Second):
		t.Fatal("the file was not read within 30s")
	}
	got := consume(t, b.Addr, []string{"ocsf.base_event", "ingest.deadletter"}, 30*time.Second, func(rs []gotRecord) bool { return len(rs) >= 3 })
	var msgs []string
	for _, r := range got {
		if r.Topic == "ingest.deadletter" {
			msgs = append(msgs, r.Value["reason"].(string)+":"+strconv.Itoa(int(r.Value["raw_bytes"].(float64))))
		} else {
			msgs = append(msgs, field(r.Value, "message").(string))
		}
	}
	slices.Sort(msgs)
	if want := []string{"after", "before", "log line exceeds the maximum message size:" + strconv.Itoa(len(long))}; !slices.Equal(msgs, want) {
		t.Errorf("got %q, want %q", msgs, want)
	}
}
