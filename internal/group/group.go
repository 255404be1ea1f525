// Package group is the consumer-group coordinator: Kafka's classic
// JoinGroup/SyncGroup/Heartbeat protocol, the consumer group protocol of
// KIP-848 (ConsumerGroupHeartbeat, consumer.go: the coordinator assigns,
// members reconcile by epochs), and committed offsets, shared by both.
// It keeps groups, members, their state machines and timers, and
// committed offsets in memory, and makes every change that must survive a
// restart durable by appending Kafka's own record formats
// (kmsg.OffsetCommitKey/Value, kmsg.GroupMetadataKey/Value; consumer
// groups have kinds of their own, consumer_persist.go) to an internal log
// topic, __consumer_offsets, through the small Log interface. On start,
// Load replays that log.
//
// Transactional offsets (TxnOffsetCommit, KIP-98/KIP-447) are appended as
// a transactional batch of the producer and stay pending, invisible to
// OffsetFetch, until the transaction's marker: CompleteTxn applies the
// outcome in memory, and a replay applies the marker the same way (see
// txn.go for the rules).
package group

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/applier"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/producer"
	"github.com/vigilhq/vigil/internal/shard"
)

// OffsetsTopic is the internal topic holding committed offsets and group
// metadata, named as in Kafka so tools recognise it.
const OffsetsTopic = "__consumer_offsets"

// Record is one record of the offsets log; a nil Value is a tombstone.
// It is the storage engine's record type, so the engine's adapter
// satisfies Log without depending on this package.
type Record = batch.KV

// Log is the internal topic the coordinator writes to and recovers from.
// Implementations must keep the records of a partition in Append order.
type Log interface {
	// Partitions is the fixed partition count of the topic.
	Partitions() int32
	// Append appends recs to partition p. done runs once, when all of
	// them are durable (err nil, first is the offset of recs[0]) or failed.
	// done may run on the log's own goroutine, or inline when Append fails
	// at once, and must not block.
	Append(p int32, recs []Record, done func(first int64, err error))
	// AppendBatchVerified appends encoded record batches the coordinator
	// built (a transaction's offsets: one transactional batch of the
	// producer), subject to the partition's producer checks and, unless
	// guard is producer.NoGuard, to the guard TxnGuard returned before
	// the transaction was verified; done as for Append.
	AppendBatchVerified(p int32, raw []byte, guard producer.Guard, done func(first int64, err error))
	// TxnGuard tells whether producerID has a transaction ongoing on
	// partition p at epoch, and the guard of a verification (KIP-890).
	TxnGuard(p int32, producerID int64, epoch int16) (producer.Guard, bool)
	// NextSequence is the sequence number the next batch of producerID at
	// epoch must start at on partition p.
	NextSequence(p int32, producerID int64, epoch int16) int32
	// ReplayBatches calls fn with every batch of partition p from its log
	// start to its end, in offset order: the header (producer, the
	// transactional and control attributes) and the records at or after
	// the log start, offset being that of recs[0].
	ReplayBatches(ctx context.Context, p int32, fn func(rb kmsg.RecordBatch, recs []kmsg.Record, offset int64) error) error
	// SetStart moves the log start of partition p forward to off.
	SetStart(ctx context.Context, p int32, off int64) error
}

// Topics tells the coordinator which topic partitions exist, so commits
// to unknown ones are refused (UNKNOWN_TOPIC_OR_PARTITION) as in Kafka.
type Topics interface {
	PartitionExists(topic string, partition int32) bool
	// TopicInfo returns a live topic's id and partition count; consumer
	// groups (KIP-848) resolve subscriptions and assign through it.
	TopicInfo(name string) (id [16]byte, partitions int32, ok bool)
	// TopicNames returns the live topics' names, for regex subscriptions.
	TopicNames() []string
}

// Config tunes the coordinator; zero values take Kafka's defaults.
type Config struct {
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms: how long
	// the first rebalance of an empty group waits for more members.
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for (group.min/max.session.timeout.ms).
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// MaxMetadataBytes bounds a committed offset's metadata
	// (offset.metadata.max.bytes).
	MaxMetadataBytes int
	// SnapshotMinRecords: a partition of the offsets log is snapshotted
	// once it holds more than twice its live records plus this many.
	SnapshotMinRecords int
	// OffsetsRetention is offsets.retention.minutes: how long committed
	// offsets outlive a group's last member (or, for a group that only
	// commits, their commit); see Expire. Zero: 7 days, Kafka's default.
	OffsetsRetention time.Duration
	// OffsetsRetentionCheck is offsets.retention.check.interval.ms: how
	// often Expire runs. Zero: 10 minutes; negative: never (tests call
	// Expire themselves).
	OffsetsRetentionCheck time.Duration
	// ConsumerSessionTimeout and ConsumerHeartbeatInterval are
	// group.consumer.session.timeout.ms and
	// group.consumer.heartbeat.interval.ms of consumer groups (KIP-848):
	// the coordinator, not the member, sets both. Zero: 45 s and 5 s.
	ConsumerSessionTimeout, ConsumerHeartbeatInterval time.Duration
	// Partitions are the offsets-log partitions this coordinator loads
	// and serves (nil: all). A server runs one coordinator per offsets
	// partition (in a cluster, per partition it leads), so the groups
	// spread over the brokers as in Kafka and move one partition at a
	// time, and a group waits on no other partition's appends.
	Partitions []int32
	Logger     *slog.Logger
}

