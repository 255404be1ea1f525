package storage

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/objwal"
	"github.com/vigilhq/vigil/internal/partition"
	"github.com/vigilhq/vigil/internal/segment"
	"github.com/vigilhq/vigil/internal/wal"
)

// ClusterOptions turn on cluster mode: partitions are led by one broker
// at a time, taken over with a leader epoch from meta.Cluster, and a new
// leader rebuilds a partition's tail from the WAL of whichever broker
// wrote it (the object WAL, readable by all).
type ClusterOptions struct {
	Cluster  meta.Cluster
	BrokerID int32
	// ScanWALs reads every entry of every broker's WAL (in each broker's
	// order); the recovery of a partition keeps those it needs.
	ScanWALs func(ctx context.Context, fn func(e wal.Entry) error) error
}

// clustered is the engine's cluster state.
type clustered struct {
	e    *Engine
	opts ClusterOptions
	sess atomic.Pointer[sessionBox]

	mu sync.Mutex
	// lost holds partitions this broker stopped leading without
	// uploading their tail (lease lost, or fenced by a newer epoch), with
	// the epoch it led them at. Until each is superseded (a newer leader
	// has committed its recovery) the WAL is not trimmed past floor, so
	// the new leader can still read what it needs.
	lost  map[lostKey]int32
	floor uint64
	// releasing holds logs being handed over on purpose: fenced for
	// appends, but their tail is still uploaded under their epoch.
	releasing map[*partition.Log]bool
	// trimmed is the highest sequence number passed to TrimBefore.
	trimmed atomic.Uint64
	// held are durable writes waiting for the lease to be confirmed, in
	// WAL order; heldBusy is set while releaseHeld runs.
	heldMu   sync.Mutex
	held     []heldAck
	heldBusy bool
	// walStore holds every broker's object-WAL chunks (nil: file WAL).
	walStore objstore.Store
	// recovered counts record bytes taken over from WALs: data a broker
	// wrote and another re-uploaded (zero for planned hand-overs).
	recovered atomic.Int64
}

// RecoveredBytes is how many record bytes takeovers rebuilt from the WALs
// of previous leaders since start.
func (e *Engine) RecoveredBytes() int64 {
	if e.cl == nil {
		return 0
	}
	return e.cl.recovered.Load()
}

type sessionBox struct{ s meta.Session }

type lostKey struct {
	topic string
	part  int32
}

// Clustered reports whether the engine runs in cluster mode.
func (e *Engine) Clustered() bool { return e.cl != nil }

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

// SetSession installs the membership session whose lease guards every
// acknowledgement.
func (e *Engine) SetSession(s meta.Session) {
	if e.cl != nil {
		e.cl.sess.Store(&sessionBox{s})
	}
}

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

// Reconciled is told the cluster's current leaders after each round of
// leadership changes.
func (e *Engine) Reconciled(leaders []meta.Leader) {
	if e.cl != nil {
		e.cl.fenceMoved(leaders)
	}
}

// Partition names one partition.
type Partition struct {
	Topic     string
	Partition int32
}

// Led returns the partitions this broker leads with their epochs.
func (e *Engine) Led() map[Partition]int32 {
	out := map[Partition]int32{}
	for _, t := range e.Topics() {
		for _, l := range t.Logs {
			if epoch, led := l.Leader(); led {
				out[Partition{l.Topic, l.Partition}] = epoch
			}
		}
	}
	return out
}

