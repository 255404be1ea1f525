package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/export/exporttest"
)

// syncBuffer is a bytes.Buffer the mirror's progress goroutine and the
// test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startMirror runs a mirror of the topics pattern matches from src to dst
// until the test ends; mods change its config.
func startMirror(t *testing.T, src, dst, pattern string, reg prometheus.Registerer, progress *syncBuffer, mods ...func(*CopyConfig)) *Mirror {
	t.Helper()
	m, _ := runMirror(t, src, dst, pattern, reg, progress, mods...)
	return m
}

// runMirror is startMirror, and returns besides a function that stops the
// mirror and closes it (as its process would end), before the test ends.
func runMirror(t *testing.T, src, dst, pattern string, reg prometheus.Registerer, progress *syncBuffer, mods ...func(*CopyConfig)) (*Mirror, func()) {
	t.Helper()
	re, err := TopicPattern(pattern)
	if err != nil {
		t.Fatal(err)
	}
	cfg := CopyConfig{
		Source:      []kgo.Opt{kgo.SeedBrokers(strings.Split(src, ",")...)},
		Destination: []kgo.Opt{kgo.SeedBrokers(strings.Split(dst, ",")...)},
		Topics:      re, Interval: 200 * time.Millisecond, MaxBytes: 256 << 10,
		ProgressEvery: 200 * time.Millisecond, Registerer: reg,
	}
	if progress != nil {
		cfg.Progress = progress
	}
	for _, mod := range mods {
		mod(&cfg)
	}
	m, err := NewMirror(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("mirror: %v", err)
			}
			m.Close()
		})
	}
	t.Cleanup(stop)
	return m, stop
}

// caughtUp waits until every partition of the topics is copied to the
// source's end, and the source's ends are ends.
func caughtUp(t *testing.T, m *Mirror, src string, topics ...string) {
	t.Helper()
	adm := admin(t, src)
	exporttest.Wait(t, time.Minute, "the mirror to catch up", func() bool {
		ends, err := adm.ListEndOffsets(context.Background(), topics...)
		if err != nil {
			return false
		}
		st := m.Status()
		n := 0
		for _, p := range st {
			o, ok := ends.Lookup(p.Topic, p.Partition)
			if !ok || p.Stopped || p.Copied != o.Offset || p.Lag() != 0 {
				return false
			}
			n++
		}
		want := 0
		ends.Each(func(kadm.ListedOffset) { want++ })
		return n == want
	})
}

func admin(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// consumed is what a consumer read of a partition.
type consumed struct {
	Offset            int64
	Key, Value        string
	Headers, Txn, Ctl bool
}

// readAll reads every record of topic at an isolation level, per
// partition in offset order.
func readAll(t *testing.T, addr, topic string, iso kgo.IsolationLevel) map[int32][]consumed {
	t.Helper()
	adm := admin(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[int32][]consumed{}
	pos := map[int32]int64{}
	done := func() bool {
		ok := true
		ends.Each(func(o kadm.ListedOffset) { ok = ok && pos[o.Partition] >= o.Offset })
		return ok
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s on %s: %v (at %v, ends %v)", topic, addr, err, pos, ends)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("read %s: %v", topic, err) })
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Partition] = append(out[r.Partition], consumed{Offset: r.Offset, Key: string(r.Key), Value: string(r.Value), Headers: len(r.Headers) > 0})
			// The topics read here end with a data record, so the last
			// record read is at the high watermark less one.
			pos[r.Partition] = r.Offset + 1
		})
	}
	return out
}

