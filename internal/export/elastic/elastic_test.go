package elastic_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"crypto/x509/pkix"

	"github.com/vigilhq/vigil/internal/certs/certstest"
	"github.com/vigilhq/vigil/internal/export"
	"github.com/vigilhq/vigil/internal/export/elastic"
	"github.com/vigilhq/vigil/internal/export/exporttest"
)

func testLog(t *testing.T) *slog.Logger {
	if os.Getenv("VIGIL_TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newJob(t *testing.T, addr, name, topic string, c elastic.Config, mod ...func(*export.JobConfig)) *export.Job {
	t.Helper()
	sink, err := elastic.New(c)
	if err != nil {
		t.Fatal(err)
	}
	cfg := export.JobConfig{Name: name, Brokers: []string{addr}, Topics: []string{topic}, MaxBatchRecords: 50,
		RetryInitial: 50 * time.Millisecond, RetryMax: 2 * time.Second, SessionTimeout: 6 * time.Second}
	for _, m := range mod {
		m(&cfg)
	}
	j, err := export.NewJob(cfg, sink, nil, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

// TestZincIdempotent delivers events of three classes over three days
// into a real ZincSearch: each lands in the index of its class and day,
// under its record's id; a second group delivering the same records
// again (a restart without offsets) leaves exactly one document per
// record.
func TestZincIdempotent(t *testing.T) {
	z := exporttest.StartZinc(t)
	addr := exporttest.StartBroker(t)
	const n = 300
	exporttest.Produce(t, addr, "ocsf.mixed", 3, 0, n) // i minutes apart: 2026-11-27 08:50 to 2026-11-27 13:49
	exporttest.Produce(t, addr, "ocsf.mixed", 3, 1440, 1440+n)
	c := elastic.Config{URL: z.ESURL(), Username: z.User, Password: z.Password}
	for round, group := range []string{"first", "again"} {
		j := newJob(t, addr, "zinc-"+group, "ocsf.mixed", c)
		r := exporttest.Run(t, j.Run)
		exporttest.Wait(t, time.Minute, "delivery", func() bool { return j.Stats().Delivered >= 2*n })
		exporttest.Wait(t, 20*time.Second, "commit", func() bool {
			c, e := exporttest.Committed(t, addr, "vigil-export-zinc-"+group, "ocsf.mixed")
			return c == e
		})
		if err := r.Stop(); err != nil {
			t.Fatal(err)
		}
		ids, err := z.WaitIDs("vigil-*", 2*n, 30*time.Second, 1500*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		docs := 0
		for id, ix := range ids {
			docs += len(ix)
			if len(ix) != 1 {
				t.Errorf("round %d: id %s in %v", round+1, id, ix)
			}
		}
		if docs != 2*n || len(ids) != 2*n {
			t.Fatalf("round %d: ZincSearch holds %d documents under %d ids; want %d, once each", round+1, docs, len(ids), 2*n)
		}
		// Index by class and day of the event's time.
		want := map[string]bool{"vigil-authentication-2026.11.27": true, "vigil-process_activity-2026.11.27": true,
			"vigil-detection_finding-2026.11.28": true, "vigil-authentication-2026.11.28": true}
		seen := map[string]bool{}
		for _, ix := range ids {
			seen[ix[0]] = true
		}
		for w := range want {
			if !seen[w] {
				t.Errorf("no document in index %s (indexes: %v)", w, seen)
			}
		}
	}
}

// TestItemErrorsDeadLettered answers some items 400 (mapper_parsing_
// exception) and some 429 once, through a proxy in front of ZincSearch:
// the 400s go to the dead-letter topic with their reason and origin, the
// 429s are sent again and land, and the offsets are committed.
func TestItemErrorsDeadLettered(t *testing.T) {
	z := exporttest.StartZinc(t)
	addr := exporttest.StartBroker(t)
	const n = 200
	exporttest.Produce(t, addr, "ocsf.items", 2, 0, n)
	dead := func(id string) bool { return strings.HasSuffix(id, "3") }
	p := &exporttest.BulkProxy{Upstream: z.ESURL(), User: z.User, Password: z.Password,
		ItemFault: func(id string, attempt int) (int, string) {
			switch {
			case dead(id):
				return 400, "mapper_parsing_exception"
			case strings.HasSuffix(id, "5") && attempt == 1:
				return 429, "es_rejected_execution_exception"
			}
			return 0, ""
		}}
	p.Start(t)
	j := newJob(t, addr, "items", "ocsf.items", elastic.Config{URL: p.URL()}, func(c *export.JobConfig) { c.DeadLetterTopic = "items.dead" })
	r := exporttest.Run(t, j.Run)
	exporttest.Wait(t, time.Minute, "commit", func() bool {
		c, e := exporttest.Committed(t, addr, "vigil-export-items", "ocsf.items")
		return c == e
	})
	r.Stop()
	st := j.Stats()
	dl := exporttest.ReadTopic(t, addr, "items.dead")
	var wantDead int
	for id := range p.Sends() {
		if dead(id) {
			t.Errorf("dead id %s was forwarded", id)
		}
	}
	for _, rec := range dl {
		h := map[string]string{}
		for _, x := range rec.Headers {
			h[x.Key] = string(x.Value)
		}
		if !dead(h[export.HeaderOrigin]) || !strings.Contains(h[export.HeaderReason], "400 mapper_parsing_exception") || h[export.HeaderSink] != "items" {
			t.Errorf("dead letter headers %v", h)
		}
		var part, off int
		if _, err := fmt.Sscanf(h[export.HeaderOrigin], "ocsf.items:%d:%d", &part, &off); err != nil || !strings.Contains(string(rec.Value), `"seq":`) {
			t.Errorf("origin %q: %v", h[export.HeaderOrigin], err)
		}
	}
	ids, err := z.WaitIDs("vigil-*", 1, 30*time.Second, 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	for id := range ids {
		if dead(id) {
			t.Errorf("dead id %s is in the index", id)
		}
	}
	wantDead = int(st.DeadLettered)
	if wantDead == 0 || len(dl) != wantDead || len(ids)+len(dl) != n {
		t.Fatalf("%d dead letters (job says %d), %d documents indexed; want them to add up to %d", len(dl), wantDead, len(ids), n)
	}
	if st.Retried == 0 || st.Throttled == 0 {
		t.Errorf("no 429 retried: %+v", st)
	}
}

// TestBackpressure answers the first request 429 with Retry-After: 1
// and two later ones 503, through a slow proxy: the job waits as told,
// nothing is lost, nothing is dead-lettered. The job has four lanes of
// requests; the others' requests in flight at the 429 are answered, and
// none of them sends another before the second is up: the lanes back
// off together.
func TestBackpressure(t *testing.T) {
	z := exporttest.StartZinc(t)
	addr := exporttest.StartBroker(t)
	const n = 300 // four lanes of 75: two requests each
	exporttest.Produce(t, addr, "ocsf.slow", 1, 0, n)
	var mu sync.Mutex
	at := map[int]time.Time{}
	p := &exporttest.BulkProxy{Upstream: z.ESURL(), User: z.User, Password: z.Password, Delay: 200 * time.Millisecond,
		RequestFault: func(k int) (int, string) {
			mu.Lock()
			at[k] = time.Now()
			mu.Unlock()
			switch k {
			case 1:
				return 429, "1"
			case 5, 6:
				return 503, ""
			}
			return 0, ""
		}}
	p.Start(t)
	j := newJob(t, addr, "slow", "ocsf.slow", elastic.Config{URL: p.URL()})
	r := exporttest.Run(t, j.Run)
	exporttest.Wait(t, time.Minute, "commit", func() bool {
		c, e := exporttest.Committed(t, addr, "vigil-export-slow", "ocsf.slow")
		return c == e
	})
	r.Stop()
	mu.Lock()
	for k, when := range at {
		// Requests 2 to 4 were sent with the first; every later one
		// waits out its Retry-After.
		if d := when.Sub(at[1]); k > 4 && d < 950*time.Millisecond {
			t.Errorf("request %d sent %v after a 429 with Retry-After: 1", k, d)
		}
	}
	mu.Unlock()
	st := j.Stats()
	if st.Delivered != n || st.DeadLettered != 0 || st.Throttled < 3 {
		t.Errorf("stats %+v; want %d delivered, none dead, 3 throttled", st, n)
	}
	if m := p.MaxInFlight(); m < 2 {
		t.Errorf("at most %d request in flight; want the lanes' requests at once", m)
	}
	ids, err := z.WaitIDs("vigil-*", n, 30*time.Second, time.Second)
	if err != nil || len(ids) != n {
		t.Fatalf("%d documents (%v), want %d", len(ids), err, n)
	}
}

// TestAuthAndTLS sends over TLS with a client certificate to a receiver
// that requires one and an API key; a wrong key is retried, never
// dead-lettered, and nothing is committed until the key is right.
func TestAuthAndTLS(t *testing.T) {
	z := exporttest.StartZinc(t)
	addr := exporttest.StartBroker(t)
	ca := certstest.NewCA(t, "export-test-ca")
	srv := ca.Server("127.0.0.1")
	cli := ca.Client(pkix.Name{CommonName: "vigil-export"})
	const n = 40
	exporttest.Produce(t, addr, "ocsf.tls", 1, 0, n)
	key := base64.StdEncoding.EncodeToString([]byte("id:secret"))
	p := &exporttest.BulkProxy{Upstream: z.ESURL(), User: z.User, Password: z.Password, RequireAuth: "ApiKey " + key}
	p.StartTLS(t, srv.Cert, srv.Key, ca.File)
	tlsc := export.TLS{CA: ca.File, Cert: cli.Cert, Key: cli.Key}

	bad := newJob(t, addr, "tls", "ocsf.tls", elastic.Config{URL: p.URL(), APIKey: "wrong", TLS: tlsc})
	r := exporttest.Run(t, bad.Run)
	exporttest.Wait(t, 30*time.Second, "a refused request", func() bool { return p.Requests() > 0 })
	time.Sleep(300 * time.Millisecond)
	r.Stop()
	if c, _ := exporttest.Committed(t, addr, "vigil-export-tls", "ocsf.tls"); c != 0 || bad.Stats().DeadLettered != 0 {
		t.Fatalf("with a wrong key: committed %d, dead-lettered %d; want neither", c, bad.Stats().DeadLettered)
	}

	keyFile := t.TempDir() + "/key"
	os.WriteFile(keyFile, []byte(key+"\n"), 0o600)
	good := newJob(t, addr, "tls", "ocsf.tls", elastic.Config{URL: p.URL(), APIKeyFile: keyFile, TLS: tlsc})
	r = exporttest.Run(t, good.Run)
	exporttest.Wait(t, time.Minute, "commit", func() bool {
		c, e := exporttest.Committed(t, addr, "vigil-export-tls", "ocsf.tls")
		return c == e
	})
	r.Stop()
	if good.Stats().Delivered != n {
		t.Fatalf("delivered %d of %d", good.Stats().Delivered, n)
	}
	// Without the client certificate the TLS handshake fails.
	if _, err := elastic.New(elastic.Config{URL: p.URL(), TLS: export.TLS{CA: ca.File, Cert: cli.Cert}}); err == nil {
		t.Error("a certificate without its key was accepted")
	}
}
