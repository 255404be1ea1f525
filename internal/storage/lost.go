package storage

// What a cluster broker keeps for partitions it lost without handing
// them over (their tails stay in its WAL until a newer leader took
// them over), and the collection of departed brokers' WALs.

import (
	"context"
	"errors"

	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/objwal"
	"github.com/vigilhq/vigil/internal/partition"
	"github.com/vigilhq/vigil/internal/wal"
)

// lostLog reports whether a queued batch belongs to a partition this
// broker lost; the uploader then leaves it to the new leader.
func (c *clustered) lostLog(l *partition.Log, seq uint64) bool {
	if _, led := l.Leader(); led {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.releasing[l] {
		return false
	}
	k := lostKey{l.Topic, l.Partition}
	if _, ok := c.lost[k]; !ok {
		epoch, _ := l.Leader()
		c.lost[k] = epoch
		c.floor = min(c.floor, seq)
	}
	return true
}

// noteLost records a WAL entry of an earlier run of this broker: its
// partition's next leader needs it.
func (c *clustered) noteLost(topic string, p int32, data []byte, seq uint64) {
	if len(data) < 16 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := lostKey{topic, p}
	c.lost[k] = max(c.lost[k], batchEpoch(data))
	c.floor = min(c.floor, seq)
}

func (c *clustered) trimFloor() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lost) == 0 {
		return ^uint64(0)
	}
	return c.floor
}

// LoseAll fences every partition after the session's lease is lost: a
// newer leader may already be writing them. Their unuploaded tails stay
// in the WAL for it.
func (e *Engine) LoseAll() {
	c := e.cl
	if c == nil {
		return
	}
	c.mu.Lock()
	floor := c.trimmed.Load()
	for _, t := range e.Topics() {
		for _, l := range t.Logs {
			epoch, led := l.Leader()
			if !led {
				continue
			}
			l.Fence()
			c.lost[lostKey{l.Topic, l.Partition}] = epoch
			c.floor = min(c.floor, floor)
		}
	}
	c.mu.Unlock()
}

// checkLeadership fences partitions the store says another broker leads
// now (after a fenced index commit).
func (c *clustered) checkLeadership(ctx context.Context) {
	leaders, err := c.opts.Cluster.Leaders(ctx)
	if err != nil {
		c.e.log.Warn("cannot check partition leadership", "err", err)
		return
	}
	c.fenceMoved(leaders)
}

// fenceMoved fences every led partition whose current leader (epoch) is
// not this broker's, and lifts the trim floor of lost partitions a newer
// leader has recovered.
func (c *clustered) fenceMoved(leaders []meta.Leader) {
	cur := map[lostKey]meta.Leader{}
	for _, l := range leaders {
		cur[lostKey{l.Topic, l.Partition}] = l
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.e.Topics() {
		for _, l := range t.Logs {
			epoch, led := l.Leader()
			if !led {
				continue
			}
			k := lostKey{l.Topic, l.Partition}
			if ld, ok := cur[k]; !ok || ld.Broker != c.opts.BrokerID || ld.Epoch != epoch {
				l.Fence()
				c.lost[k] = epoch
				c.floor = min(c.floor, c.trimmed.Load())
				c.e.log.Warn("partition fenced: another broker leads it now", "topic", l.Topic, "partition", l.Partition, "epoch", epoch)
			}
		}
	}
	for k, epoch := range c.lost {
		ld, ok := cur[k]
		if c.e.Topic(k.topic) == nil || (ok && ld.Serving > epoch) {
			delete(c.lost, k)
		}
	}
	if len(c.lost) == 0 {
		c.floor = ^uint64(0)
	}
}

// errLive stops a scan at the first entry still needed.
var errLive = errors.New("storage: WAL entry still needed")

// CollectDeadWALs deletes the object-WAL chunks of brokers that are not
// live once every entry in them is superseded: its topic is gone, or its
// partition's serving epoch has moved past the entry's epoch (a newer
// leader completed a takeover, so it rebuilt what it needed). Chunks of a
// live broker are its own to trim. It returns how many chunks it deleted.
func (e *Engine) CollectDeadWALs(ctx context.Context, live map[int32]bool, leaders []meta.Leader) (int, error) {
	c := e.cl
	if c == nil || c.walStore == nil {
		return 0, nil
	}
	serving := map[lostKey]int32{}
	for _, l := range leaders {
		serving[lostKey{l.Topic, l.Partition}] = l.Serving
	}
	ids, err := objwal.Brokers(ctx, c.walStore)
	if err != nil {
		return 0, err
	}
	dropped := 0
	for _, id := range ids {
		if live[id] || id == c.opts.BrokerID {
			continue
		}
		var keys []string
		err := objwal.ScanBroker(ctx, c.walStore, id, func(key string, _ uint64, ent wal.Entry) error {
			if len(keys) == 0 || keys[len(keys)-1] != key {
				keys = append(keys, key)
			}
			top := e.TopicByID(topicKeyID(ent.Topic))
			if top == nil || len(ent.Data) < 16 {
				return nil // its topic is gone
			}
			if s, ok := serving[lostKey{top.Name, ent.Partition}]; ok && s > batchEpoch(ent.Data) {
				return nil
			}
			return errLive
		})
		switch {
		case errors.Is(err, errLive):
			continue
		case err != nil:
			return dropped, err
		}
		if err := objwal.DropBroker(ctx, c.walStore, keys); err != nil {
			return dropped, err
		}
		dropped += len(keys)
		e.log.Info("deleted the WAL of a departed broker: every entry is superseded", "broker", id, "chunks", len(keys))
	}
	return dropped, nil
}
