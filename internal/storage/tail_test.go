package storage

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
)

// TestCleanerKeepsLogEnd: the batch holding the log's last offset is not
// cleaned, even when it is a tombstone due to go: a reader that reads up
// to the high watermark waits for the record at hw-1, and without it
// would wait for ever (a fetch at a removed offset with no batch after it
// answers nothing). Kafka keeps its active segment whole for the same
// reason. Once a record follows, the next pass stamps the tombstone's
// delete horizon (KIP-534) and a pass past it removes the tombstone.
func TestCleanerKeepsLogEnd(t *testing.T) {
	x := openTxnEngine(t, t.TempDir(), 0)
	cfg := map[string]string{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0", "delete.retention.ms": "0"}
	if _, err := x.e.CreateTopic(context.Background(), "tail", 1, cfg); err != nil {
		t.Fatal(err)
	}
	tombstone := func(key string) {
		t.Helper()
		hs, err := batch.Split(batch.Build([]batch.KV{{Key: []byte(key)}}, time.Now().UnixMilli()))
		if err != nil {
			t.Fatal(err)
		}
		top, l := x.log("tail")
		done := make(chan error, 1)
		x.e.Produce(top, l, &hs[0], func(_ int64, err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	x.mustProduce("tail", -1, 0, 0, false, "a", "1") // 0
	x.mustProduce("tail", -1, 0, 0, false, "b", "1") // 1
	tombstone("b")                                   // 2: the log's end
	x.upload()
	_, l := x.log("tail")
	offsets := func() []int64 {
		var offs []int64
		for _, r := range records(t, l) {
			offs = append(offs, r.off)
		}
		return offs
	}
	now := time.Now()
	clean := func(at time.Time) {
		t.Helper()
		if _, err := x.e.Clean(context.Background(), at); err != nil {
			t.Fatal(err)
		}
	}
	clean(now)
	if got := offsets(); !reflect.DeepEqual(got, []int64{0, 2}) {
		t.Fatalf("after cleaning: offsets %v, want [0 2] (b's value superseded, its tombstone the log's end)", got)
	}
	x.mustProduce("tail", -1, 0, 0, false, "c", "1") // 3
	x.upload()
	clean(now.Add(time.Second))
	if got := offsets(); !reflect.DeepEqual(got, []int64{0, 2, 3}) {
		t.Fatalf("after the next pass: offsets %v, want [0 2 3] (the tombstone stamped, not removed)", got)
	}
	x.mustProduce("tail", -1, 0, 0, false, "d", "1") // 4
	x.upload()
	clean(now.Add(2 * time.Second))
	if got := offsets(); !reflect.DeepEqual(got, []int64{0, 3, 4}) {
		t.Fatalf("after a pass past the horizon: offsets %v, want [0 3 4]", got)
	}
}
