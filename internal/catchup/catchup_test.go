package catchup

import (
	"context"
	"testing"
	"time"
)

// TestAdjust: unhealthy intervals halve the rate down to the floor;
// healthy ones raise it only while catch-up reads want more, up to the
// ceiling.
func TestAdjust(t *testing.T) {
	g := New(Options{MinRate: 10, MaxRate: 35, CommitLimit: 5 * time.Millisecond, SchedLimit: 2 * time.Millisecond})
	if r := g.Rate(); r != 10 {
		t.Fatalf("starting rate %v, want the minimum 10", r)
	}
	g.adjust(0, 0)
	if r := g.Rate(); r != 10 {
		t.Fatalf("rate %v after an idle interval, want 10 (nothing asked for more)", r)
	}
	for range 5 {
		g.active.Store(true)
		g.adjust(time.Millisecond, time.Millisecond)
	}
	if r := g.Rate(); r != 35 {
		t.Fatalf("rate %v after five healthy busy intervals, want the ceiling 35", r)
	}
	g.adjust(6*time.Millisecond, 0) // a slow commit
	if r := g.Rate(); r != 17.5 {
		t.Fatalf("rate %v after a slow commit, want half of 35", r)
	}
	g.adjust(0, 3*time.Millisecond) // slow scheduling
	if r := g.Rate(); r != 10 {
		t.Fatalf("rate %v after slow scheduling, want the floor 10", r)
	}
}

// TestWaitPaces: taking more than the bucket holds waits for the debt at
// the current rate, and a cancelled context ends the wait.
func TestWaitPaces(t *testing.T) {
	g := New(Options{MinRate: 1 << 20})
	ctx := context.Background()
	start := time.Now()
	// The bucket starts empty: 256 KiB at 1 MiB/s is a 250 ms debt.
	if err := g.Wait(ctx, 256<<10); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Fatalf("256 KiB at 1 MiB/s returned after %v, want about 250 ms", el)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := g.Wait(cctx, 10<<20); err == nil {
		t.Fatal("a 10 s debt returned without waiting out the cancelled context")
	}
}

// TestCommitKeepsSlowest: the interval's health is its slowest commit.
func TestCommitKeepsSlowest(t *testing.T) {
	g := New(Options{})
	for _, d := range []time.Duration{time.Millisecond, 7 * time.Millisecond, 2 * time.Millisecond} {
		g.Commit(d)
	}
	if got := time.Duration(g.slowest.Load()); got != 7*time.Millisecond {
		t.Fatalf("slowest %v, want 7ms", got)
	}
}
