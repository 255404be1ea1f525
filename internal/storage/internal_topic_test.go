package storage

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/meta/boltstore"
	"github.com/vigilhq/vigil/internal/objstore"
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