// TestMirror copies from kfake (franz-go's own Kafka, not Vigil) onto a
// Vigil broker: records with headers, transactions committed and aborted,
// a compacted topic with gaps, records produced while it runs and a
// consumer group's commits. Then: verify matches, the group resumes on
// Vigil at exactly the next record, read_committed sees the same on both,
// the mirror topic refuses produces until promoted. 10k records with
// -short, 100k without.
func TestMirror(t *testing.T) {
	total := 100_000
	if testing.Short() {
		total = 10_000
	}
	const parts = 4
	c := startKfake(t)
	src, dst := strings.Join(c.ListenAddrs(), ","), exporttest.StartBroker(t)
	per := total / parts
	fillTxn(t, src, "events", parts, per) // offsets [0, per+20): a committed and an aborted transaction at the end

	// A compacted topic with gaps (as TestVerifyGaps).
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(src, ",")...), kgo.ManualFlushing(), kgo.DefaultProduceTopic("assets"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	compact, forever := "compact", "-1"
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, 1,
		map[string]*string{"cleanup.policy": &compact, "retention.ms": &forever}, "assets"); err != nil {
		t.Fatal(err)
	}
	for b := range 10 {
		for i := range 10 {
			cl.Produce(context.Background(), &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%5), Value: fmt.Appendf(nil, "v%d", 10*b+i),
				Headers: []kgo.RecordHeader{{Key: "b", Value: fmt.Appendf(nil, "%d", b)}}, Timestamp: base.Add(time.Duration(10*b+i) * time.Second)}, nil)
		}
		if err := cl.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	c.Compact()

	// A topic whose log start retention (here DeleteRecords) moved before
	// the mirror starts, and moves again while it runs.
	sadm := admin(t, src)
	fill(t, src, "logs", 1, 100, nil)
	deleteTo := func(adm *kadm.Client, at int64) {
		t.Helper()
		var o kadm.Offsets
		o.Add(kadm.Offset{Topic: "logs", Partition: 0, At: at, LeaderEpoch: -1})
		if r, err := adm.DeleteRecords(context.Background(), o); err != nil || r.Error() != nil {
			t.Fatalf("delete records of logs to %d: %v %v", at, err, r.Error())
		}
	}
	deleteTo(sadm, 40)

	reg := prometheus.NewRegistry()
	var progress syncBuffer
	m := startMirror(t, src, dst, "events|assets|logs", reg, &progress)
	caughtUp(t, m, src, "events", "assets", "logs")
	deleteTo(sadm, 70)
	exporttest.Wait(t, 30*time.Second, "Vigil's log start of logs to follow the source's", func() bool {
		starts, err := admin(t, dst).ListStartOffsets(context.Background(), "logs")
		o, _ := starts.Lookup("logs", 0)
		return err == nil && o.Offset == 70
	})

	// Continuously: more records while it runs, then a consumer group
	// that reads part of them on the source and commits.
	prod, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(src, ",")...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var more []*kgo.Record
	for p := range int32(parts) {
		for i := per + 18; i < per+18+500; i++ {
			more = append(more, record("events", p, i))
		}
	}
	if err := prod.ProduceSync(context.Background(), more...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	const group = "soc-detect"
	committed := consumeAndCommit(t, src, group, "events", total/10) // less than a partition holds: each has a next record
	caughtUp(t, m, src, "events", "assets", "logs")
	dadm := admin(t, dst)
	exporttest.Wait(t, 30*time.Second, "the group's offsets on Vigil", func() bool {
		offs, err := dadm.FetchOffsets(context.Background(), group)
		if err != nil {
			return false
		}
		for p, at := range committed {
			if o, ok := offs.Lookup("events", p); !ok || o.At != at {
				return false
			}
		}
		return true
	})

	// The logs are equal, offset by offset, gaps and markers included.
	sum, lines, err := verify(t, src, dst, "events|assets|logs", func(c *Config) { c.MaxBytes = 1 << 20 })
	if err != nil || !sum.OK() {
		t.Fatalf("verify after the mirror caught up: %+v, %v", sum, err)
	}
	wantLines(t, lines, "assets/0: match: offsets [80, 100), 15 records (5 offsets without a record on either side), sha256 <*>",
		"logs/0: match: offsets [70, 100), 30 records, sha256 <*>")
	if want := 2*parts*(per+20+500) + 15 + 30; sum.Records < int64(total) || sum.Records > int64(want) {
		t.Errorf("verify compared %d records, want about %d", sum.Records, want)
	}

	// The group moves to Vigil and resumes at exactly the next record.
	srcNext := firstAt(t, src, "events", committed)
	dstNext := firstAt(t, dst, "events", nil, kgo.ConsumerGroup(group), kgo.DisableAutoCommit())
	for p, at := range committed {
		if dstNext[p].Offset != at || dstNext[p] != srcNext[p] {
			t.Errorf("events/%d: the group resumed on Vigil at %+v, want offset %d, the source's %+v", p, dstNext[p], at, srcNext[p])
		}
	}

	// read_committed readers see the same on both: committed data, no
	// aborted records, no markers.
	for _, iso := range []kgo.IsolationLevel{kgo.ReadCommitted(), kgo.ReadUncommitted()} {
		s, d := readAll(t, src, "events", iso), readAll(t, dst, "events", iso)
		for p := range int32(parts) {
			if !slices.Equal(s[p], d[p]) {
				t.Errorf("events/%d at %v: source %d records, Vigil %d differ", p, iso, len(s[p]), len(d[p]))
			}
		}
		if iso == kgo.ReadCommitted() && len(s[0]) != per+18+500-3 {
			t.Errorf("read_committed read %d records of events/0, want %d (the aborted three left out)", len(s[0]), per+18+500-3)
		}
	}

	// Lag on the progress line and in the metrics.
	exporttest.Wait(t, 10*time.Second, "a progress line with lag 0", func() bool {
		return strings.Contains(progress.String(), "lag 0 offsets, ")
	})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	lagSeries := 0
	for _, mf := range mfs {
		if mf.GetName() == "vigil_mirror_lag_offsets" {
			for _, s := range mf.GetMetric() {
				lagSeries++
				if v := s.GetGauge().GetValue(); v != 0 {
					t.Errorf("vigil_mirror_lag_offsets %v = %v, want 0", s.GetLabel(), v)
				}
			}
		}
	}
	if lagSeries != parts+2 {
		t.Errorf("%d vigil_mirror_lag_offsets series, want %d", lagSeries, parts+2)
	}

	// The mirror topic refuses ordinary produce until promoted.
	vp, err := kgo.NewClient(kgo.SeedBrokers(dst), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer vp.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = vp.ProduceSync(ctx, &kgo.Record{Topic: "events", Partition: 0, Value: []byte("direct")}).FirstErr()
	if !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("produce to a mirror topic: %v, want INVALID_REQUEST", err)
	}
	// kgo does not pass the ErrorMessage on: ask with a raw request.
	if code, msg := rawProduce(t, dst, "events", "kcat"); code != kerr.InvalidRequest.Code || !strings.Contains(msg, "vigil mirror promote events") {
		t.Errorf("produce to a mirror topic: code %d %q, want INVALID_REQUEST saying how to promote", code, msg)
	}
	// The mirror's own appends go to mirror topics only.
	if _, err := dadm.CreateTopic(ctx, 1, 1, nil, "ordinary"); err != nil {
		t.Fatal(err)
	}
	if code, msg := rawProduce(t, dst, "ordinary", ClientID); code != kerr.InvalidRequest.Code || !strings.Contains(msg, "not a mirror topic") {
		t.Errorf("a mirror append to an ordinary topic: code %d %q, want INVALID_REQUEST", code, msg)
	}
	if err := Promote(ctx, []kgo.Opt{kgo.SeedBrokers(dst)}, "events"); err != nil {
		t.Fatal(err)
	}
	if err := Promote(ctx, []kgo.Opt{kgo.SeedBrokers(dst)}, "events"); err == nil || !strings.Contains(err.Error(), "not a mirror topic") {
		t.Errorf("promoting twice: %v, want not a mirror topic", err)
	}
	// The source's producers' state came with their batches; a producer
	// id Vigil hands out now is none of theirs.
	dps, err := dadm.DescribeProducers(ctx, kadm.TopicsSet{"events": {0: {}, 1: {}, 2: {}, 3: {}}})
	if err != nil {
		t.Fatal(err)
	}
	mirroredPIDs := 0
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionTimeoutMillis = -1
	ir, err := init.RequestWith(ctx, vp)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("InitProducerID on Vigil: %v %v", ir, err)
	}
	dps.EachProducer(func(d kadm.DescribedProducer) {
		mirroredPIDs++
		if d.ProducerID >= ir.ProducerID {
			t.Errorf("Vigil handed out producer id %d, not above the mirrored producer %d", ir.ProducerID, d.ProducerID)
		}
	})
	if mirroredPIDs == 0 {
		t.Error("no mirrored producer state on events")
	}
	end := readEnd(t, dadm, "events", 0)
	r := &kgo.Record{Topic: "events", Partition: 0, Value: []byte("direct")}
	if err := vp.ProduceSync(ctx, r).FirstErr(); err != nil || r.Offset != end {
		t.Fatalf("produce after promote: offset %d, %v; want offset %d", r.Offset, err, end)
	}
	// The mirror stops copying a promoted topic: a record produced to the
	// source's events/0 now stays there.
	if err := prod.ProduceSync(ctx, record("events", 0, per+18+500)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	exporttest.Wait(t, 30*time.Second, "the mirror to stop copying events/0", func() bool {
		for _, p := range m.Status() {
			if p.Topic == "events" && p.Partition == 0 {
				return p.Stopped
			}
		}
		return false
	})
	if got := readEnd(t, dadm, "events", 0); got != end+1 {
		t.Errorf("events/0 on Vigil ends at %d after promote, want %d (its own record only)", got, end+1)
	}
}

