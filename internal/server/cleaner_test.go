package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/config"
)

// TestCleanupPolicyCompact runs the log cleaner over a compacted topic
// written in five rounds of updates to 200 keys (a round per codec) plus
// two tombstones, one with a timestamp older than delete.retention.ms,
// and reads it back with franz-go: one record per key, the newest, at the
// offset and with the timestamp it was written with; both tombstones
// stay, since delete.retention.ms counts from the pass that first keeps
// them (KIP-534, TestCleanerDeleteHorizon). It also checks what Kafka refuses on such a topic
// (records without a key, DeleteRecords), that a second pass finds
// nothing to do, that only the new part is cleaned again, that a legal
// hold stops the cleaner, and that a restart serves the cleaned log.
func TestCleanupPolicyCompact(t *testing.T) {
	dir := t.TempDir()
	mod := func(c *config.Broker) {
		c.UploadInterval = 10 * time.Millisecond
		c.RetentionCheckInterval = time.Hour // the test drives the cleaner
		c.ObjectDeleteDelay = 200 * time.Millisecond
	}
	ts := startServer(t, dir, mod)
	ctx := testCtx(t, 2*time.Minute)
	adm := ts.admin(t)
	const topic, keys = "changelog", 200
	createTopics(t, ctx, adm, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, topic)

	now := time.Now()
	type rec struct {
		value string
		ts    time.Time
		tomb  bool
	}
	latest := map[string]rec{}    // key -> its newest record
	offsets := map[string]int64{} // key -> that record's offset
	produce := func(cl *kgo.Client, r *kgo.Record) {
		t.Helper()
		r.Topic = topic
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", r.Key, err)
		}
		latest[string(r.Key)] = rec{string(r.Value), r.Timestamp, r.Value == nil}
		offsets[string(r.Key)] = r.Offset
	}
	for round, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		cl := ts.client(t, kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(0))
		var rs []*kgo.Record
		for k := range keys {
			rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("key-%03d", k)),
				Value: []byte(fmt.Sprintf("round %d of key %d", round, k)), Timestamp: now.Add(time.Duration(round) * time.Second)})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, r := range rs {
			latest[string(r.Key)] = rec{string(r.Value), r.Timestamp, false}
			offsets[string(r.Key)] = r.Offset
		}
		waitFor(t, "upload", func() bool { return ts.srv.UploadBacklog() == 0 })
	}
	cl := ts.client(t)
	produce(cl, &kgo.Record{Key: []byte("key-000"), Timestamp: now.Add(-48 * time.Hour)}) // a timestamp older than delete.retention.ms (a day)
	produce(cl, &kgo.Record{Key: []byte("key-001"), Timestamp: now})
	waitFor(t, "upload", func() bool { return ts.srv.UploadBacklog() == 0 })
	hw := offsets["key-001"] + 1

	// Kafka's refusals on a compacted topic.
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("no key")}).FirstErr()
	if !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("produce without a key: %v, want INVALID_RECORD", err)
	}
	dr, err := adm.DeleteRecords(ctx, kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: 10}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := dr.Lookup(topic, 0); !errors.Is(r.Err, kerr.PolicyViolation) {
		t.Fatalf("DeleteRecords: %v, want POLICY_VIOLATION", r.Err)
	}

	// want is what a reader must see: each key's newest record, in offset
	// order. Every pass here runs well within a tombstone's delete
	// horizon, the old tombstone's too.
	want := func() map[int64]rec {
		w := map[int64]rec{}
		for k, r := range latest {
			w[offsets[k]] = r
		}
		return w
	}
	check := func(what string, w map[int64]rec) {
		t.Helper()
		got := readFromStart(t, ctx, ts, topic, 0, len(w))
		if len(got) != len(w) {
			t.Fatalf("%s: read %d records, want %d", what, len(got), len(w))
		}
		for i, r := range got {
			e, ok := w[r.Offset]
			if !ok || string(r.Value) != e.value || (r.Value == nil) != e.tomb || !r.Timestamp.Equal(e.ts.Truncate(time.Millisecond)) {
				t.Fatalf("%s: record %d at offset %d key %s value %q (tombstone %v) ts %v; want %+v (present %v)",
					what, i, r.Offset, r.Key, r.Value, r.Value == nil, r.Timestamp, e, ok)
			}
			if i > 0 && r.Offset <= got[i-1].Offset {
				t.Fatalf("%s: offset %d after %d", what, r.Offset, got[i-1].Offset)
			}
		}
		lo, err := adm.ListStartOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		hi, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := lo.Lookup(topic, 0); s.Offset != 0 {
			t.Errorf("%s: log start %d, want 0 (cleaning does not move it)", what, s.Offset)
		}
		if e, _ := hi.Lookup(topic, 0); e.Offset != hw {
			t.Errorf("%s: high watermark %d, want %d", what, e.Offset, hw)
		}
	}

	store := ts.srv.store
	log := store.Topic(topic).Logs[0]
	before := log.Segments()
	n, err := store.Clean(ctx, time.Now())
	if err != nil || n != 1 {
		t.Fatalf("clean: %d partitions cleaned (err %v), want 1", n, err)
	}
	var sizeBefore, sizeAfter int64
	for _, s := range before {
		sizeBefore += s.Size
	}
	for _, s := range log.Segments() {
		sizeAfter += s.Size
	}
	if sizeAfter*3 > sizeBefore {
		t.Errorf("cleaning kept %d of %d bytes, want under a third (one of five rounds)", sizeAfter, sizeBefore)
	}
	check("after cleaning", want())
	_, body := httpGet(t, "http://"+ts.srv.AdminAddr()+"/metrics")
	if v := metricValue(body, "vigil_cleaner_passes_total"); v != 1 {
		t.Errorf("vigil_cleaner_passes_total = %v after one pass", v)
	}
	if r, w := metricValue(body, "vigil_cleaner_read_bytes_total"), metricValue(body, "vigil_cleaner_written_bytes_total"); r != float64(sizeBefore) || w != float64(sizeAfter) {
		t.Errorf("cleaner bytes read %v, written %v; want %d, %d", r, w, sizeBefore, sizeAfter)
	}
	if n, err := store.Clean(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("second pass cleaned %d partitions (err %v), want 0: nothing is dirty", n, err)
	}

	// New updates to half the keys: the dirty half of the log is cleaned
	// again, and the old values of those keys go.
	var rs []*kgo.Record
	for k := 0; k < keys; k += 2 {
		rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("key-%03d", k)), Value: []byte(fmt.Sprintf("update of key %d", k)), Timestamp: now})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		latest[string(r.Key)] = rec{string(r.Value), r.Timestamp, false}
		offsets[string(r.Key)] = r.Offset
	}
	hw = rs[len(rs)-1].Offset + 1
	waitFor(t, "upload", func() bool { return ts.srv.UploadBacklog() == 0 })
	if n, err := store.Clean(ctx, time.Now()); err != nil || n != 1 {
		t.Fatalf("pass after updates cleaned %d partitions (err %v), want 1", n, err)
	}
	check("after the second cleaning", want())

	// A legal hold stops the cleaner: every update stays.
	if ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "vigil.legal.hold", Value: kadm.StringPtr("true")}}, topic); err != nil || ar[0].Err != nil {
		t.Fatalf("set the legal hold: %v %v", err, ar)
	}
	held := want()
	for i := range 3 {
		r := &kgo.Record{Topic: topic, Key: []byte("key-199"), Value: []byte(fmt.Sprintf("held %d", i)), Timestamp: now}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		held[r.Offset] = rec{string(r.Value), now, false}
		hw = r.Offset + 1
	}
	waitFor(t, "upload", func() bool { return ts.srv.UploadBacklog() == 0 })
	if n, err := store.Clean(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("clean under legal hold: %d partitions (err %v), want 0", n, err)
	}
	check("under legal hold", held)

	time.Sleep(300 * time.Millisecond) // the replaced objects are deleted
	ts.close()
	ts = startServer(t, dir, mod)
	adm = ts.admin(t)
	check("after a restart", held)

	// The clean mark is read from the index, so a restart does not make
	// the whole log dirty: with the hold released the few held updates are
	// under min.cleanable.dirty.ratio, and nothing is cleaned.
	setConfig := func(name, value string) {
		t.Helper()
		ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: name, Value: kadm.StringPtr(value)}}, topic)
		if err == nil {
			err = ar[0].Err
		}
		if err != nil {
			t.Fatalf("set %s=%s: %v", name, value, err)
		}
	}
	setConfig("vigil.legal.hold", "false")
	store = ts.srv.store
	if n, err := store.Clean(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("clean after a restart: %d partitions (err %v), want 0: the log was clean but for 3 records", n, err)
	}
	setConfig("min.cleanable.dirty.ratio", "0.01")
	if n, err := store.Clean(ctx, time.Now()); err != nil || n != 1 {
		t.Fatalf("clean with a low dirty ratio: %d partitions (err %v), want 1", n, err)
	}
	latest["key-199"] = rec{"held 2", now, false}
	offsets["key-199"] = hw - 1
	check("after the last cleaning", want())
}

