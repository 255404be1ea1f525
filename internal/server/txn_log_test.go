package server

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/meta/etcdstore/etcdtest"
	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/objwal"
	"github.com/vigilhq/vigil/internal/partition"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/internal/wal"
)

// The transactional log as clients see it: transactional batches
// produced with raw requests (a producer id from InitProducerId with a
// transactional id of its own, each partition added to its transaction
// first, as the coordinator verifies), markers through
// storage.Engine.AppendMarker as the coordinator writes them (so the
// coordinator still deems each transaction ongoing, which a later one's
// verification accepts, and the tests end long before its timeout), and
// franz-go consumers at both isolation levels plus raw fetches checked
// against Kafka's answers.

// txnLogTopic drives one partition (0) of a topic on a test server.
type txnLogTopic struct {
	t     *testing.T
	ts    *testServer
	c     *rawConn
	topic string
	ids   map[int64]string // producer id: its transactional id
}

func newTxnLogTopic(t *testing.T, ts *testServer, topic string, configs map[string]*string) *txnLogTopic {
	t.Helper()
	createTopics(t, testCtx(t, 30*time.Second), ts.admin(t), 1, configs, topic)
	return &txnLogTopic{t: t, ts: ts, c: dialRaw(t, ts.addr), topic: topic, ids: map[int64]string{}}
}

// pid is a new transactional producer's id, at epoch 0.
func (x *txnLogTopic) pid() int64 {
	x.t.Helper()
	id := fmt.Sprintf("txn-log-%s-%d", x.topic, len(x.ids))
	r := x.c.initProducerID(&id)
	if r.ErrorCode != 0 || r.ProducerEpoch != 0 {
		x.t.Fatalf("InitProducerId: %v, epoch %d", kerr.ErrorForCode(r.ErrorCode), r.ProducerEpoch)
	}
	x.ids[r.ProducerID] = id
	return r.ProducerID
}

// kvs turns "key=value" strings into records.
func kvs(recs []string) []batch.KV {
	var out []batch.KV
	for _, r := range recs {
		k, v, _ := cutEq(r)
		out = append(out, batch.KV{Key: []byte(k), Value: []byte(v)})
	}
	return out
}

func cutEq(s string) (string, string, bool) {
	for i := range s {
		if s[i] == '=' {
			return s[:i], s[i+1:], true
		}
	}
	return s, s, false
}

// produce sends raw records (as the transactional producer pid's
// request, with its transactional id, after adding the partition to its
// transaction) and returns the partition's answer.
func (x *txnLogTopic) produce(pid int64, epoch int16, raw []byte) kmsg.ProduceResponseTopicPartition {
	x.t.Helper()
	id := x.ids[pid]
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.SetVersion(3)
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = id, pid, epoch
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: x.topic, Partitions: []int32{0}}}
	ar := x.c.roundTrip(add, -1).(*kmsg.AddPartitionsToTxnResponse)
	if code := ar.Topics[0].Partitions[0].ErrorCode; code != 0 {
		x.t.Fatalf("AddPartitionsToTxn of %s: %v", id, kerr.ErrorForCode(code))
	}
	req := produceReq(x.topic, 0, -1, raw)
	req.TransactionID = &id
	resp := x.c.roundTrip(req, -1).(*kmsg.ProduceResponse)
	return resp.Topics[0].Partitions[0]
}

// txn appends a transactional batch of producer pid and returns its base
// offset.
func (x *txnLogTopic) txn(pid int64, epoch int16, seq int32, recs ...string) int64 {
	x.t.Helper()
	p := x.produce(pid, epoch, batch.BuildTxn(kvs(recs), time.Now().UnixMilli(), pid, epoch, seq))
	if p.ErrorCode != 0 {
		x.t.Fatalf("transactional produce of %v: %v", recs, kerr.ErrorForCode(p.ErrorCode))
	}
	return p.BaseOffset
}