// Acquire takes partitions over: for each, a new leader epoch, the tail
// its previous leaders left in their WALs rebuilt, uploaded and committed
// before it serves anything. One WAL scan serves all of them. It returns
// the partitions now led; the others are logged and retried by the
// caller's next round.
func (e *Engine) Acquire(ctx context.Context, parts []Partition) []Partition {
	c := e.cl
	if c == nil || len(parts) == 0 {
		return nil
	}
	b := c.sess.Load()
	if b == nil {
		return nil
	}
	type job struct {
		Partition
		top  *Topic
		acq  meta.Acquired
		tail []*partition.Batch
	}
	var jobs []*job
	byKey := map[Partition]*job{}
	for _, p := range parts {
		top := e.Topic(p.Topic)
		if top == nil || int(p.Partition) >= len(top.Logs) {
			continue
		}
		acq, err := c.opts.Cluster.Acquire(ctx, b.s, c.opts.BrokerID, p.Topic, p.Partition)
		if err != nil {
			if !errors.Is(err, meta.ErrFenced) && ctx.Err() == nil {
				e.log.Warn("cannot take partition over", "topic", p.Topic, "partition", p.Partition, "err", err)
			}
			continue
		}
		j := &job{Partition: p, top: top, acq: acq}
		jobs = append(jobs, j)
		byKey[p] = j
	}
	if len(jobs) == 0 {
		return nil
	}
	start := time.Now()
	// Gather the tails: entries of the last serving epoch only. Any other
	// epoch's entries beyond the index were written by a leader that had
	// already been fenced, and were never acknowledged.
	byTopicKey := map[string]*Topic{}
	for _, j := range jobs {
		byTopicKey[topicKey(j.top.ID)] = j.top
	}
	var scanned int
	if c.opts.ScanWALs != nil {
		err := c.opts.ScanWALs(ctx, func(ent wal.Entry) error {
			scanned++
			top := byTopicKey[ent.Topic]
			if top == nil || len(ent.Data) < 61 {
				return nil
			}
			j := byKey[Partition{top.Name, ent.Partition}]
			if j == nil || j.acq.Serving == 0 || batchEpoch(ent.Data) != j.acq.Serving {
				return nil
			}
			info, err := batch.Peek(ent.Data)
			if err != nil {
				return fmt.Errorf("WAL entry of %s/%d: %w", top.Name, ent.Partition, err)
			}
			j.tail = append(j.tail, &partition.Batch{Base: info.BaseOffset, Last: info.LastOffset, MaxTs: info.MaxTimestamp,
				Data: append([]byte(nil), ent.Data...)})
			return nil
		})
		if err != nil {
			e.log.Error("cannot read WALs to take partitions over; giving them up", "partitions", len(jobs), "err", err)
			for _, j := range jobs {
				c.opts.Cluster.Release(ctx, c.opts.BrokerID, j.Topic, j.Partition.Partition, j.acq.Epoch)
			}
			return nil
		}
	}
	e.upLock.Lock()
	defer e.upLock.Unlock()
	var out []Partition
	for _, j := range jobs {
		recovered, err := e.takeOver(ctx, j.top, j.Partition.Partition, j.acq, j.tail)
		if err != nil {
			if ctx.Err() != nil {
				ctx = context.WithoutCancel(ctx) // shutting down: still give the key back
			} else {
				e.log.Error("taking partition over failed; giving it up", "topic", j.Topic, "partition", j.Partition.Partition, "epoch", j.acq.Epoch, "err", err)
			}
			c.opts.Cluster.Release(ctx, c.opts.BrokerID, j.Topic, j.Partition.Partition, j.acq.Epoch)
			continue
		}
		e.log.Info("partition taken over", "topic", j.Topic, "partition", j.Partition.Partition, "epoch", j.acq.Epoch,
			"recovered_batches", recovered)
		out = append(out, j.Partition)
	}
	e.log.Info("partitions taken over", "partitions", len(out), "wal_entries_scanned", scanned, "took", time.Since(start))
	return out
}

// batchEpoch reads a record batch's PartitionLeaderEpoch (bytes 12..16).
func batchEpoch(b []byte) int32 { return int32(binary.BigEndian.Uint32(b[12:16])) }

