package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilhq/vigil/sigma/sigmatest"
)

// walkthrough returns the shell commands of the README's walkthrough: the
// first ```sh block between its markers.
func walkthrough(t *testing.T, root string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	begin := strings.Index(readme, "<!-- walkthrough: begin -->")
	end := strings.Index(readme, "<!-- walkthrough: end -->")
	if begin < 0 || end < begin {
		t.Fatal("README.md lacks the <!-- walkthrough: begin/end --> markers")
	}
	section := readme[begin:end]
	start := strings.Index(section, "```sh\n")
	if start < 0 {
		t.Fatal("the walkthrough has no ```sh block")
	}
	block := section[start+len("```sh\n"):]
	stop := strings.Index(block, "```")
	if stop < 0 {
		t.Fatal("the walkthrough's ```sh block is not closed")
	}
	return block[:stop]
}

// TestREADMEWalkthrough runs the README's walkthrough, as written, in a
// copy of the checkout, and checks that it ends with the Detection
// Findings it promises: syslog lines sent with logger, routed to
// SigmaHQ's Linux rules (an sshd error to the sshd service's rule, a sudo
// command to a process-creation rule). The walkthrough uses the default
// ports, so they must be free.
func TestREADMEWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the README's walkthrough: not in -short")
	}
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatal("kcat not installed: apt-get install -y kcat (see .ci/install)")
	}
	if _, err := exec.LookPath("logger"); err != nil {
		t.Fatal("logger not installed (bsdutils)")
	}
	for _, addr := range []string{"127.0.0.1:9092", "127.0.0.1:9644", "127.0.0.1:8088", "127.0.0.1:5514"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("the walkthrough uses %s, which is taken: %v", addr, err)
		}
		ln.Close()
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := walkthrough(t, root)
	dir := t.TempDir()
	copyCheckout(t, root, dir)
	sigmaDir, err := filepath.Abs(sigmatest.Data(t))
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// set -e: a failing line fails the test here as it would stop a reader.
	cmd := exec.CommandContext(ctx, "bash", "-e", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SIGMA_DIR="+sigmaDir)
	// Its own process group, so the background jobs go with it whatever
	// happens.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	// Whatever the walkthrough's last line did, nothing it started may
	// outlive the test (the next run needs the ports).
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	logs := func() string {
		var b strings.Builder
		for _, f := range []string{"serve.log", "detect.log"} {
			raw, _ := os.ReadFile(filepath.Join(dir, f))
			fmt.Fprintf(&b, "--- %s:\n%s\n", f, truncate(string(raw), 6000))
		}
		return b.String()
	}
	if err != nil {
		t.Fatalf("walkthrough: %v (ctx %v)\nstdout:\n%s\nstderr:\n%s\n%s", err, ctx.Err(), truncate(stdout.String(), 4000), truncate(stderr.String(), 4000), logs())
	}

	type finding struct {
		ClassUID    int `json:"class_uid"`
		FindingInfo struct {
			Title    string `json:"title"`
			Analytic struct {
				UID string `json:"uid"`
			} `json:"analytic"`
		} `json:"finding_info"`
		Evidences []struct {
			Data struct {
				ClassUID int    `json:"class_uid"`
				Message  string `json:"message"`
				Metadata struct {
					LogProvider string `json:"log_provider"`
				} `json:"metadata"`
				Process struct {
					CmdLine string `json:"cmd_line"`
				} `json:"process"`
			} `json:"data"`
		} `json:"evidences"`
	}
	printed := stdout.String()
	byRule := map[string]finding{}
	sc := bufio.NewScanner(strings.NewReader(printed))
	sc.Buffer(nil, 4<<20)
	n := 0
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(`"class_uid":2004`)) {
			continue
		}
		var f finding
		if err := json.Unmarshal(line, &f); err != nil {
			t.Fatalf("alert line is not JSON: %v: %s", err, line)
		}
		n++
		byRule[f.FindingInfo.Analytic.UID] = f
	}
	if n != 2 {
		t.Fatalf("the walkthrough printed %d alerts, want 2:\n%s\n%s", n, printed, logs())
	}
	// SigmaHQ's "Suspicious OpenSSH Daemon Error" (product linux, service
	// sshd) on the Corrupted MAC line, a generic event of sshd's.
	sshd, ok := byRule["e76b413a-83d0-4b94-8e4c-85db4a5b8bdc"]
	if !ok || sshd.ClassUID != 2004 || len(sshd.Evidences) != 1 || sshd.Evidences[0].Data.ClassUID != 0 ||
		sshd.Evidences[0].Data.Message != "error: Corrupted MAC on input." || sshd.Evidences[0].Data.Metadata.LogProvider != "sshd" {
		t.Errorf("no Suspicious OpenSSH Daemon Error finding on the sshd line: %+v", byRule)
	}
	// "Remove Immutable File Attribute" (product linux, category
	// process_creation) on the sudo command.
	sudo, ok := byRule["34979410-e4b5-4e5d-8cfb-389fdff05c12"]
	if !ok || len(sudo.Evidences) != 1 || sudo.Evidences[0].Data.ClassUID != 1007 ||
		sudo.Evidences[0].Data.Process.CmdLine != "/usr/bin/chattr -i /etc/passwd" {
		t.Errorf("no Remove Immutable File Attribute finding on the sudo line: %+v", byRule)
	}
	for id, f := range byRule {
		t.Logf("alert: %q (rule %s)", f.FindingInfo.Title, id)
	}
}

// copyCheckout copies the files git knows of (tracked or not ignored), or
// every file but .git, node_modules and data where git is missing.
func copyCheckout(t *testing.T, root, dst string) {
	t.Helper()
	var files []string
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err == nil {
		for _, f := range strings.Split(string(out), "\x00") {
			if f != "" {
				files = append(files, f)
			}
		}
	} else {
		err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || rel == "data") {
				return filepath.SkipDir
			}
			if d.Type().IsRegular() {
				files = append(files, rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		src := filepath.Join(root, f)
		st, err := os.Stat(src)
		if err != nil || !st.Mode().IsRegular() {
			continue // deleted but still in the index
		}
		target := filepath.Join(dst, f)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			t.Fatal(err)
		}
		in, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		o, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, st.Mode().Perm())
		if err != nil {
			in.Close()
			t.Fatal(err)
		}
		_, err = io.Copy(o, in)
		in.Close()
		if cerr := o.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
