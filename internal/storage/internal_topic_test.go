package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/meta/boltstore"
	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/producer"
)

func openEngine(t *testing.T, dir string) (*Engine, func()) {
	t.Helper()
	ctx := context.Background()
	ms, err := boltstore.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := objstore.Open(ctx, filepath.Join(dir, "objects"), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open(ctx, ms, objs, Options{WALDir: filepath.Join(dir, "wal"), WALSync: true, UploadInterval: 20 * time.Millisecond,
		SegmentBytes: 1 << 20, TailCacheBytes: 1 << 10, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return e, func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
		objs.Close()
		ms.Close()
	}
}

func appendSync(t *testing.T, it *InternalTopic, p int32, recs []batch.KV) int64 {
	t.Helper()
	ch := make(chan error, 1)
	var first int64
	it.Append(p, recs, func(f int64, err error) { first = f; ch <- err })
	if err := <-ch; err != nil {
		t.Fatal(err)
	}
	return first
}

func replayAll(t *testing.T, it *InternalTopic, p int32) (offs []int64, keys []string) {
	t.Helper()
	err := it.Replay(context.Background(), p, func(o int64, r batch.KV) error {
		offs = append(offs, o)
		keys = append(keys, string(r.Key))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return offs, keys
}

// TestInternalTopic: records appended through the adapter are durable,
// replay from the log start (from memory, and from objects after a
// restart), the partition count is fixed at creation, and SetStart bounds
// the replay.
func TestInternalTopic(t *testing.T) {
	dir := t.TempDir()
	e, closeE := openEngine(t, dir)
	it, err := e.OpenInternalTopic(context.Background(), "__internal", 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	var recs []batch.KV
	for i := 0; i < 2500; i++ { // more than one broker-built batch
		recs = append(recs, batch.KV{Key: []byte(fmt.Sprint("k", i)), Value: []byte("v")})
	}
	if first := appendSync(t, it, 1, recs); first != 0 {
		t.Fatalf("first offset %d", first)
	}
	if first := appendSync(t, it, 1, []batch.KV{{Key: []byte("tomb")}}); first != 2500 {
		t.Fatalf("second append at %d", first)
	}
	offs, keys := replayAll(t, it, 1)
	if len(offs) != 2501 || offs[2500] != 2500 || keys[2500] != "tomb" {
		t.Fatalf("replay: %d records", len(offs))
	}
	if err := it.SetStart(context.Background(), 1, 1200); err != nil {
		t.Fatal(err)
	}
	closeE()

	e, closeE = openEngine(t, dir)
	defer closeE()
	it, err = e.OpenInternalTopic(context.Background(), "__internal", 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	if it.Partitions() != 3 {
		t.Errorf("partitions %d after reopening with another count, want 3", it.Partitions())
	}
	offs, keys = replayAll(t, it, 1)
	if len(offs) != 1301 || offs[0] != 1200 || keys[0] != "k1200" {
		t.Fatalf("replay after restart and SetStart: %d records from %v", len(offs), offs[:1])
	}
	if !e.PartitionExists("__internal", 2) || e.PartitionExists("__internal", 3) || e.PartitionExists("nope", 0) {
		t.Errorf("PartitionExists wrong")
	}
}

// TestInternalTopicTxnBatches: the broker's own transactional batches go
// through the partition's producer checks (an older epoch is refused),
// are numbered by NextSequence so none is taken for a duplicate, replay
// with their producer fields, and a control batch is not appended as
// data.
func TestInternalTopicTxnBatches(t *testing.T) {
	e, closeE := openEngine(t, t.TempDir())
	defer closeE()
	it, err := e.OpenInternalTopic(context.Background(), "__internal", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	appendRaw := func(raw []byte) (int64, error) {
		ch := make(chan error, 1)
		var first int64
		it.AppendBatch(0, raw, func(f int64, err error) { first = f; ch <- err })
		return first, <-ch
	}
	kv := func(k string) []batch.KV { return []batch.KV{{Key: []byte(k), Value: []byte("v")}} }
	appendSync(t, it, 0, kv("plain"))
	if seq := it.NextSequence(0, 9, 2); seq != 0 {
		t.Errorf("NextSequence of an unknown producer: %d", seq)
	}
	for i, k := range []string{"a", "b", "c"} {
		seq := it.NextSequence(0, 9, 2)
		if seq != int32(i) {
			t.Errorf("NextSequence before batch %d: %d", i, seq)
		}
		if off, err := appendRaw(batch.BuildTxn(kv(k), time.Now().UnixMilli(), 9, 2, seq)); err != nil || off != int64(1+i) {
			t.Fatalf("txn batch %s: offset %d, %v", k, off, err)
		}
	}
	if seq := it.NextSequence(0, 9, 3); seq != 0 {
		t.Errorf("NextSequence of a newer epoch: %d", seq)
	}
	if _, err := appendRaw(batch.BuildTxn(kv("old"), time.Now().UnixMilli(), 9, 1, 0)); !errors.Is(err, producer.ErrInvalidEpoch) {
		t.Errorf("batch of an older epoch: %v, want ErrInvalidEpoch", err)
	}
	if _, err := appendRaw(batch.BuildMarker(9, 2, true, 0, time.Now().UnixMilli())); err == nil || !strings.Contains(err.Error(), "AppendMarker") {
		t.Errorf("a control batch appended as data: %v", err)
	}
	if err := it.SetStart(context.Background(), 0, 2); err != nil {
		t.Fatal(err)
	}
	var got []string
	err = it.ReplayBatches(context.Background(), 0, func(rb kmsg.RecordBatch, recs []kmsg.Record, off int64) error {
		if rb.ProducerID != 9 || rb.ProducerEpoch != 2 || rb.Attributes&0x10 == 0 || off != rb.FirstOffset+int64(recs[0].OffsetDelta) {
			t.Errorf("batch at %d: producer %d/%d, attributes %x, offset %d", rb.FirstOffset, rb.ProducerID, rb.ProducerEpoch, rb.Attributes, off)
		}
		for _, r := range recs {
			got = append(got, string(r.Key))
		}
		return nil
	})
	if err != nil || strings.Join(got, ",") != "b,c" {
		t.Errorf("replay from offset 2: %v, %v", got, err)
	}
}
