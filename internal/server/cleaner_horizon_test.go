package server

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/config"
)

// TestCleanerDeleteHorizon: KIP-534 over the wire. A tombstone whose
// producer set a timestamp two days back (older than delete.retention.ms,
// a day) survives the first cleaning: that pass stamps its batch's delete
// horizon, and franz-go, kcat (librdkafka) and kafka-python still read
// the tombstone with its own timestamp. A later pass before the horizon keeps it and
// does not move the horizon; the first pass past it removes it. A commit
// marker is stamped by the first pass that finds its transaction's data
// gone, and goes in a pass past its own horizon; the keys' values compact
// as before throughout. The test drives the cleaner's clock.
func TestCleanerDeleteHorizon(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat not installed: apt-get install -y kcat (see .ci/install)")
	}
	ts := startServer(t, t.TempDir(), func(c *config.Broker) {
		c.UploadInterval = 10 * time.Millisecond
		c.RetentionCheckInterval = time.Hour // the test drives the cleaner
	})
	ctx := testCtx(t, time.Minute)
	adm := ts.admin(t)
	const topic = "horizon"
	createTopics(t, ctx, adm, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact"),
		"min.cleanable.dirty.ratio": kadm.StringPtr("0")}, topic)
	const day = 24 * time.Hour
	now := time.Now().Truncate(time.Millisecond)
	cl := ts.client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	produce := func(key, value string, at time.Time) int64 {
		t.Helper()
		r := &kgo.Record{Key: []byte(key), Timestamp: at}
		if value != "" {
			r.Value = []byte(value)
		}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", key, err)
		}
		return r.Offset
	}
	produce("k", "v1", now.Add(-3*day)) // 0
	txn := ts.client(t, kgo.TransactionalID("horizon-txn"), kgo.DefaultProduceTopic(topic))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Key: []byte("t"), Value: []byte("in a transaction")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	// The commit marker follows EndTransaction: wait for it (offset 2).
	waitFor(t, "the commit marker", func() bool {
		end, err := adm.ListEndOffsets(ctx, topic)
		o, _ := end.Lookup(topic, 0)
		return err == nil && o.Offset == 3
	})
	tombAt := now.Add(-2 * day)
	tomb := produce("k", "", tombAt) // 3
	produce("t", "plain", now)       // 4: supersedes the transaction's record
	produce("end", "1", now)         // 5: the log's end, which no pass cleans

	// pass runs the cleaner at the given time once what was produced is
	// uploaded; produced first, a record makes the log dirty again.
	pass := func(at time.Time, next string) {
		t.Helper()
		if next != "" {
			produce(next, "1", now)
		}
		waitFor(t, "upload", func() bool { return ts.srv.UploadBacklog() == 0 })
		if n, err := ts.srv.store.Clean(ctx, at); err != nil || n != 1 {
			t.Fatalf("clean at %v: %d partitions (err %v), want 1", at, n, err)
		}
	}
	// batches reads the log's batches over the wire up to the high
	// watermark: offset -> delete horizon (-1: none), markers included.
	batches := func() map[int64]int64 {
		t.Helper()
		out := map[int64]int64{}
		for _, b := range fetchBatches(t, ctx, ts, topic, 1) {
			h := int64(-1)
			if b.Attributes&0x40 != 0 {
				h = b.FirstTimestamp
			}
			out[b.FirstOffset] = h
		}
		return out
	}
	readAll := func(what string, want string) {
		t.Helper()
		cons := ts.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
		var got strings.Builder
		for n := strings.Count(want, "\n"); n > 0; {
			fs := cons.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatalf("%s: franz-go read %q: %v", what, got.String(), err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				fmt.Fprintf(&got, "%d %s %d\n", r.Offset, r.Key, r.Timestamp.UnixMilli())
				n--
			})
		}
		if got.String() != want {
			t.Errorf("%s: franz-go read\n%swant\n%s", what, got.String(), want)
		}
		cmd := exec.CommandContext(ctx, kcat, "-b", ts.addr, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q",
			"-f", "%o %k %T\n")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: kcat: %v\n%s", what, err, out)
		}
		if string(out) != want {
			t.Errorf("%s: kcat (librdkafka) read\n%swant\n%s", what, out, want)
		}
	}
	nowMs, tombMs := now.UnixMilli(), tombAt.UnixMilli()

	// Pass 1: k's value and the transaction's record go (superseded); the
	// marker stays (the pass met its data); the tombstone stays, stamped.
	pass(now, "")
	got := batches()
	if h, ok := got[tomb]; !ok || h != nowMs+day.Milliseconds() {
		t.Fatalf("after the first pass: batches %v, want the tombstone at %d stamped %d", got, tomb, nowMs+day.Milliseconds())
	}
	if h, ok := got[2]; !ok || h != -1 {
		t.Fatalf("after the first pass: batches %v, want the commit marker at 2 unstamped", got)
	}
	if _, ok := got[0]; ok {
		t.Fatalf("after the first pass: batches %v, k's value at 0 kept", got)
	}
	readAll("after the first pass", fmt.Sprintf("3 k %d\n4 t %d\n5 end %d\n", tombMs, nowMs, nowMs))

	// Pass 2, an hour on: the tombstone stays, its horizon where it was;
	// the marker, its data gone, is stamped from this pass.
	pass(now.Add(time.Hour), "e6")
	got = batches()
	if got[tomb] != nowMs+day.Milliseconds() {
		t.Fatalf("after the second pass: batches %v, want the tombstone's horizon unmoved", got)
	}
	markerHorizon := nowMs + (time.Hour + day).Milliseconds()
	if h, ok := got[2]; !ok || h != markerHorizon {
		t.Fatalf("after the second pass: batches %v, want the commit marker at 2 stamped %d", got, markerHorizon)
	}
	want := fmt.Sprintf("3 k %d\n4 t %d\n5 end %d\n6 e6 %d\n", tombMs, nowMs, nowMs, nowMs)
	readAll("after the second pass", want)
	// kafka-python too, over a stamped data batch and a stamped marker.
	// kafka-python 2.0 hands control records to the application (it has
	// no control-batch check), so it also reads the marker at 2: its
	// timestamp must be the broker's time of writing it, not the horizon.
	script := fmt.Sprintf(`
from kafka import KafkaConsumer, TopicPartition
c = KafkaConsumer(bootstrap_servers=%q, group_id=None, enable_auto_commit=False, consumer_timeout_ms=5000)
tp = TopicPartition(%q, 0)
c.assign([tp])
c.seek_to_beginning(tp)
for r in c:
    print(r.offset, r.key.decode() if r.offset != 2 else "marker", r.timestamp)
    if r.offset >= 6:
        break
`, ts.addr, topic)
	out, err := exec.CommandContext(ctx, "/usr/bin/python3", "-c", script).CombinedOutput()
	var markerMs int64
	first, rest, _ := strings.Cut(string(out), "\n")
	if _, serr := fmt.Sscanf(first, "2 marker %d", &markerMs); err != nil || serr != nil ||
		markerMs < nowMs-time.Minute.Milliseconds() || markerMs > nowMs+time.Minute.Milliseconds() || rest != want {
		t.Errorf("after the second pass: kafka-python read (err %v)\n%swant the marker at 2 with its own timestamp, then\n%s", err, out, want)
	}

	// Pass 3, past the tombstone's horizon but not the marker's.
	pass(now.Add(day+30*time.Minute), "e7")
	got = batches()
	if _, ok := got[tomb]; ok {
		t.Fatalf("after a pass past its horizon: batches %v, the tombstone kept", got)
	}
	if got[2] != markerHorizon {
		t.Fatalf("after a pass before the marker's horizon: batches %v, want the marker kept", got)
	}
	readAll("after the tombstone's horizon", fmt.Sprintf("4 t %d\n5 end %d\n6 e6 %d\n7 e7 %d\n", nowMs, nowMs, nowMs, nowMs))

	// Pass 4, past the marker's horizon.
	pass(now.Add(day+2*time.Hour), "e8")
	got = batches()
	if _, ok := got[2]; ok {
		t.Fatalf("after a pass past its horizon: batches %v, the commit marker kept", got)
	}
}
