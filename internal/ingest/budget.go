package ingest

import (
	"context"
	"sync"
)

// Budget bounds the bytes of accepted input that are not yet written to
// the broker. Input is accepted only after its bytes are reserved here and
// released only once the broker has acknowledged it (or it has been
// written to the dead-letter topic), so memory stays bounded while the
// broker is slow or down, and nothing accepted is given up.
type Budget struct {
	mu    sync.Mutex
	cond  *sync.Cond
	used  int64
	limit int64
}

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget {
	b := &Budget{limit: limit}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// fits reports whether n more bytes fit. A reservation larger than the
// whole budget is allowed when nothing else is held, or it could never be
// accepted; the input size limits keep such reservations bounded.
func (b *Budget) fits(n int64) bool {
	return b.used+n <= b.limit || b.used == 0
}

// TryAcquire reserves n bytes if they fit now (HTTP, UDP: callers that
// refuse or count rather than wait).
func (b *Budget) TryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.fits(n) {
		return false
	}
	b.used += n
	return true
}

// Acquire waits until n bytes fit (TCP syslog: while it waits the
// connection is not read, so TCP flow control pushes back on the sender).
func (b *Budget) Acquire(ctx context.Context, n int64) error {
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for !b.fits(n) {
		if err := ctx.Err(); err != nil {
			return err
		}
		b.cond.Wait()
	}
	b.used += n
	return nil
}

// Release returns n bytes.
func (b *Budget) Release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
	b.cond.Broadcast()
}

// Used returns the bytes held.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
