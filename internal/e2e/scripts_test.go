package e2e

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// shellScripts lists the repository's shell scripts: everything under .ci
// and every file whose first line runs a shell.
func shellScripts(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if strings.HasPrefix(rel, ".ci"+string(filepath.Separator)) || strings.HasSuffix(p, ".sh") || startsWithShellShebang(p) {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func startsWithShellShebang(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	if !strings.HasPrefix(line, "#!") {
		return false
	}
	for _, sh := range []string{"bash", "/sh", " sh", "dash"} {
		if strings.Contains(line, sh) {
			return true
		}
	}
	return false
}

// TestShellcheck runs Debian's shellcheck over every shell script in the
// repository, CI's own included.
func TestShellcheck(t *testing.T) {
	t.Parallel()
	shellcheck, err := exec.LookPath("shellcheck")
	if err != nil {
		t.Fatal("shellcheck not installed: apt-get install -y shellcheck (see .ci/install)")
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	scripts := shellScripts(t, root)
	if len(scripts) < 2 {
		t.Fatalf("found only %v; .ci/run and .ci/install at least should be checked", scripts)
	}
	cmd := exec.Command(shellcheck, append([]string{"--severity=style"}, scripts...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("shellcheck %s: %v\n%s", strings.Join(scripts, " "), err, out)
	}
	t.Logf("shellcheck passed on %s", strings.Join(scripts, ", "))
}

// TestInstallDryRun runs .ci/install as a new machine would (every tool
// missing) without installing anything: each step's command line is
// built and printed, so a mistake in the script itself (an assignment in
// the place of a command, a broken package list) fails here rather than
// only on the first machine that lacks a package.
func TestInstallDryRun(t *testing.T) {
	t.Parallel()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", ".ci/install", "--dry-run", "--assume-missing")
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf(".ci/install --dry-run --assume-missing: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"env DEBIAN_FRONTEND=noninteractive apt-get update",
		"apt-get install -y -qq --no-install-recommends kcat shellcheck python3 python3-kafka python3-confluent-kafka rsyslog rsyslog-kafka bsdutils iproute2 nftables g++ make libnode-dev nodejs npm",
		"JOBS=1 npm ci --no-audit --no-fund --silent --prefix internal/e2e/testdata/rdkafka",
		"npm ci --no-audit --no-fund --silent --prefix internal/e2e/testdata/kafkajs",
		"go install github.com/versity/versitygw/cmd/versitygw@",
		"go install github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@",
		"build_zincsearch v",
		"build_otelhec ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
	// Without --dry-run, --assume-missing is refused: it would ask apt for
	// Node.js where another one is installed.
	cmd = exec.Command("bash", ".ci/install", "--assume-missing")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "only goes with --dry-run") {
		t.Errorf(".ci/install --assume-missing: %v, %s; want a refusal", err, out)
	}
}
