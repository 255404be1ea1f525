package audit

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/broker"
)

// memAppender keeps what the trail writes, a log per partition.
type memAppender struct {
	mu    sync.Mutex
	recs  []batch.KV // every record, all partitions
	parts map[int32][]batch.KV
}

func (a *memAppender) Append(p int32, recs []batch.KV, done func(int64, error)) {
	a.mu.Lock()
	if a.parts == nil {
		a.parts = map[int32][]batch.KV{}
	}
	first := int64(len(a.parts[p]))
	a.recs = append(a.recs, recs...)
	a.parts[p] = append(a.parts[p], recs...)
	a.mu.Unlock()
	done(first, nil)
}

func (a *memAppender) End(p int32) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return int64(len(a.parts[p])), nil
}

func (a *memAppender) Last(_ context.Context, p int32) (int64, batch.KV, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := len(a.parts[p])
	if n == 0 {
		return 0, batch.KV{}, false, nil
	}
	return int64(n - 1), a.parts[p][n-1], true, nil
}

// TestRateLimit: at a rate of 50/s and a burst of 100, 600 failed logins
// within one frozen instant are 100 events one by one and one summary
// counting the other 500; one second later the bucket has 50 tokens
// again. Nothing is lost: the events and the summaries' counts add up.
func TestRateLimit(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	out := &memAppender{}
	tr := New(Config{Rate: 50, Burst: 100, Flush: 10 * time.Millisecond, Now: clock}, out,
		func() []int32 { return []int32{0} }, 1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	fail := broker.AuthEvent{Principal: "User:mallory", Mechanism: "SCRAM-SHA-256", Listener: "SASL_PLAINTEXT", Remote: "10.0.0.9:4242", Reason: "bad proof"}
	for range 600 {
		tr.Authentication(fail)
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	for range 60 {
		tr.Authentication(fail)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.Run(ctx); close(done) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done

	single, summaries, counted := 0, 0, 0
	for _, r := range out.recs {
		var e struct {
			API struct {
				Operation string `json:"operation"`
			} `json:"api"`
			Count int `json:"count"`
		}
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Fatalf("audit record %s: %v", r.Value, err)
		}
		if e.API.Operation == "audit summary" {
			summaries++
			counted += e.Count
		} else {
			single++
		}
	}
	// 100 (the burst) + 50 (a second's tokens) one by one; 500 + 10 counted.
	if single != 150 || counted != 510 || summaries == 0 {
		t.Fatalf("%d events one by one, %d summaries counting %d; want 150 and 510", single, summaries, counted)
	}
}
