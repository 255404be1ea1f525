package etcdstore

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/meta"
)

// TestClusterLeadership walks the leadership life cycle on a real etcd:
// registration, acquire with epochs, fenced index writes, takeover
// commits, release, lease expiry and drain marks.
func TestClusterLeadership(t *testing.T) {
	s := open(t, "/cluster-test-"+t.Name())
	ctx := context.Background()
	if err := s.CreateTopic(ctx, meta.Topic{Name: "t", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	s1, err := s.Join(ctx, meta.BrokerInfo{ID: 1, Addr: "h1:9092", Zone: "a"}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Join(ctx, meta.BrokerInfo{ID: 1, Addr: "other:9092"}, 2*time.Second); err == nil {
		t.Fatal("a second live registration of id 1 was accepted")
	}
	s2, err := s.Join(ctx, meta.BrokerInfo{ID: 2, Addr: "h2:9092", Zone: "b"}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := s.Brokers(ctx)
	if err != nil || len(bs) != 2 || bs[0].Zone != "a" || bs[1].Addr != "h2:9092" {
		t.Fatalf("brokers = %+v, %v", bs, err)
	}

	a1, err := s.Acquire(ctx, s1, 1, "t", 0)
	if err != nil || a1.Epoch != 1 || a1.Serving != 0 {
		t.Fatalf("first acquire = %+v, %v; want epoch 1, serving 0", a1, err)
	}
	if _, err := s.Acquire(ctx, s2, 2, "t", 0); !errors.Is(err, meta.ErrFenced) {
		t.Fatalf("acquire of a led partition: %v, want ErrFenced", err)
	}
	if _, err := s.Acquire(ctx, s1, 1, "missing", 0); !errors.Is(err, meta.ErrUnknownTopic) {
		t.Fatalf("acquire of an unknown topic: %v", err)
	}
	topics, err := s.Topics(ctx)
	if err != nil || len(topics) != 1 {
		t.Fatalf("topics: %v %v", topics, err)
	}
	prod := func(epoch int32, data string) meta.Producer {
		return meta.Producer{Topic: "t", TopicID: topics[0].ID, Partition: 0, ProducerID: 7, Data: []byte(data), LeaderEpoch: epoch}
	}
	producerData := func() string {
		t.Helper()
		ps, err := s.Producers(ctx, "t", 0)
		if err != nil || len(ps) > 1 {
			t.Fatalf("producer states: %+v, %v", ps, err)
		}
		if len(ps) == 0 {
			return ""
		}
		return string(ps[0].Data)
	}
	// A recovery commit stores the recovered batches' producer state with
	// their index entries; state of another topic incarnation is skipped.
	seg := meta.Segment{Topic: "t", Partition: 0, Object: "o1", Size: 10, FirstOffset: 0, LastOffset: 9, LeaderEpoch: 1}
	otherIncarnation := prod(1, "of a deleted topic")
	otherIncarnation.TopicID[0]++
	otherIncarnation.ProducerID = 8
	epochs := func() []meta.EpochStart {
		t.Helper()
		es, err := s.EpochStarts(ctx, "t", 0)
		if err != nil {
			t.Fatalf("leader epochs: %v", err)
		}
		return es
	}
	if es := epochs(); len(es) != 0 {
		t.Fatalf("leader epochs before any recovery commit: %v", es)
	}
	if err := s.CommitRecovery(ctx, "t", 0, 1, []meta.EpochStart{{Epoch: 1, Offset: 0}}, []meta.Segment{seg}, []meta.Producer{prod(1, "recovered"), otherIncarnation}); err != nil {
		t.Fatal(err)
	}
	if es := epochs(); !slices.Equal(es, []meta.EpochStart{{Epoch: 1, Offset: 0}}) {
		t.Fatalf("leader epochs after the recovery commit: %v", es)
	}
	if got := producerData(); got != "recovered" {
		t.Fatalf("producer state after the recovery commit: %q, want %q", got, "recovered")
	}
	if err := s.CommitRecovery(ctx, "missing", 0, 1, nil, nil, nil); !errors.Is(err, meta.ErrUnknownTopic) {
		t.Fatalf("recovery commit of an unknown topic: %v", err)
	}
	seg2 := meta.Segment{Topic: "t", Partition: 0, Object: "o2", Size: 10, FirstOffset: 10, LastOffset: 19, LeaderEpoch: 1}
	if err := s.AddSegments(ctx, []meta.Segment{seg2}); err != nil {
		t.Fatalf("write at the current epoch: %v", err)
	}

	// Broker 1's lease ends: its leader key goes, broker 2 takes over
	// at epoch 2 and learns serving epoch 1.
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s1.Done():
	default:
		t.Fatal("closed session not done")
	}
	if s1.Valid() {
		t.Fatal("closed session still valid")
	}
	a2, err := s.Acquire(ctx, s2, 2, "t", 0)
	if err != nil || a2.Epoch != 2 || a2.Serving != 1 {
		t.Fatalf("takeover = %+v, %v; want epoch 2, serving 1", a2, err)
	}
	stale := meta.Segment{Topic: "t", Partition: 0, Object: "o3", Size: 10, FirstOffset: 20, LastOffset: 29, LeaderEpoch: 1}
	if err := s.AddSegments(ctx, []meta.Segment{stale}); !errors.Is(err, meta.ErrFenced) {
		t.Fatalf("write of the deposed leader: %v, want ErrFenced", err)
	}
	// A fenced recovery commit writes nothing: no index entry, no
	// producer state.
	staleRecovery := meta.Segment{Topic: "t", Partition: 0, Object: "o4", Size: 10, FirstOffset: 30, LastOffset: 39, LeaderEpoch: 1}
	if err := s.CommitRecovery(ctx, "t", 0, 1, []meta.EpochStart{{Epoch: 9, Offset: 30}}, []meta.Segment{staleRecovery}, []meta.Producer{prod(1, "stale recovery")}); !errors.Is(err, meta.ErrFenced) {
		t.Fatalf("recovery commit at a stale epoch: %v, want ErrFenced", err)
	}
	if segs, _ := s.Segments(ctx, "t", 0); len(segs) != 2 {
		t.Fatalf("index after the fenced write: %+v", segs)
	}
	if got := producerData(); got != "recovered" {
		t.Fatalf("producer state after the fenced recovery commit: %q, want it unchanged", got)
	}
	if es := epochs(); !slices.Equal(es, []meta.EpochStart{{Epoch: 1, Offset: 0}}) {
		t.Fatalf("leader epochs after the fenced recovery commit: %v, want them unchanged", es)
	}
	// Producer state is fenced the same way: the deposed leader cannot
	// overwrite what the new one stores.
	if err := s.PutProducers(ctx, []meta.Producer{prod(2, "new leader")}); err != nil {
		t.Fatalf("producer state at the current epoch: %v", err)
	}
	if err := s.PutProducers(ctx, []meta.Producer{prod(1, "deposed leader")}); !errors.Is(err, meta.ErrFenced) {
		t.Fatalf("producer state of the deposed leader: %v, want ErrFenced", err)
	}
	if ps, err := s.Producers(ctx, "t", 0); err != nil || len(ps) != 1 || string(ps[0].Data) != "new leader" {
		t.Fatalf("producer state after the fenced write: %+v, %v", ps, err)
	}
	if err := s.CommitRecovery(ctx, "t", 0, 2, []meta.EpochStart{{Epoch: 1, Offset: 0}, {Epoch: 2, Offset: 20}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if es := epochs(); !slices.Equal(es, []meta.EpochStart{{Epoch: 1, Offset: 0}, {Epoch: 2, Offset: 20}}) {
		t.Fatalf("leader epochs after the takeover at epoch 2: %v", es)
	}
	// The history is replaced, not merged: an entry left out is deleted.
	if err := s.CommitRecovery(ctx, "t", 0, 2, []meta.EpochStart{{Epoch: 2, Offset: 20}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if es := epochs(); !slices.Equal(es, []meta.EpochStart{{Epoch: 2, Offset: 20}}) {
		t.Fatalf("leader epochs after a commit that drops epoch 1: %v", es)
	}
	ls, err := s.Leaders(ctx)
	if err != nil || len(ls) != 1 || ls[0].Broker != 2 || ls[0].Epoch != 2 || ls[0].Serving != 2 {
		t.Fatalf("leaders = %+v, %v", ls, err)
	}

	// Release at a wrong epoch is a no-op; at the right one it frees.
	if err := s.Release(ctx, 2, "t", 0, 1); err != nil {
		t.Fatal(err)
	}
	if ls, _ := s.Leaders(ctx); len(ls) != 1 {
		t.Fatalf("release at a stale epoch removed the leader: %+v", ls)
	}
	if err := s.Release(ctx, 2, "t", 0, 2); err != nil {
		t.Fatal(err)
	}
	if ls, _ := s.Leaders(ctx); len(ls) != 0 {
		t.Fatalf("leaders after release: %+v", ls)
	}

	if err := s.SetDraining(ctx, 2, true); err != nil {
		t.Fatal(err)
	}
	if bs, _ := s.Brokers(ctx); len(bs) != 1 || !bs[0].Draining {
		t.Fatalf("brokers after drain = %+v", bs)
	}
	if err := s.SetDraining(ctx, 2, false); err != nil {
		t.Fatal(err)
	}
	if bs, _ := s.Brokers(ctx); len(bs) != 1 || bs[0].Draining {
		t.Fatalf("brokers after undrain = %+v", bs)
	}

	// Deleting the topic removes its leader keys but keeps its epochs.
	if _, err := s.Acquire(ctx, s2, 2, "t", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if ls, _ := s.Leaders(ctx); len(ls) != 0 {
		t.Fatalf("leaders of a deleted topic: %+v", ls)
	}
	if err := s.CreateTopic(ctx, meta.Topic{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	// The epoch history belongs to the topic's incarnation: the new one
	// starts its log at 0 again.
	if es := epochs(); len(es) != 0 {
		t.Fatalf("leader epochs of a re-created topic: %v", es)
	}
	if a, err := s.Acquire(ctx, s2, 2, "t", 0); err != nil || a.Epoch != 3 {
		t.Fatalf("acquire after re-creation = %+v, %v; want epoch 3", a, err)
	}
}

// TestSessionExpires: a session whose lease is revoked behind its back
// ends, and a paused renewal makes it not Valid before the lease is gone.
func TestSessionExpires(t *testing.T) {
	s := open(t, "/cluster-test-"+t.Name())
	ctx := context.Background()
	sess, err := s.Join(ctx, meta.BrokerInfo{ID: 7}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !sess.Valid() {
		t.Fatal("new session not valid")
	}
	ch := sess.Changed()
	if _, err := s.cli.Revoke(ctx, sess.(*session).lease); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sess.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session did not end after its lease was revoked")
	}
	select {
	case <-ch:
	default:
		t.Fatal("Changed not signalled at the end")
	}
	if sess.Valid() {
		t.Fatal("ended session still valid")
	}
	if bs, _ := s.Brokers(ctx); len(bs) != 0 {
		t.Fatalf("registration outlived its lease: %+v", bs)
	}
}
