package hunt

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/server/servertest"
)

// TestHuntEndsAtMarker hunts a range whose last offset is a transaction's
// commit marker (a topic an exactly-once stage writes, read up to its
// end): the marker is not an event (the three records are, and complete
// the brute-force correlation once), and the hunt still ends there
// instead of waiting for a record that will never come.
func TestHuntEndsAtMarker(t *testing.T) {
	addr := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("hunt-markers"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopics(ctx, 1, 1, nil, "txn"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Minute)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r := &kgo.Record{Topic: "txn", Value: []byte(`{"EventID":4625,"TargetUserName":"bob"}`), Timestamp: t0.Add(time.Duration(i) * time.Second)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	// EndTxn is answered once the commit is decided; the coordinator
	// writes the marker after (as Kafka's does): wait for it.
	for {
		ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, "txn")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := ends.Lookup("txn", 0)
		if o.Offset == 4 {
			break
		}
		if o.Offset > 4 || ctx.Err() != nil {
			t.Fatalf("high watermark %d, want 4 (3 records and the marker)", o.Offset)
		}
		time.Sleep(20 * time.Millisecond)
	}
	hctx, hcancel := context.WithTimeout(ctx, 20*time.Second)
	defer hcancel()
	var out bytes.Buffer
	st, err := Run(hctx, Config{Brokers: []string{addr}, Topics: []string{"txn"}, From: t0.Add(-time.Second), To: time.Now().Add(time.Minute),
		RuleDirs: []string{writeBruteForce(t)}, Output: &out}, servertest.Logger(t))
	if err != nil {
		t.Fatalf("hunt up to the marker: %v (stats %+v)", err, st)
	}
	if st.Records != 3 || st.Invalid != 0 || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("stats %+v, findings:\n%s", st, out.String())
	}
}
