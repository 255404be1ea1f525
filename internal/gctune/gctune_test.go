package gctune

import (
	"context"
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"testing"
	"time"
)

func TestLimitFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct{ configured, live, want int64 }{
		{1024 * mib, 100 * mib, 1024 * mib}, // well below: the current limit
		{1024 * mib, 768 * mib, 1024 * mib}, // exactly three quarters
		{1024 * mib, 800 * mib, 1600 * mib}, // above: twice the live heap, in 64 MiB steps
		{1024 * mib, 801 * mib, 1664 * mib},
	} {
		if got := limitFor(c.configured, c.live); got != c.want {
			t.Errorf("limitFor(%d MiB, %d MiB) = %d MiB, want %d MiB", c.configured/mib, c.live/mib, got/mib, c.want/mib)
		}
	}
}

// TestRunSetsAndRestores: while it runs the collector is paced by the
// limit alone (GOGC off); after, Go's defaults are back.
func TestRunSetsAndRestores(t *testing.T) {
	tn := New(512<<20, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tn.Run(ctx, 10*time.Millisecond)
	}()
	time.Sleep(50 * time.Millisecond)
	limit := debug.SetMemoryLimit(-1) // -1 reads without changing
	pct := debug.SetGCPercent(-1)     // already -1 while running
	cancel()
	<-done
	if limit != 512<<20 || pct != -1 {
		t.Errorf("while running: memory limit %d, GOGC %d; want %d and off", limit, pct, 512<<20)
	}
	if limit, pct := debug.SetMemoryLimit(-1), debug.SetGCPercent(100); limit != math.MaxInt64 || pct != 100 {
		t.Errorf("after: memory limit %d, GOGC %d; want no limit and 100", limit, pct)
	}
}

// TestLimitNeverFalls: a limit raised for a large live heap stays when the
// live heap shrinks (returning memory and faulting it in again stalls).
func TestLimitNeverFalls(t *testing.T) {
	const mib = 1 << 20
	if got := limitFor(1280*mib, 100*mib); got != 1280*mib {
		t.Errorf("limitFor(1280 MiB, 100 MiB) = %d MiB, want 1280", got/mib)
	}
}
