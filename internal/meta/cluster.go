package meta

import (
	"context"
	"errors"
	"time"
)

// ErrFenced is returned when a write names a leader epoch that is no
// longer the partition's current one: another broker has taken the
// partition over, and this broker must stop writing it.
var ErrFenced = errors.New("meta: leader epoch fenced")

// BrokerInfo is one live broker as it registered.
type BrokerInfo struct {
	ID   int32
	Addr string // host:port advertised to clients (of the first listener)
	// Endpoints is the advertised host:port of each listener, by security
	// protocol: a client is given every broker's address for the protocol
	// of the listener it came in on.
	Endpoints map[string]string `json:",omitempty"`
	Zone      string
	Draining  bool // set by `vigil cluster drain`: lead nothing
}

// Leader is a partition's current leader.
type Leader struct {
	Topic     string
	Partition int32
	Broker    int32
	Epoch     int32
	// Serving is the last epoch that completed its takeover (see
	// Acquired.Serving).
	Serving int32
}

// Acquired is what a broker learns when it takes a partition over.
type Acquired struct {
	Epoch int32 // the new leader epoch, one more than any before
	// Serving is the last epoch that completed recovery and may have
	// written records: WAL entries beyond the segment index that carry
	// another epoch were never acknowledged and must be discarded.
	Serving int32
}

// EpochStart is where a leader epoch began in a partition's log: the log
// end offset when its leader took the partition over. A partition's
// history of them answers OffsetForLeaderEpoch as Kafka's leader-epoch
// cache does.
type EpochStart struct {
	Epoch  int32
	Offset int64
}

// Session is a broker's membership, bound to a lease. While the lease
// lives the broker's registration and the partitions it leads are its
// own; once it expires they are released by the store.
type Session interface {
	// Valid reports whether the lease is certainly still held: the last
	// keepalive was sent less than the TTL ago. A broker checks it before
	// acknowledging a write, so that a broker paused past its lease
	// acknowledges nothing after its partitions moved.
	Valid() bool
	// Done is closed when the store says the lease is gone, or the
	// session is closed. A session can be neither Valid nor Done: the
	// store cannot be reached, and whether the lease lives is unknown.
	Done() <-chan struct{}
	// Changed returns a channel closed at the next change of Valid or
	// Done (for waiting on an unknown lease).
	Changed() <-chan struct{}
	// Close revokes the lease, releasing everything at once.
	Close() error
}

// Cluster is the membership and leadership part of a metadata store that
// several brokers share (etcd). The embedded store does not implement it:
// a single process leads every partition.
type Cluster interface {
	// Join registers the broker under a new lease of ttl and keeps it
	// alive until the session ends. A second live registration of the
	// same id is refused.
	Join(ctx context.Context, b BrokerInfo, ttl time.Duration) (Session, error)
	// Brokers returns the live brokers, sorted by id.
	Brokers(ctx context.Context) ([]BrokerInfo, error)
	// SetDraining marks a broker (live or not) as draining or not.
	SetDraining(ctx context.Context, id int32, draining bool) error
	// Leaders returns every partition's current leader.
	Leaders(ctx context.Context) ([]Leader, error)
	// Acquire makes the session's broker the leader of a partition that
	// has none, with the next epoch. ErrFenced if someone else leads it.
	Acquire(ctx context.Context, s Session, brokerID int32, topic string, partition int32) (Acquired, error)
	// CommitRecovery adds the segments holding a recovered WAL tail,
	// stores the producer states that cover its batches (entries of other
	// partitions, or of a topic re-created since, are skipped), replaces
	// the partition's leader-epoch history with epochs and records epoch
	// as the serving epoch, in one transaction that fails with ErrFenced
	// unless epoch is still current.
	CommitRecovery(ctx context.Context, topic string, partition int32, epoch int32, epochs []EpochStart, segs []Segment, producers []Producer) error
	// EpochStarts returns a partition's leader-epoch history as the last
	// recovery commit stored it, oldest first (empty for a topic no
	// takeover has committed yet).
	EpochStarts(ctx context.Context, topic string, partition int32) ([]EpochStart, error)
	// Release gives up leadership of a partition held at epoch.
	Release(ctx context.Context, brokerID int32, topic string, partition int32, epoch int32) error
	// Watch sends on the channel (coalesced) whenever brokers, leaders or
	// topics change, until ctx ends.
	Watch(ctx context.Context) <-chan struct{}
}
