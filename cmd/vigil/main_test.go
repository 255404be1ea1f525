package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/server"
)

func TestUsageListsCommands(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(nil, &out, &errOut); code != 2 {
		t.Errorf("no arguments: exit %d, want 2", code)
	}
	for _, cmd := range []string{"vigil serve", "vigil bench KIND", "vigil topics", "vigil groups", "vigil ingest", "vigil detect", "vigil audit verify"} {
		if !strings.Contains(errOut.String(), cmd) {
			t.Errorf("usage lacks %q:\n%s", cmd, errOut.String())
		}
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"topics"}, 2},
		{[]string{"groups"}, 2},
		{[]string{"topics", "-h"}, 0},
		{[]string{"groups", "--help"}, 0},
		{[]string{"groups", "rebalance"}, 2},
		{[]string{"frobnicate"}, 2},
	} {
		out.Reset()
		errOut.Reset()
		if code := run(tc.args, &out, &errOut); code != tc.code {
			t.Errorf("vigil %s: exit %d, want %d\n%s%s", strings.Join(tc.args, " "), code, tc.code, out.String(), errOut.String())
		}
	}
}

// TestTopicsAgainstBroker runs the dispatched commands end to end against
// an in-process broker over TCP.
func TestTopicsAgainstBroker(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.AdminListen = "127.0.0.1:0" // never collide with a broker on the default port
	cfg.Listen, cfg.Advertised = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir, cfg.ObjectStore = dir, filepath.Join(dir, "objects")
	srv, err := server.Start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	defer func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close broker: %v", err)
		}
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return")
		}
	}()
	brokers := "--brokers=" + srv.Addr().String()

	var out, errOut bytes.Buffer
	if code := run([]string{"topics", "create", "alerts", "--partitions", "2", brokers}, &out, &errOut); code != 0 {
		t.Fatalf("topics create: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run([]string{"topics", "list", "--json", brokers}, &out, &errOut); code != 0 {
		t.Fatalf("topics list: exit %d\n%s", code, errOut.String())
	}
	if !strings.Contains(out.String(), `"topic": "alerts"`) || !strings.Contains(out.String(), `"partitions": 2`) {
		t.Errorf("topics list --json:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"topics", "create", "alerts", brokers}, &out, &errOut); code != 1 {
		t.Errorf("duplicate create: exit %d, want 1", code)
	}
	if !strings.Contains(out.String(), "TOPIC_ALREADY_EXISTS") {
		t.Errorf("duplicate create output:\n%s", out.String())
	}
}

// TestBenchFlags: each benchmark is listed, has -h, and refuses stray
// arguments and bad values before any broker starts.
func TestBenchFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"bench", "help"}, &out, &errOut); code != 0 {
		t.Errorf("bench help: exit %d", code)
	}
	for _, kind := range []string{"ingest", "txn", "export", "compression", "table"} {
		if !strings.Contains(out.String(), "vigil bench "+kind) {
			t.Errorf("bench help lacks vigil bench %s:\n%s", kind, out.String())
		}
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"bench", "ingest", "--help"}, 0},
		{[]string{"bench", "ingest", "extra"}, 2},
		{[]string{"bench", "ingest", "--conns", "0"}, 1}, // refused before any broker starts
		{[]string{"bench", "txn", "--help"}, 0},
		{[]string{"bench", "txn", "extra"}, 2},
		// Zero is refused, not taken for the default.
		{[]string{"bench", "txn", "--rounds", "0"}, 1},
		{[]string{"bench", "txn", "--txn-duration", "0s"}, 1},
		{[]string{"bench", "export", "--help"}, 0},
		{[]string{"bench", "export", "--records", "0"}, 1},
		{[]string{"bench", "table", "--records", "0"}, 1},
		{[]string{"bench", "compression", "--help"}, 0},
		{[]string{"bench", "compression", "--rounds", "0"}, 1},
		{[]string{"bench", "compression", "--codec", "brotli"}, 1}, // refused before any broker starts
		{[]string{"bench", "compression", "--codec", "snappy", "--level", "3"}, 1},
	} {
		out.Reset()
		errOut.Reset()
		if code := run(tc.args, &out, &errOut); code != tc.code {
			t.Errorf("vigil %s: exit %d, want %d\n%s%s", strings.Join(tc.args, " "), code, tc.code, out.String(), errOut.String())
		}
	}
}
