package detect

import (
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestStreamLateTopic starts the detector before its topic exists (the
// default topics before `vigil ingest` first writes them).
func TestStreamLateTopic(t *testing.T) {
	data, ss := loadSamples(t)
	addr := startBroker(t)
	rules := t.TempDir()
	copyRule(t, data, ss[0], rules)
	d, err := New(Config{Brokers: []string{addr}, Group: "late", Topics: []string{"late.telemetry"}, AlertsTopic: "late.alerts",
		RuleDirs: []string{rules}, SessionTimeout: 6 * time.Second, WatchInterval: -1}, testLogger(t, slog.LevelInfo))
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
