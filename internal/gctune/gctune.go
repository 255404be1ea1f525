// Package gctune sets how the Go collector paces a broker process: the
// heap may grow to a fixed limit before it is collected, instead of being
// collected each time it doubles.
//
// A broker's garbage is mostly the request frames of its produce traffic,
// hundreds of MB/s, while its live heap is small. At Go's default (GOGC
// 100) that meant a collection every 230-350 ms in the produce benchmark,
// and every collection held goroutines back for 10-35 ms (a mark assist on
// one core, the mark worker on the other): the benchmark's paced p99 was
// 5.3-11.5 ms. With the heap allowed to grow to 1 GiB (GOGC off, a memory
// limit) it was 3.0-5.7 ms.
//
// A fixed limit is only good while the live heap stays well below it: near
// it the collector would run back to back. So Tuner watches the live heap
// and, once it passes three quarters of the limit, raises the limit to
// twice the live heap. It never lowers it again: below a lowered limit the
// runtime returns memory to the kernel (synchronously, in allocating
// goroutines, while over the limit), and faulting it in again when the
// heap grew back stalled the broker for 50-150 ms on the development
// machine. For the same reason it never hands the pacing back to GOGC.
package gctune

import (
	"context"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Tuner paces the process's collector. Only one should run per process:
// the settings it changes are the process's.
type Tuner struct {
	limit int64 // configured
	log   *slog.Logger
	live  []metrics.Sample
	set   int64 // the memory limit in force
}

// New returns a Tuner for a heap limit in bytes. Run applies it.
func New(limit int64, log *slog.Logger) *Tuner {
	return &Tuner{limit: limit, log: log, live: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
}

// Overridden reports whether the operator set GOGC or GOMEMLIMIT, which a
// Tuner must then leave alone.
func Overridden() bool {
	return os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != ""
}

// Run applies the limit and follows the live heap every interval until
// ctx ends, then restores Go's defaults.
func (t *Tuner) Run(ctx context.Context, interval time.Duration) {
	debug.SetGCPercent(-1)
	t.apply(t.limit)
	defer func() {
		debug.SetMemoryLimit(math.MaxInt64)
		debug.SetGCPercent(100)
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			metrics.Read(t.live)
			if t.live[0].Value.Kind() == metrics.KindUint64 {
				t.apply(limitFor(t.set, int64(t.live[0].Value.Uint64())))
			}
		}
	}
}

// limitFor is the memory limit for a live heap: the current one while the
// live heap is under three quarters of it, else twice the live heap,
// rounded up to 64 MiB.
func limitFor(current, live int64) int64 {
	const step = 64 << 20
	if live <= current/4*3 {
		return current
	}
	return (2*live + step - 1) / step * step
}

func (t *Tuner) apply(limit int64) {
	if limit == t.set {
		return
	}
	if t.set != 0 {
		t.log.Info("live heap above three quarters of the GC heap limit: raising the limit to twice the live heap",
			"limit_bytes", limit, "configured_bytes", t.limit)
	}
	t.set = limit
	debug.SetMemoryLimit(limit)
}
