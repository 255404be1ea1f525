// Package etcdstore is the shared metadata backend: every key lives in an
// etcd cluster under one prefix, so several brokers (and restarts on other
// machines) see one metadata state. Every mutating call is one etcd
// transaction.
//
// Key layout under the prefix P (default "/vigil/"; one prefix per Vigil
// cluster). <t> is the topic name escaped with url.PathEscape, which is
// the identity for legal Kafka names and never contains "/", so the
// prefix "segments/t/" can never match the entries of "t1" or "t/1":
//
//	P cluster/format            layout version ("1")
//	P cluster/id                cluster id
//	P cluster/next_producer_id  8 BE bytes: the next unallocated producer id
//	P cluster/topics_epoch      rewritten by every CreateTopic and DeleteTopic
//	P topics/<t>                JSON topic record (metacodec, as in boltstore)
//	P segments/<t>/ + partition(4 BE) + flip(firstOffset)(8 BE) -> segment value
//	P partitions/<t>/ + partition(4 BE)                         -> partition state value
//	P producers/<t>/ + partition(4 BE) + producer id(8 BE)      -> producer state (opaque)
//	P leaderepochs/<t>/ + partition(4 BE) + epoch(4 BE)         -> the epoch's start offset (decimal)
//	P quotas/<entity>           JSON {quota name: value}
//	P security/<kind>/<key>     opaque security record (ACL binding, SCRAM credential)
//	P security_rev              rewritten by every security update: its ModRevision is the revision
//
// etcd returns ranges in byte order of the key, and the segment key suffix
// is fixed-width big-endian with the offset's sign bit flipped, so
// Segments is one range read with no sort. Values use metacodec, the
// encodings boltstore uses too.
//
// Atomicity. Existence checks happen inside the writing transaction as
// compares: CreateTopic requires CreateRevision(topic)==0, SetPartitionState
// requires CreateRevision(topic)>0, DeleteTopic removes the topic key and
// the four per-topic prefixes (with prefix deletes) in one transaction.
// Calls that must drop entries of unknown (or re-created) topics
// (AddSegments, ReplaceSegments, PutProducers) read the topics first and
// then write with the compare ModRevision(topics_epoch) <= read revision:
// any create or delete in between fails the compare and the call retries
// with fresh topics. UpdateTopic and AllocateProducerIDs are
// compare-and-swap loops on the key's ModRevision.
//
// The 128-operation limit. etcd refuses a transaction with more than
// --max-txn-ops (default 128) operations in one branch. A call with more
// operations stays one transaction: its operations are packed into nested
// transactions (a Txn op inside the Then branch, with no compares), and
// etcd applies the whole tree at one revision. etcd charges each nesting
// level's width against the same budget, so the tree uses equal fan-out f
// per level with depth*f <= 128 (two levels: 4096 operations, three:
// 74088). In practice the bound is etcd's request size limit (default
// 1.5 MiB), roughly 15000 segment entries per call; a larger call fails
// with etcd's error instead of being split non-atomically.
package etcdstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/meta/metacodec"
)

var _ meta.Store = (*Store)(nil)

const (
	formatVersion = "1"

	// DefaultPrefix is used when Config.Prefix is empty.
	DefaultPrefix = "/vigil/"
	// DefaultMaxTxnOps is etcd's default --max-txn-ops.
	DefaultMaxTxnOps = 128

	// pageSize bounds one range response of AllSegments and friends.
	pageSize = 1000
)

// Config says where the store lives.
type Config struct {
	Endpoints   []string      // host:port of etcd members
	Prefix      string        // key prefix; DefaultPrefix if empty; a trailing "/" is added
	DialTimeout time.Duration // default 5s
	// MaxTxnOps is the etcd cluster's --max-txn-ops; DefaultMaxTxnOps if 0.
	MaxTxnOps int
	// TLS, if set, speaks TLS to the members (its certificate, if any, is
	// the client certificate etcd's --client-cert-auth asks for).
	TLS *tls.Config
	// Username and Password log in to an etcd with authentication on.
	Username, Password string
}

// Store is a meta.Store backed by etcd. Safe for concurrent use.
type Store struct {
	cli       *clientv3.Client
	p         string // prefix, ending in "/"
	maxTxnOps int
	closed    atomic.Bool
}