// takeOver rebuilds one partition at a new epoch from the index plus the
// recovered tail, commits the tail as a segment object together with the
// serving epoch, and swaps the new log in. Called with upLock held.
func (e *Engine) takeOver(ctx context.Context, top *Topic, p int32, acq meta.Acquired, tail []*partition.Batch) (int, error) {
	segs, err := e.meta.Segments(ctx, top.Name, p)
	if err != nil {
		return 0, fmt.Errorf("load index: %w", err)
	}
	st, err := e.meta.PartitionState(ctx, top.Name, p)
	if err != nil {
		return 0, fmt.Errorf("load state: %w", err)
	}
	next := st.LogStart
	if n := len(segs); n > 0 {
		next = max(next, segs[n-1].LastOffset+1)
	}
	slices.SortFunc(tail, func(a, b *partition.Batch) int { return cmp.Compare(a.Base, b.Base) })
	var keep []*partition.Batch
	for _, b := range tail {
		switch {
		case b.Last < next:
			continue // already uploaded
		case b.Base != next:
			return 0, fmt.Errorf("WAL tail has a gap: batch at %d, log ends at %d", b.Base, next)
		}
		keep = append(keep, b)
		next = b.Last + 1
		e.cl.recovered.Add(int64(len(b.Data)))
	}
	var add []meta.Segment
	if len(keep) > 0 {
		sb := segment.NewBuilder()
		for _, b := range keep {
			sb.Add(top.Name, p, b.Data, b.Base, b.Last, b.MaxTs)
		}
		data, runs := sb.Build()
		key := objectKey()
		if err := e.objs.Put(ctx, key, data); err != nil {
			return 0, fmt.Errorf("put recovered tail %s: %w", key, err)
		}
		for _, r := range runs {
			add = append(add, meta.Segment{Topic: r.Topic, Partition: r.Partition, Object: key, Position: r.Position,
				Size: r.Size, FirstOffset: r.FirstOffset, LastOffset: r.LastOffset, MaxTimestamp: r.MaxTimestamp})
		}
	}
	if err := e.cl.opts.Cluster.CommitRecovery(ctx, top.Name, p, acq.Epoch, add); err != nil {
		return 0, err
	}
	l := partition.New(top.Name, top.ID, p, e.cache, append(segs, add...), st.LogStart, e.opts.TailCacheBytes)
	if err := e.loadProducers(ctx, top.Name, l); err != nil {
		return 0, err
	}
	nowMs := time.Now().UnixMilli()
	for _, b := range keep {
		info, err := batch.Peek(b.Data)
		if err != nil {
			return 0, err
		}
		if _, err := l.Recover(b, info.Producer(), nowMs); err != nil {
			return 0, err
		}
		e.upProducers[l].Apply(info.Producer(), b.Base, nowMs)
	}
	l.SetLeader(acq.Epoch)
	e.swapLog(top.Name, l)
	return len(keep), nil
}

// swapLog replaces one partition's log, copying the topic so readers
// holding the old *Topic keep a consistent (fenced) view.
func (e *Engine) swapLog(name string, l *partition.Log) {
	e.mu.Lock()
	defer e.mu.Unlock()
	top := e.topics[name]
	if top == nil || top.ID != l.TopicID || int(l.Partition) >= len(top.Logs) {
		return
	}
	old := top.Logs[l.Partition]
	logs := slices.Clone(top.Logs)
	logs[l.Partition] = l
	nt := &Topic{Topic: top.Topic, Logs: logs}
	e.topics[name], e.byID[top.ID] = nt, nt
	old.Fence()
	delete(e.upProducers, old)
}

