package txn

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/partition"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/internal/wal"
)

// Record versions written, as Kafka 4 writes them with transaction
// version 2: key 0 (the record type of __transaction_state), value 1
// (flexible, with the KIP-890 tagged fields).
const (
	keyVersion   = 0
	valueVersion = 1
)

// OpenLog opens __transaction_state, creating it with cfg.Partitions on
// first use. Its retention is unlimited: the coordinator bounds it with
// snapshots and log-start moves.
func OpenLog(ctx context.Context, e *storage.Engine, cfg Config) (*storage.InternalTopic, error) {
	cfg.fill()
	it, err := e.OpenInternalTopic(ctx, StateTopic, cfg.Partitions, map[string]string{"retention.ms": "-1", "retention.bytes": "-1"})
	if err != nil {
		return nil, fmt.Errorf("txn: open %s: %w", StateTopic, err)
	}
	return it, nil
}

func keyBytes(txnID string) []byte {
	k := kmsg.TxnMetadataKey{Version: keyVersion, TransactionalID: txnID}
	return k.AppendTo(nil)
}

// valueBytes is Kafka's TransactionLog.valueToBytes: an Empty transaction
// has no partitions (a null array).
func valueBytes(t *transit) []byte {
	v := kmsg.NewTxnMetadataValue()
	v.Version = valueVersion
	v.ProducerID, v.ProducerEpoch, v.TimeoutMillis = t.pid, t.epoch, t.timeoutMs
	v.State = kmsg.TransactionState(t.state)
	v.LastUpdateTimestamp, v.StartTimestamp = t.update, t.start
	v.PreviousProducerID, v.NextProducerID, v.ClientTransactionVersion = t.prevPID, t.nextPID, t.tv
	if t.state != Empty {
		v.Topics = []kmsg.TxnMetadataValueTopic{}
		for _, tp := range t.parts.sorted() {
			if n := len(v.Topics); n == 0 || v.Topics[n-1].Topic != tp.Topic {
				v.Topics = append(v.Topics, kmsg.TxnMetadataValueTopic{Topic: tp.Topic})
			}
			last := &v.Topics[len(v.Topics)-1]
			last.Partitions = append(last.Partitions, tp.Partition)
		}
	}
	return v.AppendTo(nil)
}

// readValue is Kafka's TransactionLog.readTxnRecordValue: the last epoch
// is not in the log.
func readValue(txnID string, b []byte) (*txnMeta, error) {
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(b); err != nil {
		return nil, err
	}
	if v.Version < 0 || v.Version > valueVersion {
		return nil, fmt.Errorf("unknown value version %d", v.Version)
	}
	if v.State < 0 || int(v.State) >= len(stateNames) {
		return nil, fmt.Errorf("unknown transaction state %d", v.State)
	}
	m := &txnMeta{id: txnID, pid: v.ProducerID, prevPID: v.PreviousProducerID, nextPID: v.NextProducerID,
		epoch: v.ProducerEpoch, lastEpoch: noEpoch, timeoutMs: v.TimeoutMillis, state: State(v.State),
		parts: partSet{}, start: v.StartTimestamp, update: v.LastUpdateTimestamp, tv: v.ClientTransactionVersion, pending: none}
	if m.state != Empty {
		for _, t := range v.Topics {
			for _, p := range t.Partitions {
				m.parts[TopicPartition{t.Topic, p}] = struct{}{}
			}
		}
	}
	return m, nil
}

// partState is what the coordinator knows of one state-log partition:
// the value of every live key as durable, how many records the log holds
// and how many appends are in flight. A snapshot is taken only with none
// in flight, so the durable values are exactly what a replay would end
// with, also when an append failed.
type partState struct {
	durable      map[string][]byte // key bytes -> value bytes
	records      int
	lastKey      []byte
	inflight     int
	snapshotting bool
	epoch        int32 // the coordinator epoch of this partition
}

