package detect

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/ocsf"
	"github.com/vigilhq/vigil/internal/server/servertest"
	"github.com/vigilhq/vigil/sigma/sigmatest"
)

// Tests run a real Vigil broker in-process and talk to it over TCP with
// franz-go: regression events from SigmaHQ go to a telemetry topic, the
// Detector consumes them, and the alerts topic is read back.

// startBroker starts an in-process broker on a free port; mod may
// adjust its config.
func startBroker(t *testing.T, mod ...func(*config.Broker)) string {
	t.Helper()
	return servertest.Run(t, mod...).Addr
}

func client(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.MetadataMinAge(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopics(t *testing.T, addr string, partitions int32, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(client(t, addr)).CreateTopics(ctx, partitions, 1, nil, topics...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("create topics %v: %v", topics, err)
	}
}

// sample is one SigmaHQ rule with its regression event.
type sample struct {
	id, title, author, level string
	severity                 int
	rule                     string // path under the data dir
	event                    []byte // compact JSON
}

var samples = []sample{
	{id: "9fc3072c-dc8f-4bf7-b231-18950000fadd", title: "Potential Recon Activity Using DriverQuery.EXE", author: "Nasreddine Bencherchali (Nextron Systems)", level: "high", severity: 4,
		rule: "rules/windows/process_creation/proc_creation_win_driverquery_recon.yml"},
	{id: "85de1f22-d189-44e4-8239-dc276b45379b", title: "Curl Web Request With Potential Custom User-Agent", author: "Nasreddine Bencherchali (Nextron Systems)", level: "medium", severity: 3,
		rule: "rules/windows/process_creation/proc_creation_win_curl_custom_user_agent.yml"},
	{id: "0022869c-49f7-4ff2-ba03-85ac42ddac58", title: "System Information Discovery via Registry Queries", author: "lazarg", level: "low", severity: 2,
		rule: "rules/windows/process_creation/proc_creation_win_discovery_via_reg_queries.yml"},
}

// loadSamples reads each sample's regression event (compacted).
func loadSamples(t *testing.T) (string, []sample) {
	t.Helper()
	data := sigmatest.Data(t)
	out := append([]sample(nil), samples...)
	for i := range out {
		dir := filepath.Join(data, "regression_data", strings.TrimSuffix(out[i].rule, ".yml"))
		raw, err := os.ReadFile(filepath.Join(dir, out[i].id+".json"))
		if err != nil {
			t.Fatalf("regression event of %s: %v", out[i].id, err)
		}
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			t.Fatal(err)
		}
		out[i].event = b.Bytes()
	}
	return data, out
}

func copyRule(t *testing.T, data string, s sample, dir string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(data, s.rule))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(s.rule)), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

func produce(t *testing.T, cl *kgo.Client, topic string, key string, values ...[]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for _, v := range values {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(key), Value: v})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// runDetector starts d.Run and stops it at cleanup.
func runDetector(t *testing.T, d *Detector) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	})
}

// alertReader consumes the alerts topic from the start.
type alertReader struct {
	t   *testing.T
	cl  *kgo.Client
	got []*kgo.Record
}

func newAlertReader(t *testing.T, addr, topic string) *alertReader {
	return &alertReader{t: t, cl: client(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))}
}

// waitFor polls until n alerts have been read.
func (a *alertReader) waitFor(n int, within time.Duration) []*kgo.Record {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for len(a.got) < n {
		f := a.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			a.t.Fatalf("read %d alerts within %v, want %d", len(a.got), within, n)
		}
		a.got = append(a.got, f.Records()...)
	}
	return a.got
}

func decodeAlert(t *testing.T, r *kgo.Record) ocsf.Event {
	t.Helper()
	var e ocsf.Event
	if err := json.Unmarshal(r.Value, &e); err != nil {
		t.Fatalf("alert is not JSON: %v\n%s", err, r.Value)
	}
	return e
}

func str(e ocsf.Event, path string) string {
	v, _ := e.Get(path)
	s, _ := v.(string)
	return s
}

func num(e ocsf.Event, path string) int {
	v, _ := e.Get(path)
	f, _ := v.(float64)
	return int(f)
}

