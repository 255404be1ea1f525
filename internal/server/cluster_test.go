package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/admincli"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/meta/etcdstore/etcdtest"
	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/objwal"
	producerstate "github.com/vigilhq/vigil/internal/producer"
	"github.com/vigilhq/vigil/internal/wal"
)

// clusterOf returns a config modifier for broker id of a cluster sharing
// one etcd and one object store.
func clusterOf(endpoint, objects string, id int32, zone string) func(*config.Broker) {
	return func(c *config.Broker) {
		c.Metadata = "etcd://" + endpoint + "/vigil/cluster"
		c.ObjectStore = objects
		c.WAL = "object"
		c.NodeID = id
		c.Zone = zone
		c.LeaseTTL = 2 * time.Second
		c.GroupInitialRebalance = 0
	}
}

// testCluster is brokers of one cluster sharing an etcd and an object
// store.
type testCluster struct {
	endpoint, objects string
	brokers           []*testServer
}

// startCluster starts brokers 1..n on a fresh etcd, broker id in zone
// zone(id).
func startCluster(t *testing.T, n int32, zone func(id int32) string) *testCluster {
	c := &testCluster{endpoint: etcdtest.Start(t), objects: filepath.Join(t.TempDir(), "objects")}
	for id := int32(1); id <= n; id++ {
		c.brokers = append(c.brokers, startServer(t, t.TempDir(), clusterOf(c.endpoint, c.objects, id, zone(id))))
	}
	return c
}

