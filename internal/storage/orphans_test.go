package storage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/meta"
)

func TestSweepOrphans(t *testing.T) {
	dir := t.TempDir()
	e, closeFn := openEngine(t, dir)
	defer closeFn()
	e.gcWG.Wait() // the sweep Open started has finished; this test runs its own
	ctx := context.Background()
	now := time.Now()
	key := func(age time.Duration, tag string) string {
		return fmt.Sprintf("segments/%016x-%s.seg", now.Add(-age).UnixNano(), tag)
	}
	oldOrphan, newOrphan, oldLive := key(2*time.Hour, "orphan"), key(time.Minute, "recent"), key(3*time.Hour, "live")
	for _, k := range []string{oldOrphan, newOrphan, oldLive, "segments/not-a-vigil-name.seg"} {
		if err := e.objs.Put(ctx, k, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.CreateTopic(ctx, "swept", 1, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.meta.AddSegments(ctx, []meta.Segment{{Topic: "swept", Object: oldLive, Size: 1}}); err != nil {
		t.Fatal(err)
	}
	n, err := e.sweepOrphans(ctx, now)
	if err != nil || n != 1 {
		t.Fatalf("sweepOrphans = %d, %v; want 1 deleted", n, err)
	}
	objs, err := e.objs.List(ctx, "segments/")
	if err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	for _, o := range objs {
		left[o.Key] = true
	}
	if left[oldOrphan] || !left[newOrphan] || !left[oldLive] || !left["segments/not-a-vigil-name.seg"] {
		t.Fatalf("after the sweep: %v; want only the old unreferenced object gone", left)
	}
}
