// Package txn is the transaction coordinator: Kafka's state machine for
// transactional producers (KIP-98), with producer id/epoch recovery
// (KIP-360) and the epoch bump of every transaction (KIP-890 part 2,
// "transaction version 2", EndTxn v5).
//
// # What it holds
//
// One entry per transactional.id: its producer id and epoch, the previous
// and next producer ids (an id rotates when its epochs are exhausted), the
// transaction timeout, the state (Empty, Ongoing, PrepareCommit,
// PrepareAbort, CompleteCommit, CompleteAbort; Dead and PrepareEpochFence
// are only ever pending), the partitions of the ongoing transaction and
// its start and last-update times.
//
// # Where it is durable
//
// In the internal topic __transaction_state, as Kafka keeps it and in
// Kafka's own record format: key kmsg.TxnMetadataKey (version 0, the
// transactional id), value kmsg.TxnMetadataValue (version 1, flexible,
// with PreviousProducerID, NextProducerID and ClientTransactionVersion),
// a tombstone when an id expires. A transactional id lives in partition
// PartitionFor(id, partitions), Java's abs(hashCode) % partitions, so one
// partition moves between brokers with all its ids. The topic rather than
// the metadata store: a change of state is one record appended through the
// WAL with group commit, as for __consumer_offsets, not one store
// transaction per request, and the topic moves with leadership in a
// cluster exactly like any partition. Replay is bounded by snapshots
// (the live records appended again, then the log start moved), as for
// groups.
//
// # Invariants
//
//   - A state changes in memory only once the record saying so is durable
//     (Kafka's pending transition: an entry with a transition in flight
//     answers CONCURRENT_TRANSACTIONS).
//   - EndTxn is answered once PrepareCommit/PrepareAbort is durable; the
//     markers are then written (Markers.Write, retried with backoff until
//     it succeeds) and only then CompleteCommit/CompleteAbort is appended.
//     After a restart or a takeover, Load resumes every PrepareCommit and
//     PrepareAbort by writing its markers again; a partition whose topic
//     was deleted meanwhile is skipped, as Kafka does.
//   - An Ongoing transaction older than its timeout is aborted by the
//     coordinator with an epoch bump, which fences its producer.
//
// # Error codes
//
// Every method answers Kafka's coordinator code for the situation. The
// coordinator answers PRODUCER_FENCED where Kafka's coordinator does;
// Kafka's request handlers turn it into INVALID_PRODUCER_EPOCH for the
// request versions that predate it (InitProducerId < v4, AddPartitionsToTxn
// < v2, AddOffsetsToTxn < v2, EndTxn < v2), which is the caller's part.
//
// # Concurrency
//
// One mutex guards all state; records are appended under it, so the log's
// order is the order of the decisions. Durability callbacks never take it
// themselves: they queue work for the applier goroutine, which runs it in
// log order (the pattern of internal/group). Markers are written by one
// goroutine per completing transaction, outside the mutex.
package txn

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/applier"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/shard"
)

// StateTopic is the internal topic holding transaction state, named as in
// Kafka so tools recognise it.
const StateTopic = "__transaction_state"

// DefaultPartitions is the partition count __transaction_state is created
// with. Kafka uses 50; Vigil uses 16, as for __consumer_offsets: the count
// is fixed at creation, a partition is the unit that moves between brokers
// (16 spread evenly over the few brokers a Vigil cluster has), and each
// partition costs a coordinator (goroutines, timers) and a partition log
// even when idle, while transactional ids are few (one per producer
// instance).
const DefaultPartitions = 16

// TopicPartition names a partition of a transaction.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Marker is what Markers.Write must make durable on every one of
// Partitions: the control batch ending the transaction of producer
// ProducerID at Epoch (a commit or an abort), stamped with the
// coordinator's epoch.
type Marker struct {
	ProducerID       int64
	Epoch            int16
	Commit           bool
	CoordinatorEpoch int32
	// TransactionVersion is the transaction's (2: KIP-890 part 2, whose
	// markers carry an epoch the coordinator bumped, which the log checks
	// more strictly; WriteTxnMarkers v2+ carries it).
	TransactionVersion int8
	Partitions         []TopicPartition
}

