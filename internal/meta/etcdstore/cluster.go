package etcdstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/meta/metacodec"
)

var _ meta.Cluster = (*Store)(nil)

// Cluster keys. A broker's registration and the leader keys of the
// partitions it leads are attached to its lease, so etcd itself removes
// them when the broker stops renewing it; epochs and drain marks are
// durable.
func (s *Store) brokerKey(id int32) string   { return fmt.Sprintf("%scluster/brokers/%010d", s.p, id) }
func (s *Store) drainingKey(id int32) string { return fmt.Sprintf("%scluster/draining/%010d", s.p, id) }
func (s *Store) leaderKey(t string, p int32) string {
	return s.p + "cluster/leaders/" + esc(t) + "/" + partKey(p)
}
func (s *Store) leaderEpochKey(t string, p int32) string {
	return s.p + "cluster/epochs/" + esc(t) + "/" + partKey(p)
}
func (s *Store) servingKey(t string, p int32) string {
	return s.p + "cluster/serving/" + esc(t) + "/" + partKey(p)
}

// leaderValue is the stored form of a leader key; it is compared byte for
// byte by Release, so it must encode deterministically (json does).
type leaderValue struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Broker    int32  `json:"broker"`
	Epoch     int32  `json:"epoch"`
}

func (v leaderValue) encode() string {
	b, _ := json.Marshal(v)
	return string(b)
}

// fences builds the epoch compares of a segment write: one per partition
// named with a positive LeaderEpoch.
func (s *Store) fences(lists ...[]meta.Segment) []clientv3.Cmp {
	var fs []fence
	for _, l := range lists {
		for _, sg := range l {
			fs = append(fs, fence{sg.Topic, sg.Partition, sg.LeaderEpoch})
		}
	}
	return s.fenceCmps(fs)
}

// producerFences are the leader-epoch compares of producer-state writes.
func (s *Store) producerFences(ps []meta.Producer) []clientv3.Cmp {
	fs := make([]fence, len(ps))
	for i, p := range ps {
		fs[i] = fence{p.Topic, p.Partition, p.LeaderEpoch}
	}
	return s.fenceCmps(fs)
}

// fence is one partition's leader epoch a write must still find.
type fence struct {
	topic     string
	partition int32
	epoch     int32 // <= 0: not fenced (a single broker)
}

// fenceCmps is one compare per fenced partition.
func (s *Store) fenceCmps(fs []fence) []clientv3.Cmp {
	type tp struct {
		t string
		p int32
	}
	seen := map[tp]bool{}
	var out []clientv3.Cmp
	for _, f := range fs {
		k := tp{f.topic, f.partition}
		if f.epoch <= 0 || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, clientv3.Compare(clientv3.Value(s.leaderEpochKey(f.topic, f.partition)), "=", strconv.Itoa(int(f.epoch))))
	}
	return out
}

// session is a lease kept alive by KeepAliveOnce calls whose send times
// are known, so Valid can be conservative: the lease is surely held
// until the send time of the last answered keepalive plus the TTL.
type session struct {
	cli   *clientv3.Client
	lease clientv3.LeaseID
	ttl   time.Duration

	base     time.Time // monotonic reference for deadline
	mu       sync.Mutex
	deadline time.Duration // since base
	changed  chan struct{} // closed and replaced at every renewal or end
	done     chan struct{}
	once     sync.Once
	cancel   context.CancelFunc
}

func (ss *session) Valid() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	select {
	case <-ss.done:
		return false
	default:
	}
	return time.Since(ss.base) < ss.deadline
}

func (ss *session) Done() <-chan struct{} { return ss.done }

func (ss *session) Changed() <-chan struct{} {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.changed
}

// notifyLocked wakes Changed waiters.
func (ss *session) notifyLocked() {
	close(ss.changed)
	ss.changed = make(chan struct{})
}

func (ss *session) end() {
	ss.once.Do(func() {
		close(ss.done)
		ss.mu.Lock()
		ss.notifyLocked()
		ss.mu.Unlock()
	})
}

func (ss *session) Close() error {
	ss.cancel()
	ss.end()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := ss.cli.Revoke(ctx, ss.lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("etcdstore: revoke lease: %w", err)
	}
	return nil
}

