package storage

// Fencing of acknowledgements in cluster mode: a durable write is
// acknowledged only while this broker surely still leads its partition.

import (
	"time"

	"github.com/vigilhq/vigil/internal/partition"
)

// ackVerdict is what may be done with a durable write in cluster mode.
type ackVerdict int

const (
	ackYes     ackVerdict = iota // the lease is certainly held: acknowledge
	ackNo                        // the partition may have moved: refuse
	ackUnknown                   // the store cannot be reached: wait
)

// verdict decides a write made under sess to l: acknowledged only if the
// session is still the current one, its lease is certainly held and l was
// not fenced meanwhile.
func (c *clustered) verdict(sess *sessionBox, l *partition.Log) ackVerdict {
	if _, led := l.Leader(); (!led && !c.isReleasing(l)) || sess == nil || c.sess.Load() != sess {
		return ackNo
	}
	select {
	case <-sess.s.Done():
		return ackNo
	default:
	}
	if sess.s.Valid() {
		return ackYes
	}
	return ackUnknown
}

// isReleasing reports whether l is being handed over: its writes in
// flight are still acknowledged (and uploaded) under its epoch.
func (c *clustered) isReleasing(l *partition.Log) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.releasing[l]
}

// heldAck is a durable write waiting for the lease to be confirmed.
type heldAck struct {
	sess *sessionBox
	l    *partition.Log
	fin  func(error)
}

// ack finishes a durable write (fin(nil): acknowledge; fin(err):
// refuse), in WAL order. While etcd cannot be reached the lease may or
// may not live, so writes wait (producers see latency, not errors) until
// a renewal confirms it or the store says it is gone. Called on the WAL
// goroutine, which it never blocks.
func (c *clustered) ack(sess *sessionBox, l *partition.Log, fin func(error)) {
	c.heldMu.Lock()
	if len(c.held) == 0 && !c.heldBusy {
		switch c.verdict(sess, l) {
		case ackYes:
			c.heldMu.Unlock()
			fin(nil)
			return
		case ackNo:
			c.heldMu.Unlock()
			fin(partition.ErrNotLeader)
			return
		}
	}
	c.held = append(c.held, heldAck{sess, l, fin})
	if !c.heldBusy {
		c.heldBusy = true
		go c.releaseHeld()
	}
	c.heldMu.Unlock()
}

// releaseHeld finishes held writes in order as their verdicts become
// known.
func (c *clustered) releaseHeld() {
	for {
		c.heldMu.Lock()
		if len(c.held) == 0 {
			c.heldBusy = false
			c.heldMu.Unlock()
			return
		}
		h := c.held[0]
		v := c.verdict(h.sess, h.l)
		if v == ackUnknown {
			ch := h.sess.s.Changed()
			c.heldMu.Unlock()
			select {
			case <-ch:
			case <-time.After(time.Second): // a fence does not signal ch
			}
			continue
		}
		c.held = c.held[1:]
		c.heldMu.Unlock()
		if v == ackYes {
			h.fin(nil)
		} else {
			h.fin(partition.ErrNotLeader)
		}
	}
}
