package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCrashCommittedOffsets commits offsets as fast as eight committers can
// (each its own group and partition, offsets increasing by one), with
// snapshots of __consumer_offsets every few hundred records, SIGKILLs the
// broker, and checks after the restart that every group's offset is its
// last acknowledged commit, or the one that was in flight at the kill.
func TestCrashCommittedOffsets(t *testing.T) {
	t.Parallel()
	target := int64(20_000)
	if testing.Short() {
		target = 3_000
	}
	const topic, partitions, committers = "crash-commits", 4, 8
	dataDir := t.TempDir()
	flags := []string{"--upload-interval", "50ms", "--offsets-partitions", "4", "--offsets-snapshot-records", "200"}
	b := startBroker(t, "", dataDir, flags...)
	createTopic(t, b.addr, topic, partitions)

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.RetryTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithCancel(context.Background())
	var acked [committers]atomic.Int64
	var total atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < committers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := fmt.Sprintf("crash-group-%d", i)
			for off := int64(1); ctx.Err() == nil; off++ {
				os := kadm.Offsets{}
				os.Add(kadm.Offset{Topic: topic, Partition: int32(i % partitions), At: off, LeaderEpoch: -1})
				resp, err := adm.CommitOffsets(ctx, g, os)
				if err != nil || resp.Error() != nil {
					return // the broker is gone
				}
				acked[i].Store(off)
				total.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(2 * time.Minute)
	for total.Load() < target && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	b.kill()
	cancel()
	wg.Wait()
	cl.Close()
	if total.Load() < target {
		t.Fatalf("only %d commits acknowledged before the deadline", total.Load())
	}

	b = startBroker(t, b.addr, dataDir, flags...)
	cl, err = kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm = kadm.NewClient(cl)
	fctx, fcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer fcancel()
	for i := 0; i < committers; i++ {
		g := fmt.Sprintf("crash-group-%d", i)
		offs, err := adm.FetchOffsets(fctx, g)
		if err != nil {
			t.Fatal(err)
		}
		o, ok := offs.Lookup(topic, int32(i%partitions))
		last := acked[i].Load()
		if !ok || (o.At != last && o.At != last+1) {
			t.Errorf("%s: offset %d after the crash, want the last acknowledged %d (or %d, in flight)", g, o.At, last, last+1)
		}
	}
	t.Logf("%d commits acknowledged before SIGKILL", total.Load())
}
