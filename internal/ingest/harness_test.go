package ingest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/server/servertest"
)

// Tests run a real Vigil broker in-process on 127.0.0.1 and talk to the
// ingest listeners over real sockets; the OCSF topics are read back with
// franz-go.

// startBroker starts a broker over dir; listen "" picks a free port, else
// the broker comes back on a previous address (restart tests).
func startBroker(t *testing.T, dir, listen string) *servertest.Broker {
	t.Helper()
	cfg := servertest.Config(dir)
	if listen != "" {
		cfg.Listen, cfg.Advertised = listen, listen
	}
	return servertest.Start(t, cfg)
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
	svc, err := Start(context.Background(), cfg, servertest.Logger(t))
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
