package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/audit"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/objstore/s3test"
)

// withS3 points a broker at prefix in bucket of a real S3-compatible
// server (versitygw), with explicit credentials as --s3-access-key-id and
// --s3-secret-access-key would give them.
func withS3(srv *s3test.Server, bucket, prefix string) func(*config.Broker) {
	return func(c *config.Broker) {
		c.ObjectStore = srv.URL(bucket, prefix)
		c.S3AccessKeyID = s3test.AccessKey
		c.S3SecretAccessKey = config.Secret(s3test.SecretKey)
	}
}

// listSegments lists the segment objects under prefix through a store of
// its own, as another broker would see them.
func listSegments(t *testing.T, ctx context.Context, srv *s3test.Server, bucket, prefix string) []objstore.Object {
	t.Helper()
	st, err := objstore.Open(ctx, srv.URL(bucket, prefix), srv.Options())
	if err != nil {
		t.Fatalf("open the bucket to list it: %v", err)
	}
	defer st.Close()
	objs, err := st.List(ctx, "segments/")
	if err != nil {
		t.Fatalf("list segments: %v", err)
	}
	return objs
}

func sumSizes(objs []objstore.Object) int64 {
	var n int64
	for _, o := range objs {
		n += o.Size
	}
	return n
}

// waitBacklogDrained waits until everything durable in the WAL is in
// segment objects, and returns how long that took.
func waitBacklogDrained(t *testing.T, ts *testServer, limit time.Duration) time.Duration {
	t.Helper()
	return waitBacklogAtMost(t, ts, 0, limit)
}