// Open connects to etcd, checks (or writes) the layout version under the
// prefix and returns the Store. Close closes the client.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcdstore: open: no endpoints")
	}
	dial := cfg.DialTimeout
	if dial <= 0 {
		dial = 5 * time.Second
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: dial,
		TLS:         cfg.TLS,
		Username:    cfg.Username,
		Password:    cfg.Password,
		Context:     context.WithoutCancel(ctx),
		// The client's default zap logger writes JSON to stderr; the
		// store reports errors through its return values instead.
		Logger: zap.NewNop(),
		// Reconnect within a second of etcd coming back (gRPC's default
		// backoff grows to two minutes): a broker must renew its lease
		// within the lease TTL after an etcd restart to keep its
		// partitions.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("etcdstore: open %v: %w", cfg.Endpoints, err)
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	s := &Store{cli: cli, p: prefix, maxTxnOps: cfg.MaxTxnOps}
	if s.maxTxnOps <= 0 {
		s.maxTxnOps = DefaultMaxTxnOps
	}
	octx, cancel := context.WithTimeout(ctx, dial)
	defer cancel()
	if err := s.initLayout(octx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("etcdstore: open %v prefix %q: %w", cfg.Endpoints, prefix, err)
	}
	return s, nil
}

func (s *Store) initLayout(ctx context.Context) error {
	k := s.p + "cluster/format"
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, formatVersion)).
		Else(clientv3.OpGet(k)).Commit()
	if err != nil {
		return err
	}
	if resp.Succeeded {
		return nil
	}
	var v string
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 {
		v = string(kvs[0].Value)
	}
	if v != formatVersion {
		return fmt.Errorf("unsupported metadata format %q (this binary supports %s)", v, formatVersion)
	}
	return nil
}

// Close closes the etcd client; later calls return meta.ErrClosed.
// Closing twice is harmless.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("etcdstore: close: %w", err)
	}
	return nil
}

// callerError marks an error of a caller's callback, returned unwrapped.
type callerError struct{ err error }

func (e callerError) Error() string { return e.err.Error() }

// run checks the context and the closed flag, runs fn and wraps its error
// with the operation's name.
func (s *Store) run(ctx context.Context, op string, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("etcdstore: %s: %w", op, err)
	}
	if s.closed.Load() {
		return fmt.Errorf("etcdstore: %s: %w", op, meta.ErrClosed)
	}
	err := fn()
	var ce callerError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return ce.err
	case s.closed.Load():
		// Close won the race against this call.
		return fmt.Errorf("etcdstore: %s: %w (%v)", op, meta.ErrClosed, err)
	}
	return fmt.Errorf("etcdstore: %s: %w", op, err)
}

// Key helpers.

func esc(topic string) string { return url.PathEscape(topic) }

func (s *Store) topicKey(t string) string      { return s.p + "topics/" + esc(t) }
func (s *Store) segPrefix(t string) string     { return s.p + "segments/" + esc(t) + "/" }
func (s *Store) partPrefix(t string) string    { return s.p + "partitions/" + esc(t) + "/" }
func (s *Store) prodPrefix(t string) string    { return s.p + "producers/" + esc(t) + "/" }
func (s *Store) lepochPrefix(t string) string  { return s.p + "leaderepochs/" + esc(t) + "/" }
func (s *Store) epochKey() string              { return s.p + "cluster/topics_epoch" }
func (s *Store) quotaKey(entity string) string { return s.p + "quotas/" + entity }

func partKey(partition int32) string {
	return string(binary.BigEndian.AppendUint32(nil, uint32(partition)))
}

func (s *Store) segKey(seg *meta.Segment) string {
	var k [12]byte
	binary.BigEndian.PutUint32(k[0:4], uint32(seg.Partition))
	binary.BigEndian.PutUint64(k[4:12], uint64(seg.FirstOffset)^(1<<63))
	return s.segPrefix(seg.Topic) + string(k[:])
}

