package cluster

// Lease health: while the metadata store cannot be reached, a broker can
// no longer vouch for its lease, and every partition it leads holds its
// acknowledgements (storage/acks.go) until a renewal is answered. That is
// the safe behaviour, and it must never be a silent one: the watcher
// below logs the moment the lease stops being confirmed and the moment it
// is confirmed again, and Health feeds the metrics and /readyz.

import (
	"context"
	"time"
)

// leaseCheckEvery is how often the watcher looks at the lease; a renewal
// is answered or missed on the session's own schedule (three per TTL).
const leaseCheckEvery = 250 * time.Millisecond

// leaseLogEvery is how often a lease that stays unconfirmed is logged
// again.
const leaseLogEvery = 10 * time.Second

// Health is the broker's standing in the cluster as the lease shows it.
type Health struct {
	// Joined is false before the first Join and while rejoining after
	// the lease was lost.
	Joined bool
	// LeaseConfirmed is true while the lease is surely held (the session
	// is Valid): acknowledgements flow. False with Joined means the store
	// has not answered a renewal within the lease TTL: acknowledgements
	// are held on every partition this broker leads.
	LeaseConfirmed bool
	// UnconfirmedSince is when the watcher first saw the lease
	// unconfirmed (zero while confirmed).
	UnconfirmedSince time.Time
	// Unconfirmed counts the episodes of an unconfirmed lease since start.
	Unconfirmed int64
	// Led is how many partitions this broker leads.
	Led int
}

// Health returns the broker's lease health now.
func (m *Member) Health() Health {
	m.mu.RLock()
	h := m.health
	sess := m.sess
	m.mu.RUnlock()
	h.Joined = sess != nil && !isDone(sess.Done())
	if h.Joined && h.LeaseConfirmed && !sess.Valid() {
		// Between two looks of the watcher: report what is true now.
		h.LeaseConfirmed = false
	}
	h.Led = m.ledCount()
	return h
}

// ledCount is how many partitions the engine leads (0 without one).
func (m *Member) ledCount() int {
	if m.engine == nil {
		return 0
	}
	return len(m.engine.Led())
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// watchLease logs every change of the lease's standing and keeps
// m.health current, until ctx ends.
func (m *Member) watchLease(ctx context.Context) {
	tick := time.NewTicker(leaseCheckEvery)
	defer tick.Stop()
	var lastLog time.Time
	for {
		m.mu.RLock()
		sess := m.sess
		h := m.health
		m.mu.RUnlock()
		now := time.Now()
		if sess != nil && !isDone(sess.Done()) {
			valid := sess.Valid()
			switch {
			case !valid && h.UnconfirmedSince.IsZero():
				h.LeaseConfirmed, h.UnconfirmedSince = false, now
				h.Unconfirmed++
				lastLog = now
				m.log.Warn("cluster lease cannot be confirmed: the metadata store (etcd) has not answered a renewal within the lease TTL; "+
					"every partition this broker leads holds its acknowledgements (writes stay durable in the WAL, producers wait) until etcd answers",
					"broker", m.cfg.BrokerID, "lease_ttl", m.cfg.LeaseTTL, "partitions_led", m.ledCount())
			case !valid && now.Sub(lastLog) >= leaseLogEvery:
				lastLog = now
				m.log.Warn("cluster lease still unconfirmed; acknowledgements still held", "broker", m.cfg.BrokerID,
					"for", now.Sub(h.UnconfirmedSince).Round(time.Second), "partitions_led", m.ledCount())
			case valid && !h.UnconfirmedSince.IsZero():
				m.log.Info("cluster lease confirmed again; held acknowledgements released", "broker", m.cfg.BrokerID,
					"unconfirmed_for", now.Sub(h.UnconfirmedSince).Round(time.Millisecond))
				h.LeaseConfirmed, h.UnconfirmedSince = true, time.Time{}
			case valid:
				h.LeaseConfirmed = true
			}
			m.mu.Lock()
			m.health = h
			m.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
