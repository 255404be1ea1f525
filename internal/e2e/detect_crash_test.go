package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// detector is one `vigil detect` streaming process.
type detector struct {
	t       *testing.T
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
}

func startDetector(t *testing.T, args ...string) *detector {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), "detect-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(vigilBin, append([]string{"detect"}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start vigil detect: %v", err)
	}
	logf.Close()
	d := &detector{t: t, cmd: cmd, logPath: logf.Name(), exited: make(chan struct{})}
	go func() {
		d.waitErr = cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-d.exited
		}
		log, _ := os.ReadFile(d.logPath)
		if t.Failed() {
			t.Logf("vigil detect log (pid %d):\n%s", cmd.Process.Pid, truncate(string(log), 20000))
		}
		for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
			if strings.Contains(string(log), bad) {
				t.Errorf("vigil detect log contains %q", bad)
			}
		}
	})
	return d
}

func (d *detector) log() string {
	raw, _ := os.ReadFile(d.logPath)
	return string(raw)
}

// waitLog waits until the detector's log contains s.
func (d *detector) waitLog(s string) {
	d.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(d.log(), s) {
		select {
		case <-d.exited:
			d.t.Fatalf("vigil detect exited (%v) before logging %q", d.waitErr, s)
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("vigil detect did not log %q within a minute", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *detector) kill() {
	d.t.Helper()
	select {
	case <-d.exited:
		d.t.Fatalf("vigil detect exited before SIGKILL: %v", d.waitErr)
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exited
}

// stop sends SIGTERM and expects a clean exit.
func (d *detector) stop() {
	d.t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		if d.waitErr != nil {
			d.t.Errorf("vigil detect after SIGTERM: %v", d.waitErr)
		}
	case <-time.After(30 * time.Second):
		d.t.Errorf("vigil detect did not stop within 30s of SIGTERM")
	}
}

// TestDetectCrashNoAlertLost produces N events that each fire one rule
// while `vigil detect` consumes them, SIGKILLs the detector mid-stream,
// restarts it, and checks that every event's alert (finding uid) is in the
// alerts topic at least once and that the group ends fully committed.
func TestDetectCrashNoAlertLost(t *testing.T) {
	t.Parallel()
	n := 3000
	if testing.Short() {
		n = 600
	}
	const (
		telemetry = "telemetry.crash"
		alerts    = "alerts.crash"
		group     = "detect-crash"
		ruleID    = "9fc3072c-dc8f-4bf7-b231-18950000fadd"
		ruleFile  = "rules/windows/process_creation/proc_creation_win_driverquery_recon.yml"
	)
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(root, "..", "shared", "data", "sigma")
	if _, err := os.Stat(filepath.Join(data, "regression_data")); err != nil {
		t.Fatalf("SigmaHQ data missing: want it at %s (../shared/data/sigma beside the repo root): %v", data, err)
	}
	rules := t.TempDir()
	raw, err := os.ReadFile(filepath.Join(data, ruleFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rules, filepath.Base(ruleFile)), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	raw, err = os.ReadFile(filepath.Join(data, "regression_data", strings.TrimSuffix(ruleFile, ".yml"), ruleID+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var event bytes.Buffer
	if err := json.Compact(&event, raw); err != nil {
		t.Fatal(err)
	}

	b := startBroker(t, "", t.TempDir(), "--group-initial-rebalance-delay", "100ms", "--group-min-session-timeout", "1s")
	createTopic(t, b.addr, telemetry, 3)
	createTopic(t, b.addr, alerts, 2)
	args := []string{"--brokers", b.addr, "--rules", rules, "--topics", telemetry, "--alerts-topic", alerts, "--group", group, "--session-timeout", "2s"}

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.ConsumeTopics(alerts), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	// Half the events are a backlog before the detector starts (batches
	// back to back, so the kill likely lands between an acknowledged
	// produce and its commit); the producer writes the rest in small
	// batches while the detector runs and is killed.
	var mu sync.Mutex
	want := map[string]bool{}
	prodDone := make(chan error, 1)
	backlog := make(chan struct{})
	var det *detector
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		step := 50
		for i := 0; i < n; i += step {
			if i >= n/2 {
				step = 10 // live: small batches, spread over seconds
			}
			if i == n/2 {
				close(backlog)
			}
			var recs []*kgo.Record
			for j := i; j < min(n, i+step); j++ {
				recs = append(recs, &kgo.Record{Topic: telemetry, Key: fmt.Appendf(nil, "host-%d", j%17), Value: event.Bytes()})
			}
			res := cl.ProduceSync(ctx, recs...)
			if err := res.FirstErr(); err != nil {
				prodDone <- err
				return
			}
			mu.Lock()
			for _, r := range res {
				want[fmt.Sprintf("%s:%s:%d:%d", ruleID, r.Record.Topic, r.Record.Partition, r.Record.Offset)] = true
			}
			mu.Unlock()
			if i >= n/2 {
				time.Sleep(20 * time.Millisecond)
			}
		}
		prodDone <- nil
	}()

	select {
	case <-backlog:
	case err := <-prodDone:
		t.Fatalf("produce: %v", err)
	}
	det = startDetector(t, args...)

	seen := map[string]int{}
	total := 0
	read := func(until func() bool, within time.Duration) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		for !until() {
			select {
			case <-det.exited:
				t.Fatalf("vigil detect exited: %v", det.waitErr)
			default:
			}
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			f := cl.PollFetches(pctx)
			pcancel()
			if ctx.Err() != nil {
				return
			}
			f.EachRecord(func(r *kgo.Record) {
				var a struct {
					ClassUID int `json:"class_uid"`
					Info     struct {
						UID string `json:"uid"`
					} `json:"finding_info"`
				}
				if err := json.Unmarshal(r.Value, &a); err != nil || a.ClassUID != 2004 {
					t.Errorf("alert %s: class %d, %v", r.Value[:min(len(r.Value), 200)], a.ClassUID, err)
				}
				seen[a.Info.UID]++
				total++
			})
		}
	}
	read(func() bool { return total >= n/3 }, 2*time.Minute)
	if total < n/3 {
		t.Fatalf("only %d alerts before the kill, want %d", total, n/3)
	}
	det.kill()
	select {
	case err := <-prodDone:
		t.Logf("SIGKILL after the producer finished (%d alerts read); the kill may not be mid-batch", total)
		prodDone <- err
	default:
		t.Logf("SIGKILL with %d alerts read, producer still running", total)
	}
	if err := <-prodDone; err != nil {
		t.Fatalf("produce: %v", err)
	}
	det = startDetector(t, args...)
	det.waitLog("partitions assigned")
	read(func() bool { return len(seen) >= n }, 3*time.Minute)

	var missing []string
	for uid := range want {
		if seen[uid] == 0 {
			missing = append(missing, uid)
		}
	}
	for uid := range seen {
		if !want[uid] {
			t.Errorf("unexpected finding uid %s", uid)
		}
	}
	if len(want) != n || len(missing) > 0 {
		t.Fatalf("%d events produced (want %d); %d alerts lost, e.g. %v", len(want), n, len(missing), missing[:min(len(missing), 5)])
	}
	t.Logf("%d events, %d alerts read, %d distinct finding uids, %d duplicates (re-evaluated after the kill)", n, total, len(seen), total-len(seen))

	// The restarted detector commits everything.
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ends, err1 := adm.ListEndOffsets(ctx, telemetry)
		committed, err2 := adm.FetchOffsets(ctx, group)
		cancel()
		lag := int64(0)
		if err1 == nil && err2 == nil {
			ends.Each(func(o kadm.ListedOffset) {
				c, _ := committed.Lookup(o.Topic, o.Partition)
				lag += o.Offset - max(c.At, 0)
			})
			if lag == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s: lag %d after a minute (%v, %v)", group, lag, err1, err2)
		}
		time.Sleep(100 * time.Millisecond)
	}
	det.stop()
}
