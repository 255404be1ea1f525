package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/sigma/sigmatest"
)

// The routing tests feed one product family's realistic events into
// `vigil serve --ingest-*` over its real input (syslog over TCP, HTTP,
// HEC), run `vigil detect` on the family's SigmaHQ rules as a consumer
// group, and check that exactly the expected rules fire on exactly the
// expected events. Then they dump the ocsf.* topics with kcat (-C -e) and
// run `vigil detect` offline over the dump: the findings must be the
// same, rule by rule and event by event.

// hit is a finding: a rule and the raw_data of the event it fired on.
type hit struct{ rule, raw string }

// want is an expected finding: a rule and a piece of its event's raw_data.
type want struct{ rule, in string }

// routingRig is one broker with ingest in it and one detector.
type routingRig struct {
	t          *testing.T
	b          *broker
	syslog     string // TCP syslog address
	http       string // base URL of /v1/events and HEC
	rules      []string
	group      string
	alertTopic string
}

func newRoutingRig(t *testing.T, ruleDirs ...string) *routingRig {
	t.Helper()
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatal("kcat not installed: apt-get install -y kcat (see .ci/install)")
	}
	r := &routingRig{t: t, syslog: freeAddr(t), group: "detect-" + strings.ToLower(t.Name()), alertTopic: "alerts"}
	httpAddr := freeAddr(t)
	r.http = "http://" + httpAddr
	r.b = startBroker(t, "", t.TempDir(), "--ingest-syslog-tcp", r.syslog, "--ingest-http", httpAddr,
		"--ingest-hec-token", "t0ken", "--group-initial-rebalance-delay", "100ms")
	waitListening(t, httpAddr)
	data := sigmatest.Data(t)
	for _, d := range ruleDirs {
		if !filepath.IsAbs(d) {
			d = filepath.Join(data, d)
		}
		r.rules = append(r.rules, d)
	}
	args := []string{"--brokers", r.b.addr, "--group", r.group, "--watch-interval", "0"}
	for _, d := range r.rules {
		args = append(args, "--rules", d)
	}
	startDetector(t, args...).waitLog("rules loaded")
	return r
}

// syslogTCP sends messages octet-counted, as logger --octet-count and
// rsyslog's omfwd do.
func (r *routingRig) syslogTCP(msgs ...string) {
	r.t.Helper()
	c, err := net.Dial("tcp", r.syslog)
	if err != nil {
		r.t.Fatal(err)
	}
	defer c.Close()
	for _, m := range msgs {
		if _, err := fmt.Fprintf(c, "%d %s", len(m), m); err != nil {
			r.t.Fatal(err)
		}
	}
}

