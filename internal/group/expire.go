package group

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// expireLoop runs Expire every OffsetsRetentionCheck until Close.
func (c *Coordinator) expireLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.OffsetsRetentionCheck)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case now := <-t.C:
			if n := c.Expire(now); n > 0 {
				c.log.Info("expired committed offsets", "offsets", n, "partitions", c.ownedDesc())
			}
		}
	}
}

// Expire removes the committed offsets that Kafka's offset retention
// (offsets.retention.minutes, KIP-211) would remove at now, and those of
// partitions that no longer exist (a deleted topic), writing their
// tombstones to the offsets log; a group left Empty without offsets is
// removed with its metadata, as Kafka does. It returns how many offsets
// it removed (once their tombstones are appended; they apply when
// durable).
//
// Retention counts from the time the group became Empty for a group with
// a protocol (the consumer-group protocol and others), and from each
// commit for a group that only commits (no protocol, the "simple"
// consumers). A Stable consumer group's offsets of topics none of its
// members subscribes to expire from their commit. Offsets of other
// groups with members, and any offset with a commit on its way to
// durability, stay (but for a partition that is gone).
func (c *Coordinator) Expire(now time.Time) int {
	return c.remove(now, true, func(k tp) bool { return !c.topics.PartitionExists(k.topic, k.partition) }, nil)
}

// ForgetTopic removes every group's committed and pending transactional
// offsets of partitions [0, partitions) of topic, a topic just deleted,
// writing their tombstones, and a group left Empty without offsets, as
// Kafka's onPartitionsDeleted does when the deletion reaches the broker.
// Expire would find them too, but only while the name stays free: a topic
// created again under the name in between (at once, by a consumer's
// auto-creation) would otherwise inherit the old topic's offsets and its
// groups would resume at them, skipping the new topic's first records.
// It returns once the tombstones are durable (and applied: an OffsetFetch
// no longer finds the offsets), or failed, or when ctx ends.
func (c *Coordinator) ForgetTopic(ctx context.Context, topic string, partitions int32) (int, error) {
	var wg sync.WaitGroup
	n := c.remove(time.Now(), false, func(k tp) bool { return k.topic == topic && k.partition < partitions }, &wg)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return n, nil
	case <-ctx.Done():
		return n, fmt.Errorf("group: forget offsets of deleted topic %s: %w", topic, ctx.Err())
	}
}

// remove writes tombstones for the offsets gone reports, and with
// retention for those Kafka's offset retention expires at now; applied
// tells wg when each group's tombstones are applied.
func (c *Coordinator) remove(now time.Time, retention bool, gone func(tp) bool, applied *sync.WaitGroup) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0
	}
	nowMs, keepFor := now.UnixMilli(), c.cfg.OffsetsRetention.Milliseconds()
	removed := 0
	for _, g := range c.groups {
		if g.state == Dead {
			continue
		}
		expirable := retention
		var subscribed map[string]bool
		since := func(o offset) int64 { return o.commitTs }
		switch {
		case g.state == Empty && g.protocolType != "":
			since = func(offset) int64 { return g.stateTs }
		case g.state == Empty:
		case g.state == Stable && g.protocolType == "consumer":
			topics, ok := g.subscribedTopics()
			expirable, subscribed = retention && ok, topics
		default:
			expirable = false
		}
		var keys []tp
		chosen := map[tp]bool{}
		for k, o := range g.offsets {
			if gone(k) || (g.pendingCommits[k] == 0 && expirable && !subscribed[k.topic] && nowMs-since(o) >= keepFor && !g.hasPending(k)) {
				keys = append(keys, k)
				chosen[k] = true
			}
		}
		// A commit on its way to durability expires with nothing, but one
		// of a deleted partition goes too: it was accepted while the
		// partition lived, and its record precedes the tombstone in the
		// log, so applying both in order (or replaying them) leaves no
		// offset for a topic created again under the name to resume at.
		for k := range g.pendingCommits {
			if !chosen[k] && gone(k) {
				keys = append(keys, k)
				chosen[k] = true
			}
		}
		// Pending transactional offsets of a deleted topic go too (their
		// tombstones drop them, as Kafka's onPartitionsDeleted).
		for _, m := range g.txn {
			for k := range m {
				if !chosen[k] && gone(k) {
					keys = append(keys, k)
					chosen[k] = true
				}
			}
		}
		if len(keys) == 0 {
			continue
		}
		recs := make([]Record, 0, len(keys)+1)
		for _, k := range keys {
			recs = append(recs, Record{Key: offsetKey(g.id, k.topic, k.partition)})
		}
		dies := g.state == Empty && len(g.members) == 0 && coversAll(g, chosen)
		if dies {
			recs = append(recs, Record{Key: groupKey(g.id)})
			if g.cons != nil {
				recs = append(recs, Record{Key: consumerGroupKey(g.id)})
			}
		}
		removed += len(keys)
		if applied != nil {
			applied.Add(1)
		}
		c.appendLocked(c.partition(g.id), recs, func(err error) {
			if applied != nil {
				defer applied.Done()
			}
			if err != nil {
				c.log.Error("offset expiry failed", "group", g.id, "err", err)
				return
			}
			for _, k := range keys {
				if g.pendingCommits[k] == 0 {
					delete(g.offsets, k)
				}
			}
			// A member may have joined meanwhile: its metadata record
			// follows the tombstone in the log, so a replay keeps it too.
			if dies && g.state == Empty && len(g.members) == 0 && len(g.offsets) == 0 && len(g.txn) == 0 && c.groups[g.id] == g {
				g.stopTimers()
				g.transition(Dead)
				delete(c.groups, g.id)
			}
		})
	}
	return removed
}

// coversAll reports whether removing keys leaves g without offsets,
// committed or pending.
func coversAll(g *group, keys map[tp]bool) bool {
	for k := range g.offsets {
		if !keys[k] {
			return false
		}
	}
	for _, m := range g.txn {
		for k := range m {
			if !keys[k] {
				return false
			}
		}
	}
	return true
}