// txn commits one transaction whose Then branch is ops, packed into
// nested transactions when there are more than maxTxnOps of them.
func (s *Store) txn(ctx context.Context, cmps []clientv3.Cmp, ops []clientv3.Op, els ...clientv3.Op) (*clientv3.TxnResponse, error) {
	return s.cli.Txn(ctx).If(cmps...).Then(s.nest(ops, len(cmps))...).Else(els...).Commit()
}

// nest packs ops into a tree of nested transactions no level of which is
// wider than f, with depth*f within the op budget (see the package
// comment). reserved is the width the top level needs for other things
// (its compares).
func (s *Store) nest(ops []clientv3.Op, reserved int) []clientv3.Op {
	n := len(ops)
	if n <= s.maxTxnOps && reserved <= s.maxTxnOps {
		return ops
	}
	f := 0
	for depth := 2; depth <= 8; depth++ {
		f = int(math.Ceil(math.Pow(float64(n), 1/float64(depth))))
		for f > 1 && pow(f-1, depth) >= n { // guard against rounding up too far
			f--
		}
		if depth*max(f, reserved) <= s.maxTxnOps {
			break
		}
	}
	f = max(f, 2)
	for len(ops) > f {
		var next []clientv3.Op
		for chunk := range slices.Chunk(ops, f) {
			next = append(next, clientv3.OpTxn(nil, chunk, nil))
		}
		ops = next
	}
	return ops
}

func pow(b, e int) int {
	r := 1
	for range e {
		r *= b
		if r > math.MaxInt32 {
			return r
		}
	}
	return r
}