func readEnd(t *testing.T, adm *kadm.Client, topic string, p int32) int64 {
	t.Helper()
	ends, err := adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := ends.Lookup(topic, p)
	return o.Offset
}

// consumeAndCommit reads about n records of topic in a group on addr,
// commits what it read and leaves: the group's committed offsets.
func consumeAndCommit(t *testing.T, addr, group, topic string, n int) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.FetchMaxPartitionBytes(64<<10), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	got := map[int32]int64{}
	read := 0
	for read < n {
		fs := cl.PollRecords(ctx, n-read)
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = r.Offset + 1
			read++
		})
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	return got
}

// firstAt reads the first record of each partition from the given
// offsets, or, with offsets nil, of the group in opts.
func firstAt(t *testing.T, addr, topic string, offsets map[int32]int64, opts ...kgo.Opt) map[int32]consumed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	all := append([]kgo.Opt{kgo.SeedBrokers(strings.Split(addr, ",")...), kgo.FetchIsolationLevel(kgo.ReadCommitted())}, opts...)
	want := len(offsets)
	if offsets != nil {
		at := map[int32]kgo.Offset{}
		for p, o := range offsets {
			at[p] = kgo.NewOffset().At(o)
		}
		all = append(all, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: at}))
	} else {
		all = append(all, kgo.ConsumeTopics(topic))
		adm := admin(t, addr)
		md, err := adm.ListTopics(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		want = len(md[topic].Partitions)
	}
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[int32]consumed{}
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("first records of %s on %s: %v (have %v)", topic, addr, ctx.Err(), out)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if _, ok := out[r.Partition]; !ok {
				out[r.Partition] = consumed{Offset: r.Offset, Key: string(r.Key), Value: string(r.Value), Headers: len(r.Headers) > 0}
			}
		})
	}
	return out
}