// Markers writes transaction markers. Write returns nil once every
// partition has the marker durably; on an error the coordinator calls it
// again later with the same marker (minus partitions whose topics no
// longer exist), also after a restart: a marker written twice is an empty
// transaction's marker the second time, which Kafka's producer state
// accepts. Write must return when ctx is done.
type Markers interface {
	Write(ctx context.Context, m Marker) error
}

// IDs hands out producer ids no one has had before (producer.IDs).
type IDs interface {
	Next(ctx context.Context) (int64, error)
}

// Topics tells the coordinator which partitions exist, so markers for a
// deleted topic are skipped (storage.Engine implements it).
type Topics interface {
	PartitionExists(topic string, partition int32) bool
}

// Log is the internal topic the coordinator writes to and recovers from
// (storage.InternalTopic implements it). Implementations must keep the
// records of a partition in Append order.
type Log interface {
	// Partitions is the fixed partition count of the topic.
	Partitions() int32
	// Append appends recs to partition p. done runs once, when all of
	// them are durable (err nil, first is the offset of recs[0]) or failed.
	// done may run on the log's own goroutine, or inline when Append fails
	// at once, and must not block.
	Append(p int32, recs []batch.KV, done func(first int64, err error))
	// Replay calls fn with every record of partition p from its log start
	// to its end, in offset order.
	Replay(ctx context.Context, p int32, fn func(offset int64, r batch.KV) error) error
	// SetStart moves the log start of partition p forward to off.
	SetStart(ctx context.Context, p int32, off int64) error
}

// Deps are what the coordinator works with.
type Deps struct {
	Log     Log
	IDs     IDs
	Markers Markers
	// Topics, if set, lets marker writing skip partitions of deleted
	// topics.
	Topics Topics
	// OffsetsPartitionFor maps a group to its __consumer_offsets partition
	// for AddOffsets (false: the offsets topic does not exist yet).
	OffsetsPartitionFor func(groupID string) (int32, bool)
}

// Config tunes the coordinator; zero values take Kafka's defaults.
type Config struct {
	// Partitions is the partition count __transaction_state is created
	// with (OpenLog); a coordinator uses the count the topic has.
	// Zero: DefaultPartitions.
	Partitions int32
	// Serve are the __transaction_state partitions this coordinator loads
	// and serves (nil: all). A server runs one coordinator per partition
	// it leads, as for groups.
	Serve []int32
	// MaxTimeout is transaction.max.timeout.ms: InitProducerId refuses a
	// longer transaction timeout. Zero: 15 minutes.
	MaxTimeout time.Duration
	// IDExpiration is transactional.id.expiration.ms: an id with no
	// transaction in progress and no change for this long is removed.
	// Zero: 7 days.
	IDExpiration time.Duration
	// IDExpirationCheck is transaction.remove.expired.transaction.cleanup.interval.ms:
	// how often expired ids are looked for. Zero: 1 hour; negative: never
	// (tests call ExpireIDs themselves).
	IDExpirationCheck time.Duration
	// AbortInterval is transaction.abort.timed.out.transaction.cleanup.interval.ms:
	// how often timed-out transactions are looked for. Zero: 10 seconds;
	// negative: never (tests call AbortTimedOut themselves).
	AbortInterval time.Duration
	// MarkerBackoff is the first delay before markers (or the completion
	// record) are written again after a failure; it doubles up to 64
	// times that. Zero: 100ms.
	MarkerBackoff time.Duration
	// SnapshotMinRecords: a partition of the state log is snapshotted once
	// it holds more than twice its live records plus this many. Zero:
	// 10000.
	SnapshotMinRecords int
	// CoordinatorEpoch returns the leader epoch of a __transaction_state
	// partition, stamped into the markers of its transactions (Kafka's
	// coordinator epoch). Nil: 0, a single broker's epoch.
	CoordinatorEpoch func(p int32) int32
	Logger           *slog.Logger
}