// client returns a client seeded with the brokers still running, closed
// at the test's end.
func (c *testCluster) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	var seeds []string
	for _, b := range c.brokers {
		if !b.closed {
			seeds = append(seeds, b.addr)
		}
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.RetryTimeout(60 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// leaders waits until every partition of topic has a leader and returns
// how many each broker leads.
func leaders(t *testing.T, ctx context.Context, adm *kadm.Client, topic string, want map[int32]bool) map[int32]int {
	t.Helper()
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			counts := map[int32]int{}
			ok := len(md.Topics[topic].Partitions) > 0
			for _, p := range md.Topics[topic].Partitions {
				if p.Err != nil || p.Leader < 0 || (want != nil && !want[p.Leader]) {
					ok = false
				}
				counts[p.Leader]++
			}
			if ok {
				return counts
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("partitions of %s never all led by %v: %v (last err %v)", topic, want, md.Topics[topic].Partitions, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestClusterMovesLeadership runs three brokers on one etcd and one
// object store, produces with an idempotent acks=all producer while a
// fourth broker joins and then one broker shuts down, and checks that
// leadership spreads over the brokers, moves to the new one and away from
// the one that left, and that every acknowledged record is read back
// exactly once, in order per partition.
func TestClusterMovesLeadership(t *testing.T) {
	cluster := startCluster(t, 3, func(id int32) string { return fmt.Sprintf("z%d", id%2) })
	endpoint, objects := cluster.endpoint, cluster.objects
	ctx := testCtx(t, 120*time.Second)
	brokers := cluster.brokers
	newClient := func(opts ...kgo.Opt) *kgo.Client { return cluster.client(t, opts...) }
	adm := kadm.NewClient(newClient())
	createTopics(t, ctx, adm, 12, nil, "events")
	counts := leaders(t, ctx, adm, "events", map[int32]bool{1: true, 2: true, 3: true})
	t.Logf("leaders per broker with 3 brokers: %v", counts)
	if len(counts) != 3 {
		t.Fatalf("12 partitions led by %d brokers, want all 3: %v", len(counts), counts)
	}
	md, err := adm.BrokerMetadata(ctx)
	if err != nil || len(md.Brokers) != 3 {
		t.Fatalf("metadata lists brokers %v (%v), want 3", md.Brokers, err)
	}
	for _, b := range md.Brokers {
		if b.Rack == nil || *b.Rack != fmt.Sprintf("z%d", b.NodeID%2) {
			t.Errorf("broker %d rack %v, want its zone", b.NodeID, b.Rack)
		}
	}

	// Produce continuously; remember each acknowledged record's offset.
	prod := newClient(kgo.DefaultProduceTopic("events"), kgo.RequiredAcks(kgo.AllISRAcks()))
	var mu sync.Mutex
	acked := map[int32][]int64{} // partition -> offsets, in ack order
	values := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var produceErrs int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r := &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("v%06d", i))}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				mu.Lock()
				produceErrs++
				mu.Unlock()
				continue
			}
			mu.Lock()
			acked[r.Partition] = append(acked[r.Partition], r.Offset)
			values[string(r.Value)] = true
			mu.Unlock()
		}
	}()
	// A consumer group reads along, committing as it goes; its
	// coordinator moves with __consumer_offsets.
	groupSeen := map[string]int{}
	var gmu sync.Mutex
	gctx, gcancel := context.WithCancel(ctx)
	grp := newClient(kgo.ConsumeTopics("events"), kgo.ConsumerGroup("detect"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	var gwg sync.WaitGroup
	gwg.Add(1)
	go func() {
		defer gwg.Done()
		for gctx.Err() == nil {
			fs := grp.PollFetches(gctx)
			fs.EachRecord(func(r *kgo.Record) {
				gmu.Lock()
				groupSeen[string(r.Value)]++
				gmu.Unlock()
			})
		}
	}()
	time.Sleep(time.Second)

	// A fourth broker joins: some partitions move to it.
	b4 := startServer(t, t.TempDir(), clusterOf(endpoint, objects, 4, "z0"))
	brokers = append(brokers, b4)
	counts = leaders(t, ctx, adm, "events", nil)
	deadline := time.Now().Add(30 * time.Second)
	for counts[4] == 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		counts = leaders(t, ctx, adm, "events", nil)
	}
	t.Logf("leaders per broker after broker 4 joined: %v", counts)
	if counts[4] == 0 {
		t.Fatalf("no partition moved to the new broker: %v", counts)
	}
	time.Sleep(time.Second)

	// Broker 2 shuts down: its partitions are handed over at once.
	brokers[1].close()
	counts = leaders(t, ctx, adm, "events", map[int32]bool{1: true, 3: true, 4: true})
	t.Logf("leaders per broker after broker 2 left: %v", counts)

	// Drain broker 3 with the operator command: it ends up leading
	// nothing, and `cluster status` says so.
	var out, errOut bytes.Buffer
	env := admincli.Env{Stdout: &out, Stderr: &errOut}
	seedFlag := "--brokers=" + brokers[0].addr
	if code := admincli.Main(ctx, []string{"cluster", "drain", "3", seedFlag, "--timeout=60s"}, env); code != 0 {
		t.Fatalf("vigil cluster drain 3: exit %d: %s %s", code, out.String(), errOut.String())
	}
	t.Logf("vigil cluster drain 3:\n%s", out.String())
	out.Reset()
	if code := admincli.Main(ctx, []string{"cluster", "status", "--json", seedFlag}, env); code != 0 {
		t.Fatalf("vigil cluster status: exit %d: %s", code, errOut.String())
	}
	var st struct {
		Brokers []struct {
			ID         int32 `json:"id"`
			Zone       string
			Draining   bool
			Partitions int `json:"partitions_led"`
			Groups     int `json:"groups_coordinated"`
		}
	}
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, out.String())
	}
	t.Logf("vigil cluster status --json after the drain: %+v", st.Brokers)
	for _, b := range st.Brokers {
		if b.ID == 3 && (!b.Draining || b.Partitions != 0 || b.Groups != 0) {
			t.Errorf("drained broker 3: %+v", b)
		}
		if b.ID == 2 {
			t.Errorf("stopped broker 2 still listed: %+v", b)
		}
	}
	out.Reset()
	if code := admincli.Main(ctx, []string{"cluster", "drain", "3", "--undo", seedFlag, "--timeout=60s"}, env); code != 0 {
		t.Fatalf("vigil cluster drain 3 --undo: exit %d: %s %s", code, out.String(), errOut.String())
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	var copied int64
	for _, b := range brokers {
		if !b.closed {
			copied += b.srv.store.RecoveredBytes()
		}
	}
	mu.Lock()
	total := len(values)
	t.Logf("acknowledged %d records (%d produce errors retried past the client's timeout); record bytes recovered from another broker's WAL: %d", total, produceErrs, copied)
	mu.Unlock()
	if total < 100 {
		t.Fatalf("only %d records acknowledged", total)
	}
	if copied != 0 {
		t.Errorf("planned moves recovered %d bytes from WALs; want 0 (the old leader uploads its tail before handing over)", copied)
	}

	// The group catches up with everything acknowledged.
	for {
		gmu.Lock()
		n := 0
		for v := range values {
			if groupSeen[v] > 0 {
				n++
			}
		}
		gmu.Unlock()
		if n == total {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the consumer group read %d of %d acknowledged records", n, total)
		}
		time.Sleep(100 * time.Millisecond)
	}
	gcancel()
	gwg.Wait()
	dups := 0
	for _, n := range groupSeen {
		dups += n - 1
	}
	t.Logf("the consumer group read all %d records; %d were delivered again after a coordinator or leader move", total, dups)
	if err := grp.CommitUncommittedOffsets(context.Background()); err != nil {
		t.Errorf("final commit: %v", err)
	}
	offs, err := adm.FetchOffsets(ctx, "detect")
	if err != nil || offs.Error() != nil {
		t.Fatalf("fetch committed offsets: %v %v", err, offs.Error())
	}
	var committed int64
	offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
	t.Logf("committed offsets sum to %d", committed)
	if committed == 0 {
		t.Errorf("no offsets committed")
	}

	// Every acknowledged record, exactly once, in offset order per partition.
	cons := newClient(kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]int{}
	last := map[int32]int64{}
	type span struct{ first, last int64 }
	epochs := map[int32]map[int32]span{} // partition -> leader epoch -> its records' offsets
	// Then on to each partition's end, so the epochs below are complete
	// even if a record whose produce timed out landed after the last
	// acknowledged one.
	ends, err := adm.ListEndOffsets(ctx, "events")
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets: %v %v", err, ends.Error())
	}
	atEnd := func() bool {
		done := true
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset > 0 && last[o.Partition]+1 < o.Offset {
				done = false
			}
		})
		return done
	}
	got := 0
	for got < total || !atEnd() {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d acknowledged records", got, total)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if prev, ok := last[r.Partition]; ok && r.Offset <= prev {
				t.Errorf("partition %d: offset %d after %d", r.Partition, r.Offset, prev)
			}
			last[r.Partition] = r.Offset
			if epochs[r.Partition] == nil {
				epochs[r.Partition] = map[int32]span{}
			}
			sp, ok := epochs[r.Partition][r.LeaderEpoch]
			if !ok {
				sp.first = r.Offset
			}
			sp.last = r.Offset
			epochs[r.Partition][r.LeaderEpoch] = sp
			seen[string(r.Value)]++
			if values[string(r.Value)] {
				got++
			}
		})
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("record %s read %d times", v, n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for p, offs := range acked {
		if !sort.SliceIsSorted(offs, func(i, j int) bool { return offs[i] < offs[j] }) {
			t.Errorf("partition %d: acknowledged offsets out of order", p)
		}
	}

	// OffsetForLeaderEpoch, which a consumer sends after a leader change
	// with the epoch of the last record it read, for every epoch up to the
	// current one. The answers follow Kafka's leader-epoch cache over the
	// history the records show: the epochs that wrote records, each from
	// its first record, then the current epoch from where it began. The
	// current epoch ends at the log's end; an earlier one where the next
	// epoch of that history began, answered with the latest epoch of the
	// history at or before the one asked for; one older than the whole
	// history with itself and the first start.
	md2, err := adm.Metadata(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "events"
	type ask struct {
		p, epoch  int32
		wantEpoch int32
		want      int64
	}
	var asks []ask
	moved := 0
	for _, pd := range md2.Topics["events"].Partitions {
		byEpoch := epochs[pd.Partition]
		var es []int32
		for e := range byEpoch {
			es = append(es, e)
		}
		slices.Sort(es)
		if len(es) == 0 {
			continue
		}
		end := ends["events"][pd.Partition].Offset
		currentStart := end // no record of the current epoch yet
		if sp, ok := byEpoch[pd.LeaderEpoch]; ok {
			currentStart = sp.first
		}
		var hist []meta.EpochStart
		for _, e := range es {
			if e != pd.LeaderEpoch {
				hist = append(hist, meta.EpochStart{Epoch: e, Offset: byEpoch[e].first})
			}
		}
		hist = append(hist, meta.EpochStart{Epoch: pd.LeaderEpoch, Offset: currentStart})
		if len(hist) > 1 {
			moved++
		}
		for e := int32(0); e <= pd.LeaderEpoch; e++ {
			a := ask{p: pd.Partition, epoch: e, wantEpoch: e, want: end}
			if e != pd.LeaderEpoch {
				i := slices.IndexFunc(hist, func(h meta.EpochStart) bool { return h.Epoch > e })
				a.want = hist[i].Offset
				if i > 0 {
					a.wantEpoch = hist[i-1].Epoch
				}
			}
			asks = append(asks, a)
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = pd.Partition, pd.LeaderEpoch, e
			rt.Partitions = append(rt.Partitions, rp)
		}
	}
	req.Topics = append(req.Topics, rt)
	if moved == 0 {
		t.Fatal("no partition has records of an epoch before the current one")
	}
	r, err := newClient().Request(ctx, req)
	if err != nil {
		t.Fatalf("OffsetForLeaderEpoch: %v", err)
	}
	answers := map[[2]int32]kmsg.OffsetForLeaderEpochResponseTopicPartition{}
	for _, rt := range r.(*kmsg.OffsetForLeaderEpochResponse).Topics {
		for _, rp := range rt.Partitions {
			// Partitions answer in request order, one per asked epoch.
			for _, a := range asks {
				k := [2]int32{a.p, a.epoch}
				if _, done := answers[k]; a.p == rp.Partition && !done {
					answers[k] = rp
					break
				}
			}
		}
	}
	for _, a := range asks {
		rp := answers[[2]int32{a.p, a.epoch}]
		if rp.ErrorCode != 0 || rp.LeaderEpoch != a.wantEpoch || rp.EndOffset != a.want {
			t.Errorf("partition %d epoch %d: answered epoch %d end %d (error %d), want epoch %d end %d",
				a.p, a.epoch, rp.LeaderEpoch, rp.EndOffset, rp.ErrorCode, a.wantEpoch, a.want)
		}
	}
	t.Logf("OffsetForLeaderEpoch answered %d epochs of 12 partitions; %d partitions have records of an earlier epoch", len(asks), moved)
}

// TestClusterCollectsDeadWALs writes the WALs of two departed brokers into
// the shared store: one whose entries all belong to a deleted topic
// (superseded) and one holding the tail of a partition nobody has taken
// over since (still needed). Collection deletes the first and keeps the
// second.
func TestClusterCollectsDeadWALs(t *testing.T) {
	endpoint := etcdtest.Start(t)
	objects := filepath.Join(t.TempDir(), "objects")
	ctx := testCtx(t, 60*time.Second)
	ts := startServer(t, t.TempDir(), clusterOf(endpoint, objects, 1, "a"))
	adm := kadm.NewClient(ts.client(t))
	createTopics(t, ctx, adm, 1, nil, "kept")
	leaders(t, ctx, adm, "kept", nil)
	kept := ts.srv.store.Topic("kept")
	store, err := objstore.Open(ctx, objects, objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	epoch, _ := kept.Logs[0].Leader()
	writeWAL := func(broker int32, topicID [16]byte, epoch int32) {
		raw := batch.Build([]batch.KV{{Value: []byte("v")}}, time.Now().UnixMilli())
		batch.Assign(raw, 0, epoch)
		writeDeadWAL(t, ctx, store, broker, topicID, raw)
	}
	writeWAL(8, [16]byte{1, 2, 3}, 1) // a topic that no longer exists
	writeWAL(9, kept.ID, epoch)       // the serving epoch of a live partition
	n, err := ts.srv.store.CollectDeadWALs(ctx, map[int32]bool{1: true}, ts.srv.member.View().LeadersList())
	if err != nil {
		t.Fatal(err)
	}
	ids, err := objwal.Brokers(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("collected %d chunks; brokers with WAL chunks left: %v", n, ids)
	if n != 1 || !slices.Contains(ids, 9) || slices.Contains(ids, 8) {
		t.Fatalf("collected %d chunks, left %v; want broker 8's one chunk gone and broker 9's kept", n, ids)
	}
}

// writeDeadWAL leaves batch raw of partition 0 of topicID durable in the
// object WAL of broker, which is not running: the unuploaded tail a broker
// that died leaves behind.
func writeDeadWAL(t *testing.T, ctx context.Context, store objstore.Store, broker int32, topicID [16]byte, raw []byte) {
	t.Helper()
	w, err := objwal.Open(ctx, store, broker, objwal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	w.Append(wal.Entry{Topic: hex.EncodeToString(topicID[:]), Partition: 0, Data: raw}, func(_ uint64, err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestClusterTakeoverStoresRecoveredProducers: an idempotent batch that a
// dead broker made durable in its WAL, but never uploaded, is recovered
// by the next leader, and so is its producer state: the new leader stores
// it at its epoch at once, so a leader after it knows the batch and still
// answers a retry of it as a duplicate.
func TestClusterTakeoverStoresRecoveredProducers(t *testing.T) {
	endpoint := etcdtest.Start(t)
	objects := filepath.Join(t.TempDir(), "objects")
	ctx := testCtx(t, 60*time.Second)
	first := startServer(t, t.TempDir(), clusterOf(endpoint, objects, 1, "a"))
	adm := kadm.NewClient(first.client(t))
	createTopics(t, ctx, adm, 1, nil, "idem")
	leaders(t, ctx, adm, "idem", nil)
	top := first.srv.store.Topic("idem")
	epoch, _ := top.Logs[0].Leader()

	// Broker 9 died with one idempotent batch (producer 42, sequences
	// 0-2) durable in its WAL at the partition's serving epoch.
	rb := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: 2, FirstTimestamp: time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli(),
		ProducerID: 42, ProducerEpoch: 0, FirstSequence: 0, NumRecords: 3}
	for i := range 3 {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte{byte(i)}}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		rb.Records = r.AppendTo(rb.Records)
	}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	batch.Assign(raw, 0, epoch)
	store, err := objstore.Open(ctx, objects, objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	writeDeadWAL(t, ctx, store, 9, top.ID, raw)

	// Broker 1 leaves; broker 2 takes the partition over and recovers the
	// batch.
	first.close()
	second := startServer(t, t.TempDir(), clusterOf(endpoint, objects, 2, "a"))
	leaders(t, ctx, kadm.NewClient(second.client(t)), "idem", map[int32]bool{2: true})
	if _, hw := second.srv.store.Topic("idem").Logs[0].Offsets(); hw != 3 {
		t.Fatalf("high watermark after the takeover: %d, want the 3 recovered records", hw)
	}
	ps, err := second.srv.meta.Producers(ctx, "idem", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got *producerstate.Entry
	for _, p := range ps {
		if p.ProducerID == 42 {
			if got, err = producerstate.Decode(p.Data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got == nil || len(got.Batches) != 1 || got.Batches[0].FirstSeq != 0 || got.Batches[0].LastSeq != 2 || got.Batches[0].Base != 0 {
		t.Fatalf("stored state of producer 42 after the takeover: %+v (of %d producers); want its recovered batch, sequences 0-2 at offset 0", got, len(ps))
	}
}
