package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/export"
	"github.com/vigilhq/vigil/internal/export/exporttest"
	"github.com/vigilhq/vigil/internal/export/webhook"
)

func testLog() *slog.Logger {
	if os.Getenv("VIGIL_TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// receiver is a webhook endpoint: it checks each body's HMAC with its
// secret (401 when wrong), keeps what it accepted by delivery id, and
// answers the first request 429 with Retry-After: 1.
type receiver struct {
	secret []byte
	mu     sync.Mutex
	got    map[string][]byte // delivery id -> body
	times  []time.Time
	bad    int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.times = append(rc.times, time.Now())
	if len(rc.times) == 1 {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "slow down", http.StatusTooManyRequests)
		return
	}
	sig := r.Header.Get(webhook.DefaultSignatureHeader)
	// The receiver's own check, as a receiver written from the docs
	// would do it (not the sink's Sign).
	mac := hmac.New(sha256.New, rc.secret)
	mac.Write(body)
	if len(rc.secret) > 0 && !hmac.Equal([]byte(sig), []byte("sha256="+hex.EncodeToString(mac.Sum(nil)))) {
		rc.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if r.Header.Get("Content-Type") != "application/json" || !json.Valid(body) {
		http.Error(w, "not JSON", http.StatusBadRequest)
		return
	}
	rc.got[r.Header.Get(webhook.HeaderDelivery)] = body
}

func (rc *receiver) bodies() map[string][]byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range rc.got {
		out[k] = v
	}
	return out
}

func run(t *testing.T, format string, n int, secret string, sinkSecret string) (*receiver, *export.Job, time.Duration) {
	addr := exporttest.StartBroker(t)
	topic := "alerts." + format
	exporttest.Produce(t, addr, topic, 1, 0, n)
	rc := &receiver{secret: []byte(secret), got: map[string][]byte{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	sink, err := webhook.New(webhook.Config{URL: srv.URL, Format: format, Secret: sinkSecret, Rate: 20})
	if err != nil {
		t.Fatal(err)
	}
	j, err := export.NewJob(export.JobConfig{Name: "hook-" + format, Brokers: []string{addr}, Topics: []string{topic},
		RetryInitial: 50 * time.Millisecond, RetryMax: 2 * time.Second, SessionTimeout: 6 * time.Second, DeadLetterTopic: "hook.dead"}, sink, nil, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	start := time.Now()
	r := exporttest.Run(t, j.Run)
	exporttest.Wait(t, 30*time.Second, "every record accounted for", func() bool {
		st := j.Stats()
		return st.Delivered+st.DeadLettered >= int64(n)
	})
	el := time.Since(start)
	r.Stop()
	return rc, j, el
}

// TestSignedAndRateLimited: every body carries a valid HMAC, the first
// 429's Retry-After is waited out, and 30 posts at 20/s take at least
// 1.4 s.
func TestSignedAndRateLimited(t *testing.T) {
	const n = 30
	rc, j, el := run(t, webhook.FormatRaw, n, "s3cr3t-webhook-key", "s3cr3t-webhook-key")
	got := rc.bodies()
	if len(got) != n || rc.bad != 0 || j.Stats().DeadLettered != 0 {
		t.Fatalf("%d bodies accepted, %d bad signatures, %d dead-lettered; want %d, 0, 0", len(got), rc.bad, j.Stats().DeadLettered, n)
	}
	for id, b := range got {
		var ev map[string]any
		json.Unmarshal(b, &ev)
		if !strings.HasPrefix(id, "alerts.raw:0:") || ev["seq"] == nil {
			t.Errorf("delivery %s: %s", id, b)
		}
	}
	if d := rc.times[1].Sub(rc.times[0]); d < 950*time.Millisecond {
		t.Errorf("retried %v after a 429 with Retry-After: 1", d)
	}
	if el < 1400*time.Millisecond {
		t.Errorf("%d posts at 20/s took %v", n, el)
	}
}

// TestWrongSecretDeadLetters: a receiver that refuses the signature (401
// per item) gets nothing; the records go to the dead-letter topic.
func TestWrongSecretDeadLetters(t *testing.T) {
	rc, j, _ := run(t, webhook.FormatRaw, 5, "the-receivers-key", "another-key")
	if len(rc.bodies()) != 0 || rc.bad != 5 || j.Stats().DeadLettered != 5 {
		t.Fatalf("accepted %d, bad signatures %d, dead-lettered %d; want 0, 5, 5", len(rc.bodies()), rc.bad, j.Stats().DeadLettered)
	}
}

// TestSlackAndTeamsShapes checks the message shapes Slack's incoming
// webhooks and Teams' Workflows webhooks take, for findings.
func TestSlackAndTeamsShapes(t *testing.T) {
	rc, _, _ := run(t, webhook.FormatSlack, 6, "", "")
	for id, b := range rc.bodies() {
		var m struct {
			Text   string `json:"text"`
			Blocks []struct {
				Type string `json:"type"`
				Text struct {
					Type, Text string
				} `json:"text"`
				Fields []struct{ Type, Text string } `json:"fields"`
			} `json:"blocks"`
		}
		if err := json.Unmarshal(b, &m); err != nil || len(m.Blocks) < 2 || m.Blocks[0].Type != "header" || m.Blocks[0].Text.Type != "plain_text" || m.Text == "" {
			t.Fatalf("slack %s: %v %s", id, err, b)
		}
		if strings.HasSuffix(id, ":2") || strings.HasSuffix(id, ":5") { // class 2004: a finding
			if !strings.HasPrefix(m.Blocks[0].Text.Text, "Rule ") || !strings.Contains(string(b), `*Host*\nws-`) {
				t.Errorf("slack finding %s: %s", id, b)
			}
		}
	}
	rc, _, _ = run(t, webhook.FormatTeams, 6, "", "")
	for id, b := range rc.bodies() {
		var m struct {
			Type        string `json:"type"`
			Attachments []struct {
				ContentType string `json:"contentType"`
				Content     struct {
					Type    string `json:"type"`
					Version string `json:"version"`
					Body    []struct {
						Type  string                          `json:"type"`
						Text  string                          `json:"text"`
						Facts []struct{ Title, Value string } `json:"facts"`
					} `json:"body"`
				} `json:"content"`
			} `json:"attachments"`
		}
		if err := json.Unmarshal(b, &m); err != nil || m.Type != "message" || len(m.Attachments) != 1 {
			t.Fatalf("teams %s: %v %s", id, err, b)
		}
		a := m.Attachments[0]
		if a.ContentType != "application/vnd.microsoft.card.adaptive" || a.Content.Type != "AdaptiveCard" || len(a.Content.Body) != 2 ||
			a.Content.Body[0].Type != "TextBlock" || a.Content.Body[1].Type != "FactSet" || len(a.Content.Body[1].Facts) == 0 {
			t.Errorf("teams %s: %s", id, b)
		}
	}
}