// forRange calls fn for every key/value in [key, end), read in pages at
// one revision so a large range never needs one huge response. If etcd
// compacts that revision mid-scan, the scan starts over at a new one; fn
// runs only once the whole range is read. It returns the revision read.
func (s *Store) forRange(ctx context.Context, key, end string, fn func(k, v []byte) error) (int64, error) {
	var (
		kvs  []*mvccpb.KeyValue
		rev  int64
		from = key
	)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(pageSize),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.cli.Get(ctx, from, opts...)
		if rev != 0 && errors.Is(err, rpctypes.ErrCompacted) {
			kvs, rev, from = nil, 0, key
			continue
		}
		if err != nil {
			return 0, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		kvs = append(kvs, resp.Kvs...)
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	for _, kv := range kvs {
		if err := fn(kv.Key, kv.Value); err != nil {
			return 0, err
		}
	}
	return rev, nil
}

func (s *Store) forPrefix(ctx context.Context, prefix string, fn func(k, v []byte) error) error {
	_, err := s.forRange(ctx, prefix, clientv3.GetPrefixRangeEnd(prefix), fn)
	return err
}

// ClusterID implements meta.Store: 16 random bytes in unpadded base64url,
// as Kafka's own ids, created once with a CreateRevision==0 compare.
func (s *Store) ClusterID(ctx context.Context) (string, error) {
	var id string
	err := s.run(ctx, "cluster id", func() error {
		k := s.p + "cluster/id"
		resp, err := s.cli.Get(ctx, k)
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 1 {
			id = string(resp.Kvs[0].Value)
			return nil
		}
		var raw [16]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return err
		}
		fresh := base64.RawURLEncoding.EncodeToString(raw[:])
		tr, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
			Then(clientv3.OpPut(k, fresh)).
			Else(clientv3.OpGet(k)).Commit()
		if err != nil {
			return err
		}
		if tr.Succeeded {
			id = fresh
			return nil
		}
		// Another broker (or goroutine) created it first.
		kvs := tr.Responses[0].GetResponseRange().Kvs
		if len(kvs) != 1 {
			return errors.New("cluster id vanished")
		}
		id = string(kvs[0].Value)
		return nil
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// CreateTopic implements meta.Store. The same transaction clears any
// per-topic keys a crashed or older writer may have left behind, so a new
// topic always starts empty, and bumps the topics epoch.
func (s *Store) CreateTopic(ctx context.Context, t meta.Topic) error {
	op := fmt.Sprintf("create topic %q", t.Name)
	if t.Name == "" {
		return fmt.Errorf("etcdstore: %s: empty name", op)
	}
	val, err := metacodec.EncodeTopic(&t)
	if err != nil {
		return fmt.Errorf("etcdstore: %s: %w", op, err)
	}
	return s.run(ctx, op, func() error {
		k := s.topicKey(t.Name)
		resp, err := s.txn(ctx,
			[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(k), "=", 0)},
			[]clientv3.Op{
				clientv3.OpDelete(s.segPrefix(t.Name), clientv3.WithPrefix()),
				clientv3.OpDelete(s.partPrefix(t.Name), clientv3.WithPrefix()),
				clientv3.OpDelete(s.prodPrefix(t.Name), clientv3.WithPrefix()),
				clientv3.OpDelete(s.lepochPrefix(t.Name), clientv3.WithPrefix()),
				clientv3.OpPut(k, string(val)),
				clientv3.OpPut(s.epochKey(), ""),
			})
		if err != nil {
			return err
		}
		if !resp.Succeeded {
			return meta.ErrTopicExists
		}
		return nil
	})
}

// Topics implements meta.Store.
func (s *Store) Topics(ctx context.Context) ([]meta.Topic, error) {
	var out []meta.Topic
	err := s.run(ctx, "list topics", func() error {
		return s.forPrefix(ctx, s.p+"topics/", func(_, v []byte) error {
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
	// Escaping can change the order of names with escaped bytes.
	slices.SortFunc(out, func(a, b meta.Topic) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// UpdateTopic implements meta.Store as a compare-and-swap loop on the
// topic key's ModRevision: fn may run more than once if another writer
// changes the topic meanwhile, and always sees a freshly decoded copy.
func (s *Store) UpdateTopic(ctx context.Context, name string, fn func(*meta.Topic) error) error {
	return s.run(ctx, fmt.Sprintf("update topic %q", name), func() error {
		k := s.topicKey(name)
		for {
			resp, err := s.cli.Get(ctx, k)
			if err != nil {
				return err
			}
			if len(resp.Kvs) == 0 {
				return meta.ErrUnknownTopic
			}
			kv := resp.Kvs[0]
			t, err := metacodec.DecodeTopic(kv.Value)
			if err != nil {
				return err
			}
			orig := t
			if err := fn(&t); err != nil {
				return callerError{err}
			}
			if t.Name != orig.Name || t.ID != orig.ID {
				return errors.New("update must not change topic name or id")
			}
			val, err := metacodec.EncodeTopic(&t)
			if err != nil {
				return err
			}
			tr, err := s.cli.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(k), "=", kv.ModRevision)).
				Then(clientv3.OpPut(k, string(val))).Commit()
			if err != nil {
				return err
			}
			if tr.Succeeded {
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	})
}

// DeleteTopic implements meta.Store: the topic key and its segment,
// partition and producer prefixes go in one transaction; the removed
// segments come back as the prefix delete's previous values.
func (s *Store) DeleteTopic(ctx context.Context, name string) ([]meta.Segment, error) {
	return s.deleteTopic(ctx, name, nil)
}

// DeleteTopicID implements meta.Store: the topic is read, its id checked,
// and the delete made on condition that the key is still the one read.
func (s *Store) DeleteTopicID(ctx context.Context, name string, id [16]byte) ([]meta.Segment, error) {
	return s.deleteTopic(ctx, name, &id)
}

func (s *Store) deleteTopic(ctx context.Context, name string, id *[16]byte) ([]meta.Segment, error) {
	var removed []meta.Segment
	err := s.run(ctx, fmt.Sprintf("delete topic %q", name), func() error {
		// A topic changed (its configs) between the read and the delete is
		// read again; one deleted or created again is not ours to delete.
		for range 10 {
			done, err := s.deleteTopicOnce(ctx, name, id, &removed)
			if done || err != nil {
				return err
			}
		}
		return fmt.Errorf("topic %q kept changing while it was being deleted", name)
	})
	if err != nil {
		return nil, err
	}
	return removed, nil
}

// deleteTopicOnce is one attempt of deleteTopic; done is false when the
// topic with the id was changed between its read and the delete.
func (s *Store) deleteTopicOnce(ctx context.Context, name string, id *[16]byte, removed *[]meta.Segment) (done bool, err error) {
	k := s.topicKey(name)
	exists := clientv3.Compare(clientv3.CreateRevision(k), ">", 0)
	if id != nil {
		got, err := s.cli.Get(ctx, k)
		if err != nil {
			return false, err
		}
		if len(got.Kvs) == 0 {
			return true, meta.ErrUnknownTopic
		}
		t, err := metacodec.DecodeTopic(got.Kvs[0].Value)
		if err != nil {
			return true, err
		}
		if t.ID != *id {
			return true, meta.ErrUnknownTopic
		}
		exists = clientv3.Compare(clientv3.ModRevision(k), "=", got.Kvs[0].ModRevision)
	}
	resp, err := s.txn(ctx,
		[]clientv3.Cmp{exists},
		[]clientv3.Op{
			clientv3.OpDelete(s.segPrefix(name), clientv3.WithPrefix(), clientv3.WithPrevKV()),
			clientv3.OpDelete(s.partPrefix(name), clientv3.WithPrefix()),
			clientv3.OpDelete(s.prodPrefix(name), clientv3.WithPrefix()),
			clientv3.OpDelete(s.lepochPrefix(name), clientv3.WithPrefix()),
			// Leader keys go with the topic; epochs stay, so a topic
			// re-created under the name never reuses an epoch.
			clientv3.OpDelete(s.p+"cluster/leaders/"+esc(name)+"/", clientv3.WithPrefix()),
			clientv3.OpDelete(k),
			clientv3.OpPut(s.epochKey(), ""),
		})
	if err != nil {
		return false, err
	}
	if !resp.Succeeded {
		if id != nil {
			return false, nil
		}
		return true, meta.ErrUnknownTopic
	}
	prefix := s.segPrefix(name)
	for _, kv := range resp.Responses[0].GetResponseDeleteRange().PrevKvs {
		seg, err := metacodec.DecodeSegment(name, kv.Key[len(prefix):], kv.Value)
		if err != nil {
			return true, err
		}
		*removed = append(*removed, seg)
	}
	return true, nil
}

// topicsAt reads the named topics at one revision and returns them
// (absent names are missing from the map) with that revision: one read
// transaction, or a scan of all topics if they are too many for one.
func (s *Store) topicsAt(ctx context.Context, names map[string]bool) (map[string]meta.Topic, int64, error) {
	out := map[string]meta.Topic{}
	add := func(v []byte) error {
		t, err := metacodec.DecodeTopic(v)
		if err == nil && names[t.Name] {
			out[t.Name] = t
		}
		return err
	}
	if len(names) > s.maxTxnOps {
		rev, err := s.forRange(ctx, s.p+"topics/", clientv3.GetPrefixRangeEnd(s.p+"topics/"),
			func(_, v []byte) error { return add(v) })
		return out, rev, err
	}
	ops := make([]clientv3.Op, 0, len(names))
	for n := range names {
		ops = append(ops, clientv3.OpGet(s.topicKey(n)))
	}
	resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, 0, err
	}
	for _, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().Kvs {
			if err := add(kv.Value); err != nil {
				return nil, 0, err
			}
		}
	}
	return out, resp.Header.Revision, nil
}

// writeForTopics is the read-then-write loop of the calls that drop
// entries of unknown topics: it reads the topics named, lets build make
// the operations, and commits them only if no topic was created or
// deleted since the read; otherwise it starts over.
//
// fence, if not empty, holds leader-epoch compares that must hold too;
// if one fails, the write returns meta.ErrFenced instead of retrying.
func (s *Store) writeForTopics(ctx context.Context, names map[string]bool, fence []clientv3.Cmp, build func(topics map[string]meta.Topic) []clientv3.Op) error {
	for {
		topics, rev, err := s.topicsAt(ctx, names)
		if err != nil {
			return err
		}
		ops := build(topics)
		if len(ops) == 0 {
			return nil
		}
		cmps := append([]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(s.epochKey()), "<", rev+1)}, fence...)
		resp, err := s.txn(ctx, cmps, ops)
		if err != nil {
			return err
		}
		if resp.Succeeded {
			return nil
		}
		if len(fence) > 0 {
			check, err := s.cli.Txn(ctx).If(fence...).Commit()
			if err != nil {
				return err
			}
			if !check.Succeeded {
				return callerError{fmt.Errorf("etcdstore: write for a partition: %w", meta.ErrFenced)}
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// AddSegments implements meta.Store. An entry with the same (Topic,
// Partition, FirstOffset) as a stored one replaces it (so a retried
// upload commit is idempotent); within one call the last such entry wins.
// Producer states are written in the same transaction, as PutProducers
// writes them, fenced the same way.
func (s *Store) AddSegments(ctx context.Context, segs []meta.Segment, producers ...meta.Producer) error {
	if len(producers) == 0 {
		if len(segs) == 0 {
			return nil
		}
		return s.ReplaceSegments(ctx, nil, segs)
	}
	names := map[string]bool{}
	var fs []fence
	for _, sg := range segs {
		names[sg.Topic] = true
		fs = append(fs, fence{sg.Topic, sg.Partition, sg.LeaderEpoch})
	}
	for _, p := range producers {
		names[p.Topic] = true
		fs = append(fs, fence{p.Topic, p.Partition, p.LeaderEpoch})
	}
	op := fmt.Sprintf("add %d segments and %d producer states", len(segs), len(producers))
	return s.run(ctx, op, func() error {
		return s.writeForTopics(ctx, names, s.fenceCmps(fs), func(topics map[string]meta.Topic) []clientv3.Op {
			return append(s.segmentOps(topics, nil, segs), s.producerOps(topics, producers)...)
		})
	})
}

// ReplaceSegments implements meta.Store. A key both removed and added
// ends up with the added value, as if removals ran first; entries of
// unknown topics are ignored on both sides.
func (s *Store) ReplaceSegments(ctx context.Context, remove, add []meta.Segment) error {
	if len(remove) == 0 && len(add) == 0 {
		return nil
	}
	op := fmt.Sprintf("replace %d segments with %d", len(remove), len(add))
	if remove == nil {
		op = fmt.Sprintf("add %d segments", len(add))
	}
	names := map[string]bool{}
	for _, sg := range remove {
		names[sg.Topic] = true
	}
	for _, sg := range add {
		names[sg.Topic] = true
	}
	return s.run(ctx, op, func() error {
		return s.writeForTopics(ctx, names, s.fences(remove, add), func(topics map[string]meta.Topic) []clientv3.Op {
			return s.segmentOps(topics, remove, add)
		})
	})
}

// segmentOps removes remove and writes add, skipping entries of topics
// not in topics. etcd rejects a transaction touching one key twice, so
// it collapses them to one operation per key.
func (s *Store) segmentOps(topics map[string]meta.Topic, remove, add []meta.Segment) []clientv3.Op {
	final := map[string]*meta.Segment{} // nil: delete
	var order []string
	note := func(k string, sg *meta.Segment) {
		if _, ok := final[k]; !ok {
			order = append(order, k)
		}
		final[k] = sg
	}
	for i := range remove {
		if _, ok := topics[remove[i].Topic]; ok {
			note(s.segKey(&remove[i]), nil)
		}
	}
	for i := range add {
		if _, ok := topics[add[i].Topic]; ok {
			note(s.segKey(&add[i]), &add[i])
		}
	}
	ops := make([]clientv3.Op, 0, len(order))
	for _, k := range order {
		if sg := final[k]; sg != nil {
			ops = append(ops, clientv3.OpPut(k, string(metacodec.AppendSegmentValue(nil, sg))))
		} else {
			ops = append(ops, clientv3.OpDelete(k))
		}
	}
	return ops
}

// Segments implements meta.Store. An unknown topic has no entries.
func (s *Store) Segments(ctx context.Context, topic string, partition int32) ([]meta.Segment, error) {
	var out []meta.Segment
	err := s.run(ctx, fmt.Sprintf("segments of %q/%d", topic, partition), func() error {
		tp := s.segPrefix(topic)
		return s.forPrefix(ctx, tp+partKey(partition), func(k, v []byte) error {
			seg, err := metacodec.DecodeSegment(topic, k[len(tp):], v)
			if err != nil {
				return err
			}
			out = append(out, seg)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AllSegments implements meta.Store.
func (s *Store) AllSegments(ctx context.Context) ([]meta.Segment, error) {
	var out []meta.Segment
	err := s.run(ctx, "all segments", func() error {
		root := s.p + "segments/"
		return s.forPrefix(ctx, root, func(k, v []byte) error {
			rest := k[len(root):]
			i := bytes.IndexByte(rest, '/')
			if i < 0 {
				return fmt.Errorf("corrupt segment key %q", k)
			}
			topic, err := url.PathUnescape(string(rest[:i]))
			if err != nil {
				return fmt.Errorf("corrupt segment key %q: %w", k, err)
			}
			seg, err := metacodec.DecodeSegment(topic, rest[i+1:], v)
			if err != nil {
				return err
			}
			out = append(out, seg)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PartitionState implements meta.Store. An unknown topic reads as the
// zero state.
func (s *Store) PartitionState(ctx context.Context, topic string, partition int32) (meta.PartitionState, error) {
	var st meta.PartitionState
	err := s.run(ctx, fmt.Sprintf("partition state of %q/%d", topic, partition), func() error {
		resp, err := s.cli.Get(ctx, s.partPrefix(topic)+partKey(partition))
		if err != nil || len(resp.Kvs) == 0 {
			return err
		}
		st, err = metacodec.DecodeState(resp.Kvs[0].Value)
		return err
	})
	if err != nil {
		return meta.PartitionState{}, err
	}
	return st, nil
}

// SetPartitionState implements meta.Store: the put is conditional on the
// topic key existing, in the same transaction.
func (s *Store) SetPartitionState(ctx context.Context, topic string, partition int32, st meta.PartitionState) error {
	return s.run(ctx, fmt.Sprintf("set partition state of %q/%d", topic, partition), func() error {
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(s.topicKey(topic)), ">", 0)).
			Then(clientv3.OpPut(s.partPrefix(topic)+partKey(partition), string(metacodec.EncodeState(st)))).Commit()
		if err != nil {
			return err
		}
		if !resp.Succeeded {
			return meta.ErrUnknownTopic
		}
		return nil
	})
}

// PutProducers implements meta.Store. Like segment writes, it fails with
// meta.ErrFenced when a producer's LeaderEpoch is no longer its
// partition's. Within one call the last state of a
// (topic, partition, producer) wins.
func (s *Store) PutProducers(ctx context.Context, ps []meta.Producer) error {
	if len(ps) == 0 {
		return nil
	}
	names := map[string]bool{}
	for _, p := range ps {
		names[p.Topic] = true
	}
	return s.run(ctx, fmt.Sprintf("put %d producer states", len(ps)), func() error {
		return s.writeForTopics(ctx, names, s.producerFences(ps), func(topics map[string]meta.Topic) []clientv3.Op {
			return s.producerOps(topics, ps)
		})
	})
}

// producerOps writes ps, the last entry per producer winning, skipping
// entries whose topic is not in topics under the same id: a topic deleted
// and re-created under the same name starts with no producers.
func (s *Store) producerOps(topics map[string]meta.Topic, ps []meta.Producer) []clientv3.Op {
	final := map[string]*meta.Producer{}
	var order []string
	for i := range ps {
		p := &ps[i]
		if t, ok := topics[p.Topic]; !ok || t.ID != p.TopicID {
			continue
		}
		k := metacodec.AppendProducerKey([]byte(s.prodPrefix(p.Topic)), p.Partition, p.ProducerID)
		if _, ok := final[string(k)]; !ok {
			order = append(order, string(k))
		}
		final[string(k)] = p
	}
	ops := make([]clientv3.Op, 0, len(order))
	for _, k := range order {
		if p := final[k]; p.Data == nil {
			ops = append(ops, clientv3.OpDelete(k))
		} else {
			ops = append(ops, clientv3.OpPut(k, string(p.Data)))
		}
	}
	return ops
}

// Producers implements meta.Store.
func (s *Store) Producers(ctx context.Context, topic string, partition int32) ([]meta.Producer, error) {
	var out []meta.Producer
	err := s.run(ctx, fmt.Sprintf("producer states of %q/%d", topic, partition), func() error {
		tp := s.prodPrefix(topic)
		return s.forPrefix(ctx, tp+partKey(partition), func(k, v []byte) error {
			p, err := metacodec.DecodeProducer(topic, k[len(tp):], v)
			if err != nil {
				return err
			}
			out = append(out, p)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AllocateProducerIDs implements meta.Store with a compare-and-swap loop
// on the counter's ModRevision (0 while the key does not exist).
func (s *Store) AllocateProducerIDs(ctx context.Context, n int64) (int64, error) {
	if n <= 0 {
		return 0, fmt.Errorf("etcdstore: allocate %d producer ids: count must be positive", n)
	}
	var first int64
	err := s.run(ctx, fmt.Sprintf("allocate %d producer ids", n), func() error {
		k := s.p + "cluster/next_producer_id"
		for {
			resp, err := s.cli.Get(ctx, k)
			if err != nil {
				return err
			}
			var mod int64
			first = 0
			if len(resp.Kvs) == 1 {
				v := resp.Kvs[0].Value
				if len(v) != 8 {
					return fmt.Errorf("corrupt next producer id %x", v)
				}
				first, mod = int64(binary.BigEndian.Uint64(v)), resp.Kvs[0].ModRevision
			}
			tr, err := s.cli.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(k), "=", mod)).
				Then(clientv3.OpPut(k, string(binary.BigEndian.AppendUint64(nil, uint64(first+n))))).Commit()
			if err != nil {
				return err
			}
			if tr.Succeeded {
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	})
	if err != nil {
		return 0, err
	}
	return first, nil
}

// ClientQuotas implements meta.Store.
func (s *Store) ClientQuotas(ctx context.Context) (map[string]map[string]float64, error) {
	out := map[string]map[string]float64{}
	err := s.run(ctx, "client quotas", func() error {
		root := s.p + "quotas/"
		return s.forPrefix(ctx, root, func(k, v []byte) error {
			var q map[string]float64
			if err := json.Unmarshal(v, &q); err != nil {
				return fmt.Errorf("corrupt quotas of %q: %w", k, err)
			}
			out[string(k[len(root):])] = q
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
		return fmt.Errorf("etcdstore: set client quotas: empty entity")
	}
	return s.run(ctx, fmt.Sprintf("set client quotas of %q", entity), func() error {
		if len(quotas) == 0 {
			_, err := s.cli.Delete(ctx, s.quotaKey(entity))
			return err
		}
		v, err := json.Marshal(quotas)
		if err != nil {
			return err
		}
		_, err = s.cli.Put(ctx, s.quotaKey(entity), string(v))
		return err
	})
}

func (s *Store) securityPrefix(kind string) string { return s.p + "security/" + esc(kind) + "/" }
func (s *Store) securityRevKey() string            { return s.p + "security_rev" }

// SecurityRecords implements meta.Store.
func (s *Store) SecurityRecords(ctx context.Context, kind string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.run(ctx, "security records "+kind, func() error {
		root := s.securityPrefix(kind)
		return s.forPrefix(ctx, root, func(k, v []byte) error {
			key, err := url.PathUnescape(string(k[len(root):]))
			if err != nil {
				return fmt.Errorf("corrupt security key %q: %w", k, err)
			}
			out[key] = append([]byte(nil), v...)
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
		return fmt.Errorf("etcdstore: update security records: empty kind")
	}
	ops := make([]clientv3.Op, 0, len(put)+len(del)+1)
	root := s.securityPrefix(kind)
	for _, k := range del {
		if _, ok := put[k]; !ok {
			ops = append(ops, clientv3.OpDelete(root+esc(k)))
		}
	}
	for k, v := range put {
		ops = append(ops, clientv3.OpPut(root+esc(k), string(v)))
	}
	ops = append(ops, clientv3.OpPut(s.securityRevKey(), ""))
	return s.run(ctx, "update security records "+kind, func() error {
		_, err := s.txn(ctx, nil, ops)
		return err
	})
}

// SecurityRevision implements meta.Store.
func (s *Store) SecurityRevision(ctx context.Context) (int64, error) {
	var rev int64
	err := s.run(ctx, "security revision", func() error {
		resp, err := s.cli.Get(ctx, s.securityRevKey())
		if err != nil {
			return err
		}
		if len(resp.Kvs) > 0 {
			rev = resp.Kvs[0].ModRevision
		}
		return nil
	})
	return rev, err
}