func newPartState() *partState { return &partState{durable: map[string][]byte{}} }

// appendCode is Kafka's translation of a log append error into a
// coordinator error (TransactionStateManager.appendTransactionToLog).
func appendCode(err error) int16 {
	switch {
	case errors.Is(err, partition.ErrNotLeader), errors.Is(err, partition.ErrDeleted),
		errors.Is(err, wal.ErrFull), errors.Is(err, wal.ErrClosed):
		// NOT_LEADER_OR_FOLLOWER, KAFKA_STORAGE_ERROR.
		return kerr.NotCoordinator.Code
	default:
		// UNKNOWN_TOPIC_OR_PARTITION, timeouts and the rest.
		return kerr.CoordinatorNotAvailable.Code
	}
}

// appendLocked appends records of partition p, keeps the snapshot state
// in step, and runs apply (under c.mu, on the applier) once they are
// durable or failed. Called with c.mu held.
func (c *Coordinator) appendLocked(p int32, recs []batch.KV, apply func(err error)) {
	ps := c.parts[p]
	ps.inflight++
	ps.records += len(recs)
	ps.lastKey = recs[len(recs)-1].Key
	c.tlog.Append(p, recs, func(_ int64, err error) {
		c.later(func() {
			ps.inflight--
			if err == nil {
				for _, r := range recs {
					if r.Value == nil {
						delete(ps.durable, string(r.Key))
					} else {
						ps.durable[string(r.Key)] = r.Value
					}
				}
			}
			apply(err)
			c.maybeSnapshotLocked(p)
		})
	})
}

// appendTransitLocked appends t, m's next state, and completes the
// transition once it is durable (Kafka's appendTransactionToLog): done
// gets the coordinator code. On a failure m's pending transition is
// dropped unless keep says the caller will append it again. Called with
// c.mu held; done runs under it.
func (c *Coordinator) appendTransitLocked(m *txnMeta, t *transit, keep func(code int16) bool, done func(code int16)) {
	if c.closed || c.txns[m.id] != m {
		done(kerr.NotCoordinator.Code)
		return
	}
	rec := batch.KV{Key: keyBytes(m.id), Value: valueBytes(t)}
	c.appendLocked(c.partition(m.id), []batch.KV{rec}, func(err error) {
		current := !c.closed && c.txns[m.id] == m
		if err != nil {
			code := appendCode(err)
			c.log.Info("transaction state append failed", "transactional_id", m.id, "state", t.state, "err", err)
			if current && !keep(code) {
				m.pending = none
			}
			done(code)
			return
		}
		if !current {
			// Durable, but this coordinator no longer owns the id: the
			// one that does replays it.
			done(kerr.NotCoordinator.Code)
			return
		}
		if err := m.complete(t); err != nil {
			c.log.Error("transaction state transition failed", "err", err)
			m.pending = none
			done(kerr.UnknownServerError.Code)
			return
		}
		done(0)
	})
}

func never(int16) bool { return false }

// maybeSnapshotLocked bounds replay: once a partition holds more than
// twice its live records (plus a floor) and no append is in flight, the
// live records are appended again and, when durable, the log start moves
// to the first of them.
func (c *Coordinator) maybeSnapshotLocked(p int32) {
	ps := c.parts[p]
	if ps.snapshotting || ps.inflight > 0 || c.closed || ps.records <= 2*len(ps.durable)+c.cfg.SnapshotMinRecords {
		return
	}
	keys := slices.Sorted(maps.Keys(ps.durable))
	recs := make([]batch.KV, 0, max(len(keys), 1))
	for _, k := range keys {
		recs = append(recs, batch.KV{Key: []byte(k), Value: ps.durable[k]})
	}
	if len(recs) == 0 {
		if ps.lastKey == nil {
			return
		}
		// Nothing is live, but the log start can only move to a record:
		// a tombstone of the last key, which replays as a no-op.
		recs = append(recs, batch.KV{Key: ps.lastKey})
	}
	ps.snapshotting = true
	ps.records = len(recs)
	c.tlog.Append(p, recs, func(first int64, err error) {
		c.later(func() {
			ps.snapshotting = false
			if err != nil {
				c.log.Error("transaction state snapshot failed", "partition", p, "err", err)
				return
			}
			if c.closed {
				return
			}
			// The metadata store is not called under c.mu.
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := c.tlog.SetStart(ctx, p, first); err != nil {
					c.log.Error("move transaction state log start after snapshot", "partition", p, "offset", first, "err", err)
					return
				}
				c.log.Debug("transaction state snapshot", "partition", p, "records", len(recs), "log_start", first)
			}()
		})
	})
}

