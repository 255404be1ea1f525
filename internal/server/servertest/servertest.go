// Package servertest runs real Vigil brokers inside a test process, for
// the tests of the components that talk to one over TCP (ingest, detect,
// enrich, hunt, tables, export, the CLI): the whole broker of package
// server, not a fake, on loopback ports the system picks.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/server"
)

// Config is a broker for a test, its data in dir: Kafka and admin
// listeners on loopback ports the system picks (so a broker on the
// default ports is never disturbed), a file WAL without fsync (the tests
// do not crash the machine), uploads every 200 ms so that reads soon come
// from segment objects, and a group's first rebalance after 100 ms.
func Config(dir string) config.Broker {
	cfg := config.Default()
	cfg.Listen, cfg.Advertised, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir, cfg.ObjectStore = dir, filepath.Join(dir, "objects")
	cfg.WAL, cfg.WALSync = "file", false
	cfg.UploadInterval = 200 * time.Millisecond
	cfg.GroupInitialRebalance = 100 * time.Millisecond
	return cfg
}

// Broker is a broker running in the test process.
type Broker struct {
	Server *server.Server
	Config config.Broker
	// Addr is its first Kafka listener, Admin its admin listener.
	Addr, Admin string

	t      testing.TB
	served chan error
	closed bool
}

// Run starts a broker of Config over a new temporary directory, with
// mods applied to its config; it is closed when the test ends.
func Run(t testing.TB, mods ...func(*config.Broker)) *Broker {
	t.Helper()
	cfg := Config(t.TempDir())
	for _, mod := range mods {
		mod(&cfg)
	}
	return Start(t, cfg)
}

// Start starts a broker of cfg (restart tests start one again over the
// same directory); it is closed when the test ends.
func Start(t testing.TB, cfg config.Broker) *Broker {
	t.Helper()
	srv, err := server.Start(context.Background(), cfg, Logger(t))
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	b := &Broker{Server: srv, Config: cfg, Addr: srv.Addr().String(), Admin: srv.AdminAddr(), t: t, served: make(chan error, 1)}
	go func() { b.served <- srv.Serve() }()
	t.Cleanup(b.Close)
	return b
}

// Close stops the broker and waits for it; closing it again does
// nothing.
func (b *Broker) Close() {
	if b.closed {
		return
	}
	b.closed = true
	if err := b.Server.Close(); err != nil {
		b.t.Errorf("close broker: %v", err)
	}
	select {
	case err := <-b.served:
		if err != nil {
			b.t.Errorf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		b.t.Errorf("the broker's Serve did not return after Close")
	}
}

// Logger logs into the test's log at Warn, or at Debug with
// VIGIL_TEST_DEBUG set: the broker's and the component's lines then show
// beside the test's when it fails.
func Logger(t testing.TB) *slog.Logger { return LoggerAt(t, slog.LevelWarn) }

// LoggerAt is Logger at level.
func LoggerAt(t testing.TB, level slog.Level) *slog.Logger {
	if os.Getenv("VIGIL_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

// Writer writes into the test's log, a line per Log call: for a child
// process's stderr.
func Writer(t testing.TB) io.Writer { return testWriter{t} }

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
