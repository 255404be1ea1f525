// Package applier runs a coordinator's durability callbacks in the order
// the log made them durable, under the coordinator's own lock.
//
// The group and transaction coordinators append to their logs while
// holding their mutex, so that the log's order is the order in which they
// decided things. The log calls back on its own goroutine, or inline when
// an append fails at once, so a callback must never take that mutex
// itself: it queues its work here, and one goroutine applies the queue in
// order, a batch at a time under the mutex.
package applier

import "sync"

// Applier is a queue of work and the goroutine that applies it (Run).
type Applier struct {
	mu *sync.Mutex // the coordinator's lock, held while queued work runs

	qmu  sync.Mutex
	q    []func()
	done bool // Run has returned: Later runs work itself
	wake chan struct{}
}

// New builds an applier whose work runs under mu.
func New(mu *sync.Mutex) *Applier {
	return &Applier{mu: mu, wake: make(chan struct{}, 1)}
}

// Run applies queued work until stop is closed. Work queued after that
// (the answers to appends in flight when the coordinator closed) still
// runs, on a goroutine of its own.
func (a *Applier) Run(stop <-chan struct{}) {
	for {
		a.qmu.Lock()
		q := a.q
		a.q = nil
		a.qmu.Unlock()
		if len(q) > 0 {
			a.mu.Lock()
			for _, fn := range q {
				fn()
			}
			a.mu.Unlock()
			continue
		}
		select {
		case <-a.wake:
		case <-stop:
			a.qmu.Lock()
			a.done = true
			q := a.q
			a.q = nil
			a.qmu.Unlock()
			a.runLate(q)
			return
		}
	}
}

// Later queues fn to run under the lock on Run's goroutine. It never
// blocks on the lock, so a durability callback may call it inline.
func (a *Applier) Later(fn func()) {
	a.qmu.Lock()
	if a.done {
		a.qmu.Unlock()
		a.runLate([]func(){fn})
		return
	}
	a.q = append(a.q, fn)
	a.qmu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// runLate runs work queued after Run returned. On its own goroutine,
// because the log may call back inline, with the lock held.
func (a *Applier) runLate(q []func()) {
	if len(q) == 0 {
		return
	}
	go func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, fn := range q {
			fn()
		}
	}()
}
