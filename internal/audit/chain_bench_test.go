package audit

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/auditchain"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/broker"
	"github.com/vigilhq/vigil/internal/meta/boltstore"
	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/storage"
)

// openTopic opens the audit topic on a storage engine over dir (a WAL
// without fsync: the chain is compared with the append, not the disk).
func openTopic(tb testing.TB, dir string) *storage.InternalTopic {
	tb.Helper()
	ctx := context.Background()
	ms, err := boltstore.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		tb.Fatal(err)
	}
	objs, err := objstore.Open(ctx, filepath.Join(dir, "objects"), objstore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := storage.Open(ctx, ms, objs, storage.Options{WALDir: filepath.Join(dir, "wal"), UploadInterval: 50 * time.Millisecond,
		SegmentBytes: 8 << 20, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.Close(); objs.Close(); ms.Close() })
	it, err := e.OpenInternalTopic(ctx, Topic, Partitions, map[string]string{"retention.ms": "-1"})
	if err != nil {
		tb.Fatal(err)
	}
	return it
}

// partitions returns a leads function of the partitions [from, to).
func partitions(from, to int32) func() []int32 {
	var ps []int32
	for p := from; p < to; p++ {
		ps = append(ps, p)
	}
	return func() []int32 { return ps }
}

// flushEvents encodes n admin events of about 1 KB and writes them as the
// trail's Run does at a flush, waiting for the append.
func flushEvents(tr *Trail, n int) {
	ev := broker.AdminEvent{Principal: "User:admin", Operation: "CreateTopics",
		Resource: "topic evidence, 12 partitions: " + strings.Repeat("retention.ms=604800000,", 30)}
	var pending []batch.KV
	for range n {
		pending = tr.add(pending, item{at: time.Now(), admin: &ev})
	}
	tr.write(pending, true)
}

// BenchmarkChain compares the trail writing ~1 KB events through the
// storage engine with and without the hash chain, in the same run:
// rounds of 1,000 events alternate between the two trails, and the
// ratio of their times per event is reported (chain/plain).
func BenchmarkChain(b *testing.B) {
	it := openTopic(b, b.TempDir())
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	// Apart, as one broker's trail is its partitions' only writer: a
	// partition the other trail wrote to since would make the chained
	// one read its last batch again at every append.
	chained := New(Config{}, it, partitions(0, Partitions/2), 1, quiet)
	plain := New(Config{}, it, partitions(Partitions/2, Partitions), 1, quiet)
	plain.hasher = nil
	const round = 1000
	var tChain, tPlain time.Duration
	b.ResetTimer()
	for i := range b.N {
		// Alternated, so that neither runs only against a fuller WAL.
		for j := range 2 {
			tr, acc := chained, &tChain
			if (i+j)%2 == 1 {
				tr, acc = plain, &tPlain
			}
			start := time.Now()
			flushEvents(tr, round)
			*acc += time.Since(start)
		}
	}
	b.StopTimer()
	events := float64(b.N * round)
	b.ReportMetric(float64(tPlain.Nanoseconds())/events, "plain-ns/event")
	b.ReportMetric(float64(tChain.Nanoseconds())/events, "chain-ns/event")
	b.ReportMetric(float64(tChain)/float64(tPlain), "chain/plain")
	b.ReportMetric(0, "ns/op")
}

// TestChainOverStorage: the trail over the real storage engine; a second
// trail (a broker taking the partitions over) continues each chain from
// the log's last record, and the records replayed from the engine verify
// intact from offset 0.
func TestChainOverStorage(t *testing.T) {
	it := openTopic(t, t.TempDir())
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for range 2 {
		tr := New(Config{}, it, func() []int32 { return []int32{2, 5} }, 1, quiet)
		for range 3 {
			flushEvents(tr, 10)
		}
	}
	for _, p := range []int32{2, 5} {
		v := auditchain.NewPartition(p, auditchain.NewHasher(nil))
		err := it.Replay(context.Background(), p, func(off int64, r batch.KV) error {
			v.Add(off, r.Key, r.Value, r.Headers)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !v.OK() || v.Start != 0 || v.Linked < 20 || v.Linked != v.Records {
			t.Errorf("partition %d: %d records, %d linked from %d, breaks %+v", p, v.Records, v.Linked, v.Start, v.Breaks)
		}
		off, last, ok, err := it.Last(context.Background(), p)
		if err != nil || !ok || off != v.HeadOffset {
			t.Errorf("partition %d: Last at %d (%v %v), the verified head at %d", p, off, ok, err, v.HeadOffset)
		}
		if found, _, _ := auditchain.Found(last.Headers); string(found) != v.Head.String() {
			t.Errorf("partition %d: last record's link %s, head %s", p, found, v.Head)
		}
	}
}
