// Package meta defines the metadata store: the small, strongly consistent
// state a broker needs beside the record data itself (topics, their
// configs, partition log-start offsets and leader epochs, and the segment
// index that maps offsets to byte ranges of objects in the object store).
//
// Record bytes never pass through here. The produce and fetch hot paths
// never wait on the store; only batched work (segment uploads, topic admin)
// does. Backends: boltstore (embedded, single process) and etcdstore
// (etcd, shared).
package meta

import (
	"context"
	"errors"
)

// Errors every backend returns (wrapped or not) so callers can map them to
// Kafka error codes with errors.Is.
var (
	ErrTopicExists  = errors.New("meta: topic already exists")
	ErrUnknownTopic = errors.New("meta: unknown topic")
	ErrClosed       = errors.New("meta: store closed")
)

// Topic is one topic's durable description.
type Topic struct {
	Name       string
	ID         [16]byte // Kafka topic ID (UUID), fixed at creation
	Partitions int32
	// Configs holds only the configs set explicitly on the topic; defaults
	// come from the broker config and are not copied here, so changing a
	// broker default changes every topic that did not override it.
	Configs   map[string]string
	CreatedMs int64
}

// Segment is one index entry: the contiguous byte range inside an object
// that holds a run of record batches of one partition.
type Segment struct {
	Topic        string
	Partition    int32
	Object       string // object key in the object store
	Position     int64  // byte offset of the first batch inside the object
	Size         int64  // bytes of this partition's batches in the object
	FirstOffset  int64  // base offset of the first batch
	LastOffset   int64  // offset of the last record of the last batch (inclusive)
	MaxTimestamp int64  // max timestamp over the batches (ms)
	// LeaderEpoch, when positive, fences the write that adds or removes
	// this entry: a store shared by several brokers (meta.Cluster) makes
	// it fail with ErrFenced unless it is still the partition's epoch. It
	// is not stored; a single-process store ignores it.
	LeaderEpoch int32
	// Aborted is the aborted-transaction index of the run: the aborted
	// transactions whose abort marker lies in it (LastOffset within
	// [FirstOffset, LastOffset]), in marker order, as Kafka keeps a
	// transaction index per segment. Empty for most runs.
	Aborted []AbortedTxn
}

// AbortedTxn is one aborted transaction of a partition: its producer,
// the offset of its first batch and that of its abort marker.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64
}

// SameSegment reports whether a and b are the same index entry, aborted
// index included (LeaderEpoch, a write's fence, is not compared).
func SameSegment(a, b Segment) bool {
	if len(a.Aborted) != len(b.Aborted) {
		return false
	}
	for i := range a.Aborted {
		if a.Aborted[i] != b.Aborted[i] {
			return false
		}
	}
	return a.Topic == b.Topic && a.Partition == b.Partition && a.Object == b.Object && a.Position == b.Position &&
		a.Size == b.Size && a.FirstOffset == b.FirstOffset && a.LastOffset == b.LastOffset && a.MaxTimestamp == b.MaxTimestamp
}

// PartitionState is the per-partition state that is not derived from the
// segment index.
type PartitionState struct {
	// LogStart is the earliest offset a client may read (moved by
	// DeleteRecords and retention). Zero until moved.
	LogStart    int64
	LeaderEpoch int32
}

// Producer is the idempotence state of one producer on one partition. The
// bytes are owned by package producer; the store keeps them opaque.
type Producer struct {
	Topic      string
	TopicID    [16]byte // guards against a topic deleted and re-created meanwhile
	Partition  int32
	ProducerID int64
	Data       []byte // nil: forget this producer
	// LeaderEpoch fences the write as Segment.LeaderEpoch does, so a
	// deposed leader never overwrites the new leader's producer state.
	LeaderEpoch int32
}