func (c *Config) fill() {
	if c.Partitions <= 0 {
		c.Partitions = DefaultPartitions
	}
	if c.MaxTimeout <= 0 {
		c.MaxTimeout = 15 * time.Minute
	}
	if c.IDExpiration <= 0 {
		c.IDExpiration = 7 * 24 * time.Hour
	}
	if c.IDExpirationCheck == 0 {
		c.IDExpirationCheck = time.Hour
	}
	if c.AbortInterval == 0 {
		c.AbortInterval = 10 * time.Second
	}
	if c.MarkerBackoff <= 0 {
		c.MarkerBackoff = 100 * time.Millisecond
	}
	if c.SnapshotMinRecords == 0 {
		c.SnapshotMinRecords = 10000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Kafka's sentinel values and limits.
const (
	noPID    int64 = -1
	noEpoch  int16 = -1
	maxEpoch int16 = math.MaxInt16
)

// Transaction versions as Kafka numbers them: below 2 a transaction keeps
// its epoch; from 2 (KIP-890 part 2) every EndTxn bumps it.
const (
	tv0 int16 = 0
	tv2 int16 = 2
)

// serverTV is the transaction version of the coordinator's own aborts
// (timeouts, fencing), Kafka's finalized transaction.version: 2, as a
// Kafka 4 cluster is created with.
const serverTV = tv2

// epochExhausted: Kafka never hands out Short.MaxValue, so the coordinator
// can always fence the last epoch it gave.
func epochExhausted(e int16) bool { return e >= maxEpoch-1 }

// Coordinator owns the transactional ids of its __transaction_state
// partitions (Config.Serve). Safe for concurrent use.
type Coordinator struct {
	cfg     Config
	log     *slog.Logger
	tlog    Log
	ids     IDs
	markers Markers
	topics  Topics
	offsets func(string) (int32, bool)
	now     func() time.Time

	mu     sync.Mutex
	txns   map[string]*txnMeta
	parts  []*partState
	loaded bool
	closed bool

	ctx    context.Context // cancelled by Close: marker writes stop
	cancel context.CancelFunc

	apply *applier.Applier
	stop  chan struct{}
	wg    sync.WaitGroup
}

// New builds a coordinator; call Load before use (until then every
// request is answered COORDINATOR_LOAD_IN_PROGRESS).
func New(cfg Config, d Deps) *Coordinator {
	cfg.fill()
	ctx, cancel := context.WithCancel(context.Background())
	c := &Coordinator{
		cfg: cfg, log: cfg.Logger, tlog: d.Log, ids: d.IDs, markers: d.Markers, topics: d.Topics,
		offsets: d.OffsetsPartitionFor, now: time.Now,
		txns: map[string]*txnMeta{},
		ctx:  ctx, cancel: cancel,
		stop: make(chan struct{}),
	}
	c.parts = make([]*partState, d.Log.Partitions())
	for i := range c.parts {
		c.parts[i] = newPartState()
	}
	c.apply = applier.New(&c.mu)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.apply.Run(c.stop)
	}()
	return c
}

// Close stops the timers, the marker writers and the applier. A
// coordinator also closes while the broker keeps serving (its partitions
// moved to another broker, which loads them and resumes what was in
// flight), so requests waiting for an append are still answered:
// NOT_COORDINATOR, as Kafka answers after its partition emigrated.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	close(c.stop)
	c.wg.Wait()
}

// PartitionFor is the __transaction_state partition of a transactional
// id: Kafka's Utils.abs(transactionalId.hashCode) % partitions.
func PartitionFor(txnID string, partitions int32) int32 { return shard.Partition(txnID, partitions) }

func (c *Coordinator) partition(txnID string) int32 {
	return PartitionFor(txnID, int32(len(c.parts)))
}

func (c *Coordinator) nowMs() int64 { return c.now().UnixMilli() }

// later queues fn to run under c.mu on the applier goroutine, in the
// order the log made the appends durable.
func (c *Coordinator) later(fn func()) { c.apply.Later(fn) }

// sleep waits d or until the coordinator closes (false).
func (c *Coordinator) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}
