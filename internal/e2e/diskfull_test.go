package e2e

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDiskFull runs the broker on a 200 MiB tmpfs (its WAL, objects and
// metadata) and produces until the disk is full. The WAL preallocates each
// file with room for what may be pending (128 MiB at the defaults), so the
// disk runs out when it cannot reserve the next one: from then on produce
// gets KAFKA_STORAGE_ERROR, the broker says why in its log and keeps
// answering other requests, and every acknowledged record stays readable
// at its offset. Once the disk is larger the broker takes records again by
// itself, right after the last acknowledged offset, and after a restart
// everything is still there.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	mnt := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=200m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	dataDir := filepath.Join(mnt, "data")

	b := startBroker(t, "", dataDir)
	const topic = "full"
	createTopic(t, b.addr, topic, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	newClient := func(addr string, opts ...kgo.Opt) *kgo.Client {
		t.Helper()
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	prod := newClient(b.addr, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DisableIdempotentWrite(), kgo.RecordRetries(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	// Random values: nothing compresses, so the disk fills after some tens
	// of thousands of records (each is written to the WAL and to an object).
	value := func(id int64) []byte {
		v := make([]byte, 1024)
		rand.Read(v)
		binary.BigEndian.PutUint64(v, uint64(id))
		return v
	}
	var acked []int64 // offset of record id i
	var failure error
	for id := int64(0); ctx.Err() == nil && failure == nil; {
		// 256 records a request, one request at a time: a failure leaves
		// no acknowledged record after a failed one.
		rs := make([]*kgo.Record, 256)
		for i := range rs {
			rs[i] = &kgo.Record{Value: value(id + int64(i))}
		}
		for _, res := range prod.ProduceSync(ctx, rs...) {
			if res.Err != nil {
				failure = res.Err
				break
			}
			acked = append(acked, res.Record.Offset)
		}
		id += int64(len(rs))
	}
	t.Logf("%d records acknowledged before the disk filled; then: %v", len(acked), failure)
	if !errors.Is(failure, kerr.KafkaStorageError) {
		t.Fatalf("the produce that did not fit failed with %v, want KAFKA_STORAGE_ERROR", failure)
	}
	if len(acked) < 30000 {
		t.Fatalf("only %d records fitted on a 200 MiB disk", len(acked))
	}
	if !strings.Contains(b.log(), "no space left on device") {
		t.Errorf("the broker's log does not say the disk is full:\n%s", b.logTail(30))
	}

	// The broker still answers another client, and serves what it
	// acknowledged.
	adm := kadm.NewClient(newClient(b.addr))
	if _, err := adm.ListTopics(ctx); err != nil {
		t.Fatalf("metadata after the disk filled: %v", err)
	}
	checkAcked := func(addr string) {
		t.Helper()
		cons := newClient(addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		seen := 0
		for seen < len(acked) {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("read %d of %d acknowledged records", seen, len(acked))
			}
			fs.EachError(func(_ string, _ int32, err error) { t.Errorf("fetch: %v", err) })
			fs.EachRecord(func(r *kgo.Record) {
				id := int64(binary.BigEndian.Uint64(r.Value))
				if id != int64(seen) || r.Offset != acked[id] {
					t.Fatalf("record %d: id %d at offset %d, want id %d at %d", seen, id, r.Offset, seen, acked[seen])
				}
				seen++
			})
		}
	}
	checkAcked(b.addr)

	// More room: the broker takes records again by itself, and offsets go
	// on right after the last acknowledged one.
	if out, err := exec.Command("mount", "-o", "remount,size=400m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("grow the tmpfs: %v %s", err, out)
	}
	prod2 := newClient(b.addr, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	r := &kgo.Record{Value: value(int64(len(acked)))}
	if err := prod2.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatalf("produce once the disk has room, without a restart: %v", err)
	}
	if want := acked[len(acked)-1] + 1; r.Offset != want {
		t.Errorf("the first record with room again got offset %d, want %d (right after the last acknowledged)", r.Offset, want)
	}
	acked = append(acked, r.Offset)
	if !strings.Contains(b.log(), "space for the write-ahead log again") {
		t.Errorf("the broker's log does not say it takes records again:\n%s", b.logTail(30))
	}

	// A restart: everything is there.
	b.stop()
	b = startBroker(t, b.addr, dataDir)
	checkAcked(b.addr)
}
