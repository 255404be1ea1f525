package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestVersion checks that both spellings print the module version, the
// commit the binary was built from and the Go version.
func TestVersion(t *testing.T) {
	t.Parallel()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	wantCommit := "unknown"
	if out, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output(); err == nil {
		wantCommit = strings.TrimSpace(string(out))
	}
	line := regexp.MustCompile(`^vigil (\S+) commit ([0-9a-f]{40}(\+dirty)?|unknown)( \(\S+\))? go1\.\d+`)
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(vigilBin, arg).CombinedOutput()
		if err != nil {
			t.Fatalf("vigil %s: %v: %s", arg, err, out)
		}
		m := line.FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("vigil %s printed %q, want \"vigil VERSION commit SHA (TIME) GOVERSION\"", arg, out)
		}
		if got := strings.TrimSuffix(m[2], "+dirty"); got != wantCommit {
			t.Errorf("vigil %s: commit %s, want %s (git rev-parse HEAD)", arg, got, wantCommit)
		}
	}
}

// TestFlagErrors checks that a bad flag gives one line with a hint, not
// the whole usage (twice), and exit status 2.
func TestFlagErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"serve", "--lisen", "x"},
		{"ingest", "--bogus"},
		{"detect", "--bogus"},
		{"topics", "list", "--bogus"},
		{"bench", "produce", "--bogus"},
	} {
		cmd := exec.Command(vigilBin, args...)
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("vigil %s: %v, want exit status 2", strings.Join(args, " "), err)
		}
		text := strings.TrimSpace(string(out))
		name := "vigil " + args[0]
		if args[0] == "topics" || args[0] == "bench" {
			name += " " + args[1]
		}
		want := fmt.Sprintf("%s: flag provided but not defined: %s (run '%s -h' for the flags)", name, args[len(args)-1], name)
		if args[0] == "serve" {
			want = "vigil serve: flag provided but not defined: -lisen (run 'vigil serve -h' for the flags)"
		} else {
			want = strings.Replace(want, "--", "-", 1)
		}
		if text != want {
			t.Errorf("vigil %s printed:\n%s\nwant the one line:\n%s", strings.Join(args, " "), text, want)
		}
	}
	// -h prints each default once.
	out, err := exec.Command(vigilBin, "serve", "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("serve -h: %v", err)
	}
	if twice := regexp.MustCompile(`\(default [^)]*\) *\(default `).FindString(string(out)); twice != "" {
		t.Errorf("serve -h prints two defaults for a flag: %s", twice)
	}
	if !strings.Contains(string(out), "(default 4194304; 16777216 with an s3:// object store)") {
		t.Errorf("serve -h lacks the segment-bytes defaults:\n%s", out)
	}
}

// TestBindBeforeCreate starts vigil serve on a port in use: it must fail
// without creating its data directory, and the same for the admin port.
func TestBindBeforeCreate(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, c := range []struct{ name, listen, admin string }{
		{"kafka port", taken.Addr().String(), "127.0.0.1:0"},
		{"admin port", "127.0.0.1:0", taken.Addr().String()},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		cmd := exec.Command(vigilBin, "serve", "--listen", c.listen, "--admin-listen", c.admin, "--data-dir", dir)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("%s in use: vigil serve exited 0:\n%s", c.name, out)
		}
		if !strings.Contains(string(out), "address already in use") {
			t.Errorf("%s in use: log does not say why:\n%s", c.name, out)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s in use: data directory %s was created (stat: %v)", c.name, dir, err)
		}
	}
}

// TestSIGHUPKeepsServeAndIngest sends SIGHUP to vigil serve (with ingest
// inside) and to vigil ingest: each logs it, keeps running and keeps
// taking records, and shuts down cleanly on SIGTERM afterwards.
func TestSIGHUPKeepsServeAndIngest(t *testing.T) {
	t.Parallel()
	syslogAddr := freeAddr(t)
	b := startBroker(t, "", t.TempDir(), "--ingest-syslog-tcp", syslogAddr)
	waitLog(t, b.log, "ingest listening")
	for i := 0; i < 3; i++ {
		if err := b.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	waitLog(t, b.log, "SIGHUP: vigil serve keeps running")
	time.Sleep(200 * time.Millisecond)
	select {
	case <-b.exited:
		t.Fatalf("vigil serve exited on SIGHUP: %v\n%s", b.waitErr, b.logTail(30))
	default:
	}
	sendSyslog(t, syslogAddr, "serve-host")
	waitRecordWithKey(t, b.addr, "ocsf.authentication", "serve-host")

	// vigil ingest on its own, producing to the same broker.
	ingestSyslog := freeAddr(t)
	logPath := filepath.Join(t.TempDir(), "ingest.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	in := exec.Command(vigilBin, "ingest", "--brokers", b.addr, "--syslog-tcp", ingestSyslog, "--syslog-udp", "", "--http", "")
	in.Stdout, in.Stderr = logf, logf
	if err := in.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	exited := make(chan error, 1)
	go func() { exited <- in.Wait() }()
	defer func() {
		_ = in.Process.Kill()
	}()
	readLog := func() string { raw, _ := os.ReadFile(logPath); return string(raw) }
	waitLog(t, readLog, "vigil ingest listening")
	if err := in.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, readLog, "SIGHUP: vigil ingest keeps running")
	sendSyslog(t, ingestSyslog, "ingest-host")
	waitRecordWithKey(t, b.addr, "ocsf.authentication", "ingest-host")
	if err := in.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("vigil ingest after SIGHUP then SIGTERM: %v\n%s", err, readLog())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("vigil ingest did not stop on SIGTERM:\n%s", readLog())
	}
	b.stop()
	if b.waitErr != nil {
		t.Errorf("vigil serve after SIGHUP then SIGTERM: %v\n%s", b.waitErr, b.logTail(30))
	}
}

func waitLog(t *testing.T, read func() string, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(read(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", want, read())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sendSyslog sends one sshd failure as RFC 5424 with octet counting.
func sendSyslog(t *testing.T, addr, host string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := fmt.Sprintf("<38>1 %s %s sshd 1234 - - Failed password for root from 203.0.113.9 port 40022 ssh2",
		time.Now().UTC().Format(time.RFC3339), host)
	w := bufio.NewWriter(c)
	fmt.Fprintf(w, "%d %s", len(msg), msg)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// waitRecordWithKey consumes topic from the start until a record keyed key
// arrives.
func waitRecordWithKey(t *testing.T, addr, topic, key string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no record keyed %q on %s within 30s", key, topic)
		}
		found := false
		fs.EachRecord(func(r *kgo.Record) { found = found || string(r.Key) == key })
		if found {
			return
		}
	}
}
