package group

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestExpire: the offset retention rules over a log written as a broker
// would have, loaded after a restart. The time a consumer group became
// Empty comes from its last metadata record, so retention counts across
// restarts.
func TestExpire(t *testing.T) {
	now := time.Now()
	ago := func(d time.Duration) int64 { return now.Add(-d).UnixMilli() }
	l := newMemLog(1)
	emptied := func(id string, at int64) Record {
		v := kmsg.GroupMetadataValue{Version: groupValueVersion, ProtocolType: "consumer", Generation: 5, CurrentStateTimestamp: at}
		return Record{Key: groupKey(id), Value: v.AppendTo(nil)}
	}
	commit := func(id, topic string, at int64) Record {
		return offsetRecord(id, topic, 0, offset{offset: 10, leaderEpoch: -1, commitTs: at})
	}
	l.Append(0, []Record{
		// A consumer group Empty for 2 h, its offset committed 3 h ago.
		emptied("left-long-ago", ago(2*time.Hour)), commit("left-long-ago", "events", ago(3*time.Hour)),
		// Empty for 10 min only: its old commit stays.
		emptied("left-lately", ago(10*time.Minute)), commit("left-lately", "events", ago(3*time.Hour)),
		// Groups that only commit: by each commit's time.
		commit("simple", "events", ago(10*time.Minute)), commit("simple", "other", ago(2*time.Hour)),
		commit("simple-old", "events", ago(2*time.Hour)),
		// A fresh commit of a deleted topic.
		commit("deleted", "missing", ago(time.Minute)),
	}, func(int64, error) {})

	open := func() *Coordinator {
		c := New(Config{OffsetsRetention: time.Hour, OffsetsRetentionCheck: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, l, allTopics{})
		if err := c.Load(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	committed := func(c *Coordinator, id string) []string {
		offs, _ := c.FetchOffsets(id, nil, true)
		var out []string
		for _, o := range offs {
			out = append(out, o.Topic)
		}
		slices.Sort(out)
		return out
	}
	listed := func(c *Coordinator) []string {
		var out []string
		for _, g := range c.List(nil) {
			out = append(out, g.Group)
		}
		slices.Sort(out)
		return out
	}
	c := open()
	if n := c.Expire(now); n != 4 {
		t.Errorf("Expire removed %d offsets, want 4", n)
	}
	// The removals apply once the tombstones are durable, on the
	// coordinator's applier goroutine.
	for deadline := time.Now().Add(5 * time.Second); len(listed(c)) != 2 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	for _, c := range []*Coordinator{c, open()} { // and after a restart
		if got, want := listed(c), []string{"left-lately", "simple"}; !slices.Equal(got, want) {
			t.Errorf("groups %v, want %v", got, want)
		}
		for id, want := range map[string][]string{
			"left-long-ago": nil, "left-lately": {"events"}, "simple": {"events"}, "simple-old": nil, "deleted": nil,
		} {
			if got := committed(c, id); !slices.Equal(got, want) {
				t.Errorf("group %s: offsets of %v, want %v", id, got, want)
			}
		}
	}
	if n := c.Expire(now); n != 0 {
		t.Errorf("a second Expire removed %d offsets, want 0", n)
	}
}
