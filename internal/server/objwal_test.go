package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/objwal"
)

func objectWAL(c *config.Broker) {
	c.WAL = "object"
	c.NodeID = 2
	// No uploads before Close: what a restart reads must come from the
	// WAL chunks (after a crash) or from the final uploads (after Close).
	c.UploadInterval = time.Hour
	c.SegmentBytes = 1 << 30
}

func countChunks(t *testing.T, dataDir string) int {
	t.Helper()
	store, err := objstore.OpenDir(filepath.Join(dataDir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := store.List(context.Background(), objwal.BrokerPrefix(2))
	if err != nil {
		t.Fatal(err)
	}
	return len(objs)
}

// copyDisk copies what a broker keeps on disk (metadata and objects) while
// it runs and writes neither, which is what a crash at that moment leaves.
func copyDisk(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	raw, err := os.ReadFile(filepath.Join(from, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(to, "meta.db"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(to, "objects"), os.DirFS(filepath.Join(from, "objects"))); err != nil {
		t.Fatal(err)
	}
	return to
}

// TestObjectWALRestart produces with acks=all under --wal object, checks
// the WAL is chunk objects and nothing under DATA-DIR/wal, then reads
// everything back after a restart from a crash-time copy of the disk
// (replayed from the chunks) and after a clean restart (from segments),
// and produces on at the next offsets.
func TestObjectWALRestart(t *testing.T) {
	n := 20_000
	if testing.Short() {
		n = 4_000
	}
	dir := t.TempDir()
	topics := []string{"objwal-a", "objwal-b", "objwal-c"}
	ts := startServer(t, dir, objectWAL)
	ctx := testCtx(t, 3*time.Minute)
	createTopics(t, ctx, ts.admin(t), rtPartitions, nil, topics...)
	cl := producer(ts, t, kgo.SnappyCompression())
	produceAll(t, ctx, cl, topics, 0, n)
	cl.Close()

	if _, err := os.Stat(filepath.Join(dir, "wal")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("DATA-DIR/wal exists under --wal object (stat: %v)", err)
	}
	chunks := countChunks(t, dir)
	if chunks == 0 {
		t.Fatal("no WAL chunk objects after acknowledged produces")
	}
	t.Logf("%d records acknowledged in %d WAL chunks", n, chunks)
	crashed := copyDisk(t, dir)

	ts.close()
	if left := countChunks(t, dir); left != 0 {
		t.Errorf("%d WAL chunks left after a clean shutdown", left)
	}

	t.Run("after crash", func(t *testing.T) {
		ts := startServer(t, crashed, objectWAL)
		consumeVerify(t, ctx, ts, topics, n)
	})

	ts2 := startServer(t, dir, objectWAL)
	consumeVerify(t, ctx, ts2, topics, n)
	cl2 := producer(ts2, t, kgo.NoCompression())
	extra := rtTopics * rtPartitions * 2
	for i := n; i < n+extra; i++ {
		r := makeRecord(topics, i)
		res := cl2.ProduceSync(ctx, r)
		if err := res.FirstErr(); err != nil {
			t.Fatalf("produce after restart: %v", err)
		}
		if got, want := res[0].Record.Offset, recCount(i, recTopic(i), recPartition(i)); got != want {
			t.Fatalf("%s/%d: produce after restart got offset %d, want %d", r.Topic, r.Partition, got, want)
		}
	}
	consumeVerify(t, ctx, ts2, topics, n+extra)
}
