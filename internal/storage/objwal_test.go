package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/meta/boltstore"
	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/objwal"
)

// openObjectEngine opens an engine over dir with the object WAL as broker
// 4 and uploads only at Close, so the WAL chunks are all there is.
func openObjectEngine(t *testing.T, dir string) (*Engine, objstore.Store, func()) {
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
	e, err := Open(ctx, ms, objs, Options{WAL: "object", WALDir: filepath.Join(dir, "wal"), BrokerID: 4,
		WALFlushInterval: 2 * time.Millisecond, WALFlushBytes: 64 << 10,
		UploadInterval: time.Hour, SegmentBytes: 1 << 30, TailCacheBytes: 1 << 10,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return e, objs, func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
		objs.Close()
		ms.Close()
	}
}

func walChunks(t *testing.T, objs objstore.Store) int {
	t.Helper()
	l, err := objs.List(context.Background(), objwal.KeyPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return len(l)
}

func noWALDir(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "wal")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the object WAL left DATA-DIR/wal behind (stat: %v)", err)
	}
}

// TestObjectWALEngine: with WAL "object" produced batches are durable as
// chunk objects and nothing under WALDir; a copy of the disk taken before
// any upload (a crash) recovers every batch from the chunks; a clean Close
// uploads everything and deletes the chunks.
func TestObjectWALEngine(t *testing.T) {
	dir := t.TempDir()
	e, objs, closeE := openObjectEngine(t, dir)
	it, err := e.OpenInternalTopic(context.Background(), "__objwal", 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	const batches = 40
	for i := range batches {
		p := int32(i % 2)
		recs := []batch.KV{{Key: []byte(fmt.Sprint("k", i)), Value: []byte(fmt.Sprint("v", i))}}
		if first := appendSync(t, it, p, recs); first != int64(i/2) {
			t.Fatalf("batch %d at offset %d, want %d", i, first, i/2)
		}
	}
	if n := walChunks(t, objs); n == 0 {
		t.Fatal("no WAL chunks after acknowledged appends")
	}
	if st := e.wal.Stats(); st.Entries != batches {
		t.Errorf("WAL stats %+v, want %d entries", st, batches)
	}
	noWALDir(t, dir)

	// The disk as a crash would leave it: metadata and objects, nothing
	// uploaded yet.
	crashed := t.TempDir()
	for _, name := range []string{"meta.db", "objects"} {
		src := filepath.Join(dir, name)
		if name == "objects" {
			if err := os.CopyFS(filepath.Join(crashed, name), os.DirFS(src)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		raw, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(crashed, name), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	closeE()
	noWALDir(t, dir)
	if n := walChunks(t, objs); n != 0 {
		t.Errorf("%d WAL chunks left after a clean close", n)
	}

	check := func(t *testing.T, e *Engine, what string) {
		t.Helper()
		it, err := e.OpenInternalTopic(context.Background(), "__objwal", 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		for p := int32(0); p < 2; p++ {
			offs, keys := replayAll(t, it, p)
			if len(offs) != batches/2 {
				t.Fatalf("%s: partition %d has %d records, want %d", what, p, len(offs), batches/2)
			}
			for k, key := range keys {
				if want := fmt.Sprint("k", 2*k+int(p)); key != want || offs[k] != int64(k) {
					t.Fatalf("%s: partition %d offset %d: key %s, want %s at %d", what, p, offs[k], key, want, k)
				}
			}
		}
	}
	t.Run("after crash", func(t *testing.T) {
		e, objs, closeE := openObjectEngine(t, crashed)
		check(t, e, "replayed from chunks")
		closeE()
		if n := walChunks(t, objs); n != 0 {
			t.Errorf("%d WAL chunks left after recovery and a clean close", n)
		}
		noWALDir(t, crashed)
	})
	t.Run("after clean close", func(t *testing.T) {
		e, _, closeE := openObjectEngine(t, dir)
		defer closeE()
		check(t, e, "read from segments")
	})
}