// Release hands a partition over on purpose (rebalance, drain): it stops
// appends, waits for those in flight, uploads the partition's tail with
// the current epoch and only then gives leadership up, so the next leader
// finds everything in the index and clients see only a retriable
// NOT_LEADER_OR_FOLLOWER meanwhile.
func (e *Engine) Release(ctx context.Context, p Partition) error {
	c := e.cl
	top := e.Topic(p.Topic)
	if c == nil || top == nil || int(p.Partition) >= len(top.Logs) {
		return nil
	}
	l := top.Logs[p.Partition]
	epoch, led := l.Leader()
	if !led {
		return nil
	}
	c.mu.Lock()
	c.releasing[l] = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.releasing, l)
		c.mu.Unlock()
	}()
	l.Fence()
	// Let the writes in flight finish: they are acknowledged and
	// uploaded under this epoch, so the next leader recovers nothing.
	for !l.Settled() {
		if err := e.wal.Sync(); err != nil {
			return fmt.Errorf("release %s/%d: sync WAL: %w", p.Topic, p.Partition, err)
		}
		if l.Settled() {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("release %s/%d: writes in flight: %w", p.Topic, p.Partition, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	for {
		if !e.queued(l) {
			break
		}
		if err := e.upload(ctx); err != nil {
			// Leave it to the lease: the tail stays in the WAL, which the
			// next leader reads.
			c.mu.Lock()
			c.lost[lostKey{p.Topic, p.Partition}] = epoch
			c.floor = min(c.floor, c.trimmed.Load())
			c.mu.Unlock()
			return fmt.Errorf("release %s/%d: upload tail: %w", p.Topic, p.Partition, err)
		}
	}
	if err := c.opts.Cluster.Release(ctx, c.opts.BrokerID, p.Topic, p.Partition, epoch); err != nil {
		return err
	}
	e.log.Info("partition handed over", "topic", p.Topic, "partition", p.Partition, "epoch", epoch)
	return nil
}

// queued reports whether the upload queue holds batches of l.
func (e *Engine) queued(l *partition.Log) bool {
	e.upMu.Lock()
	defer e.upMu.Unlock()
	for _, it := range e.upQueue {
		if it.log == l {
			return true
		}
	}
	return false
}

// Refresh loads topics other brokers created, changed or deleted.
func (e *Engine) Refresh(ctx context.Context) error {
	tops, err := e.meta.Topics(ctx)
	if err != nil {
		return fmt.Errorf("storage: refresh topics: %w", err)
	}
	seen := map[string]bool{}
	for _, t := range tops {
		seen[t.Name] = true
		cur := e.Topic(t.Name)
		switch {
		case cur == nil || cur.ID != t.ID:
			if cur != nil {
				e.forget(cur)
			}
			top := &Topic{Topic: t, Logs: make([]*partition.Log, t.Partitions)}
			for p := range top.Logs {
				top.Logs[p] = e.newLog(t, int32(p))
			}
			e.mu.Lock()
			if e.topics[t.Name] == nil {
				e.topics[t.Name], e.byID[t.ID] = top, top
			}
			e.mu.Unlock()
		case !sameTopic(cur.Topic, t):
			e.mu.Lock()
			if cur = e.topics[t.Name]; cur != nil && cur.ID == t.ID {
				logs := slices.Clone(cur.Logs)
				for p := int32(len(logs)); p < t.Partitions; p++ {
					logs = append(logs, e.newLog(t, p))
				}
				nt := &Topic{Topic: t, Logs: logs}
				e.topics[t.Name], e.byID[t.ID] = nt, nt
			}
			e.mu.Unlock()
		}
	}
	for _, t := range e.Topics() {
		if !seen[t.Name] {
			e.forget(t)
		}
	}
	return nil
}

func sameTopic(a, b meta.Topic) bool {
	if a.Partitions != b.Partitions || len(a.Configs) != len(b.Configs) {
		return false
	}
	for k, v := range a.Configs {
		if w, ok := b.Configs[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// forget drops a topic another broker deleted.
func (e *Engine) forget(t *Topic) {
	e.mu.Lock()
	if cur := e.topics[t.Name]; cur != nil && cur.ID == t.ID {
		delete(e.topics, t.Name)
		delete(e.byID, t.ID)
	}
	e.mu.Unlock()
	for _, l := range t.Logs {
		l.MarkDeleted()
	}
}

// newLog is an empty log of a new partition: led at once by a single
// broker; in a cluster, led by nobody until taken over.
func (e *Engine) newLog(t meta.Topic, p int32) *partition.Log {
	l := partition.New(t.Name, t.ID, p, e.cache, nil, 0, e.opts.TailCacheBytes)
	if e.cl != nil {
		l.Fence()
	}
	return l
}

// leads reports whether this broker leads l and at which epoch; a single
// broker leads everything (epoch 0: no fencing).
func (e *Engine) leads(l *partition.Log) (int32, bool) {
	if e.cl == nil {
		return 0, !l.Deleted()
	}
	return l.Leader()
}

// fenced returns copies of segs whose index write is fenced at epoch.
func fenced(segs []meta.Segment, epoch int32) []meta.Segment {
	out := slices.Clone(segs)
	for i := range out {
		out[i].LeaderEpoch = epoch
	}
	return out
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
