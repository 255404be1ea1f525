// Package boltstore is the embedded, single-process metadata backend: one
// bbolt file, written with one fsynced transaction per mutating call.
//
// Key layout (all bucket and key names are raw bytes):
//
//	cluster/                "id" -> cluster id, "format" -> layout version
//	topics/                 name -> JSON topicRecord
//	segments/<name>/        partition(4 BE) + flip(firstOffset)(8 BE) -> segment value
//	partitions/<name>/      partition(4 BE) -> partition state value
//	producers/<name>/       partition(4 BE) + producer id(8 BE) -> producer state (opaque)
//	quotas/                 entity key -> JSON {quota name: value}
//
// Segments and partition states live in a nested bucket per topic so that
// DeleteTopic drops them with one DeleteBucket, and so that a topic named
// "t" can never see the entries of "t1" through a prefix scan. Inside a
// topic's segment bucket, bbolt's byte order equals (partition,
// FirstOffset) order because both parts are fixed-width big-endian and the
// offset's sign bit is flipped; Segments is therefore one cursor range scan
// with no sort.
package boltstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/meta/metacodec"
)

var _ meta.Store = (*Store)(nil)

var (
	bucketCluster    = []byte("cluster")
	bucketTopics     = []byte("topics")
	bucketSegments   = []byte("segments")
	bucketPartitions = []byte("partitions")
	bucketProducers  = []byte("producers")
	bucketQuotas     = []byte("quotas")
	bucketSecurity   = []byte("security") // a nested bucket per kind, and keySecurityRev

	keyClusterID = []byte("id")
	keyFormat    = []byte("format")
	keyNextPID   = []byte("next_producer_id")
)

// formatVersion is bumped on any incompatible change to the key layout or
// value encodings, so an old binary refuses a newer file instead of
// misreading it.
const formatVersion = 1

// Value encodings carry their own version byte so a single value type can
// evolve (e.g. a new field) without a whole-file migration.
const ()

// lockTimeout bounds how long Open waits for bbolt's exclusive file lock;
// without it a second broker on the same data directory would hang
// forever instead of failing with a useful message.
const lockTimeout = time.Second

// Store is a meta.Store backed by a bbolt file. Safe for concurrent use:
// bbolt serialises writers and lets readers run on snapshots.
type Store struct {
	db *bolt.DB
	// closed turns calls after Close into meta.ErrClosed without touching
	// the (closed) bbolt handle.
	closed atomic.Bool
}

// Open opens or creates the metadata file at path.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("boltstore: open %s: metadata file locked by another process: %w", path, err)
		}
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	if err := db.Update(initLayout); err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

func initLayout(tx *bolt.Tx) error {
	// A bucket added later (producers) is created in older files here;
	// that needs no format bump because older binaries never look at it.
	for _, name := range [][]byte{bucketCluster, bucketTopics, bucketSegments, bucketPartitions, bucketProducers, bucketQuotas, bucketSecurity} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	cl := tx.Bucket(bucketCluster)
	switch v := cl.Get(keyFormat); {
	case v == nil:
		return cl.Put(keyFormat, []byte{formatVersion})
	case len(v) != 1 || v[0] != formatVersion:
		return fmt.Errorf("unsupported metadata format %x (this binary supports %d)", v, formatVersion)
	}
	return nil
}

// Close closes the file. It waits for in-flight calls to finish; later
// calls return meta.ErrClosed. Closing twice is harmless.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltstore: close: %w", err)
	}
	return nil
}

// callerError marks an error returned by a caller's callback, which is
// handed back unwrapped as the interface promises.
type callerError struct{ err error }

func (e callerError) Error() string { return e.err.Error() }

func (s *Store) view(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	return s.run(ctx, op, false, fn)
}

func (s *Store) update(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	return s.run(ctx, op, true, fn)
}

func (s *Store) run(ctx context.Context, op string, write bool, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	if s.closed.Load() {
		return fmt.Errorf("boltstore: %s: %w", op, meta.ErrClosed)
	}
	var err error
	if write {
		err = s.db.Update(fn)
	} else {
		err = s.db.View(fn)
	}
	var ce callerError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return ce.err
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		// Close won the race against this call after the check above.
		return fmt.Errorf("boltstore: %s: %w", op, meta.ErrClosed)
	}
	return fmt.Errorf("boltstore: %s: %w", op, err)
}