// owns reports whether the coordinator serves state partition p.
func (c *Coordinator) owns(p int32) bool {
	return c.cfg.Serve == nil || slices.Contains(c.cfg.Serve, p)
}

// Load rebuilds the transactional ids of the served partitions by
// replaying them, then resumes every transaction that was completing
// (PrepareCommit, PrepareAbort): its markers are written again and its
// completion appended. Ongoing transactions come back Ongoing and are
// aborted when their timeout passes.
func (c *Coordinator) Load(ctx context.Context) error {
	start := time.Now()
	loaded := map[string]*txnMeta{}
	total := 0
	for p := range c.parts {
		if !c.owns(int32(p)) {
			continue
		}
		ps := c.parts[p]
		if c.cfg.CoordinatorEpoch != nil {
			ps.epoch = c.cfg.CoordinatorEpoch(int32(p))
		}
		err := c.tlog.Replay(ctx, int32(p), func(off int64, r batch.KV) error {
			total++
			ps.records++
			ps.lastKey = r.Key
			if len(r.Key) < 2 {
				return fmt.Errorf("offset %d: key of %d bytes", off, len(r.Key))
			}
			if v := int16(binary.BigEndian.Uint16(r.Key)); v != keyVersion {
				// Kafka skips unknown key types (left over from an
				// aborted upgrade) with a warning.
				c.log.Warn("unknown transaction state key version skipped", "partition", p, "offset", off, "version", v)
				return nil
			}
			var k kmsg.TxnMetadataKey
			if err := k.ReadFrom(r.Key); err != nil {
				return fmt.Errorf("offset %d: key: %w", off, err)
			}
			if r.Value == nil {
				delete(ps.durable, string(r.Key))
				delete(loaded, k.TransactionalID)
				return nil
			}
			m, err := readValue(k.TransactionalID, r.Value)
			if err != nil {
				return fmt.Errorf("offset %d: transactional id %q: %w", off, k.TransactionalID, err)
			}
			ps.durable[string(r.Key)] = r.Value
			loaded[k.TransactionalID] = m
			return nil
		})
		if err != nil {
			return fmt.Errorf("txn: replay %s partition %d: %w", StateTopic, p, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.txns = loaded
	c.loaded = true
	resumed := 0
	for _, m := range loaded {
		if m.state == PrepareCommit || m.state == PrepareAbort {
			ct, err := m.prepareComplete(c.nowMs())
			if err != nil {
				return fmt.Errorf("txn: resume %s: %w", m.id, err)
			}
			c.startMarkersLocked(m, ct)
			resumed++
		}
	}
	for p := range c.parts {
		if c.owns(int32(p)) {
			c.maybeSnapshotLocked(int32(p))
		}
	}
	c.startLoops()
	c.log.Debug("transactions loaded", "partitions", c.servedDesc(), "transactional_ids", len(loaded),
		"resumed", resumed, "records_replayed", total, "took", time.Since(start))
	return nil
}

func (c *Coordinator) servedDesc() string {
	if c.cfg.Serve == nil {
		return "all"
	}
	return fmt.Sprint(c.cfg.Serve)
}
