package broker

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// connLimiter holds connections refused by their address's
// connection_creation_rate (KIP-612) until their throttle time has passed,
// then closes them, as Kafka's acceptor does: the client sees its
// connection accepted, then closed without an answer, so an agent
// reconnecting in a loop is slowed to the rate instead of spinning.
type connLimiter struct {
	mu     sync.Mutex
	held   map[net.Conn]*time.Timer
	closed bool // the broker is closing: connections are closed at once

	throttled atomic.Int64 // connections refused, for the metric
	// Refusals are logged at most once per connLogEvery, with the count
	// since the last line, so a storm does not flood the log.
	lastLog  atomic.Int64 // Unix ns
	sinceLog atomic.Int64
}

const connLogEvery = 10 * time.Second

// admit meters a new connection against the broker's
// max.connection.creation.rate, waiting (and so holding this listener's
// accepting) while over it, as Kafka's acceptor does, then against its
// address's quota; false means it was refused and is now held for
// closing.
func (b *Broker) admit(nc net.Conn) bool {
	if b.connRate != nil {
		if d := b.connRate.Record(1, time.Now()); d > 0 {
			time.Sleep(d)
		}
	}
	if b.quotas == nil {
		return true
	}
	ap, err := netip.ParseAddrPort(nc.RemoteAddr().String())
	if err != nil {
		return true // not TCP (tests over pipes): no address to meter
	}
	now := time.Now()
	d := b.quotas.AdmitConnection(ap.Addr(), now)
	if d <= 0 {
		return true
	}
	if b.connRate != nil {
		b.connRate.Unrecord(1) // as Kafka: a refused connection does not count
	}
	l := &b.connQuota
	l.throttled.Add(1)
	n := l.sinceLog.Add(1)
	if last := l.lastLog.Load(); now.UnixNano()-last >= int64(connLogEvery) && l.lastLog.CompareAndSwap(last, now.UnixNano()) {
		l.sinceLog.Add(-n)
		b.log.Warn("connections over their address's connection_creation_rate held and closed",
			"remote", ap.Addr().Unmap().String(), "held", d, "refused_since_last_line", n)
	}
	l.hold(nc, d)
	return false
}

func (l *connLimiter) hold(nc net.Conn, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		nc.Close()
		return
	}
	if l.held == nil {
		l.held = map[net.Conn]*time.Timer{}
	}
	l.held[nc] = time.AfterFunc(d, func() {
		l.mu.Lock()
		_, ok := l.held[nc]
		delete(l.held, nc)
		l.mu.Unlock()
		if ok {
			nc.Close()
		}
	})
}

// close closes every held connection now (broker shutdown).
func (l *connLimiter) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for nc, t := range l.held {
		t.Stop()
		nc.Close()
	}
	l.held = nil
	l.closed = true
}

// ThrottledConnections counts the connections refused so far for being
// over their address's connection_creation_rate.
func (b *Broker) ThrottledConnections() int64 { return b.connQuota.throttled.Load() }
