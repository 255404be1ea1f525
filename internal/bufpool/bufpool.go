// Package bufpool recycles the byte buffers that fetch responses are
// assembled in. A fetch copies batches into one array per partition, and a
// forensic replay does that at hundreds of MB/s: allocated afresh, those
// arrays made the collector run several times a second, and every cycle
// stalled the tail path's produces and fetches with it.
package bufpool

import (
	"math/bits"
	"sync"
)

// Buffers from 2^minShift to 2^maxShift bytes are pooled, one pool per
// power of two; others are allocated and dropped as usual.
const (
	minShift = 12 // 4 KiB
	maxShift = 26 // 64 MiB
)

// Pool hands out buffers by capacity class. The zero value is ready.
type Pool struct {
	classes [maxShift - minShift + 1]sync.Pool
}

// class returns the index of the smallest class holding n bytes, or -1.
func class(n int) int {
	switch {
	case n <= 1<<minShift:
		return 0
	case n > 1<<maxShift:
		return -1
	}
	return bits.Len(uint(n-1)) - minShift
}

// Get returns an empty buffer with room for at least n bytes.
func (p *Pool) Get(n int) []byte {
	c := class(n)
	if c < 0 {
		return make([]byte, 0, n)
	}
	if b, ok := p.classes[c].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, 1<<(c+minShift))
}

// Put gives b back for reuse; the caller must not touch it afterwards.
// Buffers not made by Get (a capacity that is not a class size) are left
// to the collector.
func (p *Pool) Put(b []byte) {
	c := cap(b)
	if c < 1<<minShift || c > 1<<maxShift || c&(c-1) != 0 {
		return
	}
	b = b[:0]
	p.classes[bits.Len(uint(c))-1-minShift].Put(&b)
}
