package server

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/config"
)

// TestProduceOnFullDisk: a broker whose WAL disk has no room for the WAL
// answers produce with KAFKA_STORAGE_ERROR (retriable) and a reason,
// fails no partition, and takes records again, with no restart, once
// space is freed; everything acknowledged reads back. The disk is a real
// tmpfs (the test needs root to mount it, and skips otherwise); the
// object store lives elsewhere, as it does on S3.
func TestProduceOnFullDisk(t *testing.T) {
	disk := t.TempDir()
	if err := unix.Mount("tmpfs", disk, "tmpfs", 0, "size=160m"); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(disk, unix.MNT_DETACH) })
	objects := t.TempDir()

	// Less room than the WAL reserves for a file (64 MiB plus 64 MiB that
	// may be pending), more than the metadata store needs.
	filler := filepath.Join(disk, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(disk, &st); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 0, int64(st.Bavail)*st.Bsize-(48<<20)); err != nil {
		t.Fatal(err)
	}
	f.Close()

	ts := startServer(t, filepath.Join(disk, "data"), func(c *config.Broker) { c.ObjectStore = objects })
	ctx := testCtx(t, time.Minute)
	createTopics(t, ctx, ts.admin(t), 1, nil, "full")

	// A raw request, to see the answer a client retries on.
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "full", Partitions: []kmsg.ProduceRequestTopicPartition{{
		Records: batch.Build([]batch.KV{{Value: []byte("refused")}}, time.Now().UnixMilli()),
	}}}}
	resp, err := ts.client(t).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if p.ErrorCode != kerr.KafkaStorageError.Code || p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, "no disk space") {
		t.Fatalf("produce with no room for the WAL: error %v (%v), want KAFKA_STORAGE_ERROR saying why", kerr.ErrorForCode(p.ErrorCode), p.ErrorMessage)
	}
	if _, body := httpGet(t, "http://"+ts.srv.AdminAddr()+"/metrics"); metricValue(body, "vigil_wal_full") != 1 {
		t.Errorf("vigil_wal_full = %v while full, want 1", metricValue(body, "vigil_wal_full"))
	}
	// A client retries it until its delivery timeout.
	impatient := ts.client(t, kgo.DefaultProduceTopic("full"), kgo.RecordDeliveryTimeout(time.Second))
	if err := impatient.ProduceSync(ctx, &kgo.Record{Value: []byte("refused")}).FirstErr(); !errors.Is(err, kgo.ErrRecordTimeout) {
		t.Fatalf("franz-go producing with no room for the WAL: %v, want its delivery timeout", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	cl := ts.client(t, kgo.DefaultProduceTopic("full"))
	for i := range 100 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatalf("produce %d after space was freed: %v", i, err)
		}
	}
	if _, body := httpGet(t, "http://"+ts.srv.AdminAddr()+"/metrics"); metricValue(body, "vigil_wal_full") != 0 {
		t.Errorf("vigil_wal_full = %v after space was freed, want 0", metricValue(body, "vigil_wal_full"))
	}
	for i, r := range readFromStart(t, ctx, ts, "full", 0, 100) {
		if r.Offset != int64(i) || len(r.Value) != 1 || r.Value[0] != byte(i) {
			t.Fatalf("record %d: offset %d value %v; want offsets 0-99 holding the acknowledged records only", i, r.Offset, r.Value)
		}
	}
}
