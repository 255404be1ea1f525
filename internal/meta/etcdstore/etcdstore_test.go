package etcdstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/meta/etcdstore/etcdtest"
	"github.com/vigilhq/vigil/internal/meta/metatest"
)

// One etcd member serves the whole package; tests isolate themselves by
// key prefix.
var endpoint string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "etcdstore-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ep, stop, err := etcdtest.StartServer(dir)
	if err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	endpoint = ep
	code := m.Run()
	stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

var prefixSeq atomic.Int64

func freshPrefix() string {
	return fmt.Sprintf("/vigil-test/%d/", prefixSeq.Add(1))
}

func open(t *testing.T, prefix string) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{Endpoints: []string{endpoint}, Prefix: prefix})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	metatest.Run(t, func(t *testing.T) func() (meta.Store, error) {
		prefix := freshPrefix()
		return func() (meta.Store, error) {
			return Open(context.Background(), Config{Endpoints: []string{endpoint}, Prefix: prefix})
		}
	})
}

func TestSecondStoreSeesWrites(t *testing.T) {
	prefix := freshPrefix()
	a, b := open(t, prefix), open(t, prefix)
	ctx := t.Context()
	idA, err := a.ClusterID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if idB, err := b.ClusterID(ctx); err != nil || idB != idA {
		t.Fatalf("second store's cluster id = %q, %v; want %q", idB, err, idA)
	}
	tp := meta.Topic{Name: "shared", ID: [16]byte{7}, Partitions: 2}
	if err := a.CreateTopic(ctx, tp); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateTopic(ctx, tp); !errors.Is(err, meta.ErrTopicExists) {
		t.Fatalf("CreateTopic on second store err = %v, want ErrTopicExists", err)
	}
	seg := meta.Segment{Topic: "shared", Partition: 1, Object: "o", Size: 5, FirstOffset: 3, LastOffset: 4}
	if err := a.AddSegments(ctx, []meta.Segment{seg}); err != nil {
		t.Fatal(err)
	}
	got, err := b.Segments(ctx, "shared", 1)
	if err != nil || len(got) != 1 || !meta.SameSegment(got[0], seg) {
		t.Fatalf("second store's Segments = %v, %v; want [%v]", got, err, seg)
	}
	// Ids allocated through either store never overlap.
	x, _ := a.AllocateProducerIDs(ctx, 5)
	y, err := b.AllocateProducerIDs(ctx, 5)
	if err != nil || y < x+5 {
		t.Fatalf("allocations %d and %d (err %v) overlap", x, y, err)
	}
	if removed, err := b.DeleteTopic(ctx, "shared"); err != nil || len(removed) != 1 {
		t.Fatalf("DeleteTopic via second store = %v, %v", removed, err)
	}
	if ts, err := a.Topics(ctx); err != nil || len(ts) != 0 {
		t.Fatalf("first store still lists %v (%v)", ts, err)
	}
}

