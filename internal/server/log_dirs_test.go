package server

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/config"
)

// TestDescribeLogDirs: kadm's DescribeLogDirs sees one dir, the object
// store, with the size and free space of its filesystem, and each
// partition's bytes of record batches, counted once whether they wait in
// the WAL or were uploaded; a request for some partitions gets only
// those.
func TestDescribeLogDirs(t *testing.T) {
	dir := t.TempDir()
	// No upload until the clean shutdown below: the first sizes are of
	// batches in the WAL only.
	slow := func(c *config.Broker) { c.UploadInterval = time.Hour; c.SegmentBytes = 1 << 30 }
	ts := startServer(t, dir, slow)
	ctx := testCtx(t, time.Minute)
	cl := ts.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	adm := kadm.NewClient(cl)
	createTopics(t, ctx, adm, 2, nil, "sized")
	const n, valueBytes = 100, 1000
	for range n {
		r := &kgo.Record{Topic: "sized", Partition: 0, Value: make([]byte, valueBytes)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	sizes := func(when string) (p0, p1 int64) {
		t.Helper()
		all, err := kadm.NewClient(ts.client(t)).DescribeAllLogDirs(ctx, nil)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		dirs := all[ts.cfg.NodeID]
		if len(dirs) != 1 {
			t.Fatalf("%s: %d log dirs, want the object store alone: %+v", when, len(dirs), dirs)
		}
		d, ok := dirs[ts.cfg.ObjectStore]
		if !ok || d.Err != nil {
			t.Fatalf("%s: no dir %q: %+v", when, ts.cfg.ObjectStore, dirs)
		}
		if d.TotalBytes <= 0 || d.UsableBytes <= 0 || d.UsableBytes > d.TotalBytes {
			t.Errorf("%s: total %d, usable %d bytes; want the local filesystem's", when, d.TotalBytes, d.UsableBytes)
		}
		parts := d.Topics["sized"]
		return parts[0].Size, parts[1].Size
	}
	// Each one-record batch is the value plus under 100 bytes of batch
	// and record headers.
	check := func(when string, p0, p1 int64) {
		t.Helper()
		if p0 < n*valueBytes || p0 > n*(valueBytes+100) || p1 != 0 {
			t.Errorf("%s: sizes %d and %d bytes, want %d batches of a %d-byte value, and none", when, p0, p1, n, valueBytes)
		}
	}
	if b := ts.srv.UploadBacklog(); b == 0 {
		t.Fatal("the batches were uploaded already; this step wants them in the WAL")
	}
	inWAL, empty := sizes("in the WAL")
	check("in the WAL", inWAL, empty)
	ts.close() // uploads everything
	ts = startServer(t, dir, func(c *config.Broker) { c.UploadInterval = 20 * time.Millisecond })
	uploaded, empty := sizes("uploaded")
	check("uploaded", uploaded, empty)
	if uploaded != inWAL {
		t.Errorf("%d bytes uploaded, %d before: the same batches", uploaded, inWAL)
	}
	// Uploaded batches stay in memory for tail reads: counted once.
	cl = ts.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	r := &kgo.Record{Topic: "sized", Partition: 1, Value: make([]byte, valueBytes)}
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the upload", func() bool { return ts.srv.UploadBacklog() == 0 })
	again, one := sizes("uploaded and cached")
	if again != uploaded || one < valueBytes || one > valueBytes+100 {
		t.Errorf("after one more batch, uploaded and still cached: sizes %d and %d, want %d and one batch", again, one, uploaded)
	}

	some, err := kadm.NewClient(ts.client(t)).DescribeBrokerLogDirs(ctx, ts.cfg.NodeID, kadm.TopicsSet{"sized": {1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	got := some[ts.cfg.ObjectStore].Topics
	if _, ok := got["sized"][1]; len(got) != 1 || len(got["sized"]) != 1 || !ok {
		t.Errorf("asked for sized/1, got %+v", got)
	}
}