func (c *Config) fill() {
	if c.InitialRebalanceDelay < 0 {
		c.InitialRebalanceDelay = 0
	}
	if c.MinSessionTimeout == 0 {
		c.MinSessionTimeout = 6 * time.Second
	}
	if c.MaxSessionTimeout == 0 {
		c.MaxSessionTimeout = 30 * time.Minute
	}
	if c.MaxMetadataBytes == 0 {
		c.MaxMetadataBytes = 4096
	}
	if c.OffsetsRetention <= 0 {
		c.OffsetsRetention = 7 * 24 * time.Hour
	}
	if c.OffsetsRetentionCheck == 0 {
		c.OffsetsRetentionCheck = 10 * time.Minute
	}
	if c.ConsumerSessionTimeout <= 0 {
		c.ConsumerSessionTimeout = 45 * time.Second
	}
	if c.ConsumerHeartbeatInterval <= 0 {
		c.ConsumerHeartbeatInterval = 5 * time.Second
	}
	if c.SnapshotMinRecords == 0 {
		c.SnapshotMinRecords = 10000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Coordinator owns the groups of its offsets-log partitions
// (Config.Partitions). Safe for concurrent use.
//
// One mutex guards all state: group operations are short and in memory,
// and appends to the offsets log happen under it so that the log's order
// is the order in which the coordinator decided things. Durability
// callbacks never take the mutex themselves (the log may run them inline
// or on the WAL goroutine): they queue work for the applier goroutine,
// which applies it in log order.
type Coordinator struct {
	cfg    Config
	log    *slog.Logger
	olog   Log
	topics Topics

	mu     sync.Mutex
	groups map[string]*group
	parts  []*partState
	closed bool
	// txnGroups are the groups holding pending transactional offsets of
	// each producer (Kafka's openGroupsForProducer), for CompleteTxn.
	txnGroups map[int64]map[string]bool

	apply *applier.Applier
	stop  chan struct{}
	wg    sync.WaitGroup
}

// partState is what the coordinator knows of one offsets-log partition:
// the committed state as appended (not yet necessarily durable): the
// latest committed record of every live key, so a snapshot reproduces
// exactly the state a replay of the whole partition would, and where in
// the log a replay finds each of them; and how many records the log holds.
//
// Transactional offsets are not in written until their transaction
// commits (CompleteTxn): they are the groups' pending offsets (group.txn).
type partState struct {
	written      map[string][]byte // key bytes -> value bytes
	pos          map[string]keyPos // key bytes -> where written[key] is in the log
	records      int               // records from the log start to the end
	lastKey      []byte
	snapshotting bool
	// tok numbers appends, so that a durability callback knows whether a
	// key still holds the record it placed.
	tok uint64
}

// keyPos is where the record of a written value sits in the offsets log:
// at is its offset (a lower bound when an append spans several batches),
// -1 until the append that wrote it (tok) is durable.
type keyPos struct {
	tok uint64
	at  int64
}

// New builds a coordinator over the offsets log. Call Load before use.
func New(cfg Config, olog Log, topics Topics) *Coordinator {
	cfg.fill()
	c := &Coordinator{
		cfg: cfg, log: cfg.Logger, olog: olog, topics: topics,
		groups:    map[string]*group{},
		txnGroups: map[int64]map[string]bool{},
		stop:      make(chan struct{}),
	}
	c.parts = make([]*partState, olog.Partitions())
	for i := range c.parts {
		c.parts[i] = &partState{written: map[string][]byte{}, pos: map[string]keyPos{}}
	}
	c.apply = applier.New(&c.mu)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.apply.Run(c.stop)
	}()
	if cfg.OffsetsRetentionCheck > 0 {
		c.wg.Add(1)
		go c.expireLoop()
	}
	return c
}

// Close stops timers and the applier. A coordinator also closes while the
// broker keeps serving (its offsets partitions moved to another broker),
// so every waiting request is still answered: JoinGroup and SyncGroup
// with NOT_COORDINATOR, as Kafka does when it unloads a group, and
// appends that become durable later with their real outcome.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	for _, g := range c.groups {
		g.stopTimers()
		for _, m := range g.members {
			m.failWaiting(kerr.NotCoordinator)
		}
		if g.cons != nil {
			for _, m := range g.cons.members {
				c.stopConsumerTimers(m)
			}
		}
	}
	c.mu.Unlock()
	close(c.stop)
	c.wg.Wait()
}

