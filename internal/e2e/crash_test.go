package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type ackPos struct {
	partition int32
	offset    int64
}

const crashValuePad = "................................................................................"

func crashValue(id int64) []byte { return []byte(fmt.Sprintf("id=%d|%s", id, crashValuePad)) }

func parseCrashID(v []byte) (int64, bool) {
	s, ok := strings.CutPrefix(string(v), "id=")
	if !ok {
		return 0, false
	}
	s, rest, ok := strings.Cut(s, "|")
	if !ok || rest != crashValuePad {
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil
}

// TestCrashDurability produces to a 4-partition topic as fast as possible,
// SIGKILLs the broker once enough records are acknowledged, restarts it on
// the same data dir and checks every acknowledged record survived at exactly
// its acknowledged offset, with no duplicates and no offset gaps, and that
// new records continue right after the old end.
func TestCrashDurability(t *testing.T) {
	t.Parallel()
	crashDurability(t, t.TempDir())
}

// crashDurability is TestCrashDurability with the broker's extra flags
// (the WAL kind): it returns the restarted broker, still running.
func crashDurability(t *testing.T, dataDir string, extraFlags ...string) *broker {
	target := int64(200_000)
	if testing.Short() {
		target = 20_000
	}
	const topic = "crash"
	const partitions = 4
	// Upload often and early so the kill lands while segments are being
	// uploaded, and recovery has to combine uploaded segments with the
	// WAL; debug logging shows the uploads.
	flags := append([]string{"--upload-interval", "50ms", "--segment-bytes", "1048576", "--log-level", "debug"}, extraFlags...)
	b := startBroker(t, "", dataDir, flags...)
	createTopic(t, b.addr, topic, partitions)

	// Producer: acks=all, no idempotence, no record retries, so a record
	// is written at most once.
	prod, err := kgo.NewClient(
		kgo.SeedBrokers(b.addr),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DisableIdempotentWrite(),
		kgo.RecordRetries(0),
		kgo.RecordDeliveryTimeout(20*time.Second),
		kgo.MaxBufferedRecords(20_000),
		kgo.ProducerBatchMaxBytes(256<<10),
	)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu        sync.Mutex
		acked     = make(map[int64]ackPos, target+50_000)
		failed    int64
		firstErr  error
		ackedN    atomic.Int64
		killed    atomic.Bool
		failedPre atomic.Int64 // failures before the kill: should be none
		reached   = make(chan struct{})
		reachOnce sync.Once
	)
	promise := func(id int64) func(*kgo.Record, error) {
		return func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				if !killed.Load() {
					failedPre.Add(1)
					if firstErr == nil {
						firstErr = err
					}
				}
				return
			}
			if prev, dup := acked[id]; dup {
				t.Errorf("id %d acknowledged twice: p%d@%d and p%d@%d", id, prev.partition, prev.offset, r.Partition, r.Offset)
			}
			acked[id] = ackPos{r.Partition, r.Offset}
			if ackedN.Add(1) >= target {
				reachOnce.Do(func() { close(reached) })
			}
		}
	}

	prodCtx, stopProducing := context.WithCancel(context.Background())
	defer stopProducing()
	var produced atomic.Int64
	producerDone := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(producerDone)
		for id := int64(0); prodCtx.Err() == nil; id++ {
			// Records get a background context: cancelling prodCtx only
			// stops new records from being started.
			prod.Produce(context.Background(), &kgo.Record{Value: crashValue(id)}, promise(id))
			produced.Add(1)
		}
	}()

	timeout := 5 * time.Minute
	select {
	case <-reached:
	case <-time.After(timeout):
		t.Fatalf("only %d of %d records acknowledged after %v (%d failed before kill, first error: %v)",
			ackedN.Load(), target, timeout, failedPre.Load(), firstErr)
	}
	killed.Store(true)
	b.kill()
	elapsed := time.Since(start)
	stopProducing()
	<-producerDone

	// Let every outstanding record finish (they fail fast: the broker is
	// gone and retries are off), then close.
	flushCtx, cancelFlush := context.WithTimeout(context.Background(), 60*time.Second)
	if err := prod.Flush(flushCtx); err != nil {
		t.Logf("flush after kill: %v", err)
	}
	cancelFlush()
	prod.Close()

	mu.Lock()
	nAcked, nFailed := len(acked), failed
	mu.Unlock()
	t.Logf("acknowledged %d records in %v (%.0f rec/s) before SIGKILL; %d started, %d failed (%d before the kill, first: %v)",
		nAcked, elapsed.Round(time.Millisecond), float64(nAcked)/elapsed.Seconds(), produced.Load(), nFailed, failedPre.Load(), firstErr)
	if failedPre.Load() > 0 {
		t.Errorf("%d records failed before the broker was killed; first error: %v", failedPre.Load(), firstErr)
	}

	maxAcked := map[int32]int64{}
	for _, p := range acked {
		if o, ok := maxAcked[p.partition]; !ok || p.offset > o {
			maxAcked[p.partition] = p.offset
		}
	}

	// Restart on the same data dir and port.
	restartAt := time.Now()
	t.Logf("first run uploaded %d segment objects before SIGKILL", strings.Count(b.log(), "segment uploaded"))
	b2 := startBroker(t, b.addr, dataDir, flags...)
	t.Logf("restart accepted connections after %v", time.Since(restartAt).Round(time.Millisecond))
	for _, line := range strings.Split(b2.log(), "\n") {
		if strings.Contains(line, "storage recovered") {
			t.Logf("restart: %s", line)
		}
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(b2.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	adm := kadm.NewClient(cons)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list start offsets: %v", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	end := map[int32]int64{}
	for p := int32(0); p < partitions; p++ {
		so, ok := starts.Lookup(topic, p)
		if !ok || so.Err != nil {
			t.Fatalf("start offset of %s/%d: %+v", topic, p, so)
		}
		eo, ok := ends.Lookup(topic, p)
		if !ok || eo.Err != nil {
			t.Fatalf("end offset of %s/%d: %+v", topic, p, eo)
		}
		if so.Offset != 0 {
			t.Errorf("partition %d: log start offset %d after restart, want 0", p, so.Offset)
		}
		end[p] = eo.Offset
		if m, ok := maxAcked[p]; ok && eo.Offset <= m {
			t.Errorf("partition %d: end offset %d after restart, but offset %d was acknowledged (acknowledged data lost)", p, eo.Offset, m)
		}
		t.Logf("partition %d: end offset %d after restart (highest acknowledged %d)", p, eo.Offset, maxAcked[p])
	}
	if t.Failed() {
		t.FailNow()
	}

	// Consume everything that is there.
	offsets := map[int32]kgo.Offset{}
	for p := int32(0); p < partitions; p++ {
		offsets[p] = kgo.NewOffset().At(0)
	}
	cons.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets})
	next := map[int32]int64{}
	seen := make(map[int64]ackPos, nAcked+10_000)
	done := func() bool {
		for p := int32(0); p < partitions; p++ {
			if next[p] < end[p] {
				return false
			}
		}
		return true
	}
	var badRecords int
	consumeStart := time.Now()
	for !done() {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume timed out; next offsets %v, end offsets %v", next, end)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Errorf("fetch %s/%d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Errorf("partition %d: got offset %d, want %d (gap or reordering)", r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition] = r.Offset + 1
			if r.Offset >= end[r.Partition] {
				return // beyond the end we took the snapshot at
			}
			id, ok := parseCrashID(r.Value)
			if !ok {
				badRecords++
				if badRecords <= 10 {
					t.Errorf("partition %d offset %d: corrupt value %q", r.Partition, r.Offset, truncate(string(r.Value), 120))
				}
				return
			}
			if prev, dup := seen[id]; dup {
				t.Errorf("id %d appears twice: p%d@%d and p%d@%d", id, prev.partition, prev.offset, r.Partition, r.Offset)
			}
			seen[id] = ackPos{r.Partition, r.Offset}
		})
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("consumed %d records in %v after restart", len(seen), time.Since(consumeStart).Round(time.Millisecond))

	var missing, moved int
	for id, want := range acked {
		got, ok := seen[id]
		switch {
		case !ok:
			missing++
			if missing <= 10 {
				t.Errorf("acknowledged id %d (p%d@%d) missing after restart", id, want.partition, want.offset)
			}
		case got != want:
			moved++
			if moved <= 10 {
				t.Errorf("acknowledged id %d was at p%d@%d, now at p%d@%d", id, want.partition, want.offset, got.partition, got.offset)
			}
		}
	}
	if missing+moved > 0 {
		t.Fatalf("%d acknowledged records missing, %d at a different position", missing, moved)
	}
	t.Logf("all %d acknowledged records present at their offsets; %d unacknowledged (in flight at the kill) also present",
		nAcked, len(seen)-nAcked)

	// Produce more: offsets must continue right after the old end.
	const more = 50
	prod2, err := kgo.NewClient(
		kgo.SeedBrokers(b2.addr),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer prod2.Close()
	var recs []*kgo.Record
	for i := 0; i < more; i++ {
		for p := int32(0); p < partitions; p++ {
			recs = append(recs, &kgo.Record{Partition: p, Value: crashValue(int64(1_000_000_000 + i*partitions + int(p)))})
		}
	}
	// One at a time, so the expected offset of each is exact.
	for i, r := range recs {
		if err := prod2.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce after restart (record %d): %v", i, err)
		}
		want := end[r.Partition] + int64(i/partitions)
		if r.Offset != want {
			t.Errorf("produce after restart: partition %d got offset %d, want %d", r.Partition, r.Offset, want)
		}
	}
	ends2, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < partitions; p++ {
		eo, _ := ends2.Lookup(topic, p)
		if eo.Offset != end[p]+more {
			t.Errorf("partition %d: end offset %d after producing %d more, want %d", p, eo.Offset, more, end[p]+more)
		}
	}
	// And the new records read back after the old ones.
	for {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume of new records timed out; next offsets %v", next)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Errorf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Errorf("partition %d: got offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition] = r.Offset + 1
			if id, ok := parseCrashID(r.Value); !ok || id < 1_000_000_000 {
				t.Errorf("partition %d offset %d: unexpected value %q", r.Partition, r.Offset, truncate(string(r.Value), 60))
			}
		})
		if t.Failed() {
			t.FailNow()
		}
		all := true
		for p := int32(0); p < partitions; p++ {
			all = all && next[p] == end[p]+more
		}
		if all {
			break
		}
	}
	return b2
}