// waitBacklogAtMost waits until at most max bytes wait for upload: while
// producers run, each upload leaves behind what arrived during it, so the
// backlog of a broker that keeps up stays small but rarely reaches 0.
func waitBacklogAtMost(t *testing.T, ts *testServer, max int64, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for ts.srv.UploadBacklog() > max {
		if time.Since(start) > limit {
			t.Fatalf("upload backlog still %d bytes after %v", ts.srv.UploadBacklog(), limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// checkServedFromObjects checks that a cleanly closed broker left nothing
// in its WAL and no local objects, so a restart can only read the object
// store.
func checkServedFromObjects(t *testing.T, dir string) {
	t.Helper()
	if ents, err := os.ReadDir(filepath.Join(dir, "wal")); err == nil && len(ents) > 0 {
		t.Fatalf("WAL dir holds %d files after a clean close", len(ents))
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read WAL dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "objects")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a broker on S3 created a local objects dir (stat: %v)", err)
	}
}

// TestS3RestartServesFromS3 runs a broker on --object-store s3://...:
// records produced with acks=all are uploaded as segment objects into the
// bucket, and after a clean shutdown (the WAL is removed) the broker,
// restarted on the same data directory, serves every record from S3.
func TestS3RestartServesFromS3(t *testing.T) {
	n := 20_000
	srv := s3test.Start(t)
	bucket := srv.Bucket("vigil")
	const prefix = "cluster-a"
	dir := t.TempDir()
	topics := []string{"s3-a", "s3-b", "s3-c"}
	ctx := testCtx(t, 3*time.Minute)

	// Small segments, so the records spread over many objects.
	mod := func(c *config.Broker) {
		withS3(srv, bucket, prefix)(c)
		c.SegmentBytes = 64 << 10
	}
	ts := startServer(t, dir, mod)
	createTopics(t, ctx, ts.admin(t), rtPartitions, nil, topics...)
	start := time.Now()
	cl := producer(ts, t, kgo.Lz4Compression())
	produceAll(t, ctx, cl, topics, 0, n)
	cl.Close()
	produced := time.Since(start)
	drained := waitBacklogDrained(t, ts, 30*time.Second)
	objs := listSegments(t, ctx, srv, bucket, prefix)
	if len(objs) == 0 {
		t.Fatal("no segment objects in the bucket after the backlog drained")
	}
	t.Logf("%d records produced (acks=all) in %v; backlog drained %v later; %d segment objects (%d bytes) in s3://%s/%s/",
		n, produced.Round(time.Millisecond), drained.Round(time.Millisecond), len(objs), sumSizes(objs), bucket, prefix)
	ts.close()
	checkServedFromObjects(t, dir)

	ts2 := startServer(t, dir, mod)
	start = time.Now()
	consumeVerify(t, ctx, ts2, topics, n)
	rc := ts2.srv.ReadCacheStats()
	if rc.Misses == 0 {
		t.Fatalf("the restarted broker read no block from the object store (cache stats %+v)", rc)
	}
	t.Logf("after restart: %d records read back and verified in %v; %d blocks read from S3",
		n, time.Since(start).Round(time.Millisecond), rc.Misses)
}

// TestS3Outage stops the S3 server for 20 s while a producer with
// acks=all runs. The file WAL keeps acknowledging, the uploader fails and
// retries with backoff; once the server is back the backlog drains to 0,
// and every acknowledged record is read back exactly once, in order, both
// from the running broker and, after a clean restart, from S3 alone.
func TestS3Outage(t *testing.T) {
	const (
		before  = 3 * time.Second
		after   = 3 * time.Second
		perTick = 30 // records every 25 ms: 1,200 records/s over 36 partitions
	)
	outage := 20 * time.Second
	if testing.Short() {
		outage = 8 * time.Second // still several failed attempts and backoff steps
	}
	srv := s3test.Start(t)
	bucket := srv.Bucket("vigil")
	const prefix = "outage"
	dir := t.TempDir()
	topics := []string{"outage-a", "outage-b", "outage-c"}
	ctx := testCtx(t, 2*time.Minute)

	ts := startServer(t, dir, withS3(srv, bucket, prefix))
	createTopics(t, ctx, ts.admin(t), rtPartitions, nil, topics...)
	cl := producer(ts, t, kgo.SnappyCompression())

	// The producer: record i is makeRecord(topics, i), so every partition
	// receives its records in order and the consumer knows what to expect.
	var (
		acked, failed atomic.Int64
		firstErr      atomic.Value
		produced      int
		stop          = make(chan struct{})
		wg            sync.WaitGroup
		prodDone      = make(chan struct{})
	)
	go func() {
		defer close(prodDone)
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for range perTick {
				wg.Add(1)
				cl.Produce(ctx, makeRecord(topics, produced), func(r *kgo.Record, err error) {
					defer wg.Done()
					if err != nil {
						if failed.Add(1) == 1 {
							firstErr.Store(fmt.Errorf("%s/%d: %w", r.Topic, r.Partition, err))
						}
						return
					}
					acked.Add(1)
				})
				produced++
			}
		}
	}()

	time.Sleep(before)
	backlogBefore := ts.srv.UploadBacklog()
	segsBefore := len(listSegments(t, ctx, srv, bucket, prefix))
	ackedAtStop := acked.Load()
	srv.Stop()
	stopped := time.Now()
	time.Sleep(outage)
	ackedDuringOutage := acked.Load() - ackedAtStop
	backlogAtRestart := ts.srv.UploadBacklog()
	failures := uploadFailures(t, ts)
	srv.Start()
	restarted := time.Now()
	// The producer still runs: "caught up" is a backlog of less than about
	// one second of produce.
	caughtUp := waitBacklogAtMost(t, ts, 128<<10, 30*time.Second)
	t.Logf("outage %v: %d records acknowledged during it; upload backlog %d bytes before, %d bytes at restart; %.0f failed upload attempts; backlog under 128 KiB %v after restart",
		restarted.Sub(stopped).Round(time.Millisecond), ackedDuringOutage, backlogBefore, backlogAtRestart, failures, caughtUp.Round(time.Millisecond))
	time.Sleep(after)
	close(stop)
	<-prodDone
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d produces failed with a working WAL; first: %v", f, firstErr.Load())
	}
	if ackedDuringOutage == 0 {
		t.Fatal("no produce was acknowledged while S3 was down")
	}
	if backlogAtRestart == 0 {
		t.Fatal("the upload backlog was empty at the end of the outage: uploads did not fail")
	}
	if failures < 2 {
		t.Fatalf("%v failed upload attempts during a %v outage, want retries", failures, outage)
	}
	n := int(acked.Load())
	if n != produced {
		t.Fatalf("acknowledged %d of %d records", n, produced)
	}
	drained := waitBacklogDrained(t, ts, 30*time.Second)
	segs := listSegments(t, ctx, srv, bucket, prefix)
	t.Logf("producer stopped: backlog drained to 0 in %v", drained.Round(time.Millisecond))
	t.Logf("%d records produced; segment objects: %d before the outage, %d at the end (%d bytes)", n, segsBefore, len(segs), sumSizes(segs))

	start := time.Now()
	consumeVerify(t, ctx, ts, topics, n)
	t.Logf("read back %d records from the running broker in %v", n, time.Since(start).Round(time.Millisecond))

	// The running broker may serve recent records from memory; after a
	// clean restart only S3 holds them.
	ts.close()
	checkServedFromObjects(t, dir)
	ts2 := startServer(t, dir, withS3(srv, bucket, prefix))
	start = time.Now()
	consumeVerify(t, ctx, ts2, topics, n)
	t.Logf("read back %d records from S3 after a restart in %v", n, time.Since(start).Round(time.Millisecond))
}

// uploadFailures reads vigil_segment_upload_failures_total from the
// broker's /metrics.
func uploadFailures(t *testing.T, ts *testServer) float64 {
	t.Helper()
	_, body := httpGet(t, "http://"+ts.srv.AdminAddr()+"/metrics")
	v := metricValue(body, "vigil_segment_upload_failures_total")
	if v < 0 {
		t.Fatal("/metrics has no vigil_segment_upload_failures_total")
	}
	return v
}

// TestS3Cleaner runs the log cleaner of a compacted topic on an S3 object
// store: the cleaned objects are in the bucket, the replaced ones are
// deleted from it, and a reader gets each key once with its last value,
// before and after a restart.
func TestS3Cleaner(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket("vigil")
	const prefix, topic, keys, rounds = "cleaner", "s3-state", 100, 3
	dir := t.TempDir()
	ctx := testCtx(t, 2*time.Minute)
	mod := func(c *config.Broker) {
		withS3(srv, bucket, prefix)(c)
		c.RetentionCheckInterval = time.Hour // the test drives the cleaner
		c.ObjectDeleteDelay = 100 * time.Millisecond
	}
	ts := startServer(t, dir, mod)
	createTopics(t, ctx, ts.admin(t), 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, topic)
	cl := ts.client(t, kgo.DefaultProduceTopic(topic))
	for r := range rounds {
		var rs []*kgo.Record
		for k := range keys {
			rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprintf("k%03d", k)), Value: []byte(fmt.Sprintf("round %d", r))})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		waitBacklogDrained(t, ts, 30*time.Second)
	}
	if n, err := ts.srv.store.Clean(ctx, time.Now()); err != nil || n != 1 {
		t.Fatalf("clean: %d partitions (err %v), want 1", n, err)
	}
	check := func(what string, ts *testServer) {
		t.Helper()
		got := readFromStart(t, ctx, ts, topic, 0, keys)
		if len(got) != keys {
			t.Fatalf("%s: read %d records, want %d", what, len(got), keys)
		}
		for i, r := range got {
			if string(r.Key) != fmt.Sprintf("k%03d", i) || string(r.Value) != fmt.Sprintf("round %d", rounds-1) || r.Offset != int64((rounds-1)*keys+i) {
				t.Fatalf("%s: record %d is %s=%q at %d", what, i, r.Key, r.Value, r.Offset)
			}
		}
	}
	check("after cleaning", ts)
	// Objects the audit trail's index still names (its events of this
	// test's topic creation may share an object with the first round)
	// stay; every other object is the cleaner's.
	audited := map[string]bool{}
	for p := range int32(audit.Partitions) {
		segs, err := ts.srv.meta.Segments(ctx, audit.Topic, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, sg := range segs {
			audited[sg.Object] = true
		}
	}
	waitFor(t, "the replaced objects deleted", func() bool {
		objs := listSegments(t, ctx, srv, bucket, prefix)
		for _, o := range objs {
			if !strings.HasSuffix(o.Key, ".clean.seg") && !audited[strings.TrimPrefix(o.Key, "segments/")] && !audited[o.Key] {
				return false
			}
		}
		return len(objs) > 0
	})
	ts.close()
	check("after a restart", startServer(t, dir, mod))
}
