package txn

import (
	"maps"
	"slices"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
)

// startLoops starts the timeout and expiration timers (after Load).
func (c *Coordinator) startLoops() {
	tick := func(every time.Duration, fn func(time.Time)) {
		if every <= 0 {
			return
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-c.stop:
					return
				case now := <-t.C:
					fn(now)
				}
			}
		}()
	}
	tick(c.cfg.AbortInterval, func(now time.Time) {
		if n := c.AbortTimedOut(now); n > 0 {
			c.log.Info("aborting timed-out transactions", "transactions", n, "partitions", c.servedDesc())
		}
	})
	tick(c.cfg.IDExpirationCheck, func(now time.Time) {
		if n := c.ExpireIDs(now); n > 0 {
			c.log.Info("expiring transactional ids", "transactional_ids", n, "partitions", c.servedDesc())
		}
	})
}

// AbortTimedOut aborts, with an epoch bump that fences their producers,
// the ongoing transactions older than their timeout at now (Kafka's
// abortTimedOutTransactions). It returns how many aborts it started.
func (c *Coordinator) AbortTimedOut(now time.Time) int {
	nowMs := now.UnixMilli()
	timedOut := func(m *txnMeta) bool {
		return m.pending == none && m.state == Ongoing && m.start+int64(m.timeoutMs) < nowMs
	}
	type cand struct {
		id  string
		pid int64
	}
	var cands []cand
	c.mu.Lock()
	if c.closed || !c.loaded {
		c.mu.Unlock()
		return 0
	}
	for _, id := range slices.Sorted(maps.Keys(c.txns)) {
		if m := c.txns[id]; timedOut(m) {
			cands = append(cands, cand{id, m.pid})
		}
	}
	c.mu.Unlock()
	started := 0
	for _, cd := range cands {
		spare := noPID
		for {
			c.mu.Lock()
			m := c.txns[cd.id]
			if c.closed || m == nil || m.pid != cd.pid || !timedOut(m) {
				c.mu.Unlock()
				break
			}
			id := cd.id
			need := c.fenceLocked(m, spare, func(r result) {
				if r.code != 0 {
					c.log.Warn("abort of a timed-out transaction failed", "transactional_id", id, "code", r.code)
					return
				}
				c.log.Info("aborted a timed-out transaction", "transactional_id", id)
			})
			c.mu.Unlock()
			if !need {
				started++
				break
			}
			var code int16
			if spare, code = c.nextPID(c.ctx); code != 0 {
				break
			}
		}
	}
	return started
}

// ExpireIDs removes the transactional ids with no transaction in progress
// and no change for IDExpiration at now (Kafka's
// removeExpiredTransactionalIds): a tombstone per id, then the id is
// forgotten once it is durable, unless it changed meanwhile. It returns how
// many ids it expires.
func (c *Coordinator) ExpireIDs(now time.Time) int {
	limit := now.UnixMilli() - c.cfg.IDExpiration.Milliseconds()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !c.loaded {
		return 0
	}
	type expiring struct {
		m *txnMeta
		t *transit
	}
	byPart := map[int32][]expiring{}
	n := 0
	for _, id := range slices.Sorted(maps.Keys(c.txns)) {
		m := c.txns[id]
		if m.pending != none || !m.state.expirable() || m.update > limit {
			continue
		}
		t, err := m.prepareDead()
		if err != nil {
			c.log.Error("expire transactional id", "err", err)
			continue
		}
		p := c.partition(id)
		byPart[p] = append(byPart[p], expiring{m, t})
		n++
	}
	for _, p := range slices.Sorted(maps.Keys(byPart)) {
		list := byPart[p]
		recs := make([]batch.KV, len(list))
		for i, e := range list {
			recs[i] = batch.KV{Key: keyBytes(e.m.id)}
		}
		c.appendLocked(p, recs, func(err error) {
			for _, e := range list {
				if c.closed || c.txns[e.m.id] != e.m {
					continue
				}
				if err == nil && e.m.pending == Dead && e.m.epoch == e.t.epoch {
					delete(c.txns, e.m.id)
					continue
				}
				c.log.Warn("transactional id not expired", "transactional_id", e.m.id, "err", err)
				e.m.pending = none
			}
		})
	}
	return n
}
