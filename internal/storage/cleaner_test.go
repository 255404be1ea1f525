package storage

import (
	"math"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/meta"
)

// TestCleanable: which segments a pass takes and whether it is due, by
// min.cleanable.dirty.ratio, min.compaction.lag.ms and
// max.compaction.lag.ms; and the clean mark read from object keys.
func TestCleanable(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	seg := func(first, last, size, ts int64, obj string) meta.Segment {
		return meta.Segment{FirstOffset: first, LastOffset: last, Size: size, MaxTimestamp: ts, Object: obj}
	}
	segs := []meta.Segment{
		seg(0, 9, 100, 900_000, "segments/1-a.clean.seg"),
		seg(10, 19, 100, 910_000, "segments/2-b.clean.seg"),
		seg(20, 29, 60, 950_000, "segments/3-c.seg"),
		seg(30, 39, 40, 999_000, "segments/4-d.seg"),
	}
	mark := cleanMark(segs)
	if mark != 19 {
		t.Fatalf("clean mark %d, want 19 (the leading run of cleaner objects)", mark)
	}
	if m := cleanMark([]meta.Segment{segs[2], segs[0]}); m != -1 {
		t.Fatalf("clean mark %d when the first entry is not the cleaner's, want -1", m)
	}
	def := cleanConfig{minDirtyRatio: 0.5, maxLagMs: math.MaxInt64}
	for _, tc := range []struct {
		name string
		cfg  cleanConfig
		n    int
		due  bool
	}{
		{"dirty 100 of 300, under the ratio", def, 4, false},
		{"dirty 100 of 300, over a lower ratio", cleanConfig{minDirtyRatio: 0.3, maxLagMs: math.MaxInt64}, 4, true},
		// The last segment is 1 s old: a lag of 10 s leaves it out, and the
		// dirty 60 of 260 stay under even 0.3.
		{"min lag leaves the young segment out", cleanConfig{minDirtyRatio: 0.3, minLagMs: 10_000, maxLagMs: math.MaxInt64}, 3, false},
		// The dirty segment of 950_000 is 50 s old: over a 40 s max lag.
		{"max lag makes it due", cleanConfig{minDirtyRatio: 0.9, maxLagMs: 40_000}, 4, true},
		{"max lag not reached", cleanConfig{minDirtyRatio: 0.9, maxLagMs: 60_000}, 4, false},
	} {
		got, due := cleanable(segs, mark, math.MaxInt64, tc.cfg, now)
		if len(got) != tc.n || due != tc.due {
			t.Errorf("%s: %d segments, due %v; want %d, %v", tc.name, len(got), due, tc.n, tc.due)
		}
	}
	// An open transaction from offset 30 on leaves the last segment out.
	if got, due := cleanable(segs, mark, 30, cleanConfig{minDirtyRatio: 0.3, maxLagMs: math.MaxInt64}, now); len(got) != 3 || due {
		t.Errorf("LSO 30: %d segments, due %v; want 3, false", len(got), due)
	}
	if got, due := cleanable(segs[:2], mark, math.MaxInt64, def, now); got != nil || due {
		t.Errorf("nothing dirty: %d segments, due %v; want none", len(got), due)
	}
}

func TestCleanupPolicy(t *testing.T) {
	for _, tc := range []struct {
		configs      map[string]string
		compact, del bool
	}{
		{nil, false, true},
		{map[string]string{"cleanup.policy": "delete"}, false, true},
		{map[string]string{"cleanup.policy": "compact"}, true, false},
		{map[string]string{"cleanup.policy": "compact, delete"}, true, true},
		{map[string]string{"cleanup.policy": "delete,compact"}, true, true},
	} {
		c, d := CleanupPolicy(tc.configs)
		if c != tc.compact || d != tc.del {
			t.Errorf("CleanupPolicy(%v) = %v, %v; want %v, %v", tc.configs, c, d, tc.compact, tc.del)
		}
	}
}
