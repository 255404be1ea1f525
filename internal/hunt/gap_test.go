package hunt

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/server/servertest"
)

// TestHuntEndsAtCompactionGap hunts a range that ends inside offsets the
// cleaner removed: keys a-h at offsets 0-7 (a minute apart), then f-h
// again at 8-10, so compaction leaves 0-4 and 8-10. A range up to the
// time of offset 8 ends at offset 8, and the last offsets before it (5-7)
// are gone: the hunt must end when the reader passes them (at offset 8),
// not wait for a record at 7 that no longer exists.
func TestHuntEndsAtCompactionGap(t *testing.T) {
	addr := startBroker(t, func(c *config.Broker) {
		c.RetentionCheckInterval = 200 * time.Millisecond
		c.ObjectDeleteDelay = time.Second
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("keys"), kgo.ProducerLinger(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopics(ctx, 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact"),
		"min.cleanable.dirty.ratio": kadm.StringPtr("0.01"), "segment.ms": kadm.StringPtr("100")}, "keys"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Minute)
	at := func(off int) time.Time { return t0.Add(time.Duration(off) * time.Minute) }
	off := 0
	for _, keys := range []string{"abcdefgh", "fgh"} {
		var rs []*kgo.Record
		for _, k := range keys {
			rs = append(rs, &kgo.Record{Key: []byte{byte(k)}, Timestamp: at(off),
				Value: fmt.Appendf(nil, `{"EventID":4625,"TargetUserName":"%c"}`, k)})
			off++
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for the cleaner: a read from the start gets 8 records.
	for {
		rd, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"keys": {0: kgo.NewOffset().AtStart()}}))
		if err != nil {
			t.Fatal(err)
		}
		var offs []int64
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		for len(offs) < 11 && pctx.Err() == nil {
			rd.PollFetches(pctx).EachRecord(func(r *kgo.Record) { offs = append(offs, r.Offset) })
		}
		pcancel()
		rd.Close()
		if fmt.Sprint(offs) == "[0 1 2 3 4 8 9 10]" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("never compacted: offsets %v", offs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	hctx, hcancel := context.WithTimeout(ctx, 20*time.Second)
	defer hcancel()
	var out bytes.Buffer
	st, err := Run(hctx, Config{Brokers: []string{addr}, Topics: []string{"keys"}, From: at(0), To: at(8),
		RuleDirs: []string{writeBruteForce(t)}, Output: &out}, servertest.Logger(t))
	if err != nil {
		t.Fatalf("hunt up to a compaction gap: %v (stats %+v)", err, st)
	}
	if st.Records != 5 || st.Outside != 0 || st.Invalid != 0 {
		t.Errorf("stats %+v, want the 5 records 0-4; findings:\n%s", st, out.String())
	}
	if out.Len() != 0 {
		t.Errorf("findings:\n%s; want none (one failure per user)", out.String())
	}
}