// plain appends a non-transactional batch.
func (x *txnLogTopic) plain(recs ...string) int64 {
	x.t.Helper()
	p := x.c.produce(x.topic, 0, -1, batch.Build(kvs(recs), time.Now().UnixMilli()))
	if p.ErrorCode != 0 {
		x.t.Fatalf("produce of %v: %v", recs, kerr.ErrorForCode(p.ErrorCode))
	}
	return p.BaseOffset
}

// marker writes a transaction marker as the coordinator does.
func (x *txnLogTopic) marker(pid int64, epoch int16, commit bool) int64 {
	x.t.Helper()
	off, err := appendMarker(x.ts, x.topic, storage.Marker{ProducerID: pid, Epoch: epoch, Commit: commit, CoordinatorEpoch: 7})
	if err != nil {
		x.t.Fatalf("marker: %v", err)
	}
	return off
}

func appendMarker(ts *testServer, topic string, m storage.Marker) (int64, error) {
	top := ts.srv.store.Topic(topic)
	type result struct {
		off int64
		err error
	}
	ch := make(chan result, 1)
	ts.srv.store.AppendMarker(top, top.Logs[0], m, func(off int64, err error) { ch <- result{off, err} })
	r := <-ch
	return r.off, r.err
}

// consume reads the partition from its start with a franz-go consumer at
// an isolation level until it holds want values (keys and values as
// "k=v"), then a little longer to see nothing more comes; every record
// is checked against never, values no reader may ever see.
func consume(t *testing.T, ts *testServer, topic string, committed bool, want []string, never ...string) {
	t.Helper()
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	cl := ts.client(t, kgo.FetchIsolationLevel(iso), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	defer cl.Close()
	var got []string
	deadline := time.Now().Add(20 * time.Second)
	var quietUntil time.Time
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachError(func(_ string, _ int32, err error) {
			if err != context.DeadlineExceeded {
				t.Fatalf("fetch %s: %v", topic, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			kv := string(r.Key) + "=" + string(r.Value)
			if slices.Contains(never, kv) {
				t.Fatalf("%s (read_committed %v) returned %s at offset %d", topic, committed, kv, r.Offset)
			}
			got = append(got, kv)
		})
		switch {
		case len(got) > len(want):
			t.Fatalf("%s (read_committed %v): got %v, want %v", topic, committed, got, want)
		case len(got) == len(want) && quietUntil.IsZero():
			quietUntil = time.Now().Add(500 * time.Millisecond)
		case !quietUntil.IsZero() && time.Now().After(quietUntil):
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s (read_committed %v): got %v, want %v", topic, committed, got, want)
			}
			return
		case time.Now().After(deadline):
			t.Fatalf("%s (read_committed %v): got %v after 20s, want %v", topic, committed, got, want)
		}
	}
}

// fetched is a raw fetch's answer for partition 0.
type fetched struct {
	hw, lso int64
	aborted []kmsg.FetchResponseTopicPartitionAbortedTransaction
	batches []int64 // base offsets of the batches returned
	control []bool
}

func (x *txnLogTopic) fetch(offset int64, committed bool) fetched {
	x.t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(11)
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.SessionEpoch = -1, 0, 0, 1<<20, -1
	if committed {
		req.IsolationLevel = 1
	}
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = x.topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LogStartOffset = offset, 1<<20, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := x.c.roundTrip(req, -1).(*kmsg.FetchResponse)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		x.t.Fatalf("fetch at %d: %v", offset, kerr.ErrorForCode(p.ErrorCode))
	}
	f := fetched{hw: p.HighWatermark, lso: p.LastStableOffset, aborted: p.AbortedTransactions}
	for data := p.RecordBatches; len(data) > 0; {
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(data); err != nil {
			x.t.Fatalf("fetch at %d: %v", offset, err)
		}
		f.batches = append(f.batches, rb.FirstOffset)
		f.control = append(f.control, rb.Attributes&0x20 != 0)
		data = data[12+rb.Length:]
	}
	return f
}

