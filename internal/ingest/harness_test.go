package ingest

import (
	"context"
	"encoding/json"
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

// Tests run a real Vigil broker in-process on 127.0.0.1 and talk to the
// ingest listeners over real sockets; the OCSF topics are read back with
// franz-go.

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("VIGIL_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

type broker struct {
	t      *testing.T
	srv    *server.Server
	addr   string
	dir    string
	served chan error
	closed bool
}

// startBroker starts a broker over dir; listen "" picks a free port, else
// the broker comes back on a previous address (restart tests).
func startBroker(t *testing.T, dir, listen string) *broker {
	t.Helper()
	cfg := config.Default()
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	cfg.Listen, cfg.Advertised = listen, listen
	cfg.AdminListen = "127.0.0.1:0" // never collide with a broker on the default port
	cfg.DataDir = dir
	cfg.ObjectStore = filepath.Join(dir, "objects")
	cfg.WAL = "file"
	cfg.WALSync = false
	cfg.UploadInterval = 200 * time.Millisecond
	srv, err := server.Start(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	b := &broker{t: t, srv: srv, addr: srv.Addr().String(), dir: dir, served: make(chan error, 1)}
	go func() { b.served <- srv.Serve() }()
	t.Cleanup(func() {
		if !b.closed {
			b.close()
		}
	})
	return b
}

func (b *broker) close() {
	b.t.Helper()
	b.closed = true
	if err := b.srv.Close(); err != nil {
		b.t.Errorf("close broker: %v", err)
	}
	select {
	case <-b.served:
	case <-time.After(10 * time.Second):
		b.t.Errorf("broker Serve did not return")
	}
}

func startIngest(t *testing.T, brokerAddr string, mod func(*Config)) *Service {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Brokers = []string{brokerAddr}
	cfg.SyslogTCP, cfg.SyslogUDP, cfg.HTTP = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.HECToken = "s3cret"
	cfg.ShutdownTimeout = 20 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	svc, err := Start(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("start ingest: %v", err)
	}
	t.Cleanup(func() {
		if err := svc.Close(); err != nil {
			t.Errorf("close ingest: %v", err)
		}
		if n := svc.Stats().Lost.Load(); n != 0 {
			t.Errorf("%d accepted records lost", n)
		}
	})
	return svc
}

type gotRecord struct {
	Topic   string
	Key     string
	Headers map[string]string
	Value   map[string]any
}

// consume reads topics from the start until done says it has enough or
// the timeout passes.
func consume(t *testing.T, brokerAddr string, topics []string, timeout time.Duration, done func([]gotRecord) bool) []gotRecord {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var got []gotRecord
	for !done(got) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d records before the timeout, not enough: %+v", len(got), summarize(got))
		}
		fs.EachError(func(topic string, p int32, err error) {
			if ctx.Err() == nil {
				t.Logf("fetch %s/%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			g := gotRecord{Topic: r.Topic, Key: string(r.Key), Headers: map[string]string{}}
			for _, h := range r.Headers {
				g.Headers[h.Key] = string(h.Value)
			}
			if err := json.Unmarshal(r.Value, &g.Value); err != nil {
				t.Errorf("record in %s is not JSON: %v", r.Topic, err)
			}
			got = append(got, g)
		})
	}
	return got
}

func summarize(rs []gotRecord) []string {
	var out []string
	for _, r := range rs {
		s := r.Topic + " key=" + r.Key
		if reason, ok := r.Value["reason"].(string); ok {
			s += " reason=" + reason
		}
		out = append(out, s)
	}
	return out
}
