package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestScorecardCLI runs vigil scorecard as a binary against vigil serve
// processes: an open broker paused by the failure recovery probe (exit
// 0, a JSON report with ACLs missing, nothing acknowledged lost), a
// secured one scored as a user without ACLs through the client security
// flags (ACLs enforced, anonymous clients refused), bad usage and an
// unreachable cluster (exit 2).
func TestScorecardCLI(t *testing.T) {
	t.Parallel()
	run := func(args ...string) (stdout, stderr string, code int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, vigilBin, args...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exit):
			code = exit.ExitCode()
		default:
			t.Fatalf("vigil %s: %v", strings.Join(args, " "), err)
		}
		return out.String(), errOut.String(), code
	}

	open := startBroker(t, "", t.TempDir())
	report := filepath.Join(t.TempDir(), "report.json")
	pid := open.cmd.Process.Pid
	_, stderr, code := run("scorecard", "--brokers", open.addr, "--output", report,
		"--allow-faults", "--fault-pids", strconv.Itoa(pid), "--fault-pause", "2s", "--recovery-timeout", "20s")
	if code != 0 {
		t.Fatalf("scorecard of an open broker: exit %d\n%s", code, stderr)
	}
	// The overall limit grows by the fault probe's: 15s + 1s + 2s + 20s + 1s.
	if !strings.HasPrefix(stderr, "vigil scorecard: limits: 1m39s overall") || !strings.Contains(stderr, "[12/20] ACLs enforced: fail") ||
		!strings.Contains(stderr, "[20/20] pause pid "+strconv.Itoa(pid)+" for 2s: pass") {
		t.Errorf("stderr: limits first, then a line per probe:\n%s", stderr)
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	type area struct {
		Passed, Scored int
		Probes         []struct{ Name, Status, Detail, Error string }
	}
	var rep struct {
		Compatibility area `json:"api_compatibility"`
		Migration     area `json:"migration_path"`
		Recovery      area `json:"failure_recovery"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("report.json: %v\n%s", err, raw)
	}
	statuses := map[string]string{}
	for _, p := range rep.Compatibility.Probes {
		statuses[p.Name] = p.Status
	}
	if statuses["ACLs"] != "missing" || statuses["transactions"] != "pass" || rep.Compatibility.Passed != rep.Compatibility.Scored-1 {
		t.Errorf("open broker: %+v", rep.Compatibility)
	}
	if rep.Migration.Passed != 6 || rep.Migration.Scored != 6 {
		t.Errorf("open broker's migration path: %+v", rep.Migration)
	}
	// The broker paused for 2s: every partition waited for it, and
	// nothing it acknowledged is missing.
	if len(rep.Recovery.Probes) != 1 || rep.Recovery.Passed != 1 {
		t.Fatalf("failure recovery: %+v", rep.Recovery)
	}
	fault := rep.Recovery.Probes[0]
	t.Logf("failure recovery: %s", fault.Detail)
	for _, want := range []string{"sent SIGSTOP to pid " + strconv.Itoa(pid) + " (vigil), SIGCONT", "read back: 0 acknowledged records lost, 0 duplicates"} {
		if !strings.Contains(fault.Detail, want) {
			t.Errorf("failure recovery lacks %q: %s", want, fault.Detail)
		}
	}

	// A secured broker: SCRAM users made before its first start, as
	// docs/security.md says; alice is no super user and has no ACL.
	dir := t.TempDir()
	for _, u := range []string{"admin", "alice"} {
		cmd := exec.Command(vigilBin, "users", "add", u, "--password-stdin", "--data-dir", dir)
		cmd.Stdin = strings.NewReader(u + "-secret-1\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("users add %s: %v\n%s", u, err, out)
		}
	}
	plain, sasl := freeAddr(t), freeAddr(t)
	startBroker(t, plain, dir, "--listen", "PLAINTEXT://"+plain+",SASL_PLAINTEXT://"+sasl,
		"--authorizer", "acl", "--super-users", "User:admin")
	pass := filepath.Join(t.TempDir(), "alice.pass")
	if err := os.WriteFile(pass, []byte("alice-secret-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	md, stderr, code := run("scorecard", "--brokers", sasl, "--security-protocol", "SASL_PLAINTEXT",
		"--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "alice", "--sasl-password-file", pass, "--probe-timeout", "9s")
	if code != 0 {
		t.Fatalf("scorecard as alice: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"over SASL_PLAINTEXT as User:alice", "| ACLs enforced | pass |", "TOPIC_AUTHORIZATION_FAILED",
		"| anonymous read/write | pass |", "| plaintext listener | fail |", "| ACLs | pass |", "| broker fault | not run |"} {
		if !strings.Contains(md, want) {
			t.Errorf("alice's report lacks %q:\n%s", want, md)
		}
	}

	wrong := filepath.Join(t.TempDir(), "wrong.pass")
	if err := os.WriteFile(wrong, []byte("not-alice's\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := run("scorecard", "--brokers", sasl, "--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "SCRAM-SHA-512",
		"--sasl-username", "alice", "--sasl-password-file", wrong); code != 2 || !strings.Contains(stderr, "SASL_AUTHENTICATION_FAILED") {
		t.Errorf("a wrong password: exit %d, want 2\n%s", code, stderr)
	}
	if _, stderr, code := run("scorecard", "--brokers", open.addr, "--output", "report.txt"); code != 2 || !strings.Contains(stderr, ".md, .json or .html") {
		t.Errorf("--output report.txt: exit %d, want 2\n%s", code, stderr)
	}
	if _, stderr, code := run("scorecard", "--brokers", open.addr, "--zones", "2"); code != 2 || !strings.Contains(stderr, "--ingest-gb-per-day") {
		t.Errorf("--zones without --ingest-gb-per-day: exit %d, want 2\n%s", code, stderr)
	}
	if _, stderr, code := run("scorecard", "--brokers", freeAddr(t), "--timeout", "3s", "--probe-timeout", "2s"); code != 2 || !strings.Contains(stderr, "cluster unreachable") {
		t.Errorf("unreachable: exit %d, want 2\n%s", code, stderr)
	}
}

// TestScorecardFaultKill has the failure recovery probe SIGKILL a vigil
// serve that the test restarts on the same address and data directory,
// as systemd would: every partition takes writes again once it is back,
// and nothing it acknowledged before the kill is lost (the WAL is synced
// before an acknowledgement). Not in -short: it runs the whole
// scorecard.
func TestScorecardFaultKill(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole scorecard run and a broker restart")
	}
	t.Parallel()
	dir := t.TempDir()
	first := startBroker(t, "", dir)
	pid := first.cmd.Process.Pid

	// The supervisor: once the first process is gone, the same command
	// again.
	restarted := make(chan *exec.Cmd, 1)
	go func() {
		<-first.exited
		cmd := exec.Command(vigilBin, "serve", "--listen", first.addr, "--data-dir", dir, "--admin-listen", "127.0.0.1:0")
		log, err := os.Create(filepath.Join(t.TempDir(), "restarted.log"))
		if err == nil {
			cmd.Stdout, cmd.Stderr = log, log
			err = cmd.Start()
			log.Close()
		}
		if err != nil {
			t.Errorf("restart vigil: %v", err)
			cmd = nil
		}
		restarted <- cmd
	}()
	t.Cleanup(func() {
		select {
		case cmd := <-restarted:
			if cmd != nil {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				_ = cmd.Wait()
			}
		case <-time.After(10 * time.Second):
			t.Errorf("the supervisor did not restart vigil")
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	report := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.CommandContext(ctx, vigilBin, "scorecard", "--brokers", first.addr, "--output", report,
		"--allow-faults", "--fault-pids", strconv.Itoa(pid), "--fault-signal", "kill", "--recovery-timeout", "30s")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scorecard: %v\n%s", err, stderr.String())
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Recovery struct {
			Passed int
			Probes []struct{ Name, Status, Detail, Error string }
		} `json:"failure_recovery"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Recovery.Probes) != 1 {
		t.Fatalf("failure recovery: %+v", rep.Recovery)
	}
	p := rep.Recovery.Probes[0]
	t.Logf("%s: %s: %s %s", p.Name, p.Status, p.Detail, p.Error)
	if p.Status != "pass" || !strings.Contains(p.Detail, "sent SIGKILL to pid "+strconv.Itoa(pid)) ||
		!strings.Contains(p.Detail, "read back: 0 acknowledged records lost, 0 duplicates") {
		t.Errorf("kill pid %d: %s %s", pid, p.Status, p.Error)
	}
}