// waitCommitted waits until the group's committed offsets equal the end
// offsets of topic.
func waitCommitted(t *testing.T, addr, group, topic string) {
	t.Helper()
	adm := kadm.NewClient(client(t, addr))
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ends, err1 := adm.ListEndOffsets(ctx, topic)
		committed, err2 := adm.FetchOffsets(ctx, group)
		cancel()
		var diff []string
		if err1 == nil && err2 == nil {
			ends.Each(func(o kadm.ListedOffset) {
				c, ok := committed.Lookup(o.Topic, o.Partition)
				if !ok && o.Offset == 0 {
					return
				}
				if !ok || c.At != o.Offset {
					diff = append(diff, o.Topic)
				}
			})
			if len(diff) == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s: committed %v, end offsets %v (errors %v, %v)", group, committed, ends, err1, err2)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestStreamAlerts(t *testing.T) {
	data, ss := loadSamples(t)
	addr := startBroker(t)
	createTopics(t, addr, 2, "ocsf.process_activity") // alerts is auto-created by the detector's producer
	rules := t.TempDir()
	for _, s := range ss {
		copyRule(t, data, s, rules)
	}
	prod := client(t, addr)
	for i, s := range ss {
		produce(t, prod, "ocsf.process_activity", "host-"+string(rune('a'+i)), s.event)
	}
	produce(t, prod, "ocsf.process_activity", "host-z", []byte(`not json`), []byte(`{"Image":"C:\\Windows\\notepad.exe"}`))

	d, err := New(Config{
		Brokers: []string{addr}, Group: "detect-test", Topics: []string{"ocsf.process_activity"}, RuleDirs: []string{rules},
		SessionTimeout: 6 * time.Second, WatchInterval: -1,
	}, servertest.LoggerAt(t, slog.LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st.Rules != int64(len(ss)) {
		t.Fatalf("rules loaded: %d, want %d", st.Rules, len(ss))
	}
	runDetector(t, d)

	got := newAlertReader(t, addr, "alerts").waitFor(len(ss), 60*time.Second)
	byRule := map[string]*kgo.Record{}
	for _, r := range got {
		e := decodeAlert(t, r)
		byRule[str(e, "finding_info.analytic.uid")] = r
	}
	for i, s := range ss {
		r, ok := byRule[s.id]
		if !ok {
			t.Errorf("rule %s (%s) did not fire; alerts: %d", s.id, s.title, len(got))
			continue
		}
		e := decodeAlert(t, r)
		if err := ocsf.Validate(e); err != nil {
			t.Errorf("%s: %v", s.id, err)
		}
		for path, want := range map[string]int{"class_uid": 2004, "category_uid": 2, "activity_id": 1, "type_uid": 200401, "severity_id": s.severity, "finding_info.analytic.type_id": 1} {
			if g := num(e, path); g != want {
				t.Errorf("%s: %s = %d, want %d", s.id, path, g, want)
			}
		}
		for path, want := range map[string]string{
			"finding_info.title": s.title, "finding_info.analytic.name": s.title, "unmapped.sigma.author": s.author,
			"metadata.product.name": "Vigil", "metadata.product.vendor_name": "Vigil", "metadata.version": "1.1.0",
			"unmapped.source.topic": "ocsf.process_activity", "unmapped.sigma.level": s.level,
		} {
			if g := str(e, path); g != want {
				t.Errorf("%s: %s = %q, want %q", s.id, path, g, want)
			}
		}
		if desc := str(e, "finding_info.analytic.desc"); !strings.Contains(desc, s.author) || !strings.Contains(desc, "DRL") {
			t.Errorf("%s: analytic.desc %q lacks the author attribution", s.id, desc)
		}
		wantUID := FindingUID(s.id, "ocsf.process_activity", int32(num(e, "unmapped.source.partition")), int64(num(e, "unmapped.source.offset")))
		if g := str(e, "finding_info.uid"); g != wantUID {
			t.Errorf("%s: finding uid %q, want %q", s.id, g, wantUID)
		}
		if k := "host-" + string(rune('a'+i)); string(r.Key) != k {
			t.Errorf("%s: alert key %q, want %q (the event's key)", s.id, r.Key, k)
		}
		ev, _ := e.Get("evidences")
		list, _ := ev.([]any)
		if len(list) != 1 {
			t.Fatalf("%s: evidences %v", s.id, ev)
		}
		evData, _ := json.Marshal(list[0].(map[string]any)["data"])
		var a, b any
		_ = json.Unmarshal(evData, &a)
		_ = json.Unmarshal(s.event, &b)
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if !bytes.Equal(ja, jb) {
			t.Errorf("%s: evidence is not the event:\n%s\nwant\n%s", s.id, ja, jb)
		}
	}
	// The discovery rule carries attack.t1082 next to one tactic.
	e := decodeAlert(t, byRule[ss[2].id])
	atk, _ := e.Get("finding_info.attacks")
	if b, _ := json.Marshal(atk); !strings.Contains(string(b), `"T1082"`) || !strings.Contains(string(b), `"TA0007"`) {
		t.Errorf("attacks %s, want technique T1082 with tactic TA0007", b)
	}
	waitCommitted(t, addr, "detect-test", "ocsf.process_activity")
	st := d.Stats()
	if st.Alerts != int64(len(ss)) || st.Records != int64(len(ss)+2) || st.Invalid != 1 {
		t.Errorf("stats %+v: want %d alerts, %d records, 1 invalid", st, len(ss), len(ss)+2)
	}
}

// TestStreamReload starts without rule X, sees an event matching X pass
// silently, then adds X's file (picked up by the directory poll) and
// expects an alert for the next such event; a Reload with a broken config
// keeps the rules.
func TestStreamReload(t *testing.T) {
	data, ss := loadSamples(t)
	a, x := ss[0], ss[1]
	addr := startBroker(t)
	createTopics(t, addr, 1, "telemetry", "alerts")
	rules := t.TempDir()
	copyRule(t, data, a, rules)
	cfgPath := filepath.Join(t.TempDir(), "sigma.yml")
	if err := os.WriteFile(cfgPath, []byte("placeholders: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{
		Brokers: []string{addr}, Group: "reload-test", Topics: []string{"telemetry"}, RuleDirs: []string{rules}, ConfigPath: cfgPath,
		SessionTimeout: 6 * time.Second, WatchInterval: 100 * time.Millisecond,
	}, servertest.LoggerAt(t, slog.LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	runDetector(t, d)
	prod := client(t, addr)
	reader := newAlertReader(t, addr, "alerts")

	// X's event, then A's: once A's alert is there, X's event was
	// evaluated (one partition, in order) without an alert.
	produce(t, prod, "telemetry", "h1", x.event, a.event)
	got := reader.waitFor(1, 60*time.Second)
	if id := str(decodeAlert(t, got[0]), "finding_info.analytic.uid"); id != a.id {
		t.Fatalf("first alert is for %s, want %s only", id, a.id)
	}

	copyRule(t, data, x, rules)
	waitStat(t, func() bool { return d.Stats().Reloads >= 1 && d.Stats().Rules == 2 }, "reload after adding a rule file")
	produce(t, prod, "telemetry", "h1", x.event)
	got = reader.waitFor(2, 60*time.Second)
	if id := str(decodeAlert(t, got[1]), "finding_info.analytic.uid"); id != x.id {
		t.Fatalf("after reload: alert for %s, want %s", id, x.id)
	}
	if len(got) != 2 {
		t.Fatalf("%d alerts, want 2", len(got))
	}

	// A broken config fails the reload; the rules stay.
	if err := os.WriteFile(cfgPath, []byte("mapping: [not, a, map\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Reload()
	waitStat(t, func() bool { return d.Stats().ReloadFailures >= 1 }, "failed reload")
	produce(t, prod, "telemetry", "h2", x.event)
	got = reader.waitFor(3, 60*time.Second)
	if id := str(decodeAlert(t, got[2]), "finding_info.analytic.uid"); id != x.id || d.Stats().Rules != 2 {
		t.Fatalf("after a failed reload: alert for %s with %d rules, want %s with 2", id, d.Stats().Rules, x.id)
	}
	waitCommitted(t, addr, "reload-test", "telemetry")
}

func waitStat(t *testing.T, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAttacks(t *testing.T) {
	b, _ := json.Marshal(attacks([]string{"attack.credential-access", "attack.t1003.005", "attack.g0001", "detection.threat-hunting"}))
	want := `[{"sub_technique":{"uid":"T1003.005"},"tactic":{"name":"credential-access","uid":"TA0006"},"technique":{"uid":"T1003"}}]`
	if string(b) != want {
		t.Errorf("attacks:\n got %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(attacks([]string{"attack.discovery", "attack.execution"}))
	if want := `[{"tactic":{"name":"discovery","uid":"TA0007"}},{"tactic":{"name":"execution","uid":"TA0002"}}]`; string(b) != want {
		t.Errorf("attacks:\n got %s\nwant %s", b, want)
	}
}

// TestStreamReevaluate is what a crash between producing alerts and
// committing leaves behind: offsets behind the alerts already written. A
// new detector in the group evaluates those records again and writes the
// same findings (same finding_info.uid) a second time.
func TestStreamReevaluate(t *testing.T) {
	data, ss := loadSamples(t)
	addr := startBroker(t)
	createTopics(t, addr, 1, "telemetry", "alerts")
	rules := t.TempDir()
	for _, s := range ss {
		copyRule(t, data, s, rules)
	}
	prod := client(t, addr)
	for _, s := range ss {
		produce(t, prod, "telemetry", "h", s.event)
	}
	cfg := Config{Brokers: []string{addr}, Group: "reeval", Topics: []string{"telemetry"}, RuleDirs: []string{rules},
		SessionTimeout: 6 * time.Second, WatchInterval: -1}
	reader := newAlertReader(t, addr, "alerts")

	ctx, cancel := context.WithCancel(context.Background())
	d1, err := New(cfg, servertest.LoggerAt(t, slog.LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d1.Run(ctx) }()
	first := reader.waitFor(len(ss), 60*time.Second)
	waitCommitted(t, addr, "reeval", "telemetry")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Rewind the group, as if the commit had never happened.
	adm := kadm.NewClient(client(t, addr))
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: "telemetry", Partition: 0, At: 0, LeaderEpoch: -1})
	resp, err := adm.CommitOffsets(context.Background(), "reeval", offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("rewind group: %v", err)
	}

	d2, err := New(cfg, servertest.LoggerAt(t, slog.LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	runDetector(t, d2)
	all := reader.waitFor(2*len(ss), 60*time.Second)
	uids := func(rs []*kgo.Record) []string {
		var out []string
		for _, r := range rs {
			out = append(out, str(decodeAlert(t, r), "finding_info.uid"))
		}
		return out
	}
	a, b := uids(first), uids(all[len(ss):])
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Errorf("re-evaluated findings %v, want the same uids as %v", b, a)
	}
	waitCommitted(t, addr, "reeval", "telemetry")
}