func aborts(pairs ...int64) []kmsg.FetchResponseTopicPartitionAbortedTransaction {
	out := []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
	for i := 0; i+1 < len(pairs); i += 2 {
		a := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
		a.ProducerID, a.FirstOffset = pairs[i], pairs[i+1]
		out = append(out, a)
	}
	return out
}

func (x *txnLogTopic) listLatest(committed bool) int64 {
	x.t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.SetVersion(7)
	req.ReplicaID = -1
	if committed {
		req.IsolationLevel = 1
	}
	req.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: x.topic, Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: 0, CurrentLeaderEpoch: -1, Timestamp: -1}}}}
	p := x.c.roundTrip(req, -1).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		x.t.Fatalf("ListOffsets: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	return p.Offset
}

// TestReadCommitted: read_committed consumers get committed and plain
// records only, never an aborted one, and nothing at or past the last
// stable offset; raw fetches carry Kafka's LastStableOffset and
// AbortedTransactions; ListOffsets and DescribeProducers follow the
// LSO; all of it from the tail in memory, after a crash (the WAL replayed
// over the last upload's index and producer state) and after a clean
// restart (segment objects only).
func TestReadCommitted(t *testing.T) {
	dir := t.TempDir()
	mod := func(c *config.Broker) {
		c.UploadInterval = time.Hour // the crash copy holds everything in the WAL
		c.TailCacheBytes = 0         // once uploaded, reads come from objects
	}
	ts := startServer(t, dir, mod)
	x := newTxnLogTopic(t, ts, "txlog", nil)
	a, b, c := x.pid(), x.pid(), x.pid()

	x.plain("p=0")                         // 0
	aFirst := x.txn(a, 0, 0, "a=1", "a=2") // 1-2
	x.plain("p=1")                         // 3
	x.txn(b, 0, 0, "b=1")                  // 4
	abortA := x.marker(a, 0, false)        // 5
	x.txn(a, 0, 2, "a=3")                  // 6: a's next transaction
	x.marker(b, 0, true)                   // 7
	x.marker(a, 0, true)                   // 8
	cFirst := x.txn(c, 0, 0, "c=1")        // 9: left open
	x.plain("p=2")                         // 10
	if aFirst != 1 || abortA != 5 || cFirst != 9 {
		t.Fatalf("offsets %d %d %d: the layout this test assumes changed", aFirst, abortA, cFirst)
	}
	aborted := []string{"a=1", "a=2", "c=1"}
	committed := []string{"p=0", "p=1", "b=1", "a=3"}

	check := func(t *testing.T, ts *testServer) {
		x := &txnLogTopic{t: t, ts: ts, c: dialRaw(t, ts.addr), topic: "txlog"}
		consume(t, ts, "txlog", true, committed, aborted...)
		consume(t, ts, "txlog", false, []string{"p=0", "a=1", "a=2", "p=1", "b=1", "a=3", "c=1", "p=2"})

		f := x.fetch(0, true)
		if f.hw != 11 || f.lso != 9 || !reflect.DeepEqual(f.aborted, aborts(a, 1)) || !slices.Equal(f.batches, []int64{0, 1, 3, 4, 5, 6, 7, 8}) {
			t.Fatalf("read_committed fetch at 0: HW %d LSO %d aborted %v batches %v; want 11, 9, [{%d 1}], 0-8",
				f.hw, f.lso, f.aborted, f.batches, a)
		}
		// From past the abort marker no aborted transaction is named, but
		// the list is there (Kafka's empty list, not null).
		if f := x.fetch(6, true); f.aborted == nil || len(f.aborted) != 0 || !slices.Equal(f.batches, []int64{6, 7, 8}) {
			t.Fatalf("read_committed fetch at 6: aborted %v (nil %v), batches %v", f.aborted, f.aborted == nil, f.batches)
		}
		// At the LSO: nothing yet, not out of range.
		if f := x.fetch(9, true); len(f.batches) != 0 || f.aborted == nil {
			t.Fatalf("read_committed fetch at the LSO: batches %v aborted %v", f.batches, f.aborted)
		}
		if f := x.fetch(0, false); f.lso != 9 || f.aborted != nil || len(f.batches) != 10 {
			t.Fatalf("read_uncommitted fetch: LSO %d aborted %v (want null) batches %v", f.lso, f.aborted, f.batches)
		}
		if got := x.listLatest(true); got != 9 {
			t.Fatalf("ListOffsets latest read_committed = %d, want the LSO 9", got)
		}
		if got := x.listLatest(false); got != 11 {
			t.Fatalf("ListOffsets latest read_uncommitted = %d, want 11", got)
		}
		adm := ts.admin(t)
		described, err := adm.DescribeProducers(testCtx(t, 10*time.Second), kadm.TopicsSet{"txlog": {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		ps := described["txlog"].Partitions[0].ActiveProducers
		if p := ps[c]; p.CurrentTxnStartOffset != 9 || p.CoordinatorEpoch != -1 {
			t.Fatalf("DescribeProducers of the open transaction's producer: %+v", p)
		}
		if p := ps[a]; p.CurrentTxnStartOffset != -1 || p.CoordinatorEpoch != 7 {
			t.Fatalf("DescribeProducers of a producer between transactions: %+v", p)
		}
	}
	t.Run("live", func(t *testing.T) { check(t, ts) })
	crashed := t.TempDir()
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	ts.close()

	t.Run("after crash", func(t *testing.T) {
		ts := startServer(t, crashed, mod)
		check(t, ts)
		// The open transaction can still be aborted, and the rest of the
		// log becomes readable.
		x := &txnLogTopic{t: t, ts: ts, c: dialRaw(t, ts.addr), topic: "txlog"}
		m := x.marker(c, 0, false)
		consume(t, ts, "txlog", true, append(slices.Clone(committed), "p=2"), aborted...)
		if f := x.fetch(0, true); f.lso != m+1 || !reflect.DeepEqual(f.aborted, aborts(a, 1, c, 9)) {
			t.Fatalf("after aborting the open one: LSO %d aborted %v", f.lso, f.aborted)
		}
	})
	t.Run("after restart from objects", func(t *testing.T) {
		ts := startServer(t, dir, mod)
		if n := len(ts.srv.store.Topic("txlog").Logs[0].Segments()); n == 0 {
			t.Fatal("nothing uploaded at the clean close")
		}
		check(t, ts)
	})
}

// TestReadCommittedThroughRetentionAndCompaction: retention drops the
// aborted transactions of the data it deletes, merged objects keep every
// other one, and readers see exactly the committed records throughout.
func TestReadCommittedThroughRetentionAndCompaction(t *testing.T) {
	mod := func(c *config.Broker) {
		c.UploadInterval = 10 * time.Millisecond
		c.RetentionCheckInterval = time.Hour // the test drives retention and compaction
		c.ObjectDeleteDelay = 100 * time.Millisecond
		c.TailCacheBytes = 0
		c.CompactTargetBytes = 1 << 20
	}
	ts := startServer(t, t.TempDir(), mod)
	x := newTxnLogTopic(t, ts, "txmerge", nil)
	uploaded := func() { waitFor(t, "upload", func() bool { return ts.srv.UploadBacklog() == 0 }) }
	const rounds, kept = 8, 4 // retention deletes the rounds before kept
	var cut int64
	var committed, aborted []string
	var wantAborts []int64
	for i := range rounds {
		pid := x.pid()
		name := string(rune('a' + i))
		first := x.txn(pid, 0, 0, "k"+name+"=v")
		if i == kept {
			cut = first
		}
		uploaded()
		x.plain("plain=" + name) // between the transaction's batch and its marker
		commit := i%3 != 0
		x.marker(pid, 0, commit)
		uploaded()
		switch {
		case !commit:
			aborted = append(aborted, "k"+name+"=v")
			if i >= kept {
				wantAborts = append(wantAborts, pid, first)
			}
		case i >= kept:
			committed = append(committed, "k"+name+"=v")
		}
		if i >= kept {
			committed = append(committed, "plain="+name)
		}
	}
	slices.Sort(committed)
	ctx := testCtx(t, time.Minute)
	to := kadm.Offsets{}
	to.AddOffset("txmerge", 0, cut, -1)
	if _, err := ts.admin(t).DeleteRecords(ctx, to); err != nil {
		t.Fatal(err)
	}
	l := ts.srv.store.Topic("txmerge").Logs[0]
	below := 0 // the index entries wholly below the new log start
	for _, sg := range l.Segments() {
		if sg.LastOffset < cut {
			below++
		}
	}
	if n, err := ts.srv.store.EnforceRetention(ctx, time.Now()); err != nil || n != below || n < kept {
		t.Fatalf("EnforceRetention = %d, %v; want the %d entries of rounds before %d", n, err, below, kept)
	}
	if got := l.AbortedTxns(0, 1<<40); len(got) != len(wantAborts)/2 {
		t.Fatalf("after retention the aborted index holds %v, want producers/first offsets %v", got, wantAborts)
	}
	if f := x.fetch(cut, true); !reflect.DeepEqual(f.aborted, aborts(wantAborts...)) {
		t.Fatalf("after retention: aborted %v, want %v", f.aborted, aborts(wantAborts...))
	}
	consumeSorted(t, ts, "txmerge", committed, aborted...)

	before := len(l.Segments())
	if n, err := ts.srv.store.Compact(ctx); err != nil || n < 4 {
		t.Fatalf("Compact = %d, %v (%d entries before)", n, err, before)
	}
	if after := len(l.Segments()); after >= before {
		t.Fatalf("%d entries after compaction, %d before", after, before)
	}
	if f := x.fetch(cut, true); !reflect.DeepEqual(f.aborted, aborts(wantAborts...)) {
		t.Fatalf("after compaction: aborted %v, want %v", f.aborted, aborts(wantAborts...))
	}
	consumeSorted(t, ts, "txmerge", committed, aborted...)
}

// consumeSorted is consume with both sides sorted.
func consumeSorted(t *testing.T, ts *testServer, topic string, want []string, never ...string) {
	t.Helper()
	cl := ts.client(t, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	defer cl.Close()
	var got []string
	ctx := testCtx(t, 20*time.Second)
	for len(got) < len(want) {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("fetch %s: %v (got %v)", topic, err, got)
		}
		fs.EachRecord(func(r *kgo.Record) {
			kv := string(r.Key) + "=" + string(r.Value)
			if slices.Contains(never, kv) {
				t.Fatalf("%s: read_committed returned aborted %s at %d", topic, kv, r.Offset)
			}
			got = append(got, kv)
		})
	}
	slices.Sort(got)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: got %v, want %v", topic, got, want)
	}
}

// TestClusterTakeoverRebuildsTransactions: a broker died with a
// transaction's batches and abort marker, and another transaction's
// open batch, durable in its WAL and never uploaded. The next leader
// rebuilds the open transaction (LSO) and the aborted index from that
// tail and commits the index entry with its aborted index, so the leader
// after it, reading only objects, answers read_committed fetches alike.
func TestClusterTakeoverRebuildsTransactions(t *testing.T) {
	endpoint := etcdtest.Start(t)
	objects := filepath.Join(t.TempDir(), "objects")
	ctx := testCtx(t, 90*time.Second)
	first := startServer(t, t.TempDir(), clusterOf(endpoint, objects, 1, "a"))
	adm := kadm.NewClient(first.client(t))
	createTopics(t, ctx, adm, 1, nil, "txc")
	leaders(t, ctx, adm, "txc", nil)
	top := first.srv.store.Topic("txc")
	epoch, _ := top.Logs[0].Leader()

	// Broker 9's WAL: producer 42's transaction (0-1) and its abort (2),
	// producer 43's open transaction (3), a plain record (4).
	now := time.Now().UnixMilli()
	entries := [][]byte{
		batch.BuildTxn(kvs([]string{"a=1", "a=2"}), now, 42, 0, 0),
		batch.BuildMarker(42, 0, false, 3, now),
		batch.BuildTxn(kvs([]string{"b=1"}), now, 43, 0, 0),
		batch.Build(kvs([]string{"p=1"}), now),
	}
	store, err := objstore.Open(ctx, objects, objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	w, err := objwal.Open(ctx, store, 9, objwal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var off int64
	for _, raw := range entries {
		batch.Assign(raw, off, epoch)
		info, _ := batch.Peek(raw)
		off = info.LastOffset + 1
		done := make(chan error, 1)
		w.Append(wal.Entry{Topic: hex.EncodeToString(top.ID[:]), Partition: 0, Data: raw}, func(_ uint64, err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	first.close()
	second := startServer(t, t.TempDir(), clusterOf(endpoint, objects, 2, "a"))
	leaders(t, ctx, kadm.NewClient(second.client(t)), "txc", map[int32]bool{2: true})
	l := second.srv.store.Topic("txc").Logs[0]
	if lso, hw := l.LSO(), hwOf(l); lso != 3 || hw != 5 {
		t.Fatalf("after the takeover: LSO %d HW %d, want 3 and 5", lso, hw)
	}
	want := []partition.AbortedTxn{{ProducerID: 42, FirstOffset: 0, LastOffset: 2}}
	if got := l.AbortedTxns(0, 10); !reflect.DeepEqual(got, want) {
		t.Fatalf("aborted index after the takeover: %v", got)
	}
	segs, err := second.srv.meta.Segments(ctx, "txc", 0)
	if err != nil || len(segs) != 1 || !reflect.DeepEqual(segs[0].Aborted, want) {
		t.Fatalf("stored index after the takeover: %+v, %v", segs, err)
	}
	// The new leader ends the open transaction; read_committed readers see
	// its record and the plain one, never producer 42's.
	if _, err := appendMarker(second, "txc", storage.Marker{ProducerID: 43, Epoch: 0, Commit: true}); err != nil {
		t.Fatal(err)
	}
	consume(t, second, "txc", true, []string{"b=1", "p=1"}, "a=1", "a=2")

	second.close()
	third := startServer(t, t.TempDir(), clusterOf(endpoint, objects, 3, "a"))
	leaders(t, ctx, kadm.NewClient(third.client(t)), "txc", map[int32]bool{3: true})
	l = third.srv.store.Topic("txc").Logs[0]
	if got := l.AbortedTxns(0, 10); !reflect.DeepEqual(got, want) || l.LSO() != hwOf(l) {
		t.Fatalf("the leader after: aborted %v, LSO %d HW %d", got, l.LSO(), hwOf(l))
	}
	consume(t, third, "txc", true, []string{"b=1", "p=1"}, "a=1", "a=2")
}

func hwOf(l *partition.Log) int64 {
	_, hw := l.Offsets()
	return hw
}

// TestReadCommittedThroughCleaner: on a compacted topic the cleaner
// removes aborted records (which supersede nothing), never cleans an open
// transaction, and drops an abort marker's aborted-index entry only in a
// pass after the one that removed its data; that pass stamps the marker's
// delete horizon (KIP-534) and a pass past it drops the marker; readers
// at both isolation levels see what Kafka's would. Each phase's batches are
// uploaded as one object by a restart, so the runs a pass sees are known.
func TestReadCommittedThroughCleaner(t *testing.T) {
	dir := t.TempDir()
	mod := func(c *config.Broker) {
		c.UploadInterval = time.Hour // a restart uploads
		c.RetentionCheckInterval = time.Hour
		c.ObjectDeleteDelay = 100 * time.Millisecond
		c.TailCacheBytes = 0
	}
	ts := startServer(t, dir, mod)
	x := newTxnLogTopic(t, ts, "txclean", map[string]*string{"cleanup.policy": kadm.StringPtr("compact"),
		"min.cleanable.dirty.ratio": kadm.StringPtr("0"), "delete.retention.ms": kadm.StringPtr("0")})
	// restart uploads everything written so far and runs a cleaner pass.
	restart := func() {
		t.Helper()
		ts.close()
		ts = startServer(t, dir, mod)
		x = &txnLogTopic{t: t, ts: ts, c: dialRaw(t, ts.addr), topic: "txclean"}
		time.Sleep(5 * time.Millisecond) // past the delete horizons (delete.retention.ms=0) the last pass stamped
		if _, err := ts.srv.store.Clean(testCtx(t, 30*time.Second), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	a, b, c := x.pid(), x.pid(), x.pid()
	x.plain("k1=c1")                           // 0
	x.txn(a, 0, 0, "k1=aborted", "k2=aborted") // 1-2
	x.marker(a, 0, false)                      // 3
	x.txn(b, 0, 0, "k3=b")                     // 4
	x.marker(b, 0, true)                       // 5
	x.txn(c, 0, 0, "k4=open")                  // 6
	aborted := []string{"k1=aborted", "k2=aborted"}
	restart()
	// Nothing was cleanable: the one run reaches the open transaction.
	if got := x.fetch(0, false).batches; !slices.Equal(got, []int64{0, 1, 3, 4, 5, 6}) {
		t.Fatalf("batches %v after a pass with a transaction open, want all 6", got)
	}
	consumeSorted(t, ts, "txclean", []string{"k1=c1", "k3=b"}, append(aborted, "k4=open")...)
	x.marker(c, 0, true) // 7
	x.plain("k5=tail")   // 8
	restart()
	// The aborted data went (and k1=aborted did not supersede k1=c1); its
	// marker stays with its entry, in the pass that removed the data.
	if got := x.fetch(0, false).batches; !slices.Equal(got, []int64{0, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("batches %v after the pass that removed the aborted data", got)
	}
	consumeSorted(t, ts, "txclean", []string{"k1=c1", "k3=b", "k4=open", "k5=tail"}, aborted...)
	consume(t, ts, "txclean", false, []string{"k1=c1", "k3=b", "k4=open", "k5=tail"}, aborted...)
	if f := x.fetch(0, true); !reflect.DeepEqual(f.aborted, aborts(a, 1)) {
		t.Fatalf("after the pass that removed the aborted data: aborted %v, want its marker's entry", f.aborted)
	}
	x.plain("k6=more") // 9
	restart()
	// The next pass met no data of it: its entry goes and the abort marker
	// is stamped with its delete horizon (this pass's time, with a zero
	// delete.retention.ms), not removed.
	f := x.fetch(0, true)
	if len(f.aborted) != 0 || !slices.Equal(f.batches, []int64{0, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("after the next pass: aborted %v, batches %v", f.aborted, f.batches)
	}
	consumeSorted(t, ts, "txclean", []string{"k1=c1", "k3=b", "k4=open", "k5=tail", "k6=more"}, aborted...)
	x.plain("k7=more") // 10
	restart()
	// A pass past the horizon: the abort marker goes; the commit markers
	// stay with their data.
	f = x.fetch(0, true)
	if len(f.aborted) != 0 || !slices.Equal(f.batches, []int64{0, 4, 5, 6, 7, 8, 9, 10}) {
		t.Fatalf("after a pass past the marker's horizon: aborted %v, batches %v", f.aborted, f.batches)
	}
	consumeSorted(t, ts, "txclean", []string{"k1=c1", "k3=b", "k4=open", "k5=tail", "k6=more", "k7=more"}, aborted...)
}