// TestLargeTransaction writes far more than etcd's 128 operations per
// transaction in single calls, which must still be atomic.
func TestLargeTransaction(t *testing.T) {
	s := open(t, freshPrefix())
	ctx := t.Context()
	if err := s.CreateTopic(ctx, meta.Topic{Name: "big", ID: [16]byte{1}, Partitions: 10}); err != nil {
		t.Fatal(err)
	}
	const n = 500
	var segs []meta.Segment
	for i := range n {
		segs = append(segs, meta.Segment{Topic: "big", Partition: int32(i % 10), Object: fmt.Sprintf("o/%d", i),
			Size: 1, FirstOffset: int64(i), LastOffset: int64(i)})
	}
	// Entries of an unknown topic mixed in are dropped, not an error.
	segs = append(segs, meta.Segment{Topic: "ghost", Object: "g"})
	if err := s.AddSegments(ctx, segs); err != nil {
		t.Fatalf("AddSegments(%d): %v", len(segs), err)
	}
	all, err := s.AllSegments(ctx)
	if err != nil || len(all) != n {
		t.Fatalf("AllSegments = %d entries, %v; want %d", len(all), err, n)
	}
	// One revision for the whole call: every entry has the same ModRevision.
	resp, err := s.cli.Get(ctx, s.segPrefix("big"), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	revs := map[int64]bool{}
	for _, kv := range resp.Kvs {
		revs[kv.ModRevision] = true
	}
	if len(revs) != 1 {
		t.Fatalf("500 entries written at %d revisions, want 1", len(revs))
	}
	// Replace them all by one entry per partition, again in one call.
	var add []meta.Segment
	for p := range int32(10) {
		add = append(add, meta.Segment{Topic: "big", Partition: p, Object: "compacted", FirstOffset: int64(p), LastOffset: n})
	}
	if err := s.ReplaceSegments(ctx, segs[:n], add); err != nil {
		t.Fatalf("ReplaceSegments: %v", err)
	}
	if got, err := s.Segments(ctx, "big", 3); err != nil || len(got) != 1 || !meta.SameSegment(got[0], add[3]) {
		t.Fatalf("Segments after replace = %v, %v", got, err)
	}
	// 3000 producer states in one call (a three-level tree).
	var ps []meta.Producer
	for i := range 3000 {
		ps = append(ps, meta.Producer{Topic: "big", TopicID: [16]byte{1}, Partition: 0, ProducerID: int64(i), Data: []byte("x")})
	}
	if err := s.PutProducers(ctx, ps); err != nil {
		t.Fatalf("PutProducers(3000): %v", err)
	}
	if got, err := s.Producers(ctx, "big", 0); err != nil || len(got) != 3000 {
		t.Fatalf("Producers = %d, %v", len(got), err)
	}
	removed, err := s.DeleteTopic(ctx, "big")
	if err != nil || len(removed) != 10 {
		t.Fatalf("DeleteTopic = %d segments, %v", len(removed), err)
	}
}

func TestNestWidths(t *testing.T) {
	s := &Store{maxTxnOps: 128}
	for _, n := range []int{1, 128, 129, 500, 4096, 4097, 20000} {
		ops := make([]clientv3.Op, n)
		for i := range ops {
			ops[i] = clientv3.OpPut(fmt.Sprint(i), "")
		}
		top := s.nest(ops, 1)
		depth, width := 1, len(top)
		count := 0
		var walk func(ops []clientv3.Op, d int)
		walk = func(ops []clientv3.Op, d int) {
			depth = max(depth, d)
			width = max(width, len(ops))
			for _, op := range ops {
				if op.IsTxn() {
					_, then, _ := op.Txn()
					walk(then, d+1)
				} else {
					count++
				}
			}
		}
		walk(top, 1)
		if count != n || depth*width > 128 {
			t.Errorf("n=%d: %d leaves, depth %d x width %d > 128", n, count, depth, width)
		}
	}
}

func TestErrorsCarryContext(t *testing.T) {
	s := open(t, freshPrefix())
	err := s.SetPartitionState(t.Context(), "missing", 3, meta.PartitionState{})
	if !errors.Is(err, meta.ErrUnknownTopic) || !strings.HasPrefix(err.Error(), "etcdstore: ") || !strings.Contains(err.Error(), `"missing"/3`) {
		t.Fatalf("SetPartitionState err = %v", err)
	}
	errFn := errors.New("invalid config")
	if err := s.CreateTopic(t.Context(), meta.Topic{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateTopic(t.Context(), "t", func(*meta.Topic) error { return errFn }); err != errFn {
		t.Fatalf("UpdateTopic err = %v, want fn's error itself", err)
	}
	if err := s.UpdateTopic(t.Context(), "t", func(tp *meta.Topic) error { tp.Name = "u"; return nil }); err == nil {
		t.Fatal("UpdateTopic renaming the topic succeeded")
	}
}

func TestPrefixesIsolated(t *testing.T) {
	a, b := open(t, freshPrefix()), open(t, freshPrefix())
	if err := a.CreateTopic(t.Context(), meta.Topic{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	if ts, err := b.Topics(t.Context()); err != nil || len(ts) != 0 {
		t.Fatalf("other prefix sees %v, %v", ts, err)
	}
}

func TestClusterIDKafkaForm(t *testing.T) {
	s := open(t, freshPrefix())
	id, err := s.ClusterID(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if len(id) != 22 || err != nil || len(raw) != 16 {
		t.Fatalf("ClusterID %q is not 16 bytes in unpadded base64url (err %v)", id, err)
	}
}

func TestOpenRefusesOtherFormat(t *testing.T) {
	prefix := freshPrefix()
	s := open(t, prefix)
	if _, err := s.cli.Put(t.Context(), prefix+"cluster/format", "99"); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(t.Context(), Config{Endpoints: []string{endpoint}, Prefix: prefix})
	if err == nil {
		s2.Close()
		t.Fatal("Open over an unknown layout version succeeded")
	}
	if !strings.Contains(err.Error(), "unsupported metadata format") {
		t.Fatalf("Open err = %v", err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	start := time.Now()
	s, err := Open(t.Context(), Config{Endpoints: []string{"127.0.0.1:1"}, DialTimeout: 500 * time.Millisecond})
	if err == nil {
		s.Close()
		t.Fatal("Open of an unreachable etcd succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Open took %v to fail", d)
	}
}
