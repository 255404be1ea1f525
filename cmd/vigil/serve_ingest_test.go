package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/server"
)

// TestServeWithIngest runs the ingest service the way `vigil serve
// --ingest-syslog-tcp` does, beside a real broker, and sends it an sshd
// failure over TCP syslog.
func TestServeWithIngest(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.AdminListen = "127.0.0.1:0"
	cfg.Listen, cfg.Advertised = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir, cfg.ObjectStore = dir, filepath.Join(dir, "objects")
	cfg.IngestSyslogTCP = "127.0.0.1:0"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := server.Start(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	in, err := startIngest(ctx, cfg, srv.Advertised(), srv.Metrics().Registerer(), log)
	if err != nil || in == nil {
		t.Fatalf("startIngest: %v, %v", in, err)
	}
	defer in.Close()

	conn, err := net.Dial("tcp", in.SyslogTCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "<38>Nov 26 10:15:09 web-1 sshd[2240]: Failed password for invalid user admin from 203.0.113.9 port 40024 ssh2\n")
	conn.Close()

	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Advertised()), kgo.ConsumeTopics("ocsf.authentication"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("no event on ocsf.authentication")
		}
		var ev map[string]any
		var key string
		fs.EachRecord(func(r *kgo.Record) {
			if ev == nil {
				json.Unmarshal(r.Value, &ev)
				key = string(r.Key)
			}
		})
		if ev == nil {
			continue
		}
		if ev["class_uid"] != float64(3002) || key != "web-1" {
			t.Fatalf("event %v with key %q, want class 3002 keyed by web-1", ev, key)
		}
		// The in-process service's counters are on the broker's /metrics
		// (the acknowledgement is counted just after the record lands).
		for {
			resp, err := http.Get("http://" + srv.AdminAddr() + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), "vigil_ingest_produced_total 1") {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("broker /metrics lacks vigil_ingest_produced_total 1")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func TestStartIngestOff(t *testing.T) {
	in, err := startIngest(context.Background(), config.Default(), "127.0.0.1:1", prometheus.NewRegistry(), slog.Default())
	if in != nil || err != nil {
		t.Fatalf("startIngest without --ingest-* = %v, %v; want nil, nil", in, err)
	}
}
