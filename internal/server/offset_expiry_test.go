package server

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/config"
)

// TestOffsetExpiry runs a broker with a 2 s offset retention, checked
// every 200 ms, and checks Kafka's expiry rules over real clients: a
// group that only commits loses its offsets (and is no longer listed)
// once they are older than the retention, and stays gone after a
// restart; a consumer group with a live member keeps its offsets however
// old; and the offsets of a deleted topic go at the next check, whatever
// the retention.
func TestOffsetExpiry(t *testing.T) {
	dir := t.TempDir()
	expiring := func(c *config.Broker) {
		groupConfig(c)
		c.OffsetsRetention = 2 * time.Second
		c.OffsetsRetentionCheck = 200 * time.Millisecond
	}
	ts := startServer(t, dir, expiring)
	ctx := testCtx(t, time.Minute)
	adm := ts.admin(t)
	createTopics(t, ctx, adm, 2, nil, "events", "doomed")
	produceIDs(t, ctx, ts, "events", 2, 0, 100)

	commit := func(group, topic string, at int64) {
		t.Helper()
		os := kadm.Offsets{}
		os.Add(kadm.Offset{Topic: topic, Partition: 0, At: at, LeaderEpoch: -1})
		resp, err := adm.CommitOffsets(ctx, group, os)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("commit %s %s: %v", group, topic, err)
		}
	}
	committed := func(group, topic string) (int64, bool) {
		t.Helper()
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatalf("fetch offsets of %s: %v", group, err)
		}
		o, ok := offs.Lookup(topic, 0)
		return o.At, ok && o.At >= 0
	}
	listed := func(group string) bool {
		t.Helper()
		groups, err := adm.ListGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, ok := groups[group]
		return ok
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatalf("%s: never happened", what)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}

	// A consumer group with a member polling throughout: Stable and
	// subscribed to "events", so its offsets never expire.
	live := ts.client(t, kgo.ConsumerGroup("live"), kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitInterval(100*time.Millisecond))
	lctx, stopLive := context.WithCancel(ctx)
	liveDone := make(chan struct{})
	go func() {
		defer close(liveDone)
		for lctx.Err() == nil {
			live.PollFetches(lctx)
		}
	}()
	waitFor("the live group commits", func() bool { _, ok := committed("live", "events"); return ok })

	start := time.Now()
	commit("simple", "events", 42)
	if at, ok := committed("simple", "events"); !ok || at != 42 {
		t.Fatalf("simple's committed offset %d (%v), want 42", at, ok)
	}
	waitFor("simple's offset expires", func() bool { _, ok := committed("simple", "events"); return !ok })
	if age := time.Since(start); age < 2*time.Second {
		t.Errorf("simple's offset expired after %s, before the 2 s retention", age)
	}
	waitFor("the empty group is removed", func() bool { return !listed("simple") })
	if _, ok := committed("live", "events"); !ok {
		t.Error("the live group's offsets expired while it had a member")
	}
	stopLive()
	<-liveDone
	live.Close()

	// Offsets of a deleted topic go at the next check, long before the
	// retention.
	ts.close()
	ts = startServer(t, dir, func(c *config.Broker) {
		groupConfig(c)
		c.OffsetsRetentionCheck = 200 * time.Millisecond
	})
	adm = ts.admin(t)
	if _, ok := committed("simple", "events"); ok || listed("simple") {
		t.Error("the expired group came back after a restart")
	}
	commit("keeper", "events", 7)
	commit("keeper", "doomed", 9)
	if _, err := adm.DeleteTopics(ctx, "doomed"); err != nil {
		t.Fatal(err)
	}
	waitFor("the deleted topic's offsets go", func() bool { _, ok := committed("keeper", "doomed"); return !ok })
	if at, ok := committed("keeper", "events"); !ok || at != 7 {
		t.Errorf("keeper's offset of a live topic: %d (%v), want 7", at, ok)
	}
}
