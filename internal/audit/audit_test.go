package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/auditchain"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/broker"
)

// memAppender keeps what the trail writes, a log per partition, as the
// storage engine's internal topic does: offsets are handed out when an
// append is called, and readable (End, Last) once it completes, which
// with async happens later, on another goroutine. fail makes an append
// fail after writing keep of its records.
type memAppender struct {
	async bool
	fail  func(p int32, call int) (keep int, err error)

	mu       sync.Mutex
	recs     []batch.KV // every record, all partitions
	parts    map[int32][]batch.KV
	inflight map[int32]bool
	calls    int
	lost     int    // records of failed appends not written
	overlap  string // an append called while another to its partition was in flight
}

func (a *memAppender) Append(p int32, recs []batch.KV, done func(int64, error)) {
	a.mu.Lock()
	if a.parts == nil {
		a.parts, a.inflight = map[int32][]batch.KV{}, map[int32]bool{}
	}
	if a.inflight[p] && a.overlap == "" {
		a.overlap = fmt.Sprintf("two appends to partition %d at once", p)
	}
	a.calls++
	keep, err := len(recs), error(nil)
	if a.fail != nil {
		if k, e := a.fail(p, a.calls); e != nil {
			keep, err = k, e
		}
	}
	first := int64(len(a.parts[p]))
	a.recs = append(a.recs, recs[:keep]...)
	a.parts[p] = append(a.parts[p], recs[:keep]...)
	a.lost += len(recs) - keep
	a.inflight[p] = true
	a.mu.Unlock()
	complete := func() {
		a.mu.Lock()
		a.inflight[p] = false
		a.mu.Unlock()
		done(first, err)
	}
	if a.async {
		go func() { time.Sleep(time.Millisecond); complete() }()
		return
	}
	complete()
}

func (a *memAppender) End(p int32) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inflight[p] {
		return 0, errors.New("in flight")
	}
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

// TestChainThroughFailuresAndMoves: two brokers' trails take turns
// leading the audit partitions, their appends completing later on
// another goroutine, one append refused whole and one failing after
// writing part of its records; every partition's records still form
// one chain from its first record, every event not lost is in the log,
// and no two appends to a partition were in flight at once.
func TestChainThroughFailuresAndMoves(t *testing.T) {
	refused, walFailed := errors.New("refused"), errors.New("WAL failed")
	out := &memAppender{async: true, fail: func(p int32, call int) (int, error) {
		switch call {
		case 3:
			return 0, refused
		case 7:
			return 2, walFailed
		}
		return 0, nil
	}}
	var aLeads atomic.Bool
	aLeads.Store(true)
	both := []int32{0, 1}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := Config{Rate: 1e6, Burst: 1e6, Flush: 2 * time.Millisecond}
	a := New(cfg, out, func() []int32 {
		if aLeads.Load() {
			return both
		}
		return nil
	}, 1, quiet)
	b := New(cfg, out, func() []int32 {
		if !aLeads.Load() {
			return both
		}
		return nil
	}, 2, quiet)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, tr := range []*Trail{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); tr.Run(ctx) }()
	}
	sent := 0
	// settled waits until the events sent are in the log or lost.
	settled := func() {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			out.mu.Lock()
			n := len(out.recs) + out.lost
			out.mu.Unlock()
			if n == sent {
				return
			}
		}
		t.Fatalf("the %d events sent were not written", sent)
	}
	for round := range 24 {
		if round%4 == 3 {
			settled()
			aLeads.Store(!aLeads.Load()) // leadership moves
		}
		tr := b
		if aLeads.Load() {
			tr = a
		}
		for range 5 {
			tr.Admin(broker.AdminEvent{Principal: "User:admin", Operation: "CreateTopics", Resource: fmt.Sprintf("topic t%d", sent)})
			sent++
		}
		time.Sleep(3 * time.Millisecond)
	}
	settled()
	cancel()
	wg.Wait()

	out.mu.Lock()
	defer out.mu.Unlock()
	if out.overlap != "" {
		t.Error(out.overlap)
	}
	if out.calls < 8 || out.lost == 0 {
		t.Fatalf("%d appends, %d records lost: the failures were not exercised", out.calls, out.lost)
	}
	written := 0
	for p, recs := range out.parts {
		v := auditchain.NewPartition(p, auditchain.NewHasher(nil))
		for i, r := range recs {
			v.Add(int64(i), r.Key, r.Value, r.Headers)
		}
		if !v.OK() || v.Start != 0 || v.Linked != int64(len(recs)) {
			t.Errorf("partition %d: %d records, chain from %d, %d breaks: %+v", p, len(recs), v.Start, v.BreakCount, v.Breaks)
		}
		written += len(recs)
	}
	if written+out.lost != sent {
		t.Errorf("%d events sent, %d written and %d lost in failed appends", sent, written, out.lost)
	}
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
