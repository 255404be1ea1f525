package catchup

import "runtime"

// Priority runs catch-up work (encoding and sending an answer read from
// segment objects) on a thread of its own at a lower CPU priority, so that
// the kernel runs the tail path's threads first when both want a CPU.
// Pacing bounds how much catch-up work there is; this decides who waits
// when it runs. In seven interleaved pairs of incident benchmark runs on
// two cores, the detection group's p99 with a replay was 1.22-1.85 x its
// p99 without (median 1.53) at nice 0 and 1.15-1.48 x (median 1.37) at
// nice 19, and the replay was as fast or faster.
//
// A thread at a high nice value that holds one of the Go scheduler's Ps
// can keep it from other goroutines while the kernel runs something else,
// so at most GOMAXPROCS-1 threads (and at least one) are lowered at once;
// work beyond that runs as it is, never waits.
type Priority struct {
	nice  int
	slots chan struct{}
}

// NewPriority returns a Priority that lowers work to nice (1-19); 0 or
// less returns nil, whose Do runs work as it is.
func NewPriority(nice int) *Priority {
	if nice <= 0 {
		return nil
	}
	return &Priority{nice: min(nice, 19), slots: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1))}
}

// Do runs fn, at the lower priority when a slot is free.
func (p *Priority) Do(fn func()) {
	if p == nil {
		fn()
		return
	}
	select {
	case p.slots <- struct{}{}:
		defer func() { <-p.slots }()
	default:
		fn()
		return
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	restore, ok := lowerThread(p.nice)
	if ok {
		defer restore()
	}
	fn()
}
