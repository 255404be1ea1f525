package storage

import (
	"testing"
	"time"
)

func TestUploadBackoff(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		n        int
		lo, hi   time.Duration
	}{
		{250 * time.Millisecond, 1, 125 * time.Millisecond, 250 * time.Millisecond},
		{250 * time.Millisecond, 2, 250 * time.Millisecond, 500 * time.Millisecond},
		{250 * time.Millisecond, 4, time.Second, 2 * time.Second},
		{250 * time.Millisecond, 6, maxUploadBackoff / 2, maxUploadBackoff},
		{250 * time.Millisecond, 1000, maxUploadBackoff / 2, maxUploadBackoff},
		{time.Hour, 3, maxUploadBackoff / 2, maxUploadBackoff},
	} {
		for range 50 {
			if d := uploadBackoff(tc.interval, tc.n); d < tc.lo || d > tc.hi {
				t.Fatalf("uploadBackoff(%v, %d) = %v, want within [%v, %v]", tc.interval, tc.n, d, tc.lo, tc.hi)
			}
		}
	}
}

// TestUploadLimit: objects are cut at --segment-bytes while the uploads keep
// up, and grow with the backlog, up to maxUploadScale times that, once two
// objects' worth or more are waiting.
func TestUploadLimit(t *testing.T) {
	const seg = 4 << 20
	for _, tc := range []struct{ backlog, want int64 }{
		{0, seg},
		{seg, seg},
		{2*seg - 1, seg},
		{2 * seg, 2 * seg},
		{5*seg + 123, 5*seg + 123},
		{maxUploadScale * seg, maxUploadScale * seg},
		{100 * seg, maxUploadScale * seg},
	} {
		if got := uploadLimit(seg, tc.backlog); got != tc.want {
			t.Errorf("uploadLimit(%d, backlog %d) = %d, want %d", seg, tc.backlog, got, tc.want)
		}
	}
}
