package exporttest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/server/servertest"
)

// StartBroker runs a broker in the test process on a free port and
// returns its address.
func StartBroker(t testing.TB) string {
	t.Helper()
	return servertest.Run(t, func(c *config.Broker) { c.GroupInitialRebalance = 50 * time.Millisecond }).Addr
}

// Classes are the OCSF classes Events cycles through.
var Classes = []struct {
	UID  int
	Name string
}{{3002, "Authentication"}, {1007, "Process Activity"}, {2004, "Detection Finding"}}

// Base is the time of the first event Events makes: 2026-11-27T08:50:00Z.
var Base = time.Date(2026, 11, 27, 8, 50, 0, 0, time.UTC)

// Event is the i-th test event: an OCSF-shaped JSON object of one of
// Classes, its time i minutes after Base (so a run of them spans days
// when i passes 1440), naming i.
func Event(i int) []byte {
	c := Classes[i%len(Classes)]
	at := Base.Add(time.Duration(i) * time.Minute)
	ev := map[string]any{"class_uid": c.UID, "class_name": c.Name, "time": at.UnixMilli(), "severity": "Low",
		"message": fmt.Sprintf("event %d", i), "seq": i, "device": map[string]any{"hostname": fmt.Sprintf("ws-%03d", i%17)}}
	if c.UID == 2004 {
		ev["finding_info"] = map[string]any{"uid": fmt.Sprintf("rule-1:test:%d", i), "title": fmt.Sprintf("Rule %d fired", i%5)}
		ev["evidences"] = []any{map[string]any{"data": map[string]any{"device": ev["device"], "user": map[string]any{"name": "alice"}}}}
	}
	b, _ := json.Marshal(ev)
	return b
}

// Produce creates topic with partitions (if new) and writes events
// [from, to) to it, keyed by host, each record timestamped with its
// event's time.
func Produce(t testing.TB, addr, topic string, partitions int32, from, to int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, nil, topic)
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("ws-%03d", i%17)), Value: Event(i),
			Timestamp: Base.Add(time.Duration(i) * time.Minute)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// Committed returns the group's committed offsets of topic, summed over
// its partitions, and the topic's end offsets summed.
func Committed(t testing.TB, addr, group, topic string) (committed, end int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == topic && o.Err == nil && o.At > 0 {
				committed += o.At
			}
		})
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) { end += o.Offset })
	return committed, end
}

// ReadTopic reads every record of topic.
func ReadTopic(t testing.TB, addr, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			total += o.Offset
		}
	})
	if total == 0 {
		return nil
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var out []*kgo.Record
	for int64(len(out)) < total {
		f := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", len(out), total, topic)
		}
		out = append(out, f.Records()...)
	}
	return out
}

// Runner runs a job in the background for a test.
type Runner struct {
	cancel context.CancelFunc
	done   chan error
}

// Run starts run(ctx) (a job's Run or Backfill) and stops it at t's
// cleanup.
func Run(t testing.TB, run func(ctx context.Context) error) *Runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- run(ctx) }()
	t.Cleanup(func() { r.Stop() })
	return r
}

// Stop cancels the job and returns its error.
func (r *Runner) Stop() error {
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("job did not stop within 30s")
	}
}

// Wait polls cond every 50ms until it holds or timeout passes.
func Wait(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