// PartitionFor is the offsets-log partition of a group: Kafka's
// Utils.abs(groupId.hashCode()) % partitions, so the mapping is stable
// across restarts and matches Kafka's for the same partition count.
func PartitionFor(groupID string, partitions int32) int32 {
	return shard.Partition(groupID, partitions)
}

// later queues fn to run under c.mu on the applier goroutine, in the
// order the log made the appends durable.
func (c *Coordinator) later(fn func()) { c.apply.Later(fn) }

// appendLocked appends records of one group's partition, keeps the
// snapshot state in step, and runs apply (under c.mu, on the applier) once
// they are durable or failed. Called with c.mu held.
func (c *Coordinator) appendLocked(p int32, recs []Record, apply func(err error)) {
	c.appendAtLocked(p, recs, func(_ int64, err error) { apply(err) })
}

// appendAtLocked is appendLocked whose apply also learns the offset of
// recs[0]. A tombstone of an offset drops the pending transactional
// offsets of its partition, as a replay of the log does (Kafka's
// OffsetMetadataManager.replay).
func (c *Coordinator) appendAtLocked(p int32, recs []Record, apply func(first int64, err error)) {
	ps := c.parts[p]
	ps.tok++
	tok := ps.tok
	for _, r := range recs {
		k := string(r.Key)
		if r.Value == nil {
			delete(ps.written, k)
			delete(ps.pos, k)
			c.dropPendingLocked(r.Key)
		} else {
			ps.written[k] = r.Value
			ps.pos[k] = keyPos{tok: tok, at: -1}
		}
		ps.lastKey = r.Key
	}
	ps.records += len(recs)
	c.olog.Append(p, recs, func(first int64, err error) {
		c.later(func() {
			if err == nil {
				ps.placed(tok, recs, first)
			}
			apply(first, err)
		})
	})
	c.maybeSnapshotLocked(p)
}

// placed records where the records of append tok landed, for the keys
// no later append has written since.
func (ps *partState) placed(tok uint64, recs []Record, first int64) {
	for i, r := range recs {
		k := string(r.Key)
		if pos, ok := ps.pos[k]; ok && pos.tok == tok {
			ps.pos[k] = keyPos{tok: tok, at: first + int64(i)}
		}
	}
}

// maybeSnapshotLocked bounds replay: once a partition holds more than
// twice its live records (plus a floor), the live records are appended
// again at the tail and, when durable, the log start moves to the first
// of them, dropping everything older from the replay. Every snapshot
// costs the live state once and happens only after at least that many new
// records, so it adds O(1) per commit.
//
// Keys with pending transactional offsets are not restated: a restated
// committed offset would look newer than the transaction's in a replay,
// so the commit marker would not apply it there while CompleteTxn did in
// memory. Instead the log start stays at or before their records (the
// committed one and the pending ones), as Kafka's cleaner keeps the data
// of open transactions, so a replay meets them in their original order.
func (c *Coordinator) maybeSnapshotLocked(p int32) {
	ps := c.parts[p]
	if ps.snapshotting || c.closed || ps.records <= 2*len(ps.written)+c.cfg.SnapshotMinRecords {
		return
	}
	held := c.heldKeysLocked(p)
	recs := make([]Record, 0, max(len(ps.written), 1))
	for k, v := range ps.written {
		if !held[k] {
			recs = append(recs, Record{Key: []byte(k), Value: v})
		}
	}
	if len(recs) == 0 {
		if len(ps.written) > 0 || ps.lastKey == nil || held[string(ps.lastKey)] {
			return // everything live is held; the next append tries again
		}
		// Nothing is live, but the log start can only move to a record:
		// repeat the last tombstone, which replays as a no-op.
		recs = append(recs, Record{Key: ps.lastKey})
	}
	ps.snapshotting = true
	ps.records = len(recs) + len(held)
	ps.tok++
	tok := ps.tok
	for _, r := range recs {
		if r.Value != nil {
			ps.pos[string(r.Key)] = keyPos{tok: tok, at: -1}
		}
	}
	c.olog.Append(p, recs, func(first int64, err error) {
		c.later(func() {
			ps.snapshotting = false
			if err != nil {
				c.log.Error("offsets log snapshot failed", "partition", p, "err", err)
				return
			}
			ps.placed(tok, recs, first)
			if c.closed {
				// Close is waiting for c.wg: moving the log start is
				// only an optimisation, the next owner snapshots again.
				return
			}
			start := c.pinnedStartLocked(p, held, first)
			// The metadata store is not touched under c.mu.
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := c.olog.SetStart(ctx, p, start); err != nil {
					c.log.Error("move offsets log start after snapshot", "partition", p, "offset", start, "err", err)
					return
				}
				c.log.Debug("offsets log snapshot", "partition", p, "records", len(recs), "held", len(held), "log_start", start)
			}()
		})
	})
}

// ms converts a Kafka millisecond field.
func ms(v int32) time.Duration { return time.Duration(v) * time.Millisecond }

func (c *Coordinator) partition(groupID string) int32 {
	return PartitionFor(groupID, int32(len(c.parts)))
}
