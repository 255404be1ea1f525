package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestScorecardCLI runs vigil scorecard as a binary against vigil serve
// processes: an open broker (exit 0, a JSON report with ACLs missing), a
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
	_, stderr, code := run("scorecard", "--brokers", open.addr, "--output", report)
	if code != 0 {
		t.Fatalf("scorecard of an open broker: exit %d\n%s", code, stderr)
	}
	if !strings.HasPrefix(stderr, "vigil scorecard: limits: 1m0s overall") || !strings.Contains(stderr, "[12/12] ACLs enforced: fail") {
		t.Errorf("stderr: limits first, then a line per probe:\n%s", stderr)
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Compatibility struct {
			Passed, Scored int
			Probes         []struct{ Name, Status, Detail, Error string }
		} `json:"api_compatibility"`
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
		"| anonymous read/write | pass |", "| plaintext listener | fail |", "| ACLs | pass |"} {
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
