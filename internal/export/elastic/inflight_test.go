package elastic_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/export"
	"github.com/vigilhq/vigil/internal/export/elastic"
	"github.com/vigilhq/vigil/internal/export/exporttest"
)

// TestRequestsInFlight delivers through a slow proxy that counts the
// requests it serves at once: with max_in_flight 4 the job's requests
// overlap, never more than 4; with 1 they never do. Either way ZincSearch
// holds every record once and the offsets are committed.
func TestRequestsInFlight(t *testing.T) {
	z := exporttest.StartZinc(t)
	addr := exporttest.StartBroker(t)
	const n = 400
	exporttest.Produce(t, addr, "ocsf.lanes", 4, 0, n)
	for _, inFlight := range []int{4, 1} {
		p := &exporttest.BulkProxy{Upstream: z.ESURL(), User: z.User, Password: z.Password, Delay: 100 * time.Millisecond}
		p.Start(t)
		name := fmt.Sprintf("lanes%d", inFlight)
		j := newJob(t, addr, name, "ocsf.lanes", elastic.Config{URL: p.URL()}, func(c *export.JobConfig) { c.MaxInFlight = inFlight })
		start := time.Now()
		r := exporttest.Run(t, j.Run)
		exporttest.Wait(t, time.Minute, "commit", func() bool {
			c, e := exporttest.Committed(t, addr, "vigil-export-"+name, "ocsf.lanes")
			return c == e
		})
		el := time.Since(start)
		r.Stop()
		m := p.MaxInFlight()
		t.Logf("max_in_flight %d: %d requests of %v each, at most %d at once, all committed in %v", inFlight, p.Requests(), p.Delay, m, el.Round(time.Millisecond))
		if m > inFlight || (inFlight > 1 && m < 2) {
			t.Errorf("max_in_flight %d: the proxy served up to %d requests at once", inFlight, m)
		}
		if st := j.Stats(); st.Delivered != n {
			t.Errorf("max_in_flight %d: delivered %d of %d", inFlight, st.Delivered, n)
		}
	}
	ids, err := z.WaitIDs("vigil-*", n, 30*time.Second, time.Second)
	if err != nil || len(ids) != n {
		t.Fatalf("%d documents (%v), want %d", len(ids), err, n)
	}
	for id, ix := range ids {
		if len(ix) != 1 {
			t.Errorf("id %s in %v", id, ix)
		}
	}
}

// TestCommitNotPastUnacknowledged fails one record of partition 0 (an
// item answered 503) until the test lets it through, while the rest of
// its batch, later records of partition 0 among them, is delivered by the
// other lanes: partition 0's committed offset stays at or before that
// record until the sink has it. Then everything is committed, each record
// once in ZincSearch.
func TestCommitNotPastUnacknowledged(t *testing.T) {
	z := exporttest.StartZinc(t)
	addr := exporttest.StartBroker(t)
	const (
		topic = "ocsf.stuck"
		n     = 400
		stuck = 10 // offset of partition 0
	)
	exporttest.Produce(t, addr, topic, 2, 0, n)
	stuckID := export.RecordID(topic, 0, stuck)
	var release atomic.Bool
	p := &exporttest.BulkProxy{Upstream: z.ESURL(), User: z.User, Password: z.Password,
		ItemFault: func(id string, _ int) (int, string) {
			if id == stuckID && !release.Load() {
				return 503, "unavailable_shards_exception"
			}
			return 0, ""
		}}
	p.Start(t)
	j := newJob(t, addr, "stuck", topic, elastic.Config{URL: p.URL()}, func(c *export.JobConfig) {
		c.MaxBatchRecords, c.MaxInFlight, c.RetryMax = 20, 4, 200*time.Millisecond
	})
	r := exporttest.Run(t, j.Run)
	// Every record but the stuck one reaches the sink, partition 0's
	// after it included.
	exporttest.Wait(t, time.Minute, "the other records", func() bool {
		s := p.Sends()
		return len(s) == n-1 && s[export.RecordID(topic, 0, stuck+1)] > 0
	})
	time.Sleep(500 * time.Millisecond) // a few more retries of the stuck one
	if c := committedParts(t, addr, "vigil-export-stuck", topic); c[0] > stuck {
		t.Fatalf("partition 0 committed at %d past offset %d, which the sink has not acknowledged (commits %v)", c[0], stuck, c)
	}
	if st := j.Stats(); st.Retried == 0 {
		t.Fatalf("the stuck record was not retried: %+v", st)
	}
	release.Store(true)
	exporttest.Wait(t, time.Minute, "commit", func() bool {
		c, e := exporttest.Committed(t, addr, "vigil-export-stuck", topic)
		return c == e
	})
	r.Stop()
	ids, err := z.WaitIDs("vigil-*", n, 30*time.Second, time.Second)
	if err != nil || len(ids) != n {
		t.Fatalf("%d documents (%v), want %d", len(ids), err, n)
	}
	if st := j.Stats(); st.DeadLettered != 0 || st.Delivered != n {
		t.Errorf("stats %+v; want %d delivered, none dead", st, n)
	}
}

// committedParts is group's committed offset of each partition of topic
// (0 where none).
func committedParts(t *testing.T, addr, group, topic string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil && o.At > 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}
