package readcache

import (
	"bytes"
	"context"
	"crypto/rand"
	"sync"
	"testing"

	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/objstore"
)

// setup writes one object to a real directory store: a 100-byte prefix
// (another partition's run), then this run of runSize bytes.
func setup(t *testing.T, runSize int) (*objstore.Dir, meta.Segment, []byte) {
	t.Helper()
	d, err := objstore.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	obj := make([]byte, 100+runSize+50)
	rand.Read(obj)
	if err := d.Put(context.Background(), "segments/a.seg", obj); err != nil {
		t.Fatal(err)
	}
	return d, meta.Segment{Object: "segments/a.seg", Position: 100, Size: int64(runSize)}, obj[100 : 100+runSize]
}

func TestReadRanges(t *testing.T) {
	d, seg, run := setup(t, 10_000)
	c := New(d, Options{BlockBytes: 1024, CapacityBytes: 1 << 20, Workers: 2, ReadAhead: 2})
	ctx := context.Background()
	for _, r := range [][2]int64{{0, 10}, {1000, 1100}, {1023, 1025}, {0, 10_000}, {9_990, 20_000}, {5000, 5000}} {
		got, err := c.Read(ctx, seg, r[0], r[1])
		if err != nil {
			t.Fatalf("Read%v: %v", r, err)
		}
		want := run[min(r[0], int64(len(run))):min(r[1], int64(len(run)))]
		if !bytes.Equal(got, want) {
			t.Fatalf("Read%v: %d bytes differ from the object's", r, len(got))
		}
	}
	if st := c.Stats(); st.Misses == 0 || st.Hits == 0 {
		t.Fatalf("stats %+v: want both misses and hits", st)
	}

	// A range inside one block is the cache's memory, clipped: appending
	// to it must not change what the next read of that block sees.
	got, err := c.Read(ctx, seg, 10, 20)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(got, 0xff, 0xff, 0xff)
	if again, err := c.Read(ctx, seg, 10, 30); err != nil || !bytes.Equal(again, run[10:30]) {
		t.Fatalf("after an append to an earlier result, Read(10, 30) = %v, %v", again, err)
	}
}

func TestCapacityAndConcurrency(t *testing.T) {
	d, seg, run := setup(t, 64<<10)
	c := New(d, Options{BlockBytes: 4096, CapacityBytes: 4 * 4096, Workers: 1, ReadAhead: 3})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(0); i < 64; i++ {
				from := (i*4096 + int64(g)*777) % seg.Size
				to := min(from+5000, seg.Size)
				got, err := c.Read(context.Background(), seg, from, to)
				if err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(got, run[from:to]) {
					t.Errorf("Read(%d, %d) differs", from, to)
					return
				}
			}
		}()
	}
	wg.Wait()
	if st := c.Stats(); st.Bytes > 4*4096 {
		t.Fatalf("cache holds %d bytes, over its %d capacity", st.Bytes, 4*4096)
	}
}

func TestHints(t *testing.T) {
	d, seg, _ := setup(t, 1000)
	c := New(d, Options{})
	if pos := c.Seek(seg, 50); pos != 0 {
		t.Fatalf("Seek without hints = %d, want 0", pos)
	}
	c.Hint(seg, 10, 100)
	c.Hint(seg, 40, 400)
	c.Hint(seg, 30, 300) // out of order: ignored
	for _, tc := range []struct{ off, want int64 }{{5, 0}, {10, 100}, {39, 100}, {40, 400}, {1000, 400}} {
		if pos := c.Seek(seg, tc.off); pos != tc.want {
			t.Errorf("Seek(%d) = %d, want %d", tc.off, pos, tc.want)
		}
	}
	c.Forget([]meta.Segment{seg})
	if pos := c.Seek(seg, 50); pos != 0 {
		t.Fatalf("Seek after Forget = %d, want 0", pos)
	}
}