// TestCleanerRemovesEveryRecord: when every record of the cleaned offsets
// goes (a key written, then deleted long ago), the partition keeps its
// last batch, so the index still covers the offsets; readers then read on
// past them to what is written next.
func TestCleanerRemovesEveryRecord(t *testing.T) {
	ts := startServer(t, t.TempDir(), func(c *config.Broker) {
		c.UploadInterval = 10 * time.Millisecond
		c.RetentionCheckInterval = time.Hour
	})
	ctx := testCtx(t, time.Minute)
	const topic = "all-deleted"
	createTopics(t, ctx, ts.admin(t), 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, topic)
	cl := ts.client(t)
	old := time.Now().Add(-48 * time.Hour)
	for _, r := range []*kgo.Record{
		{Topic: topic, Key: []byte("k"), Value: []byte("v"), Timestamp: old},
		{Topic: topic, Key: []byte("k"), Timestamp: old},
	} {
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "upload", func() bool { return ts.srv.UploadBacklog() == 0 })
	if n, err := ts.srv.store.Clean(ctx, time.Now()); err != nil || n != 1 {
		t.Fatalf("clean: %d partitions (err %v), want 1", n, err)
	}
	segs := ts.srv.store.Topic(topic).Logs[0].Segments()
	if len(segs) != 1 || segs[0].FirstOffset != 0 || segs[0].LastOffset != 1 {
		t.Fatalf("index after cleaning everything: %+v, want one entry over offsets 0-1", segs)
	}
	r := &kgo.Record{Topic: topic, Key: []byte("k2"), Value: []byte("next")}
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := readFromStart(t, ctx, ts, topic, 0, 2)
	if len(got) != 2 || got[0].Offset != 1 || got[0].Value != nil || got[1].Offset != 2 || string(got[1].Value) != "next" {
		t.Fatalf("read %d records %v, want the kept tombstone at 1 and the new record at 2", len(got), got)
	}
}

