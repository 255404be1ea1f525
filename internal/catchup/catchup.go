// Package catchup paces catch-up reads, the fetches served from segment
// objects (a forensic replay, a consumer far behind), so that they use the
// capacity the tail path leaves and no more.
//
// On a small machine a replay served as fast as it is asked for takes the
// CPU and the disk that live produces need: with two cores, the incident
// benchmark saw WAL group commits go from about 1 ms to 10-28 ms and the
// detection group's p99 go up ten- to thirty-fold. A Governor watches the
// tail path's health and sets the catch-up byte rate by additive increase
// and multiplicative decrease, as TCP does with a congestion window:
// unhealthy intervals halve the rate, healthy ones raise it a step, up to
// the ceiling.
package catchup

import (
	"context"
	"math"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Governor. Zero values take the defaults noted.
type Options struct {
	MinRate  float64       // bytes/s never throttled below, 8 MiB/s
	MaxRate  float64       // ceiling, 0: none beyond what increases reach
	Interval time.Duration // between adjustments, 100 ms

	// The tail path is unhealthy in an interval whose slowest WAL group
	// commit took longer than CommitLimit (5 ms), or in which goroutines
	// waited longer than SchedLimit (2 ms, at the 99th percentile) for a
	// CPU.
	CommitLimit time.Duration
	SchedLimit  time.Duration
}

// Governor holds the catch-up rate and a token bucket over it.
type Governor struct {
	o Options

	slowest atomic.Int64 // nanoseconds, the interval's slowest commit
	active  atomic.Bool  // catch-up reads happened this interval
	waiting atomic.Int32 // readers held back by the rate now

	mu     sync.Mutex
	rate   float64 // bytes/s
	tokens float64 // may go negative: a debt later readers wait out
	last   time.Time

	sched    []metrics.Sample
	prevHist *metrics.Float64Histogram
}

// New returns a Governor starting at the minimum rate; run Run to let it
// adapt.
func New(o Options) *Governor {
	if o.MinRate <= 0 {
		o.MinRate = 8 << 20
	}
	if o.Interval <= 0 {
		o.Interval = 100 * time.Millisecond
	}
	if o.CommitLimit <= 0 {
		o.CommitLimit = 5 * time.Millisecond
	}
	if o.SchedLimit <= 0 {
		o.SchedLimit = 2 * time.Millisecond
	}
	if o.MaxRate > 0 && o.MaxRate < o.MinRate {
		o.MaxRate = o.MinRate
	}
	return &Governor{o: o, rate: o.MinRate, last: time.Now(),
		sched: []metrics.Sample{{Name: "/sched/latencies:seconds"}}}
}

// Commit reports one WAL group commit's duration.
func (g *Governor) Commit(d time.Duration) {
	for {
		cur := g.slowest.Load()
		if int64(d) <= cur || g.slowest.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

// Rate returns the catch-up rate now, in bytes/s.
func (g *Governor) Rate() float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.rate
}

// Wait takes n bytes from the bucket, waiting until the rate allows them
// (or ctx ends). A fetch calls it before answering with n bytes read from
// objects, so a reader asking for more only gets it at the rate.
func (g *Governor) Wait(ctx context.Context, n int) error {
	g.active.Store(true)
	g.mu.Lock()
	now := time.Now()
	// At most a second's worth saved up: an idle replay may not burst.
	g.tokens = math.Min(g.tokens+now.Sub(g.last).Seconds()*g.rate, g.rate)
	g.last = now
	g.tokens -= float64(n)
	wait := time.Duration(-g.tokens / g.rate * float64(time.Second))
	g.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run adjusts the rate every interval until ctx ends.
func (g *Governor) Run(ctx context.Context) {
	t := time.NewTicker(g.o.Interval)
	defer t.Stop()
	g.schedP99() // the first interval starts now
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.adjust(time.Duration(g.slowest.Swap(0)), g.schedP99())
		}
	}
}

// adjust applies one interval's health to the rate.
func (g *Governor) adjust(slowestCommit, schedP99 time.Duration) {
	// A reader held back for longer than the interval still wants more.
	active := g.active.Swap(false) || g.waiting.Load() > 0
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case slowestCommit > g.o.CommitLimit || schedP99 > g.o.SchedLimit:
		g.rate = math.Max(g.rate/2, g.o.MinRate)
	case active:
		// Only a rate in use is raised: an idle one says nothing about
		// what the tail can spare.
		g.rate += g.o.MinRate
		if g.o.MaxRate > 0 {
			g.rate = math.Min(g.rate, g.o.MaxRate)
		}
	}
}

// schedP99 returns the 99th percentile of how long goroutines waited to
// run since the last call.
func (g *Governor) schedP99() time.Duration {
	metrics.Read(g.sched)
	if g.sched[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0
	}
	h := g.sched[0].Value.Float64Histogram()
	prev := g.prevHist
	cur := &metrics.Float64Histogram{Counts: append([]uint64(nil), h.Counts...), Buckets: h.Buckets}
	g.prevHist = cur
	if prev == nil || len(prev.Counts) != len(cur.Counts) {
		return 0
	}
	var total uint64
	for i := range cur.Counts {
		total += cur.Counts[i] - prev.Counts[i]
	}
	if total == 0 {
		return 0
	}
	want := total - total/100 // the sample at the 99th percentile
	var seen uint64
	for i := range cur.Counts {
		seen += cur.Counts[i] - prev.Counts[i]
		if seen >= want {
			// Bucket i spans Buckets[i] to Buckets[i+1]; its lower edge
			// is what is known to have been waited.
			if lo := cur.Buckets[i]; lo > 0 && !math.IsInf(lo, 0) {
				return time.Duration(lo * float64(time.Second))
			}
			return 0
		}
	}
	return 0
}
