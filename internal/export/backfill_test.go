package export_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/export"
	"github.com/vigilhq/vigil/internal/export/exporttest"
)

// memSink keeps what it is sent.
type memSink struct {
	mu  sync.Mutex
	ids []string
}

func (s *memSink) Deliver(_ context.Context, docs []*export.Doc, res []export.Result) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, d := range docs {
		s.ids = append(s.ids, d.ID)
		res[i] = export.Result{Outcome: export.Delivered}
	}
	return nil
}

func (s *memSink) Close() error { return nil }

// TestBackfillEndsAtMarker backfills a range whose last offset is a
// transaction's commit marker (a topic an exactly-once job writes, read
// to its end): the three records are delivered, the marker is not, and
// the backfill ends instead of waiting for a record at the marker's
// offset.
func TestBackfillEndsAtMarker(t *testing.T) {
	addr := exporttest.StartBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("backfill-marker"), kgo.DefaultProduceTopic("txn"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopics(ctx, 1, 1, nil, "txn"); err != nil {
		t.Fatal(err)
	}
	from := time.Now().Add(-time.Minute)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r := &kgo.Record{Value: exporttest.Event(i), Timestamp: from.Add(time.Duration(i) * time.Second)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	// The marker is written after EndTxn is answered: wait for it, so the
	// range ends at it.
	for {
		ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, "txn")
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := ends.Lookup("txn", 0); o.Offset == 4 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the commit marker was never written")
		}
		time.Sleep(20 * time.Millisecond)
	}
	sink := &memSink{}
	j, err := export.NewJob(export.JobConfig{Name: "marker", Brokers: []string{addr}, Topics: []string{"txn"}},
		sink, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	bctx, bcancel := context.WithTimeout(ctx, 20*time.Second)
	defer bcancel()
	if err := j.Backfill(bctx, from.Add(-time.Second), time.Now().Add(time.Minute), nil, time.Second); err != nil {
		t.Fatalf("backfill up to a marker: %v (delivered %v)", err, sink.ids)
	}
	if len(sink.ids) != 3 || sink.ids[0] != "txn:0:0" || sink.ids[2] != "txn:0:2" {
		t.Errorf("delivered %v, want txn:0:0 to txn:0:2", sink.ids)
	}
}