// TestClusterCleansCompactedTopic: in a cluster each partition of a
// compacted topic is cleaned by its leader only, readers get one record
// per key, and a broker that takes partitions over finds them clean
// (the clean mark is in the shared index, not in the broker that left).
func TestClusterCleansCompactedTopic(t *testing.T) {
	cluster := startCluster(t, 2, func(int32) string { return "" })
	ctx := testCtx(t, 2*time.Minute)
	adm := kadm.NewClient(cluster.client(t))
	const topic, keys, rounds = "state", 40, 3
	createTopics(t, ctx, adm, 4, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, topic)
	counts := leaders(t, ctx, adm, topic, map[int32]bool{1: true, 2: true})
	if len(counts) != 2 {
		t.Fatalf("4 partitions led by %v, want both brokers", counts)
	}
	prod := cluster.client(t, kgo.DefaultProduceTopic(topic))
	latest := map[string]string{}
	for r := range rounds {
		var rs []*kgo.Record
		for k := range keys {
			rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprintf("key-%02d", k)), Value: []byte(fmt.Sprintf("round %d", r))})
		}
		if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		for _, rec := range rs {
			latest[string(rec.Key)] = string(rec.Value)
		}
		for _, b := range cluster.brokers {
			waitFor(t, "upload", func() bool { return b.srv.UploadBacklog() == 0 })
		}
	}
	cleaned := 0
	for _, b := range cluster.brokers {
		n, err := b.srv.store.Clean(ctx, time.Now())
		if err != nil {
			t.Fatalf("clean on a broker: %v", err)
		}
		cleaned += n
	}
	if cleaned != 4 {
		t.Fatalf("%d partitions cleaned over both brokers, want 4 (each by its leader once)", cleaned)
	}
	read := func(what string) {
		t.Helper()
		cl := cluster.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
		seen := map[string]string{}
		n := 0
		for n < keys {
			fs := cl.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatalf("%s: read: %v", what, err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				if prev, dup := seen[string(r.Key)]; dup {
					t.Errorf("%s: key %s read twice (%q, then %q at %d/%d)", what, r.Key, prev, r.Value, r.Partition, r.Offset)
				}
				seen[string(r.Key)] = string(r.Value)
				n++
			})
		}
		for k, v := range latest {
			if seen[k] != v {
				t.Errorf("%s: key %s read %q, want %q", what, k, seen[k], v)
			}
		}
	}
	read("after cleaning")

	cluster.brokers[0].close()
	leaders(t, ctx, kadm.NewClient(cluster.client(t)), topic, map[int32]bool{2: true})
	if n, err := cluster.brokers[1].srv.store.Clean(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("the broker that took the partitions over cleaned %d (err %v), want 0: they were clean", n, err)
	}
	read("after a takeover")
}