// ClusterID implements meta.Store. The id has the form Kafka itself uses:
// 16 random bytes in unpadded base64url (22 characters).
func (s *Store) ClusterID(ctx context.Context) (string, error) {
	var id string
	err := s.view(ctx, "cluster id", func(tx *bolt.Tx) error {
		id = string(tx.Bucket(bucketCluster).Get(keyClusterID))
		return nil
	})
	if err != nil || id != "" {
		return id, err
	}
	err = s.update(ctx, "cluster id", func(tx *bolt.Tx) error {
		cl := tx.Bucket(bucketCluster)
		// Re-read: a concurrent first call may have created it since the
		// read above, and the id must never change once handed out.
		if v := cl.Get(keyClusterID); v != nil {
			id = string(v)
			return nil
		}
		var raw [16]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return err
		}
		id = base64.RawURLEncoding.EncodeToString(raw[:])
		return cl.Put(keyClusterID, []byte(id))
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// CreateTopic implements meta.Store.
func (s *Store) CreateTopic(ctx context.Context, t meta.Topic) error {
	op := fmt.Sprintf("create topic %q", t.Name)
	if t.Name == "" {
		return fmt.Errorf("boltstore: %s: empty name", op)
	}
	val, err := metacodec.EncodeTopic(&t)
	if err != nil {
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	return s.update(ctx, op, func(tx *bolt.Tx) error {
		topics := tx.Bucket(bucketTopics)
		name := []byte(t.Name)
		if topics.Get(name) != nil {
			return meta.ErrTopicExists
		}
		// DeleteTopic removes these, but a fresh topic must start empty
		// even if an older file (or a bug) left some behind.
		for _, b := range [][]byte{bucketSegments, bucketPartitions, bucketProducers} {
			parent := tx.Bucket(b)
			if parent.Bucket(name) != nil {
				if err := parent.DeleteBucket(name); err != nil {
					return err
				}
			}
			if _, err := parent.CreateBucket(name); err != nil {
				return err
			}
		}
		return topics.Put(name, val)
	})
}

// Topics implements meta.Store.
func (s *Store) Topics(ctx context.Context) ([]meta.Topic, error) {
	var out []meta.Topic
	err := s.view(ctx, "list topics", func(tx *bolt.Tx) error {
		// bbolt iterates in byte order of the key, which is Go's string order.
		return tx.Bucket(bucketTopics).ForEach(func(_, v []byte) error {
			t, err := metacodec.DecodeTopic(v)
			if err != nil {
				return err
			}
			out = append(out, t)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateTopic implements meta.Store. fn runs inside the write
// transaction, so it must be quick and must not call back into the Store
// (bbolt allows one writer; a nested write would deadlock).
func (s *Store) UpdateTopic(ctx context.Context, name string, fn func(*meta.Topic) error) error {
	return s.update(ctx, fmt.Sprintf("update topic %q", name), func(tx *bolt.Tx) error {
		topics := tx.Bucket(bucketTopics)
		v := topics.Get([]byte(name))
		if v == nil {
			return meta.ErrUnknownTopic
		}
		// Decoded afresh, so whatever fn mutates before failing (including
		// the Configs map) never leaks into the store or other callers.
		t, err := metacodec.DecodeTopic(v)
		if err != nil {
			return err
		}
		orig := t
		if err := fn(&t); err != nil {
			return callerError{err}
		}
		// Name is the key and ID is what WAL entries and clients refer to;
		// changing either here would orphan data, so refuse rather than trust.
		if t.Name != orig.Name || t.ID != orig.ID {
			return errors.New("update must not change topic name or id")
		}
		val, err := metacodec.EncodeTopic(&t)
		if err != nil {
			return err
		}
		return topics.Put([]byte(name), val)
	})
}

// DeleteTopic implements meta.Store.
func (s *Store) DeleteTopic(ctx context.Context, name string) ([]meta.Segment, error) {
	return s.deleteTopic(ctx, name, nil)
}

// DeleteTopicID implements meta.Store.
func (s *Store) DeleteTopicID(ctx context.Context, name string, id [16]byte) ([]meta.Segment, error) {
	return s.deleteTopic(ctx, name, &id)
}

func (s *Store) deleteTopic(ctx context.Context, name string, id *[16]byte) ([]meta.Segment, error) {
	var removed []meta.Segment
	err := s.update(ctx, fmt.Sprintf("delete topic %q", name), func(tx *bolt.Tx) error {
		key := []byte(name)
		topics := tx.Bucket(bucketTopics)
		v := topics.Get(key)
		if v == nil {
			return meta.ErrUnknownTopic
		}
		if id != nil {
			t, err := metacodec.DecodeTopic(v)
			if err != nil {
				return err
			}
			if t.ID != *id {
				return meta.ErrUnknownTopic
			}
		}
		segs := tx.Bucket(bucketSegments)
		if b := segs.Bucket(key); b != nil {
			err := b.ForEach(func(k, v []byte) error {
				seg, err := metacodec.DecodeSegment(name, k, v)
				if err != nil {
					return err
				}
				removed = append(removed, seg)
				return nil
			})
			if err != nil {
				return err
			}
			if err := segs.DeleteBucket(key); err != nil {
				return err
			}
		}
		for _, name := range [][]byte{bucketPartitions, bucketProducers} {
			parent := tx.Bucket(name)
			if parent.Bucket(key) != nil {
				if err := parent.DeleteBucket(key); err != nil {
					return err
				}
			}
		}
		return topics.Delete(key)
	})
	if err != nil {
		return nil, err
	}
	return removed, nil
}

// segmentWriter resolves each topic's segment bucket once per transaction;
// an upload carries many partitions of few topics.
type segmentWriter struct {
	tx      *bolt.Tx
	buckets map[string]*bolt.Bucket // nil value: topic does not exist
	key     [12]byte
}

func newSegmentWriter(tx *bolt.Tx) *segmentWriter {
	return &segmentWriter{tx: tx, buckets: map[string]*bolt.Bucket{}}
}

func (w *segmentWriter) bucket(topic string, create bool) (*bolt.Bucket, error) {
	if b, ok := w.buckets[topic]; ok {
		return b, nil
	}
	var b *bolt.Bucket
	name := []byte(topic)
	if w.tx.Bucket(bucketTopics).Get(name) != nil {
		parent := w.tx.Bucket(bucketSegments)
		if create {
			var err error
			if b, err = parent.CreateBucketIfNotExists(name); err != nil {
				return nil, err
			}
		} else {
			b = parent.Bucket(name)
		}
	}
	w.buckets[topic] = b
	return b, nil
}

// put stores seg unless its topic is gone: an upload may finish after its
// topic was deleted, and resurrecting index entries for it would leak
// them (and attach them to a later topic of the same name).
func (w *segmentWriter) put(seg *meta.Segment) error {
	b, err := w.bucket(seg.Topic, true)
	if err != nil || b == nil {
		return err
	}
	metacodec.PutSegmentKey(w.key[:], seg.Partition, seg.FirstOffset)
	// bbolt copies the key but keeps the value slice until commit, so each
	// value needs its own buffer.
	return b.Put(w.key[:], metacodec.AppendSegmentValue(make([]byte, 0, 16+len(seg.Object)), seg))
}

func (w *segmentWriter) delete(seg *meta.Segment) error {
	b, err := w.bucket(seg.Topic, false)
	if err != nil || b == nil {
		return err
	}
	metacodec.PutSegmentKey(w.key[:], seg.Partition, seg.FirstOffset)
	return b.Delete(w.key[:])
}

// AddSegments implements meta.Store. An entry with the same (Topic,
// Partition, FirstOffset) as a stored one replaces it, so retrying an
// upload's commit is idempotent. Producer states go in the same
// transaction.
func (s *Store) AddSegments(ctx context.Context, segs []meta.Segment, producers ...meta.Producer) error {
	if len(segs) == 0 && len(producers) == 0 {
		return nil
	}
	return s.update(ctx, fmt.Sprintf("add %d segments and %d producer states", len(segs), len(producers)), func(tx *bolt.Tx) error {
		w := newSegmentWriter(tx)
		for i := range segs {
			if err := w.put(&segs[i]); err != nil {
				return err
			}
		}
		return putProducers(tx, producers)
	})
}

// ReplaceSegments implements meta.Store. Removals run before additions so
// a replacement starting at the same offset as a removed entry (the usual
// compaction result) survives. Entries of topics that no longer exist are
// ignored on both sides, as in AddSegments, and removing an entry that is
// not stored is not an error.
func (s *Store) ReplaceSegments(ctx context.Context, remove, add []meta.Segment) error {
	if len(remove) == 0 && len(add) == 0 {
		return nil
	}
	op := fmt.Sprintf("replace %d segments with %d", len(remove), len(add))
	return s.update(ctx, op, func(tx *bolt.Tx) error {
		w := newSegmentWriter(tx)
		for i := range remove {
			if err := w.delete(&remove[i]); err != nil {
				return err
			}
		}
		for i := range add {
			if err := w.put(&add[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// Segments implements meta.Store. An unknown topic has no entries.
func (s *Store) Segments(ctx context.Context, topic string, partition int32) ([]meta.Segment, error) {
	var out []meta.Segment
	err := s.view(ctx, fmt.Sprintf("segments of %q/%d", topic, partition), func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSegments).Bucket([]byte(topic))
		if b == nil {
			return nil
		}
		var prefix [4]byte
		binary.BigEndian.PutUint32(prefix[:], uint32(partition))
		c := b.Cursor()
		for k, v := c.Seek(prefix[:]); k != nil && bytes.HasPrefix(k, prefix[:]); k, v = c.Next() {
			seg, err := metacodec.DecodeSegment(topic, k, v)
			if err != nil {
				return err
			}
			out = append(out, seg)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AllSegments implements meta.Store.
func (s *Store) AllSegments(ctx context.Context) ([]meta.Segment, error) {
	var out []meta.Segment
	err := s.view(ctx, "all segments", func(tx *bolt.Tx) error {
		parent := tx.Bucket(bucketSegments)
		return parent.ForEachBucket(func(name []byte) error {
			topic := string(name)
			return parent.Bucket(name).ForEach(func(k, v []byte) error {
				seg, err := metacodec.DecodeSegment(topic, k, v)
				if err != nil {
					return err
				}
				out = append(out, seg)
				return nil
			})
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PartitionState implements meta.Store. An unknown topic reads as the
// zero state, like a partition that was never set.
func (s *Store) PartitionState(ctx context.Context, topic string, partition int32) (meta.PartitionState, error) {
	var st meta.PartitionState
	err := s.view(ctx, fmt.Sprintf("partition state of %q/%d", topic, partition), func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPartitions).Bucket([]byte(topic))
		if b == nil {
			return nil
		}
		var key [4]byte
		binary.BigEndian.PutUint32(key[:], uint32(partition))
		v := b.Get(key[:])
		if v == nil {
			return nil
		}
		var err error
		st, err = metacodec.DecodeState(v)
		return err
	})
	if err != nil {
		return meta.PartitionState{}, err
	}
	return st, nil
}

// SetPartitionState implements meta.Store.
func (s *Store) SetPartitionState(ctx context.Context, topic string, partition int32, st meta.PartitionState) error {
	return s.update(ctx, fmt.Sprintf("set partition state of %q/%d", topic, partition), func(tx *bolt.Tx) error {
		name := []byte(topic)
		if tx.Bucket(bucketTopics).Get(name) == nil {
			return meta.ErrUnknownTopic
		}
		b, err := tx.Bucket(bucketPartitions).CreateBucketIfNotExists(name)
		if err != nil {
			return err
		}
		key := binary.BigEndian.AppendUint32(nil, uint32(partition))
		return b.Put(key, metacodec.EncodeState(st))
	})
}

// PutProducers implements meta.Store.
func (s *Store) PutProducers(ctx context.Context, ps []meta.Producer) error {
	if len(ps) == 0 {
		return nil
	}
	return s.update(ctx, fmt.Sprintf("put %d producer states", len(ps)), func(tx *bolt.Tx) error {
		return putProducers(tx, ps)
	})
}

// putProducers stores or deletes producer states in tx.
func putProducers(tx *bolt.Tx, ps []meta.Producer) error {
	buckets := map[string]*bolt.Bucket{}
	for i := range ps {
		p := &ps[i]
		b, ok := buckets[p.Topic]
		if !ok {
			// Only the topic the state was taken from: a topic deleted and
			// re-created under the same name must start with no producers.
			if v := tx.Bucket(bucketTopics).Get([]byte(p.Topic)); v != nil {
				t, err := metacodec.DecodeTopic(v)
				if err != nil {
					return err
				}
				if t.ID == p.TopicID {
					if b, err = tx.Bucket(bucketProducers).CreateBucketIfNotExists([]byte(p.Topic)); err != nil {
						return err
					}
				}
			}
			buckets[p.Topic] = b
		}
		if b == nil {
			continue
		}
		key := metacodec.AppendProducerKey(make([]byte, 0, 12), p.Partition, p.ProducerID)
		var err error
		if p.Data == nil {
			err = b.Delete(key)
		} else {
			err = b.Put(key, p.Data)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Producers implements meta.Store.
func (s *Store) Producers(ctx context.Context, topic string, partition int32) ([]meta.Producer, error) {
	var out []meta.Producer
	err := s.view(ctx, fmt.Sprintf("producer states of %q/%d", topic, partition), func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketProducers).Bucket([]byte(topic))
		if b == nil {
			return nil
		}
		prefix := binary.BigEndian.AppendUint32(nil, uint32(partition))
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			p, err := metacodec.DecodeProducer(topic, k, v)
			if err != nil {
				return err
			}
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AllocateProducerIDs implements meta.Store.
func (s *Store) AllocateProducerIDs(ctx context.Context, n int64) (int64, error) {
	if n <= 0 {
		return 0, fmt.Errorf("boltstore: allocate %d producer ids: count must be positive", n)
	}
	var first int64
	err := s.update(ctx, fmt.Sprintf("allocate %d producer ids", n), func(tx *bolt.Tx) error {
		cl := tx.Bucket(bucketCluster)
		if v := cl.Get(keyNextPID); v != nil {
			if len(v) != 8 {
				return fmt.Errorf("corrupt next producer id %x", v)
			}
			first = int64(binary.BigEndian.Uint64(v))
		}
		return cl.Put(keyNextPID, binary.BigEndian.AppendUint64(nil, uint64(first+n)))
	})
	if err != nil {
		return 0, err
	}
	return first, nil
}

// ClientQuotas implements meta.Store.
func (s *Store) ClientQuotas(ctx context.Context) (map[string]map[string]float64, error) {
	out := map[string]map[string]float64{}
	err := s.view(ctx, "client quotas", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketQuotas).ForEach(func(k, v []byte) error {
			var q map[string]float64
			if err := json.Unmarshal(v, &q); err != nil {
				return fmt.Errorf("corrupt quotas of %q: %w", k, err)
			}
			out[string(k)] = q
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SetClientQuotas implements meta.Store.
func (s *Store) SetClientQuotas(ctx context.Context, entity string, quotas map[string]float64) error {
	if entity == "" {
		return fmt.Errorf("boltstore: set client quotas: empty entity")
	}
	return s.update(ctx, fmt.Sprintf("set client quotas of %q", entity), func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQuotas)
		if len(quotas) == 0 {
			return b.Delete([]byte(entity))
		}
		v, err := json.Marshal(quotas)
		if err != nil {
			return err
		}
		return b.Put([]byte(entity), v)
	})
}

// keySecurityRev, in bucketCluster, counts UpdateSecurityRecords calls.
var keySecurityRev = []byte("security_rev")

// SecurityRecords implements meta.Store.
func (s *Store) SecurityRecords(ctx context.Context, kind string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.view(ctx, "security records "+kind, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSecurity).Bucket([]byte(kind))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			out[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateSecurityRecords implements meta.Store.
func (s *Store) UpdateSecurityRecords(ctx context.Context, kind string, put map[string][]byte, del []string) error {
	if kind == "" {
		return fmt.Errorf("boltstore: update security records: empty kind")
	}
	return s.update(ctx, "update security records "+kind, func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketSecurity).CreateBucketIfNotExists([]byte(kind))
		if err != nil {
			return err
		}
		for _, k := range del {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		for k, v := range put {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		cl := tx.Bucket(bucketCluster)
		rev := uint64(0)
		if v := cl.Get(keySecurityRev); len(v) == 8 {
			rev = binary.BigEndian.Uint64(v)
		}
		return cl.Put(keySecurityRev, binary.BigEndian.AppendUint64(nil, rev+1))
	})
}

// SecurityRevision implements meta.Store.
func (s *Store) SecurityRevision(ctx context.Context) (int64, error) {
	var rev int64
	err := s.view(ctx, "security revision", func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketCluster).Get(keySecurityRev); len(v) == 8 {
			rev = int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	return rev, err
}