// post sends a body to an ingest endpoint and checks the answer.
func (r *routingRig) post(path string, body string, header map[string]string, status int) {
	r.t.Helper()
	req, err := http.NewRequest("POST", r.http+path, strings.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != status || strings.Contains(string(out), `"deadlettered":`) && !strings.Contains(string(out), `"deadlettered":0`) {
		r.t.Fatalf("POST %s: %d %s (want %d, nothing dead-lettered)", path, resp.StatusCode, out, status)
	}
}

// findings waits until ingest has written events events to the ocsf.*
// topics and the detector has committed them all (it commits a batch only
// once the batch's alerts are acknowledged), and returns the findings on
// the alerts topic.
func (r *routingRig) findings(events int64) []hit {
	r.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.b.addr))
	if err != nil {
		r.t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		if ctx.Err() != nil {
			r.t.Fatalf("the detector did not evaluate the %d events within 2 minutes", events)
		}
		var written int64
		if topics, err := adm.ListTopics(ctx); err == nil {
			var names []string
			for _, n := range topics.Names() {
				if strings.HasPrefix(n, "ocsf.") {
					names = append(names, n)
				}
			}
			if ends, err := adm.ListEndOffsets(ctx, names...); err == nil {
				ends.Each(func(o kadm.ListedOffset) { written += o.Offset })
			}
		}
		if written > events {
			r.t.Fatalf("ingest wrote %d events to the ocsf topics, want %d", written, events)
		}
		if written == events {
			var committed int64
			if offs, err := adm.FetchOffsets(ctx, r.group); err == nil {
				offs.Each(func(o kadm.OffsetResponse) {
					if strings.HasPrefix(o.Topic, "ocsf.") && o.Err == nil && o.At > 0 {
						committed += o.At
					}
				})
			}
			if committed == events {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	alerts := readAll(r.t, r.b.addr, r.alertTopic)
	var out []hit
	for _, v := range alerts {
		var f struct {
			ClassUID int `json:"class_uid"`
			Info     struct {
				Analytic struct {
					UID string `json:"uid"`
				} `json:"analytic"`
			} `json:"finding_info"`
			Evidences []struct {
				Data struct {
					Raw string `json:"raw_data"`
				} `json:"data"`
			} `json:"evidences"`
		}
		if err := json.Unmarshal(v, &f); err != nil || f.ClassUID != 2004 || len(f.Evidences) != 1 {
			r.t.Fatalf("alert is not a Detection Finding with one evidence: %v %s", err, v)
		}
		out = append(out, hit{f.Info.Analytic.UID, f.Evidences[0].Data.Raw})
	}
	return out
}

// readAll reads a topic from its start to its current end.
func readAll(t *testing.T, addr, topic string) [][]byte {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	var out [][]byte
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: not read to its end within 30s", topic)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r.Value)
			if r.Offset+1 >= want[r.Partition] {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

// offline dumps every ocsf.* topic with kcat and runs `vigil detect` over
// the dump, returning its findings.
func (r *routingRig) offline() []hit {
	r.t.Helper()
	dir := r.t.TempDir()
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.b.addr))
	if err != nil {
		r.t.Fatal(err)
	}
	topics, err := kadm.NewClient(cl).ListTopics(context.Background())
	cl.Close()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, name := range topics.Names() {
		if !strings.HasPrefix(name, "ocsf.") {
			continue
		}
		out := runCmd(r.t, time.Minute, "kcat", "-b", r.b.addr, "-C", "-t", name, "-o", "beginning", "-e", "-q", "-f", "%s\n")
		if err := os.WriteFile(filepath.Join(dir, name+".ndjson"), out, 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	args := []string{"detect", "--quiet"}
	for _, d := range r.rules {
		args = append(args, "--rules", d)
	}
	out := runCmd(r.t, 2*time.Minute, vigilBin, append(args, dir)...)
	var hits []hit
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 8<<20)
	for sc.Scan() {
		var m struct {
			RuleID string `json:"rule_id"`
			Event  struct {
				Raw string `json:"raw_data"`
			} `json:"event"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			r.t.Fatalf("offline output line: %v: %s", err, sc.Text())
		}
		hits = append(hits, hit{m.RuleID, m.Event.Raw})
	}
	return hits
}

// check compares the streaming findings over events events with the
// expected ones, and the offline findings with the streaming ones.
func (r *routingRig) check(events int64, wants []want) {
	r.t.Helper()
	live := r.findings(events)
	left := slices.Clone(wants)
	var unexpected []hit
	for _, h := range live {
		i := slices.IndexFunc(left, func(w want) bool { return w.rule == h.rule && strings.Contains(h.raw, w.in) })
		if i < 0 {
			unexpected = append(unexpected, h)
			continue
		}
		left = slices.Delete(left, i, i+1)
	}
	for _, h := range unexpected {
		r.t.Errorf("unexpected finding: rule %s on %q", h.rule, truncate(h.raw, 300))
	}
	for _, w := range left {
		r.t.Errorf("missing finding: rule %s on an event with %q", w.rule, w.in)
	}
	off := r.offline()
	key := func(hs []hit) []string {
		var out []string
		for _, h := range hs {
			out = append(out, h.rule+" "+h.raw)
		}
		sort.Strings(out)
		return out
	}
	if a, b := key(live), key(off); !slices.Equal(a, b) {
		r.t.Errorf("offline findings over the kcat dump differ from streaming:\nstreaming %d: %q\noffline   %d: %q", len(a), a, len(b), b)
	} else {
		r.t.Logf("%d findings, streaming and offline alike", len(live))
	}
}

// TestRoutingLinux: sshd, sudo and auditd over syslog TCP, SigmaHQ's
// rules/linux plus the issue's own sshd rule.
func TestRoutingLinux(t *testing.T) {
	t.Parallel()
	own := t.TempDir()
	if err := os.WriteFile(filepath.Join(own, "sshd_failed.yml"), []byte(`title: SSH failed password
id: 0d0e9f38-7a2b-4d3c-9b1e-5f6a7b8c9d01
status: test
logsource: {product: linux, service: sshd}
detection:
  keywords: ['Failed password']
  condition: keywords
level: low
`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newRoutingRig(t, "rules/linux", own)
	var msgs []string
	for i := 0; i < 6; i++ {
		msgs = append(msgs, fmt.Sprintf("<38>1 2026-12-01T10:00:%02dZ web-1 sshd %d - - Failed password for root from 203.0.113.9 port %d ssh2", i, 4000+i, 50000+i))
	}
	msgs = append(msgs,
		// The line SigmaHQ's "Suspicious OpenSSH Daemon Error" looks for:
		// no parser maps it, so it arrives as a generic event.
		"<35>1 2026-12-01T10:01:00Z web-1 sshd 1234 - - error: Corrupted MAC on input.",
		"<38>1 2026-12-01T10:01:05Z web-1 sshd 1235 - - Accepted publickey for alice from 10.0.0.5 port 50100 ssh2",
		// sudo runs cat on the sudoers file: a Linux process creation.
		"<85>1 2026-12-01T10:02:00Z db-1 sudo - - -    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/cat /etc/sudoers",
		// auditd through audispd's syslog plugin: one record a message.
		`<14>1 2026-12-01T10:03:00Z db-1 audispd - - - type=SYSCALL msg=audit(1795687380.120:4242): arch=c000003e syscall=59 success=yes exit=0 a0=55d1 a1=55d2 a2=55d3 a3=0 items=2 ppid=900 pid=901 auid=1000 uid=0 gid=0 euid=0 ses=3 comm="chattr" exe="/usr/bin/chattr" key="perm"`,
		`<14>1 2026-12-01T10:03:00Z db-1 audispd - - - type=EXECVE msg=audit(1795687380.120:4242): argc=3 a0="chattr" a1="-i" a2="/etc/passwd"`,
		`<14>1 2026-12-01T10:03:00Z db-1 audispd - - - type=CWD msg=audit(1795687380.120:4242): cwd="/root"`,
		`<14>1 2026-12-01T10:03:00Z db-1 audispd - - - type=EOE msg=audit(1795687380.120:4242):`,
		// Nothing to see: another program's line.
		"<30>1 2026-12-01T10:04:00Z db-1 systemd 1 - - Started Session 3 of User alice.",
	)
	r.syslogTCP(msgs...)
	var wants []want
	for i := 0; i < 6; i++ {
		wants = append(wants, want{"0d0e9f38-7a2b-4d3c-9b1e-5f6a7b8c9d01", fmt.Sprintf("port %d ssh2", 50000+i)})
	}
	wants = append(wants,
		want{"e76b413a-83d0-4b94-8e4c-85db4a5b8bdc", "Corrupted MAC on input"},            // Suspicious OpenSSH Daemon Error
		want{"0f79c4d2-4e1f-4683-9c36-b5469a665e06", "COMMAND=/usr/bin/cat /etc/sudoers"}, // Access of Sudoers File Content
		want{"b45e3d6f-42c6-47d8-a478-df6bd6cf534c", "COMMAND=/usr/bin/cat /etc/sudoers"}, // Local System Accounts Discovery - Linux
		want{"a5b977d6-8a81-4475-91b9-49dbfcd941f7", `a0="chattr" a1="-i"`},               // Remove Immutable File Attribute - Auditd
		want{"34979410-e4b5-4e5d-8cfb-389fdff05c12", `a0="chattr" a1="-i"`},               // Remove Immutable File Attribute (process_creation)
	)
	r.check(11, wants)
}

// zeekRecords are one capture's logs, in Zeek's own field names; the test
// sends them as they are and again with underscores (id_orig_h).
var zeekRecords = []string{
	`{"_path":"smb_files","ts":1795676412.5,"uid":"CsNHWz3xFzQ0nTPrO4","id.orig_h":"10.0.0.21","id.orig_p":49702,"id.resp_h":"10.0.0.10","id.resp_p":445,"action":"SMB::FILE_OPEN","path":"\\\\DC01\\IPC$","name":"spoolss","size":0}`,
	`{"_path":"x509","ts":1795676415.0,"id":"FgN3AE3of2TRIqaeQe","certificate.version":3,"certificate.serial":"8BB00EE","certificate.subject":"CN=Major Cobalt Strike,OU=AdvancedPenTesting,O=cobaltstrike,L=Somewhere,ST=Cyberspace,C=Earth"}`,
	`{"_path":"dns","ts":1795676420.0,"uid":"C10","id.orig_h":"10.0.0.25","id.orig_p":53012,"id.resp_h":"10.0.0.1","id.resp_p":53,"proto":"udp","trans_id":7,"query":"pool.minexmr.com","qclass":1,"qclass_name":"C_INTERNET","qtype":1,"qtype_name":"A","rcode":0,"rcode_name":"NOERROR","AA":false,"TC":false,"RD":true,"RA":true,"Z":0,"answers":["198.51.100.77"],"TTLs":[60.0],"rejected":false}`,
	`{"_path":"http","ts":1795676421.0,"uid":"C11","id.orig_h":"10.0.0.26","id.orig_p":50000,"id.resp_h":"203.0.113.80","id.resp_p":80,"method":"PUT","host":"files.example.net","uri":"/dav/evil.exe","user_agent":"Microsoft-WebDAV-MiniRedir/10.0.19045","status_code":201}`,
	`{"_path":"rdp","ts":1795676422.0,"uid":"C12","id.orig_h":"198.51.100.7","id.orig_p":51000,"id.resp_h":"10.0.0.10","id.resp_p":3389,"cookie":"admin","result":"encrypted","security_protocol":"HYBRID"}`,
	`{"_path":"rdp","ts":1795676423.0,"uid":"C13","id.orig_h":"10.0.0.22","id.orig_p":52000,"id.resp_h":"10.0.0.10","id.resp_p":3389,"cookie":"ops","security_protocol":"HYBRID"}`,
	// The rdp rule is "not id.orig_h in private ranges": it must stay off
	// every other log, whatever its addresses.
	`{"_path":"files","ts":1795676424.0,"fuid":"FhG7v23VtJ1","id.orig_h":"203.0.113.66","id.orig_p":80,"id.resp_h":"10.0.0.6","id.resp_p":50001,"source":"HTTP","mime_type":"application/x-dosexec","filename":"x.exe"}`,
	`{"_path":"conn","ts":1795676425.0,"uid":"C14","id.orig_h":"198.51.100.8","id.orig_p":4444,"id.resp_h":"10.0.0.10","id.resp_p":445,"proto":"tcp","conn_state":"S0"}`,
	`{"_path":"weird","ts":1795676426.0,"uid":"C15","id.orig_h":"198.51.100.9","id.orig_p":1,"id.resp_h":"10.0.0.10","id.resp_p":80,"name":"unknown_HTTP_method","notice":false,"peer":"zeek"}`,
	`{"_path":"notice","ts":1795676427.0,"note":"SSH::Password_Guessing","msg":"198.51.100.9 appears to be guessing SSH passwords","src":"198.51.100.9"}`,
}

// TestRoutingZeek: a Zeek capture in both field styles over HTTP, and
// SigmaHQ's rules/network/zeek.
func TestRoutingZeek(t *testing.T) {
	t.Parallel()
	r := newRoutingRig(t, "rules/network/zeek")
	dotted := strings.Join(zeekRecords, "\n")
	underscored := strings.NewReplacer(`"id.`, `"id_`, `"certificate.`, `"certificate_`).Replace(dotted)
	r.post("/v1/events?source=zeek", dotted, nil, http.StatusAccepted)
	r.post("/v1/events?source=zeek", underscored, nil, http.StatusAccepted)
	var wants []want
	for _, style := range []string{`"id.`, `"id_`} {
		cert := strings.Replace(style, "id", "certificate", 1) + `serial":"8BB00EE"`
		wants = append(wants,
			want{"bae2865c-5565-470d-b505-9496c87d0c30", style + `orig_h":"10.0.0.21"`},    // SMB Spoolss Name Piped Usage
			want{"7100f7e3-92ce-4584-b7b7-01b40d3d4118", cert},                             // Default Cobalt Strike Certificate
			want{"bf74135c-18e8-4a72-a926-0e4f47888c19", style + `orig_h":"10.0.0.25"`},    // DNS Events Related To Mining Pools
			want{"705072a5-bb6f-4ced-95b6-ecfa6602090b", style + `orig_h":"10.0.0.26"`},    // WebDAV Put Request
			want{"aac2fd97-bcba-491b-ad66-a6edf89c71bf", style + `orig_h":"10.0.0.26"`},    // Executable from Webdav (c-uri, c-useragent: the proxy names, from uri and user_agent)
			want{"1fc0809e-06bf-4de3-ad52-25e5263b7623", style + `orig_h":"198.51.100.7"`}, // Publicly Accessible RDP Service
		)
	}
	r.check(int64(2*len(zeekRecords)), wants)
}

// TestRoutingCloud: CloudTrail (HTTP and HEC), Okta and GitHub audit
// JSON, Azure diagnostic records and a Graph risk detection, Google Cloud
// audit log entries (Workspace's among them), Microsoft 365 management
// records; and SigmaHQ's rules/cloud, rules/identity/okta and
// rules/application/github.
func TestRoutingCloud(t *testing.T) {
	t.Parallel()
	r := newRoutingRig(t, "rules/cloud", "rules/identity/okta", "rules/application/github")
	trail := func(name, source, extra string) string {
		return `{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::111122223333:user/mallory","accountId":"111122223333","userName":"mallory"},` +
			`"eventTime":"2026-12-01T10:00:00Z","eventSource":"` + source + `","eventName":"` + name + `","awsRegion":"eu-west-1","sourceIPAddress":"203.0.113.40",` +
			`"userAgent":"aws-cli/2.15.0","requestParameters":{` + extra + `},"responseElements":null,"requestID":"r-` + name + `","eventID":"e-` + name + `","readOnly":false,"eventType":"AwsApiCall","recipientAccountId":"111122223333"}`
	}
	r.post("/v1/events?source=cloudtrail", `{"Records":[`+trail("StopLogging", "cloudtrail.amazonaws.com", `"name":"org-trail"`)+","+
		trail("DescribeInstances", "ec2.amazonaws.com", "")+`]}`, nil, http.StatusAccepted)
	r.post("/services/collector/event", `{"sourcetype":"aws:cloudtrail","host":"aws-111122223333","event":`+trail("DeleteTrail", "cloudtrail.amazonaws.com", `"name":"org-trail"`)+`}`,
		map[string]string{"Authorization": "Splunk t0ken"}, http.StatusOK)
	r.post("/v1/events?source=okta", `{"uuid":"u1","published":"2026-12-01T10:05:00.000Z","eventType":"user.mfa.factor.deactivate","version":"0","severity":"INFO","legacyEventType":"core.user.factor.deactivate","displayMessage":"Reset factor for user","actor":{"id":"00u1","type":"User","alternateId":"admin@example.com","displayName":"Admin"},"client":{"ipAddress":"198.51.100.20"},"outcome":{"result":"SUCCESS"},"target":[{"id":"00u2","type":"User","alternateId":"bob@example.com"}]}
{"uuid":"u2","published":"2026-12-01T10:06:00.000Z","eventType":"user.session.start","version":"0","severity":"INFO","legacyEventType":"core.user_auth.login_success","displayMessage":"User login to Okta","actor":{"id":"00u3","type":"User","alternateId":"carol@example.com"},"client":{"ipAddress":"203.0.113.30"},"outcome":{"result":"SUCCESS"}}`, nil, http.StatusAccepted)
	r.post("/v1/events?source=github", `{"@timestamp":1795687500000,"_document_id":"d1","action":"repo.destroy","actor":"mallory","actor_ip":"203.0.113.40","org":"octo-corp","repo":"octo-corp/payments"}
{"@timestamp":1795687560000,"_document_id":"d2","action":"org.disable_two_factor_requirement","actor":"mallory","actor_ip":"203.0.113.40","org":"octo-corp"}
{"@timestamp":1795687620000,"_document_id":"d3","action":"repo.create","actor":"alice","actor_ip":"10.0.0.5","org":"octo-corp","repo":"octo-corp/site"}`, nil, http.StatusAccepted)
	for _, src := range []string{"azure", "gcp", "m365"} {
		body, err := os.ReadFile(filepath.Join("..", "parse", "testdata", src, map[string]string{"azure": "diagnostic", "gcp": "auditlog", "m365": "management"}[src]+".input"))
		if err != nil {
			t.Fatal(err)
		}
		r.post("/v1/events?source="+src, string(body), nil, http.StatusAccepted)
	}
	r.check(8+4+2+3, []want{
		{"2b7d6fc0-71ac-4cf7-8ed1-b5788ee5257a", `"resultType":"50053"`},                            // Account Lockout (ResultType, as Log Analytics names it)
		{"4f77e1d7-3982-4ee0-8489-abf2d6b75284", `"resultType":"50053"`},                            // Sign-ins from Non-Compliant Devices (DeviceDetail.isCompliant)
		{"0922467f-db53-4348-b7bf-dee8d0d348c6", `"operationName":"Add conditional access policy"`}, // New CA Policy by Non-approved Actor (properties.message)
		{"58f88172-a73d-442b-94c9-95eaed3cbb36", `"Operation":"Add-FederatedDomain"`},               // New Federated Domain Added (m365 audit: Exchange's records are audit records too)
		{"1a41023f-1e70-4026-921a-4d9341a9038e", `"riskEventType":"unlikelyTravel"`},                // Atypical Travel
		{"32438676-1dba-4ac7-bf69-b86cba995e05", "DeleteAccessPolicy"},                              // GCP Access Policy Deleted (data.protoPayload.*)
		{"eafe6f2b-cfec-4612-aec2-49563c33a087", "gov_attack_warning"},                              // Google Workspace Government Attack Warning
		{"13f2d3f5-6497-44a7-bf5f-dc13ffafe5dc", `"RequestType":"Cmsi:Cmsi"`},                       // Azure Login Bypassing Conditional Access Policies (m365 audit)
		{"42127bdd-9133-474f-a6f1-97b6c08a4339", `"Operation":"Add-FederatedDomain"`},               // New Federated Domain Added - Exchange
		{"2e669ed8-742e-4fe5-b3c4-5a59b486c2ee", `"Name":"Activity performed by terminated user"`},  // Activity Performed by Terminated User
		{"4db60cc0-36fb-42b7-9b58-a5b53019fb74", `"eventName":"StopLogging"`},                       // AWS CloudTrail Important Change
		{"4db60cc0-36fb-42b7-9b58-a5b53019fb74", `"eventName":"DeleteTrail"`},
		{"50e068d7-1e6b-4054-87e5-0a592c40c7e0", "user.mfa.factor.deactivate"},           // Okta MFA Reset or Deactivated
		{"16a71777-0b2e-4db7-9888-9d59cb75200b", `"repo.destroy"`},                       // GitHub Delete Action Invoked
		{"8622c92d-c00e-463c-b09d-fd06166f6794", `"org.disable_two_factor_requirement"`}, // GitHub Disabled High Risk Configuration
	})
}
