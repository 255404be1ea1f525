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

// SetSession installs the membership session whose lease guards every
// acknowledgement.
func (e *Engine) SetSession(s meta.Session) {
	if e.cl != nil {
		e.cl.sess.Store(&sessionBox{s})
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
// serving epoch and the leader-epoch history the new epoch extends, and
// swaps the new log in. Called with upLock held.
func (e *Engine) takeOver(ctx context.Context, top *Topic, p int32, acq meta.Acquired, tail []*partition.Batch) (int, error) {
	segs, err := e.meta.Segments(ctx, top.Name, p)
	if err != nil {
		return 0, fmt.Errorf("load index: %w", err)
	}
	st, err := e.meta.PartitionState(ctx, top.Name, p)
	if err != nil {
		return 0, fmt.Errorf("load state: %w", err)
	}
	epochs, err := e.cl.opts.Cluster.EpochStarts(ctx, top.Name, p)
	if err != nil {
		return 0, fmt.Errorf("load leader epochs: %w", err)
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
	// The log and its producer state first, rebuilt from the index, the
	// last committed producer states and the recovered batches (markers
	// included: the tail's aborted transactions join the aborted index),
	// so the recovered batches' index entries, with their aborted index,
	// and the state that deduplicates their retries are committed
	// together: committed apart, a crash in between would let a later
	// leader accept a retry of a recovered batch as new.
	l := partition.New(top.Name, top.ID, p, e.cache, segs, st.LogStart, e.opts.TailCacheBytes)
	if err := e.loadProducers(ctx, top.Name, l); err != nil {
		return 0, err
	}
	committed := false
	defer func() {
		if !committed { // l is dropped: so is its uploaded state
			delete(e.upProducers, l)
		}
	}()
	nowMs := time.Now().UnixMilli()
	var producers []int64 // of the recovered batches, once each
	for _, b := range keep {
		info, err := batch.Peek(b.Data)
		if err != nil {
			return 0, err
		}
		e.noteWALGap(top.Topic, l, b)
		if _, err := l.RecoverStored(b, nowMs); err != nil {
			return 0, err
		}
		if err := partition.ApplyStored(e.upProducers[l], b.Data, nowMs); err != nil {
			return 0, err
		}
		if id := info.ProducerID; id >= 0 && !slices.Contains(producers, id) {
			producers = append(producers, id)
		}
	}
	var add []meta.Segment
	if len(keep) > 0 {
		sb := segment.NewBuilder()
		for _, b := range keep {
			sb.Add(top.Name, p, b.Data, b.Base, b.Last, b.MaxTs)
		}
		sb.SetAborted(top.Name, p, runAborted(l.AbortedIn(keep[0].Base, keep[len(keep)-1].Last)))
		data, runs := sb.Build()
		key := objectKey()
		if err := e.objs.Put(ctx, key, data); err != nil {
			return 0, fmt.Errorf("put recovered tail %s: %w", key, err)
		}
		for _, r := range runs {
			add = append(add, runSegment(key, r))
		}
	}
	// The new epoch begins after the recovered tail, which keeps the
	// epochs its batches were written in.
	epochs = partition.AssignEpoch(epochs, acq.Epoch, next, st.LogStart)
	if err := e.cl.opts.Cluster.CommitRecovery(ctx, top.Name, p, acq.Epoch, epochs, add, e.recoveredProducers(l, producers, acq.Epoch)); err != nil {
		return 0, err
	}
	committed = true
	for _, sg := range add {
		l.Uploaded(sg)
	}
	l.SetLeader(acq.Epoch, epochs)
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