// rawProduce sends one record to partition 0 of topic as client clientID
// and returns the answer's code and message.
func rawProduce(t *testing.T, addr, topic, clientID string) (int16, string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(clientID))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch.Build([]batch.KV{{Value: []byte("direct")}}, time.Now().UnixMilli())
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	msg := ""
	if p.ErrorMessage != nil {
		msg = *p.ErrorMessage
	}
	return p.ErrorCode, msg
}

// TestMirrorChangedRecord: one record changed on either side of a mirror
// is found by verify at its offset. On Vigil, a mirror topic that already
// holds the first 50 records, one of them changed (appended as the mirror
// appends, at their offsets), which the mirror continues from its end; on
// the source, a topic deleted and written again after it was copied, one
// record changed.
func TestMirrorChangedRecord(t *testing.T) {
	src, dst := startSource(t), exporttest.StartBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ts := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	kv := func(i int, changed bool) (k, v []byte) {
		k, v = fmt.Appendf(nil, "host-%02d", i%7), fmt.Appendf(nil, "event %d", i)
		if changed {
			v = fmt.Appendf(nil, "event %d, tampered", i)
		}
		return k, v
	}
	produceSrc := func(topic string, n, changed int) {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(src, ",")...), kgo.DefaultProduceTopic(topic))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
		// One record a batch, as Vigil's seeded copy has them: a mirror
		// resumes at a batch boundary.
		for i := range n {
			k, v := kv(i, i == changed)
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: k, Value: v, Timestamp: ts(i)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produceSrc("seeded", 100, -1)
	produceSrc("recreated", 50, -1)

	// Vigil's "seeded" holds records 0-49 already, record 17 changed.
	dcl, err := kgo.NewClient(kgo.SeedBrokers(dst), kgo.ClientID(ClientID))
	if err != nil {
		t.Fatal(err)
	}
	defer dcl.Close()
	name := "kfake"
	if r, err := kadm.NewClient(dcl).CreateTopic(ctx, 1, 1, map[string]*string{MirrorSourceConfig: &name}, "seeded"); err != nil || r.Err != nil {
		t.Fatalf("create seeded on Vigil: %v %v", err, r.Err)
	}
	for i := range 50 {
		k, v := kv(i, i == 17)
		raw := batch.Build([]batch.KV{{Key: k, Value: v}}, ts(i).UnixMilli())
		batch.Assign(raw, int64(i), -1)
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 10000
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: "seeded", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: raw}}}}
		resp, err := req.RequestWith(ctx, dcl)
		if err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("seed record %d: %v %v", i, err, resp)
		}
	}

	m := startMirror(t, src, dst, "seeded|recreated", nil, nil)
	caughtUp(t, m, src, "seeded", "recreated")
	sum, lines, err := verify(t, src, dst, "seeded|recreated", nil)
	if err != nil || sum.OK() {
		t.Fatalf("verify: %+v, %v; want a difference", sum, err)
	}
	wantLines(t, lines, `seeded/0: DIFFERS at offset 17: value<*>`, "recreated/0: match: offsets [0, 50), 50 records, sha256 <*>")

	// The source's "recreated" deleted and written again, record 30
	// changed: the mirror has nothing new to copy, verify finds it.
	sadm := admin(t, src)
	if _, err := sadm.DeleteTopics(ctx, "recreated"); err != nil {
		t.Fatal(err)
	}
	exporttest.Wait(t, 10*time.Second, "recreated gone on the source", func() bool {
		tds, err := sadm.ListTopics(ctx)
		return err == nil && !tds.Has("recreated")
	})
	produceSrc("recreated", 50, 30)
	_, lines, err = verify(t, src, dst, "recreated", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, lines, `recreated/0: DIFFERS at offset 30: value<*>`)
}
