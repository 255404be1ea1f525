package ingest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func post(t *testing.T, url string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func dialTCP(t *testing.T, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func octet(msg string) string { return fmt.Sprintf("%d %s", len(msg), msg) }

func field(v map[string]any, path string) any {
	var cur any = v
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

// TestEndToEnd sends syslog over TCP (octet-counted and LF-framed) and
// UDP, NDJSON CloudTrail and Zeek over HTTP and a HEC request, and reads
// the OCSF topics back.
func TestEndToEnd(t *testing.T) {
	b := startBroker(t, t.TempDir(), "")
	svc := startIngest(t, b.Addr, nil)
	base := "http://" + svc.HTTPAddr().String()

	c := dialTCP(t, svc.SyslogTCPAddr())
	sshFail := "<38>Nov 26 10:15:07 web-1 sshd[2240]: Failed password for root from 203.0.113.9 port 40022 ssh2"
	sudo := "<85>1 2026-11-26T10:30:00Z db-1 sudo - - - alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id -u"
	if _, err := io.WriteString(c, octet(sshFail)+octet(sudo)+sshFail+"\n"); err != nil {
		t.Fatal(err)
	}
	u, err := net.Dial("udp", svc.SyslogUDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := io.WriteString(u, "<38>Nov 26 10:15:09 web-3 sshd[77]: Invalid user oracle from 198.51.100.1 port 4000"); err != nil {
		t.Fatal(err)
	}

	ct, err := os.ReadFile("../parse/testdata/cloudtrail/single.ndjson.input")
	if err != nil {
		t.Fatal(err)
	}
	ctLines := strings.SplitN(string(ct), "\n", 3)[:2] // the two valid events
	resp, body := post(t, base+"/v1/events?source=cloudtrail", []byte(strings.Join(ctLines, "\n")+"\n"), nil)
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(body), `"events":2`) {
		t.Fatalf("cloudtrail POST: %d %s", resp.StatusCode, body)
	}
	zeek, err := os.ReadFile("../parse/testdata/zeek/logs.input")
	if err != nil {
		t.Fatal(err)
	}
	zeekLines := strings.Split(strings.TrimSpace(string(zeek)), "\n")[:4] // conn, dns, http, ssl
	var zbody bytes.Buffer
	zw := gzip.NewWriter(&zbody)
	io.WriteString(zw, strings.Join(zeekLines, "\n"))
	zw.Close()
	resp, body = post(t, base+"/v1/events?source=auto", zbody.Bytes(), map[string]string{"Content-Encoding": "gzip"})
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(body), `"events":4`) {
		t.Fatalf("zeek POST: %d %s", resp.StatusCode, body)
	}

	hec := `{"host":"ws-7","sourcetype":"XmlWinEventLog","event":{"@timestamp":"2026-11-26T09:01:00Z","winlog":{"channel":"Security","event_id":4688,"computer_name":"WS-7","event_data":{"SubjectUserName":"jdoe","NewProcessName":"C:\\Windows\\System32\\whoami.exe","NewProcessId":"0x10"}}}}` +
		`{"sourcetype":"linux_secure","event":"<38>Nov 26 10:16:00 hec-host sshd[1]: Accepted password for carol from 10.9.9.9 port 2222 ssh2"}`
	for _, tc := range []struct {
		auth string
		code int
	}{{"", 401}, {"Splunk wrong", 403}, {"Splunk s3cret", 200}} {
		h := map[string]string{}
		if tc.auth != "" {
			h["Authorization"] = tc.auth
		}
		resp, body := post(t, base+"/services/collector/event", []byte(hec), h)
		if resp.StatusCode != tc.code {
			t.Fatalf("HEC with %q: %d %s, want %d", tc.auth, resp.StatusCode, body, tc.code)
		}
	}

	topics := []string{"ocsf.authentication", "ocsf.process_activity", "ocsf.api_activity", "ocsf.network_activity", "ocsf.dns_activity", "ocsf.http_activity"}
	// 2 sshd over TCP, 1 over UDP, ConsoleLogin, carol: 5 authentication;
	// sudo + 4688: 2 process; TerminateInstances: 1 API; conn+ssl: 2
	// network; 1 DNS; 1 HTTP.
	got := consume(t, b.Addr, topics, 30*time.Second, func(rs []gotRecord) bool { return len(rs) >= 12 })
	if len(got) != 12 {
		t.Errorf("got %d records, want 12: %v", len(got), summarize(got))
	}
	byTopic := map[string][]gotRecord{}
	for _, r := range got {
		byTopic[r.Topic] = append(byTopic[r.Topic], r)
	}
	wantClass := map[string]float64{"ocsf.authentication": 3002, "ocsf.process_activity": 1007, "ocsf.api_activity": 6003,
		"ocsf.network_activity": 4001, "ocsf.dns_activity": 4003, "ocsf.http_activity": 4002}
	for _, r := range got {
		if r.Value["class_uid"] != wantClass[r.Topic] {
			t.Errorf("%s: class_uid %v", r.Topic, r.Value["class_uid"])
		}
		if r.Key == "" {
			t.Errorf("%s: record without a host key", r.Topic)
		}
		if r.Value["raw_data"] == nil || r.Value["unmapped"] == nil {
			t.Errorf("%s: raw_data or unmapped missing", r.Topic)
		}
	}
	keys := map[string]int{}
	for _, r := range byTopic["ocsf.authentication"] {
		keys[r.Key]++
	}
	for k, n := range map[string]int{"web-1": 2, "web-3": 1, "111122223333": 1, "hec-host": 1} {
		if keys[k] != n {
			t.Errorf("authentication keys %v, want %d for %s", keys, n, k)
		}
	}
	for _, r := range byTopic["ocsf.authentication"] {
		if r.Key == "web-1" && (field(r.Value, "user.name") != "root" || field(r.Value, "status_id") != 2.0 || field(r.Value, "src_endpoint.ip") != "203.0.113.9") {
			t.Errorf("sshd failure event: %v", r.Value)
		}
	}
	for _, r := range byTopic["ocsf.process_activity"] {
		switch r.Key {
		case "db-1":
			if field(r.Value, "process.cmd_line") != "/usr/bin/id -u" || field(r.Value, "actor.user.name") != "alice" {
				t.Errorf("sudo event: %v", r.Value)
			}
		case "WS-7":
			if field(r.Value, "process.pid") != 16.0 {
				t.Errorf("4688 event: %v", r.Value)
			}
		default:
			t.Errorf("process event keyed %q", r.Key)
		}
	}
	if r := byTopic["ocsf.dns_activity"]; len(r) != 1 || r[0].Key != "10.0.0.5" || field(r[0].Value, "query.hostname") != "evil.example.net" {
		t.Errorf("dns: %+v", r)
	}
	if r := byTopic["ocsf.api_activity"]; len(r) != 1 || field(r[0].Value, "api.operation") != "TerminateInstances" {
		t.Errorf("api: %+v", r)
	}
}

// TestBadInput: garbage, a 10 MiB line, invalid UTF-8 and truncated JSON
// each reach the dead-letter topic (or a 4xx), and the listeners keep
// serving.
func TestBadInput(t *testing.T) {
	b := startBroker(t, t.TempDir(), "")
	svc := startIngest(t, b.Addr, nil)
	base := "http://" + svc.HTTPAddr().String()

	c := dialTCP(t, svc.SyslogTCPAddr())
	big := bytes.Repeat([]byte("A"), 10<<20)
	var in bytes.Buffer
	in.WriteString("\x01\x02garbage \xff\xfe bytes\n")          // no PRI, invalid UTF-8
	in.WriteString("<38>Nov 26 10:00:00 h sshd[1]: \xc3\x28\n") // valid header, invalid UTF-8
	in.Write(big)
	in.WriteString("\n")
	in.WriteString(octet("<38>Nov 26 10:00:01 after-big sshd[2]: Failed password for bob from 10.0.0.9 port 1 ssh2"))
	if _, err := c.Write(in.Bytes()); err != nil {
		t.Fatal(err)
	}
	// JSON that is not JSON is refused (400), and kept with the reason.
	resp, body := post(t, base+"/v1/events?source=cloudtrail", []byte(`{"eventVersion":"1.08","eventTime":"2026-11-26T07:0`), nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"deadlettered":1`) || !strings.Contains(string(body), "line 1") {
		t.Fatalf("truncated JSON: %d %s", resp.StatusCode, body)
	}
	// Parses, but the event is larger than the broker takes: the producer's
	// refusal sends it to the dead-letter topic.
	huge := fmt.Sprintf(`{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","userName":"u"},"eventTime":"2026-11-26T07:00:00Z","eventSource":"s3.amazonaws.com","eventName":"PutObject","sourceIPAddress":"10.0.0.1","recipientAccountId":"1","requestParameters":{"blob":"%s"}}`, strings.Repeat("b", 2<<20))
	resp, body = post(t, base+"/v1/events?source=cloudtrail", []byte(huge), nil)
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(body), `"events":1`) {
		t.Fatalf("huge event: %d %s", resp.StatusCode, body)
	}
	resp, body = post(t, base+"/v1/events?source=zeek", bytes.Repeat([]byte("{}\n"), 5<<20), nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("10 MiB body: %d %s", resp.StatusCode, body)
	}
	resp, body = post(t, base+"/v1/events?source=zeek", []byte("not gzip"), map[string]string{"Content-Encoding": "gzip"})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad gzip: %d %s", resp.StatusCode, body)
	}
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zw.Write(bytes.Repeat([]byte("{}\n"), 5<<20)) // 15 MiB inflated, ~15 KiB on the wire
	zw.Close()
	resp, body = post(t, base+"/v1/events?source=zeek", bomb.Bytes(), map[string]string{"Content-Encoding": "gzip"})
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("gzip bomb: %d %s", resp.StatusCode, body)
	}
	resp, body = post(t, base+"/v1/events?source=nope", []byte("{}"), nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown source: %d %s", resp.StatusCode, body)
	}
	resp, body = post(t, base+"/services/collector/event", []byte(`{"event":{"a":1}`), map[string]string{"Authorization": "Splunk s3cret"})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"code":6`) {
		t.Fatalf("truncated HEC: %d %s", resp.StatusCode, body)
	}
	// Still serving: a good line over the same TCP connection and HTTP.
	if _, err := io.WriteString(c, "<38>Nov 26 10:00:02 still-up sshd[3]: Accepted password for bob from 10.0.0.9 port 2 ssh2\n"); err != nil {
		t.Fatal(err)
	}
	dead := consume(t, b.Addr, []string{"ingest.deadletter"}, 30*time.Second, func(rs []gotRecord) bool { return len(rs) >= 6 })
	reasons := map[string]bool{}
	for _, r := range dead {
		reason, _ := r.Value["reason"].(string)
		reasons[reason] = true
		if r.Headers["reason"] != reason || r.Headers["source"] == "" {
			t.Errorf("dead-letter headers %v, envelope reason %q", r.Headers, reason)
		}
		if reason == "syslog frame exceeds the maximum message size" {
			if r.Value["truncated"] != true || r.Value["raw_bytes"].(float64) != 10<<20 {
				t.Errorf("oversize envelope: truncated=%v raw_bytes=%v", r.Value["truncated"], r.Value["raw_bytes"])
			}
		}
		if reason == "invalid UTF-8" && r.Value["raw_base64"] == nil {
			t.Errorf("invalid UTF-8 envelope without raw_base64")
		}
	}
	for _, want := range []string{"invalid UTF-8", "syslog frame exceeds the maximum message size", "invalid JSON at line 1: unexpected EOF", "invalid HEC JSON: unexpected EOF"} {
		if !reasons[want] {
			t.Errorf("no dead-letter record with reason %q; got %v", want, summarize(dead))
		}
	}
	if len(dead) != 6 {
		t.Errorf("%d dead-letter records, want 6: %v", len(dead), summarize(dead))
	}
	tooLarge := false
	for _, r := range dead {
		reason, _ := r.Value["reason"].(string)
		if strings.HasPrefix(reason, "produce to ocsf.api_activity: ") {
			tooLarge = r.Value["truncated"] == true && r.Headers["source"] == "ingest"
		}
	}
	if !tooLarge {
		t.Errorf("no truncated dead-letter record for the event the broker refused: %v", summarize(dead))
	}
	auth := consume(t, b.Addr, []string{"ocsf.authentication"}, 30*time.Second, func(rs []gotRecord) bool { return len(rs) >= 2 })
	if auth[0].Key != "after-big" || auth[1].Key != "still-up" {
		t.Errorf("events after bad input: %v", summarize(auth))
	}
	// The producer's acknowledgement callbacks count, and may trail what
	// a consumer already reads.
	for deadline := time.Now().Add(5 * time.Second); svc.Stats().DeadLettered.Load() != 6 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := svc.Stats().DeadLettered.Load(); got != 6 {
		t.Errorf("stats dead-lettered %d, want 6", got)
	}
}

// TestBackpressure stops the broker: HTTP answers 503 with Retry-After
// once the tiny budget is full, and every event accepted before that
// arrives once the broker is back.
func TestBackpressure(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir, "")
	addr := b.Addr
	svc := startIngest(t, addr, func(c *Config) { c.MemoryBudget = 16 << 10 })
	base := "http://" + svc.HTTPAddr().String()
	b.Close()

	event := func(i int) []byte {
		return []byte(fmt.Sprintf(`{"_path":"dns","ts":1795676400.%03d,"uid":"C%d","id.orig_h":"10.0.0.%d","id.orig_p":5000,"id.resp_h":"10.0.0.1","id.resp_p":53,"query":"q%d.example","qtype_name":"A"}`, i, i, i%4, i))
	}
	accepted := map[string]bool{}
	var retryAfter string
	for i := 0; i < 1000 && retryAfter == ""; i++ {
		resp, body := post(t, base+"/v1/events?source=zeek", event(i), nil)
		switch resp.StatusCode {
		case http.StatusAccepted:
			accepted[fmt.Sprintf("q%d.example", i)] = true
		case http.StatusServiceUnavailable:
			retryAfter = resp.Header.Get("Retry-After")
			if retryAfter == "" {
				t.Fatalf("503 without Retry-After: %s", body)
			}
		default:
			t.Fatalf("POST %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if retryAfter == "" {
		t.Fatalf("no 503 after 1000 events with the broker down")
	}
	if len(accepted) == 0 {
		t.Fatalf("nothing accepted before the budget filled")
	}
	t.Logf("%d events accepted, then 503 Retry-After: %s", len(accepted), retryAfter)

	b2 := startBroker(t, dir, addr)
	got := consume(t, b2.Addr, []string{"ocsf.dns_activity"}, 60*time.Second, func(rs []gotRecord) bool { return len(rs) >= len(accepted) })
	for _, r := range got {
		q, _ := field(r.Value, "query.hostname").(string)
		if !accepted[q] {
			t.Errorf("unexpected event %q", q)
		}
		delete(accepted, q)
	}
	if len(accepted) != 0 {
		t.Errorf("accepted but never delivered: %v", accepted)
	}
	// The budget drains once the broker has acknowledged everything, and
	// HTTP accepts again.
	deadline := time.Now().Add(10 * time.Second)
	for svc.budget.Used() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if used := svc.budget.Used(); used != 0 {
		t.Errorf("budget still holds %d bytes", used)
	}
	resp, body := post(t, base+"/v1/events?source=zeek", event(1000), nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("after recovery: %d %s", resp.StatusCode, body)
	}
	var stats map[string]int64
	sresp, err := http.Get(base + "/v1/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer sresp.Body.Close()
	if err := json.NewDecoder(sresp.Body).Decode(&stats); err != nil {
		t.Fatal(err)
	}
	if stats["refused"] < 1 || stats["lost"] != 0 {
		t.Errorf("stats %v", stats)
	}
	// The same counters in Prometheus text.
	mresp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mbody, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	want := fmt.Sprintf("vigil_ingest_refused_total %d", stats["refused"])
	if !strings.Contains(string(mbody), want) || !strings.Contains(string(mbody), "vigil_ingest_lost_total 0") {
		t.Errorf("/metrics lacks %q and vigil_ingest_lost_total 0:\n%s", want, mbody)
	}
	// Close before the restarted broker's cleanup (cleanups run last in,
	// first out): Close must flush to a live broker.
	if err := svc.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}
