package detect

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/server/servertest"
)

const bruteForceRules = `title: Failed logon
id: 11111111-0000-0000-0000-000000000001
name: failed_logon
level: low
logsource: {product: windows, service: security}
detection:
  sel: {EventID: 4625}
  condition: sel
---
title: Brute force
id: 22222222-0000-0000-0000-000000000001
level: high
correlation:
  type: event_count
  rules: [failed_logon]
  group-by: [TargetUserName]
  timespan: 5m
  condition: {gte: 3}
`

// TestStreamCorrelationRestart builds an event_count correlation across
// two batches with a detector restart in between: the second detector
// restores the window from the state topic and fires on the 3rd failure.
func TestStreamCorrelationRestart(t *testing.T) {
	addr := startBroker(t)
	createTopics(t, addr, 1, "telemetry", "alerts")
	rules := t.TempDir()
	if err := os.WriteFile(filepath.Join(rules, "brute.yml"), []byte(bruteForceRules), 0o644); err != nil {
		t.Fatal(err)
	}
	prod := client(t, addr)
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	failed := func(at time.Duration, user string) *kgo.Record {
		return &kgo.Record{Topic: "telemetry", Key: []byte("dc-1"), Timestamp: t0.Add(at),
			Value: []byte(`{"Channel":"Security","EventID":4625,"TargetUserName":"` + user + `"}`)}
	}
	send := func(recs ...*kgo.Record) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	cfg := Config{Brokers: []string{addr}, Group: "corr", Topics: []string{"telemetry"}, RuleDirs: []string{rules},
		SessionTimeout: 6 * time.Second, WatchInterval: -1}

	// Batch 1: two failures for bob (and one for alice): below the threshold.
	send(failed(0, "bob"), failed(time.Minute, "bob"), failed(time.Minute, "alice"))
	d1, err := New(cfg, servertest.LoggerAt(t, slog.LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	if s := d1.Stats(); s.Rules != 1 || s.Correlations != 1 {
		t.Fatalf("stats %+v", s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d1.Run(ctx) }()
	waitCommitted(t, addr, "corr", "telemetry")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := d1.Stats(); s.Alerts != 0 || s.StateWrites == 0 || s.Restored {
		t.Fatalf("first detector: %+v (want no alert: the base rule has generate: false; a state write)", s)
	}

	// A snapshot written after the last commit (as by a detector that
	// crashed before committing its batch) must not be the one restored:
	// the commit names the state of the committed records.
	send(&kgo.Record{Topic: "detect.state", Key: []byte("corr"), Value: []byte(`{"version":1,"correlations":[]}`)})

	// Batch 2, after a restart: bob's third failure within 5 minutes.
	d2, err := New(cfg, servertest.LoggerAt(t, slog.LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	runDetector(t, d2)
	send(failed(2*time.Minute, "bob"))
	reader := newAlertReader(t, addr, "alerts")
	got := reader.waitFor(1, 60*time.Second)
	waitCommitted(t, addr, "corr", "telemetry")
	if !d2.Stats().Restored {
		t.Error("second detector did not restore the state")
	}
	a := decodeAlert(t, got[0])
	if str(a, "finding_info.title") != "Brute force" || num(a, "severity_id") != 4 {
		t.Errorf("alert %v", a)
	}
	types, _ := a.Get("finding_info.types")
	if v, _ := types.([]any); len(v) != 2 || v[0] != "Sigma" || v[1] != "Correlation" {
		t.Errorf("types %v", types)
	}
	if num(a, "unmapped.correlation.count") != 3 || str(a, "unmapped.correlation.group_by.TargetUserName") != "bob" ||
		num(a, "finding_info.first_seen_time") != int(t0.UnixMilli()) || num(a, "finding_info.last_seen_time") != int(t0.Add(2*time.Minute).UnixMilli()) {
		t.Errorf("correlation %v", a)
	}
	rs, _ := a.Get("unmapped.correlation.rules")
	if v, _ := rs.([]any); !slices.Equal(v, []any{"11111111-0000-0000-0000-000000000001"}) {
		t.Errorf("contributing rules %v", rs)
	}
	// Only the correlation alert: alice stays below, bob's base matches are silent.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	if extra := reader.cl.PollFetches(ctx2).Records(); len(extra) != 0 {
		t.Errorf("%d more alerts, want 1 in all", len(extra))
	}
}

func TestStateMetadata(t *testing.T) {
	md := stateMetadata(3, 1234)
	if p, o, ok := parseStateMetadata(md); !ok || p != 3 || o != 1234 {
		t.Errorf("%q -> %d %d %v", md, p, o, ok)
	}
	for _, bad := range []string{"", "x", "vigil-state:", "vigil-state:1", "vigil-state:a:1", "vigil-state:1:-2"} {
		if _, _, ok := parseStateMetadata(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}
