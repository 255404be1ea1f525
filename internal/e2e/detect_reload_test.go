package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// sigmaCase reads a SigmaHQ rule file (relative to the data dir) and its
// regression event (compacted).
func sigmaCase(t *testing.T, id, ruleFile string) (rule, event []byte) {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(root, "..", "shared", "data", "sigma")
	if _, err := os.Stat(filepath.Join(data, "regression_data")); err != nil {
		t.Fatalf("SigmaHQ data missing: want it at %s (../shared/data/sigma beside the repo root): %v", data, err)
	}
	rule, err = os.ReadFile(filepath.Join(data, ruleFile))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(data, "regression_data", strings.TrimSuffix(ruleFile, ".yml"), id+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return rule, b.Bytes()
}

// TestDetectSIGHUPReload runs `vigil detect` without rule X and with
// directory polling off, sees X's event pass without an alert, adds X's
// file, sends SIGHUP, and expects an alert for X's next event.
func TestDetectSIGHUPReload(t *testing.T) {
	t.Parallel()
	const (
		aID   = "9fc3072c-dc8f-4bf7-b231-18950000fadd"
		aFile = "rules/windows/process_creation/proc_creation_win_driverquery_recon.yml"
		xID   = "85de1f22-d189-44e4-8239-dc276b45379b"
		xFile = "rules/windows/process_creation/proc_creation_win_curl_custom_user_agent.yml"
	)
	aRule, aEvent := sigmaCase(t, aID, aFile)
	xRule, xEvent := sigmaCase(t, xID, xFile)
	rules := t.TempDir()
	if err := os.WriteFile(filepath.Join(rules, "a.yml"), aRule, 0o644); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, "", t.TempDir(), "--group-initial-rebalance-delay", "100ms")
	createTopic(t, b.addr, "telemetry.hup", 1)
	createTopic(t, b.addr, "alerts.hup", 1)
	det := startDetector(t, "--brokers", b.addr, "--rules", rules, "--topics", "telemetry.hup", "--alerts-topic", "alerts.hup",
		"--group", "detect-hup", "--watch-interval", "0")

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.ConsumeTopics("alerts.hup"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	produce := func(vs ...[]byte) {
		t.Helper()
		var recs []*kgo.Record
		for _, v := range vs {
			recs = append(recs, &kgo.Record{Topic: "telemetry.hup", Key: []byte("host-1"), Value: v})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	var got []string
	readUntil := func(n int) {
		t.Helper()
		for len(got) < n {
			f := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("%d alerts (%v), want %d", len(got), got, n)
			}
			f.EachRecord(func(r *kgo.Record) {
				var a struct {
					Info struct {
						Analytic struct {
							UID string `json:"uid"`
						} `json:"analytic"`
					} `json:"finding_info"`
				}
				_ = json.Unmarshal(r.Value, &a)
				got = append(got, a.Info.Analytic.UID)
			})
		}
	}

	// One partition, in order: A's alert means X's event was evaluated.
	produce(xEvent, aEvent)
	readUntil(1)
	if got[0] != aID {
		t.Fatalf("alerts %v before the reload, want only %s", got, aID)
	}
	if err := os.WriteFile(filepath.Join(rules, "x.yml"), xRule, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := det.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	det.waitLog("rules reloaded")
	produce(xEvent)
	readUntil(2)
	if got[1] != xID || len(got) != 2 {
		t.Fatalf("alerts %v after the reload, want [%s %s]", got, aID, xID)
	}
	det.stop()
}