// keepAlive renews the lease three times per TTL. It ends the session
// only when etcd says the lease is gone. While etcd cannot be reached the
// session stays open but not Valid: if etcd was down for everyone, the
// lease lives on (etcd renews every lease when it elects a leader) and
// the next answered renewal makes the session Valid again.
func (ss *session) keepAlive(ctx context.Context) {
	tick := time.NewTicker(ss.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		sent := time.Since(ss.base)
		kctx, cancel := context.WithTimeout(ctx, ss.ttl/3)
		resp, err := ss.cli.KeepAliveOnce(kctx, ss.lease)
		cancel()
		ss.mu.Lock()
		gone := false
		switch {
		case err == nil && resp.TTL > 0:
			ss.deadline = sent + time.Duration(resp.TTL)*time.Second
			ss.notifyLocked()
		case errors.Is(err, rpctypes.ErrLeaseNotFound) || (err == nil && resp.TTL <= 0):
			ss.deadline, gone = 0, true
		}
		ss.mu.Unlock()
		if gone {
			ss.end()
			return
		}
	}
}

// Join implements meta.Cluster.
func (s *Store) Join(ctx context.Context, b meta.BrokerInfo, ttl time.Duration) (meta.Session, error) {
	var out *session
	err := s.run(ctx, fmt.Sprintf("join broker %d", b.ID), func() error {
		secs := int64((ttl + time.Second - 1) / time.Second)
		base := time.Now()
		g, err := s.cli.Grant(ctx, secs)
		if err != nil {
			return err
		}
		val, _ := json.Marshal(meta.BrokerInfo{ID: b.ID, Addr: b.Addr, Endpoints: b.Endpoints, Zone: b.Zone})
		k := s.brokerKey(b.ID)
		resp, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
			Then(clientv3.OpPut(k, string(val), clientv3.WithLease(g.ID))).Commit()
		if err != nil {
			s.cli.Revoke(context.WithoutCancel(ctx), g.ID)
			return err
		}
		if !resp.Succeeded {
			s.cli.Revoke(context.WithoutCancel(ctx), g.ID)
			return callerError{fmt.Errorf("etcdstore: broker id %d is registered by a live broker (or one dead for less than its lease)", b.ID)}
		}
		kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		out = &session{cli: s.cli, lease: g.ID, ttl: time.Duration(secs) * time.Second, base: base,
			deadline: time.Duration(g.TTL) * time.Second, done: make(chan struct{}), changed: make(chan struct{}), cancel: cancel}
		go out.keepAlive(kctx)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Brokers implements meta.Cluster.
func (s *Store) Brokers(ctx context.Context) ([]meta.BrokerInfo, error) {
	var out []meta.BrokerInfo
	err := s.run(ctx, "brokers", func() error {
		draining := map[int32]bool{}
		if err := s.forPrefix(ctx, s.p+"cluster/draining/", func(k, v []byte) error {
			id, err := strconv.ParseInt(string(k[len(s.p+"cluster/draining/"):]), 10, 32)
			if err == nil && string(v) == "1" {
				draining[int32(id)] = true
			}
			return nil
		}); err != nil {
			return err
		}
		return s.forPrefix(ctx, s.p+"cluster/brokers/", func(_, v []byte) error {
			var b meta.BrokerInfo
			if err := json.Unmarshal(v, &b); err != nil {
				return fmt.Errorf("corrupt broker registration %q: %w", v, err)
			}
			b.Draining = draining[b.ID]
			out = append(out, b)
			return nil
		})
	})
	return out, err
}

// SetDraining implements meta.Cluster.
func (s *Store) SetDraining(ctx context.Context, id int32, draining bool) error {
	return s.run(ctx, fmt.Sprintf("set broker %d draining=%v", id, draining), func() error {
		var err error
		if draining {
			_, err = s.cli.Put(ctx, s.drainingKey(id), "1")
		} else {
			_, err = s.cli.Delete(ctx, s.drainingKey(id))
		}
		return err
	})
}

// Leaders implements meta.Cluster.
func (s *Store) Leaders(ctx context.Context) ([]meta.Leader, error) {
	var out []meta.Leader
	err := s.run(ctx, "leaders", func() error {
		serving := map[string]int32{} // by the key suffix topic/partition
		root := s.p + "cluster/serving/"
		if err := s.forPrefix(ctx, root, func(k, v []byte) error {
			n, err := atoi32(v)
			if err != nil {
				return fmt.Errorf("corrupt serving epoch %q: %w", v, err)
			}
			serving[string(k[len(root):])] = n
			return nil
		}); err != nil {
			return err
		}
		return s.forPrefix(ctx, s.p+"cluster/leaders/", func(_, v []byte) error {
			var l leaderValue
			if err := json.Unmarshal(v, &l); err != nil {
				return fmt.Errorf("corrupt leader record %q: %w", v, err)
			}
			out = append(out, meta.Leader{Topic: l.Topic, Partition: l.Partition, Broker: l.Broker, Epoch: l.Epoch,
				Serving: serving[esc(l.Topic)+"/"+partKey(l.Partition)]})
			return nil
		})
	})
	return out, err
}

func atoi32(v []byte) (int32, error) {
	if len(v) == 0 {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(v), 10, 32)
	return int32(n), err
}

// Acquire implements meta.Cluster.
func (s *Store) Acquire(ctx context.Context, sess meta.Session, brokerID int32, topic string, partition int32) (meta.Acquired, error) {
	ss, ok := sess.(*session)
	if !ok {
		return meta.Acquired{}, fmt.Errorf("etcdstore: acquire: session %T is not an etcd session", sess)
	}
	var out meta.Acquired
	err := s.run(ctx, fmt.Sprintf("acquire %q/%d", topic, partition), func() error {
		lk, ek, sk := s.leaderKey(topic, partition), s.leaderEpochKey(topic, partition), s.servingKey(topic, partition)
		for {
			resp, err := s.cli.Txn(ctx).Then(clientv3.OpGet(lk), clientv3.OpGet(ek), clientv3.OpGet(sk), clientv3.OpGet(s.topicKey(topic))).Commit()
			if err != nil {
				return err
			}
			rs := resp.Responses
			if len(rs[3].GetResponseRange().Kvs) == 0 {
				return callerError{fmt.Errorf("etcdstore: acquire %q/%d: %w", topic, partition, meta.ErrUnknownTopic)}
			}
			if len(rs[0].GetResponseRange().Kvs) > 0 {
				return callerError{fmt.Errorf("etcdstore: acquire %q/%d: led by another session: %w", topic, partition, meta.ErrFenced)}
			}
			var epoch, serving int32
			var erev int64
			if kvs := rs[1].GetResponseRange().Kvs; len(kvs) > 0 {
				if epoch, err = atoi32(kvs[0].Value); err != nil {
					return fmt.Errorf("corrupt epoch %q: %w", kvs[0].Value, err)
				}
				erev = kvs[0].ModRevision
			}
			if kvs := rs[2].GetResponseRange().Kvs; len(kvs) > 0 {
				if serving, err = atoi32(kvs[0].Value); err != nil {
					return fmt.Errorf("corrupt serving epoch %q: %w", kvs[0].Value, err)
				}
			}
			next := epoch + 1
			val := leaderValue{Topic: topic, Partition: partition, Broker: brokerID, Epoch: next}.encode()
			w, err := s.cli.Txn(ctx).If(
				clientv3.Compare(clientv3.CreateRevision(lk), "=", 0),
				clientv3.Compare(clientv3.ModRevision(ek), "=", erev),
				clientv3.Compare(clientv3.CreateRevision(s.topicKey(topic)), ">", 0),
			).Then(
				clientv3.OpPut(lk, val, clientv3.WithLease(ss.lease)),
				clientv3.OpPut(ek, strconv.Itoa(int(next))),
			).Commit()
			if err != nil {
				return err
			}
			if w.Succeeded {
				out = meta.Acquired{Epoch: next, Serving: serving}
				return nil
			}
			// Someone else acquired or the topic changed: look again.
		}
	})
	return out, err
}

// CommitRecovery implements meta.Cluster. Segments, producer states, the
// leader-epoch history and the serving epoch go in one transaction, read
// against the topics it checks, so no crash can leave recovered batches
// indexed without the producer state that deduplicates their retries.
func (s *Store) CommitRecovery(ctx context.Context, topic string, partition int32, epoch int32, epochs []meta.EpochStart, segs []meta.Segment, producers []meta.Producer) error {
	return s.run(ctx, fmt.Sprintf("commit recovery of %q/%d at epoch %d", topic, partition, epoch), func() error {
		fence := []clientv3.Cmp{clientv3.Compare(clientv3.Value(s.leaderEpochKey(topic, partition)), "=", strconv.Itoa(int(epoch)))}
		// The history's keys to delete: read before the fenced write, and
		// only this partition's leader (fenced at epoch) writes them. etcd
		// refuses a put inside a range deleted by the same transaction, so
		// stale entries are deleted one by one.
		old, err := s.epochStarts(ctx, topic, partition)
		if err != nil {
			return err
		}
		epochOps := make([]clientv3.Op, 0, len(old)+len(epochs))
		for _, o := range old {
			if !slices.ContainsFunc(epochs, func(e meta.EpochStart) bool { return e.Epoch == o.Epoch }) {
				epochOps = append(epochOps, clientv3.OpDelete(s.lepochKey(topic, partition, o.Epoch)))
			}
		}
		for _, e := range epochs {
			if !slices.Contains(old, e) {
				epochOps = append(epochOps, clientv3.OpPut(s.lepochKey(topic, partition, e.Epoch), strconv.FormatInt(e.Offset, 10)))
			}
		}
		var ours []meta.Producer // this partition's: the fence covers no other
		for _, p := range producers {
			if p.Topic == topic && p.Partition == partition {
				ours = append(ours, p)
			}
		}
		missing := false
		err = s.writeForTopics(ctx, map[string]bool{topic: true}, fence, func(topics map[string]meta.Topic) []clientv3.Op {
			if _, ok := topics[topic]; !ok {
				missing = true
				return nil
			}
			ops := append([]clientv3.Op{clientv3.OpPut(s.servingKey(topic, partition), strconv.Itoa(int(epoch)))}, epochOps...)
			for i := range segs {
				ops = append(ops, clientv3.OpPut(s.segKey(&segs[i]), string(metacodec.AppendSegmentValue(nil, &segs[i]))))
			}
			return append(ops, s.producerOps(topics, ours)...)
		})
		if missing {
			return callerError{fmt.Errorf("etcdstore: commit recovery of %q/%d: %w", topic, partition, meta.ErrUnknownTopic)}
		}
		if ce := (callerError{}); errors.As(err, &ce) && errors.Is(ce.err, meta.ErrFenced) {
			return callerError{fmt.Errorf("etcdstore: commit recovery of %q/%d at epoch %d: %w", topic, partition, epoch, meta.ErrFenced)}
		}
		return err
	})
}

// EpochStarts implements meta.Cluster.
func (s *Store) EpochStarts(ctx context.Context, topic string, partition int32) ([]meta.EpochStart, error) {
	var out []meta.EpochStart
	err := s.run(ctx, fmt.Sprintf("leader epochs of %q/%d", topic, partition), func() error {
		var err error
		out, err = s.epochStarts(ctx, topic, partition)
		return err
	})
	return out, err
}

func (s *Store) lepochKey(t string, p int32, epoch int32) string {
	return s.lepochPrefix(t) + partKey(p) + string(binary.BigEndian.AppendUint32(nil, uint32(epoch)))
}

// epochStarts reads a partition's leader-epoch history; epochs are
// positive, so the big-endian key suffix sorts them.
func (s *Store) epochStarts(ctx context.Context, topic string, partition int32) ([]meta.EpochStart, error) {
	var out []meta.EpochStart
	prefix := s.lepochPrefix(topic) + partKey(partition)
	err := s.forPrefix(ctx, prefix, func(k, v []byte) error {
		suffix := k[len(prefix):]
		off, err := strconv.ParseInt(string(v), 10, 64)
		if len(suffix) != 4 || err != nil {
			return fmt.Errorf("corrupt leader epoch entry %q = %q", k, v)
		}
		out = append(out, meta.EpochStart{Epoch: int32(binary.BigEndian.Uint32(suffix)), Offset: off})
		return nil
	})
	return out, err
}

// Release implements meta.Cluster. Releasing a partition no longer held
// at that epoch is not an error: the lease may have expired already.
func (s *Store) Release(ctx context.Context, brokerID int32, topic string, partition int32, epoch int32) error {
	return s.run(ctx, fmt.Sprintf("release %q/%d", topic, partition), func() error {
		lk := s.leaderKey(topic, partition)
		val := leaderValue{Topic: topic, Partition: partition, Broker: brokerID, Epoch: epoch}.encode()
		_, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.Value(lk), "=", val)).Then(clientv3.OpDelete(lk)).Commit()
		return err
	})
}

// Watch implements meta.Cluster.
func (s *Store) Watch(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	notify := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	var wg sync.WaitGroup
	for _, prefix := range []string{s.p + "cluster/", s.p + "topics/"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				wch := s.cli.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix())
				for range wch {
					notify()
				}
				// The watch broke (etcd down, compaction): whatever
				// changed meanwhile is seen by a fresh look.
				notify()
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out
}
