package bench

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Latencies summarizes a set of latency samples.
type Latencies struct {
	N    int
	P50  time.Duration
	P99  time.Duration
	P999 time.Duration
	Max  time.Duration
}

func (l Latencies) String() string {
	if l.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p99 %s  p99.9 %s  max %s  (n=%d)",
		fmtDur(l.P50), fmtDur(l.P99), fmtDur(l.P999), fmtDur(l.Max), l.N)
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}

// percentile returns the nearest-rank p-th quantile (0 < p <= 1) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p*float64(len(sorted))+0.999999999) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}

// p99Parts splits samples, in the order they were taken, into n runs of
// (nearly) equal length and returns each run's p99: at a paced rate they
// are equal stretches of time, so they show whether a tail is one episode
// or spread over the whole run.
func p99Parts(samples []time.Duration, n int) []time.Duration {
	if n <= 0 || len(samples) < n {
		return nil
	}
	out := make([]time.Duration, n)
	for i := range n {
		out[i] = summarize(samples[i*len(samples)/n : (i+1)*len(samples)/n]).P99
	}
	return out
}

func fmtParts(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
	}
	return strings.Join(parts, " ") + " ms"
}

func summarize(samples []time.Duration) Latencies {
	if len(samples) == 0 {
		return Latencies{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	return Latencies{
		N:    len(s),
		P50:  percentile(s, 0.50),
		P99:  percentile(s, 0.99),
		P999: percentile(s, 0.999),
		Max:  s[len(s)-1],
	}
}

// recorder collects latency samples from concurrent callbacks.
type recorder struct {
	mu      sync.Mutex
	samples []time.Duration
	bytes   int64
	errs    int64
	firstEr error
	last    time.Time // time of the latest successful sample
}

// count is how many successful samples there are so far.
func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.samples)
}

// between returns a copy of samples [from, to).
func (r *recorder) between(from, to int) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.samples[from:min(to, len(r.samples))]...)
}

func (r *recorder) ok(d time.Duration, n int, at time.Time) {
	r.mu.Lock()
	r.samples = append(r.samples, d)
	r.bytes += int64(n)
	if at.After(r.last) {
		r.last = at
	}
	r.mu.Unlock()
}

// promise returns the produce callback that records the latency of a
// record sent at t0.
func (r *recorder) promise(t0 time.Time) func(*kgo.Record, error) {
	return func(rec *kgo.Record, err error) {
		now := time.Now()
		if err != nil {
			r.fail(err)
			return
		}
		r.ok(now.Sub(t0), len(rec.Value), now)
	}
}

// take moves o's figures into r, its samples only if keep (its errors
// always), and empties o for reuse. o's promises must all have run.
func (r *recorder) take(o *recorder, keep bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if keep {
		r.samples = append(r.samples, o.samples...)
		r.bytes += o.bytes
		if o.last.After(r.last) {
			r.last = o.last
		}
	}
	r.errs += o.errs
	if r.firstEr == nil {
		r.firstEr = o.firstEr
	}
	o.samples, o.bytes, o.errs, o.firstEr, o.last = o.samples[:0], 0, 0, nil, time.Time{}
}

func (r *recorder) fail(err error) {
	r.mu.Lock()
	r.errs++
	if r.firstEr == nil {
		r.firstEr = err
	}
	r.mu.Unlock()
}