// TestCleanerUnderLoad runs the cleaner and compaction every 50 ms (small
// objects and a small compaction target, so both rewrite constantly)
// while a producer updates 100 keys with an idempotent producer and two
// consumers read the partitions from the start over and over. Every read
// must see offsets increase and, for each key, values in the order they
// were written; at the end, once cleaned, a reader sees each key once with
// its last value.
func TestCleanerUnderLoad(t *testing.T) {
	d := 8 * time.Second
	if testing.Short() {
		d = 3 * time.Second
	}
	ts := startServer(t, t.TempDir(), func(c *config.Broker) {
		c.UploadInterval = 10 * time.Millisecond
		c.RetentionCheckInterval = 50 * time.Millisecond
		c.ObjectDeleteDelay = 100 * time.Millisecond
		c.CompactTargetBytes = 64 << 10
		c.TailCacheBytes = 32 << 10
	})
	ctx := testCtx(t, 2*time.Minute)
	const topic, keys = "busy-state", 100
	createTopics(t, ctx, ts.admin(t), 3, map[string]*string{
		"cleanup.policy": kadm.StringPtr("compact"), "min.cleanable.dirty.ratio": kadm.StringPtr("0.1"),
	}, topic)
	prod := ts.client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	stop := time.Now().Add(d)
	errs := make(chan error, 4)
	readers := make(chan struct{})
	var wg sync.WaitGroup
	var readDuring atomic.Int64
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-readers:
					return
				default:
				}
				n, err := readOrdered(ctx, ts, topic, readers)
				readDuring.Add(int64(n))
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	last := map[string]int{}
	// At least four writes per key, however slow the machine (-race).
	for seq := 0; time.Now().Before(stop) || seq*50 < 4*keys; seq++ {
		var rs []*kgo.Record
		for range 50 {
			k := fmt.Sprintf("key-%03d", (seq*50+len(rs)*7)%keys)
			last[k]++
			rs = append(rs, &kgo.Record{Key: []byte(k), Value: []byte(fmt.Sprint(last[k]))})
		}
		if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	close(readers)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("read during cleaning: %v", err)
	}
	if readDuring.Load() < 100 {
		t.Fatalf("the readers read %d records while the cleaner ran: too few to have checked anything", readDuring.Load())
	}

	// Until the cleaner has caught up, a reader may see a key more than
	// once; the last value read for each key is always its last write.
	waitFor(t, "upload", func() bool { return ts.srv.UploadBacklog() == 0 })
	got := map[string]int{}
	n := 0
	cl := ts.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	ends, err := ts.admin(t).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { remaining[o.Partition] = o.Offset })
	for done := false; !done; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			v, _ := strconv.Atoi(string(r.Value))
			got[string(r.Key)] = v
			n++
			if r.Offset+1 >= remaining[r.Partition] {
				delete(remaining, r.Partition)
			}
		})
		done = len(remaining) == 0
	}
	if len(got) != len(last) {
		t.Fatalf("read %d keys, wrote %d", len(got), len(last))
	}
	for k, v := range last {
		if got[k] != v {
			t.Errorf("key %s: last value read %d, last written %d", k, got[k], v)
		}
	}
	writes := 0
	for _, v := range last {
		writes += v
	}
	t.Logf("%d writes to %d keys in %v; %d records read during the cleaning; a reader from the start read %d", writes, len(last), d, readDuring.Load(), n)
	if n >= writes {
		t.Errorf("a reader from the start read %d records of %d written: nothing was cleaned", n, writes)
	}
}

// readOrdered reads topic from the start to its end, checking that offsets
// increase per partition and that each key's values (its write count)
// increase: the cleaner may drop old values, never reorder or bring back
// one.
func readOrdered(ctx context.Context, ts *testServer, topic string, stop chan struct{}) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond), kgo.FetchMaxPartitionBytes(8<<10))
	if err != nil {
		return 0, err
	}
	n := 0
	defer cl.Close()
	lastOff := map[int32]int64{}
	lastVal := map[string]int{}
	for i := 0; i < 20; i++ {
		select {
		case <-stop:
			return n, nil
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		var bad error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && bad == nil {
				bad = err
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			if prev, ok := lastOff[r.Partition]; ok && r.Offset <= prev && bad == nil {
				bad = fmt.Errorf("partition %d: offset %d after %d", r.Partition, r.Offset, prev)
			}
			lastOff[r.Partition] = r.Offset
			v, _ := strconv.Atoi(string(r.Value))
			if v <= lastVal[string(r.Key)] && bad == nil {
				bad = fmt.Errorf("key %s: value %d after %d (partition %d offset %d)", r.Key, v, lastVal[string(r.Key)], r.Partition, r.Offset)
			}
			lastVal[string(r.Key)] = v
			n++
		})
		if bad != nil {
			return n, bad
		}
	}
	return n, nil
}