// Store is the metadata interface. Implementations must be safe for
// concurrent use. Every method that changes state is atomic: either all of
// its effect is visible afterwards or none of it.
type Store interface {
	// ClusterID returns the cluster's id, creating and persisting a new
	// random one on first call.
	ClusterID(ctx context.Context) (string, error)

	// CreateTopic stores a new topic; ErrTopicExists if the name is taken.
	CreateTopic(ctx context.Context, t Topic) error
	// Topics returns every topic, sorted by name.
	Topics(ctx context.Context) ([]Topic, error)
	// UpdateTopic applies fn to the stored topic and stores the result
	// atomically; ErrUnknownTopic if absent. If fn returns an error nothing
	// is stored and that error is returned. fn must not change Name or ID.
	UpdateTopic(ctx context.Context, name string, fn func(*Topic) error) error
	// DeleteTopic removes the topic, all its segment index entries and
	// partition states in one transaction, and returns the removed
	// segments so the caller can garbage-collect objects. ErrUnknownTopic
	// if absent.
	DeleteTopic(ctx context.Context, name string) ([]Segment, error)
	// DeleteTopicID is DeleteTopic of the topic named name only while its
	// id is id: a topic deleted and created again under the name (by
	// another broker, since the caller looked it up) stays, and
	// ErrUnknownTopic is returned.
	DeleteTopicID(ctx context.Context, name string, id [16]byte) ([]Segment, error)

	// AddSegments adds index entries in one transaction (one upload = one
	// call), and stores producers' states (as PutProducers does, fenced
	// alike) in the same one: an upload's index and the producer state as
	// of it are durable together, so a restart never finds a state that
	// covers batches the index lacks or the reverse (a transaction marker
	// counted in one and not the other would lose an aborted transaction).
	// Entries for unknown topics are dropped silently, because a topic may
	// be deleted while its data is being uploaded.
	AddSegments(ctx context.Context, segs []Segment, producers ...Producer) error
	// ReplaceSegments atomically removes the entries in remove (matched by
	// Topic, Partition, FirstOffset) and adds those in add. Used by
	// compaction and retention.
	ReplaceSegments(ctx context.Context, remove, add []Segment) error
	// Segments returns the index entries of one partition, sorted by
	// FirstOffset.
	Segments(ctx context.Context, topic string, partition int32) ([]Segment, error)
	// AllSegments returns every index entry (used to find unreferenced
	// objects), in no particular order.
	AllSegments(ctx context.Context) ([]Segment, error)

	// PartitionState returns a partition's state; the zero value if never set.
	PartitionState(ctx context.Context, topic string, partition int32) (PartitionState, error)
	// SetPartitionState stores a partition's state; ErrUnknownTopic if the
	// topic does not exist.
	SetPartitionState(ctx context.Context, topic string, partition int32, st PartitionState) error

	// PutProducers stores or (Data nil) deletes producer states in one
	// transaction. Entries whose topic does not exist, or exists with
	// another TopicID, are dropped silently like AddSegments'.
	PutProducers(ctx context.Context, ps []Producer) error
	// Producers returns the producer states of one partition, sorted by
	// ProducerID (TopicID is left zero).
	Producers(ctx context.Context, topic string, partition int32) ([]Producer, error)
	// AllocateProducerIDs durably reserves n consecutive producer ids and
	// returns the first; ids are never handed out twice. The first id is 0.
	AllocateProducerIDs(ctx context.Context, n int64) (int64, error)

	// ClientQuotas returns every stored client quota: entity key (as
	// package quota encodes it) to quota name to value.
	ClientQuotas(ctx context.Context) (map[string]map[string]float64, error)
	// SetClientQuotas replaces the quotas of one entity; an empty map
	// removes the entity.
	SetClientQuotas(ctx context.Context, entity string, quotas map[string]float64) error

	SecurityStore

	Close() error
}

// Kinds of security records.
const (
	SecurityACL   = "acl"   // ACL bindings, as package acl encodes them
	SecurityScram = "scram" // SCRAM credentials, as package sasl encodes them
)

// SecurityStore keeps the security boundary that every broker of a cluster
// must agree on: ACL bindings and SCRAM credentials. Records are opaque
// here, each under its kind and a key that its owner derives.
type SecurityStore interface {
	// SecurityRecords returns every record of a kind, by key.
	SecurityRecords(ctx context.Context, kind string) (map[string][]byte, error)
	// UpdateSecurityRecords stores put and removes del (absent keys are
	// ignored) in one transaction, and moves the security revision on.
	UpdateSecurityRecords(ctx context.Context, kind string, put map[string][]byte, del []string) error
	// SecurityRevision changes with every UpdateSecurityRecords of any
	// broker, so a broker polls it cheaply to know when to reload.
	SecurityRevision(ctx context.Context) (int64, error)
}
