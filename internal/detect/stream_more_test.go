package detect

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/ocsf"
	"github.com/vigilhq/vigil/internal/server/servertest"
	"github.com/vigilhq/vigil/sigma/sigmatest"
)

// TestStreamLateTopic starts the detector before its topic exists (the
// default topics before `vigil ingest` first writes them).
func TestStreamLateTopic(t *testing.T) {
	data, ss := loadSamples(t)
	addr := startBroker(t)
	rules := t.TempDir()
	copyRule(t, data, ss[0], rules)
	d, err := New(Config{Brokers: []string{addr}, Group: "late", Topics: []string{"late.telemetry"}, AlertsTopic: "late.alerts",
		RuleDirs: []string{rules}, SessionTimeout: 6 * time.Second, WatchInterval: -1}, servertest.LoggerAt(t, slog.LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	runDetector(t, d)
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	produce(t, client(t, addr, kgo.AllowAutoTopicCreation()), "late.telemetry", "h", ss[0].event)
	newAlertReader(t, addr, "late.alerts").waitFor(1, 60*time.Second)
	t.Logf("alert %v after the topic appeared", time.Since(start))
}

// TestStreamTopicRegex consumes by regex; the alerts topic matches the
// regex too and must not be consumed.
func TestStreamTopicRegex(t *testing.T) {
	data, ss := loadSamples(t)
	addr := startBroker(t)
	createTopics(t, addr, 1, "tel.a", "tel.b", "tel.alerts", "other")
	rules := t.TempDir()
	copyRule(t, data, ss[0], rules)
	d, err := New(Config{Brokers: []string{addr}, Group: "regex", Topics: []string{`^tel\.`}, TopicRegex: true, AlertsTopic: "tel.alerts",
		RuleDirs: []string{rules}, SessionTimeout: 6 * time.Second, WatchInterval: -1}, servertest.LoggerAt(t, slog.LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	runDetector(t, d)
	prod := client(t, addr)
	produce(t, prod, "tel.a", "h", ss[0].event)
	produce(t, prod, "tel.b", "h", ss[0].event)
	produce(t, prod, "other", "h", ss[0].event)
	got := newAlertReader(t, addr, "tel.alerts").waitFor(2, 60*time.Second)
	waitCommitted(t, addr, "regex", "tel.b")
	time.Sleep(300 * time.Millisecond)
	if st := d.Stats(); st.Records != 2 || st.Alerts != 2 || len(got) != 2 {
		t.Errorf("stats %+v, %d alerts: want 2 records (tel.a, tel.b; not other, not the alerts) and 2 alerts", st, len(got))
	}
}

// TestSummary groups the load problems of SigmaHQ's placeholder rules
// (unconfigured |expand placeholders) into one reason.
func TestSummary(t *testing.T) {
	data := sigmatest.Data(t)
	_, problems, err := LoadEngine([]string{data + "/rules-placeholder", data + "/" + samples[0].rule}, "")
	if err != nil {
		t.Fatal(err)
	}
	s := Summary(problems)
	t.Logf("%d problems: %s", len(problems), s)
	if len(problems) == 0 || !strings.Contains(s, " x unsupported") || strings.Count(s, ";") >= len(problems)-1 && len(problems) > 2 {
		t.Errorf("summary %q of %d problems", s, len(problems))
	}
}

// TestStreamIngestEvents evaluates the OCSF events `vigil ingest` writes
// for Windows logs (the parser's golden output) with the default
// streaming config: the source fields in unmapped and the channel and
// event id in metadata route and match SigmaHQ's Windows rules.
func TestStreamIngestEvents(t *testing.T) {
	data := sigmatest.Data(t)
	raw, err := os.ReadFile("../parse/testdata/winlog/winlogbeat.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden []struct {
		Host  string          `json:"host"`
		Event json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	addr := startBroker(t)
	createTopics(t, addr, 1, "ocsf.authentication", "ocsf.process_activity")
	prod := client(t, addr)
	n := 0
	for _, g := range golden {
		var ev ocsf.Event
		if len(g.Event) == 0 || json.Unmarshal(g.Event, &ev) != nil {
			continue
		}
		c, ok := ocsf.ClassByUID(ev.ClassUID())
		if !ok || (c.Topic != "ocsf.authentication" && c.Topic != "ocsf.process_activity") {
			continue
		}
		produce(t, prod, c.Topic, g.Host, g.Event)
		n++
	}
	d, err := New(Config{Brokers: []string{addr}, Group: "ingest", RuleDirs: []string{filepath.Join(data, "rules", "windows")},
		SessionTimeout: 6 * time.Second, WatchInterval: -1}, servertest.LoggerAt(t, slog.LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	runDetector(t, d)
	got := newAlertReader(t, addr, "alerts").waitFor(1, 60*time.Second)
	e := decodeAlert(t, got[0])
	if title := str(e, "finding_info.title"); title != "Failed Logon From Public IP" {
		t.Errorf("alert %q, want Failed Logon From Public IP", title)
	}
	waitCommitted(t, addr, "ingest", "ocsf.authentication")
	t.Logf("%d ingest events, stats %+v", n, d.Stats())
}

// TestConfigKeepsStreamingMapping: a --config without a mapping section
// keeps the streaming mapping; one with a mapping section replaces it.
func TestConfigKeepsStreamingMapping(t *testing.T) {
	data, ss := loadSamples(t)
	dir := t.TempDir()
	onlyPlaceholders := filepath.Join(dir, "p.yml")
	withMapping := filepath.Join(dir, "m.yml")
	_ = os.WriteFile(onlyPlaceholders, []byte("placeholders: {Admins_Workstations: [ws1]}\n"), 0o644)
	_ = os.WriteFile(withMapping, []byte("mapping: {aliases: {Image: [img]}}\n"), 0o644)
	rule := filepath.Join(data, ss[0].rule)
	for _, c := range []struct {
		path string
		want int
	}{{"", 1}, {onlyPlaceholders, 1}, {withMapping, 0}} {
		eng, _, err := LoadEngine([]string{rule}, c.path)
		if err != nil {
			t.Fatal(err)
		}
		// The regression event's EventData as ingest keeps it in unmapped.
		var doc struct {
			Event struct {
				EventData map[string]any
			}
		}
		if err := json.Unmarshal(ss[0].event, &doc); err != nil {
			t.Fatal(err)
		}
		wrapped, _ := json.Marshal(map[string]any{"unmapped": doc.Event.EventData})
		ms, err := eng.NewMatcher().Match(wrapped)
		if err != nil || len(ms) != c.want {
			t.Errorf("config %q: %d matches (%v), want %d", c.path, len(ms), err, c.want)
		}
	}
}

// TestStreamProduceFailure: when alerts cannot be written (the alerts
// topic does not exist and the broker does not auto-create topics), Run
// returns an error and the batch's offsets stay uncommitted.
func TestStreamProduceFailure(t *testing.T) {
	data, ss := loadSamples(t)
	addr := startBroker(t, func(c *config.Broker) { c.AutoCreateTopics = false })
	createTopics(t, addr, 1, "telemetry")
	rules := t.TempDir()
	copyRule(t, data, ss[0], rules)
	produce(t, client(t, addr), "telemetry", "h", ss[0].event)
	d, err := New(Config{Brokers: []string{addr}, Group: "nofail", Topics: []string{"telemetry"}, AlertsTopic: "missing-alerts",
		RuleDirs: []string{rules}, SessionTimeout: 6 * time.Second, WatchInterval: time.Second}, servertest.LoggerAt(t, slog.LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "produce alerts") {
			t.Fatalf("Run: %v, want a produce error", err)
		}
		t.Logf("Run: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatal("Run did not return after alerts could not be produced")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	committed, err := kadm.NewClient(client(t, addr)).FetchOffsets(ctx, "nofail")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := committed.Lookup("telemetry", 0); ok && o.At > 0 {
		t.Errorf("offset %d committed although its alert was not written", o.At)
	}
}
