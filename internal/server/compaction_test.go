package server

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/config"
)

func compactValue(off int64) string { return fmt.Sprintf("record-%06d", off) }

// readAll consumes partition 0 of topic from the start to end and checks
// every record's value against its offset.
func readAll(ctx context.Context, t *testing.T, addr, topic string, end int64) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxPartitionBytes(4<<10)) // small fetches: many reads per segment
	if err != nil {
		return err
	}
	defer cl.Close()
	next := int64(0)
	for next < end {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return fmt.Errorf("fetch at %d: %w", next, err)
		}
		var bad error
		fs.EachRecord(func(r *kgo.Record) {
			if bad == nil && (r.Offset != next || string(r.Value) != compactValue(r.Offset)) {
				bad = fmt.Errorf("offset %d (want %d): value %q", r.Offset, next, r.Value)
			}
			next = r.Offset + 1
		})
		if bad != nil {
			return bad
		}
	}
	return nil
}

// TestCompaction merges many small segment objects of a partition while
// consumers read it, and checks every read, before, during and after the
// swap and after a restart, returns exactly the records written.
func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	mod := func(c *config.Broker) {
		c.UploadInterval = 10 * time.Millisecond
		c.RetentionCheckInterval = time.Hour // compaction is driven by the test
		c.ObjectDeleteDelay = 200 * time.Millisecond
		c.TailCacheBytes = 0 // reads come from objects
	}
	ts := startServer(t, dir, mod)
	ctx := testCtx(t, 2*time.Minute)
	createTopics(t, ctx, ts.admin(t), 1, nil, "compacted")
	cl := ts.client(t, kgo.DefaultProduceTopic("compacted"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	const rounds, per = 30, 100
	for r := range rounds {
		for i := range per {
			off := int64(r*per + i)
			cl.Produce(ctx, &kgo.Record{Value: []byte(compactValue(off))}, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "upload", func() bool { return ts.srv.UploadBacklog() == 0 })
	}
	end := int64(rounds * per)
	log := ts.srv.store.Topic("compacted").Logs[0]
	before := len(log.Segments())
	if before < rounds {
		t.Fatalf("%d segments before compaction, want at least %d", before, rounds)
	}

	// Readers run through the swap and the deletion of the inputs.
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rctx.Err() == nil {
				if err := readAll(rctx, t, ts.addr, "compacted", end); err != nil && rctx.Err() == nil {
					errs <- err
					return
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	n, err := ts.srv.store.Compact(ctx)
	if err != nil {
		t.Fatalf("compact: %v", err)
	}
	after := len(log.Segments())
	if n < before-1 || after >= before/4 {
		t.Fatalf("compaction replaced %d entries: %d segments before, %d after", n, before, after)
	}
	time.Sleep(500 * time.Millisecond) // past the delete delay: inputs are gone
	stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("read during compaction: %v", err)
	}
	if err := readAll(ctx, t, ts.addr, "compacted", end); err != nil {
		t.Fatalf("read after compaction: %v", err)
	}

	ts.close()
	ts = startServer(t, dir, mod)
	if got := len(ts.srv.store.Topic("compacted").Logs[0].Segments()); got != after {
		t.Fatalf("after restart %d segments, want the compacted %d", got, after)
	}
	if err := readAll(ctx, t, ts.addr, "compacted", end); err != nil {
		t.Fatalf("read after restart: %v", err)
	}
}
