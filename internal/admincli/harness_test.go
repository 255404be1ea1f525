package admincli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/admincli"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/server"
)

// externalEnv points the group tests at another Kafka-compatible cluster
// instead of an in-process Vigil, to check the commands against a second
// implementation. Unset, every test runs against a real Vigil broker.
const externalEnv = "VIGIL_ADMINCLI_TEST_BROKERS"

// startBroker runs a real Vigil broker on a random loopback port, as
// internal/server's tests do, and returns its address.
func startBroker(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.AdminListen = "127.0.0.1:0" // never collide with a broker on the default port
	cfg.Listen = "127.0.0.1:0"
	cfg.Advertised = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.ObjectStore = filepath.Join(dir, "objects")
	cfg.UploadInterval = 200 * time.Millisecond
	// The commands must never create topics as a side effect of looking.
	cfg.AutoCreateTopics = false
	log := slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.Start(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close broker: %v", err)
		}
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after Close")
		}
	})
	return srv.Addr().String()
}

// brokerFor is startBroker unless externalEnv names another cluster.
func brokerFor(t *testing.T) string {
	if addr := os.Getenv(externalEnv); addr != "" {
		return addr
	}
	return startBroker(t)
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// result is one finished command.
type result struct {
	code   int
	stdout string
	stderr string
}

// cli runs `vigil ARGS...` with VIGIL_BROKERS set to addr, exactly as the
// binary would, and returns what it printed.
func cli(t *testing.T, addr string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := admincli.Main(ctx, args, admincli.Env{
		Stdout: &out,
		Stderr: &errOut,
		Getenv: func(k string) string {
			if k == "VIGIL_BROKERS" {
				return addr
			}
			return ""
		},
	})
	r := result{code: code, stdout: out.String(), stderr: errOut.String()}
	t.Logf("vigil %s -> %d\nstdout:\n%sstderr:\n%s", strings.Join(args, " "), code, r.stdout, r.stderr)
	return r
}

// mustCLI runs a command that has to succeed.
func mustCLI(t *testing.T, addr string, args ...string) result {
	t.Helper()
	r := cli(t, addr, args...)
	if r.code != admincli.ExitOK {
		t.Fatalf("vigil %s: exit %d, stderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

func wantCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
}

// decode parses a command's --json output into v.
func decode(t *testing.T, r result, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, r.stdout)
	}
}

// hasRow reports whether the table has a line whose whitespace-separated
// cells start with cells (tabwriter pads with spaces, so exact widths are
// not part of the contract).
func hasRow(table string, cells ...string) bool {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) < len(cells) {
			continue
		}
		match := true
		for i, c := range cells {
			if f[i] != c {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

func wantRow(t *testing.T, r result, cells ...string) {
	t.Helper()
	if !hasRow(r.stdout, cells...) {
		t.Errorf("no row %q in:\n%s", cells, r.stdout)
	}
}

func wantNoRow(t *testing.T, r result, cells ...string) {
	t.Helper()
	if hasRow(r.stdout, cells...) {
		t.Errorf("unexpected row %q in:\n%s", cells, r.stdout)
	}
}

func wantMatch(t *testing.T, what, s, pattern string) {
	t.Helper()
	if !regexp.MustCompile(pattern).MatchString(s) {
		t.Errorf("%s does not match %q:\n%s", what, pattern, s)
	}
}

func client(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.DisableIdempotentWrite(), // Vigil has no idempotent producers yet
		kgo.RetryTimeout(20 * time.Second),
	}, opts...)...)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
