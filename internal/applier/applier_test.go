package applier

import (
	"sync"
	"testing"
	"time"
)

// TestOrderAndLock: work runs in the order it was queued, under the
// lock, and Later called with the lock held (a callback run inline by
// the log) does not deadlock.
func TestOrderAndLock(t *testing.T) {
	var mu sync.Mutex
	a := New(&mu)
	stop := make(chan struct{})
	ran := make(chan struct{})
	go func() { a.Run(stop); close(ran) }()

	var got []int
	done := make(chan struct{})
	mu.Lock()
	for i := range 100 {
		a.Later(func() {
			if mu.TryLock() {
				t.Errorf("work %d ran without the lock", i)
				mu.Unlock()
			}
			got = append(got, i)
			if i == 99 {
				close(done)
			}
		})
	}
	mu.Unlock()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("queued work did not run")
	}
	mu.Lock()
	for i, v := range got {
		if v != i {
			t.Fatalf("work ran in the order %v", got)
		}
	}
	mu.Unlock()

	close(stop)
	<-ran
	// After Run returned, work still runs, under the lock.
	late := make(chan bool, 1)
	mu.Lock()
	a.Later(func() { late <- !mu.TryLock() })
	mu.Unlock()
	select {
	case locked := <-late:
		if !locked {
			t.Fatal("late work ran without the lock")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("work queued after Run returned did not run")
	}
}
