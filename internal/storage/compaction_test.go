package storage

import (
	"testing"

	"github.com/vigilhq/vigil/internal/meta"
)

func segsOf(sizes ...int64) []meta.Segment {
	var out []meta.Segment
	var off int64
	for _, s := range sizes {
		out = append(out, meta.Segment{FirstOffset: off, LastOffset: off + 9, Size: s})
		off += 10
	}
	return out
}

func TestCompactable(t *testing.T) {
	const target = 1000
	for _, tc := range []struct {
		name string
		segs []meta.Segment
		want []int // sizes of groups
	}{
		{"too few", segsOf(10, 10, 10), nil},
		{"four small", segsOf(10, 10, 10, 10), []int{4}},
		{"big one splits", segsOf(10, 10, 10, 10, 500, 10, 10, 10, 10), []int{4, 4}},
		{"target bounds a group", segsOf(200, 200, 200, 200, 200, 200, 200, 200, 200, 200), []int{5, 5}},
		{"an earlier merge is not rewritten with small ones", segsOf(100, 10, 10, 10, 10), []int{4}},
		{"similar merges are merged", segsOf(100, 100, 100, 100), []int{4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := compactable(tc.segs, target)
			if len(got) != len(tc.want) {
				t.Fatalf("%d groups %v, want sizes %v", len(got), got, tc.want)
			}
			for i, g := range got {
				if len(g) != tc.want[i] {
					t.Errorf("group %d has %d entries, want %d", i, len(g), tc.want[i])
				}
			}
		})
	}
	// A gap in offsets (a hole left by something else) is never merged across.
	gap := segsOf(10, 10, 10, 10, 10, 10, 10, 10)
	for i := 4; i < 8; i++ {
		gap[i].FirstOffset += 100
		gap[i].LastOffset += 100
	}
	if got := compactable(gap, target); len(got) != 2 || len(got[0]) != 4 {
		t.Fatalf("groups across a gap: %v", got)
	}
}
