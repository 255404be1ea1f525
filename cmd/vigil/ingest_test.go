package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/server"
)

func TestIngestFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	run(nil, &out, &errOut)
	if !strings.Contains(errOut.String(), "vigil ingest") {
		t.Errorf("usage lacks vigil ingest:\n%s", errOut.String())
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"ingest", "-h"}, 0, "-topic-dns-activity"},
		{[]string{"ingest", "-h"}, 0, "-syslog-framing"},
		{[]string{"ingest", "-h"}, 0, "-follow"},
		{[]string{"ingest", "--syslog-tls-cert", "c.pem"}, 2, "go together"},
		{[]string{"ingest", "extra"}, 2, "unexpected arguments"},
		{[]string{"ingest", "--log-level", "loud"}, 2, ""},
		{[]string{"ingest", "--no-such-flag"}, 2, "not defined"},
		{[]string{"ingest", "--follow"}, 2, "--follow goes with --file"},
		{[]string{"ingest", "--syslog-framing", "octet"}, 2, "want auto, octet-counted or newline"},
		{[]string{"ingest", "--file", "/nonexistent/auth.log", "--brokers", "127.0.0.1:1"}, 1, "no such file"},
	} {
		out.Reset()
		errOut.Reset()
		if code := run(tc.args, &out, &errOut); code != tc.code {
			t.Errorf("vigil %s: exit %d, want %d\n%s", strings.Join(tc.args, " "), code, tc.code, errOut.String())
		}
		if !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("vigil %s: output lacks %q:\n%s", strings.Join(tc.args, " "), tc.want, errOut.String())
		}
	}
}

// TestIngestFileOnce runs `vigil ingest --file` without --follow: it
// reads a copy of auth.log, with no listener of its own, and exits once
// the lines are events on the broker.
func TestIngestFileOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.AdminListen = "127.0.0.1:0"
	cfg.Listen, cfg.Advertised = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir, cfg.ObjectStore = dir, filepath.Join(dir, "objects")
	srv, err := server.Start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	go srv.Serve()
	defer srv.Close()
	log := filepath.Join(dir, "auth.log")
	if err := os.WriteFile(log, []byte("Nov 26 10:40:01 web-3 sshd[3101]: error: Corrupted MAC on input.\n"+
		"Nov 26 10:40:02 web-3 sshd[3102]: Failed password for root from 203.0.113.50 port 41000 ssh2\n"+
		"Nov 26 10:40:03 web-3 CRON[3200]: (root) CMD (run-parts /etc/cron.hourly)"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"ingest", "--brokers", srv.Addr().String(), "--file", log}, &out, &errOut)
	}()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("vigil ingest --file did not exit once the file was read\n%s", errOut.String())
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr().String()), kgo.ConsumeTopics("ocsf.base_event", "ocsf.authentication"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var names []string
	for len(names) < 3 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			var ev struct {
				Metadata struct {
					LogName  string `json:"log_name"`
					Provider string `json:"log_provider"`
				} `json:"metadata"`
			}
			_ = json.Unmarshal(r.Value, &ev)
			names = append(names, string(r.Key)+" "+ev.Metadata.Provider+" "+ev.Metadata.LogName)
		})
	}
	if len(names) != 3 || !strings.Contains(strings.Join(names, "|"), "web-3 CRON "+log) {
		t.Errorf("events %q, want the three lines keyed by web-3, their log the file", names)
	}
}
