// Package objstoretest is the conformance suite every objstore.Store
// backend must pass: the contract the storage engine relies on (ranged
// reads, reads past the end, missing keys, sorted prefix listings,
// idempotent deletes, overwrites, large objects, concurrent use, and
// Create's refusal of a key that exists).
package objstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/objstore"
)

// Run runs the suite. open must return an empty store for each call;
// each subtest calls it once and may assume nothing else writes to it.
func Run(t *testing.T, open func(t *testing.T) objstore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st objstore.Store)
	}{
		{"PutGetRanges", testPutGetRanges},
		{"PastEnd", testPastEnd},
		{"MissingKey", testMissingKey},
		{"EmptyObject", testEmptyObject},
		{"ListSortedByPrefix", testList},
		{"Delete", testDelete},
		{"Overwrite", testOverwrite},
		{"Large", testLarge},
		{"Concurrent", testConcurrent},
		{"CanceledContext", testCanceled},
		{"Create", testCreate},
		{"CreateRace", testCreateRace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// data returns n deterministic, incompressible-looking bytes.
func data(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func put(t *testing.T, st objstore.Store, key string, b []byte) {
	t.Helper()
	if err := st.Put(ctx(t), key, b); err != nil {
		t.Fatalf("put %s (%d bytes): %v", key, len(b), err)
	}
}

func get(t *testing.T, st objstore.Store, key string, off, n int64) []byte {
	t.Helper()
	b, err := st.GetRange(ctx(t), key, off, n)
	if err != nil {
		t.Fatalf("get %s [%d,+%d): %v", key, off, n, err)
	}
	return b
}

func wantBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes, want %d (equal prefix %d)", what, len(got), len(want), commonPrefix(got, want))
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

func list(t *testing.T, st objstore.Store, prefix string) []objstore.Object {
	t.Helper()
	objs, err := st.List(ctx(t), prefix)
	if err != nil {
		t.Fatalf("list %q: %v", prefix, err)
	}
	return objs
}

func keys(objs []objstore.Object) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.Key
	}
	return out
}

func testPutGetRanges(t *testing.T, st objstore.Store) {
	b := data(1, 100_000)
	put(t, st, "segments/a.seg", b)
	for _, r := range []struct{ off, n int64 }{
		{0, -1}, {0, 100_000}, {0, 1}, {1, 1}, {12_345, 4096}, {99_999, 1}, {50_000, -1}, {99_999, -1},
	} {
		want := b[r.off:]
		if r.n >= 0 {
			want = b[r.off : r.off+r.n]
		}
		wantBytes(t, fmt.Sprintf("get [%d,+%d)", r.off, r.n), get(t, st, "segments/a.seg", r.off, r.n), want)
	}
	if got := get(t, st, "segments/a.seg", 10, 0); len(got) != 0 {
		t.Fatalf("get of length 0 returned %d bytes", len(got))
	}
}

func testPastEnd(t *testing.T, st objstore.Store) {
	b := data(2, 1000)
	put(t, st, "k", b)
	wantBytes(t, "range over the end", get(t, st, "k", 900, 500), b[900:])
	wantBytes(t, "range of the whole object and more", get(t, st, "k", 0, 5000), b)
	for _, off := range []int64{1000, 1001, 1 << 30} {
		if got := get(t, st, "k", off, 10); len(got) != 0 {
			t.Fatalf("get at %d (end 1000) returned %d bytes, want none", off, len(got))
		}
		if got := get(t, st, "k", off, -1); len(got) != 0 {
			t.Fatalf("get to the end at %d (end 1000) returned %d bytes, want none", off, len(got))
		}
	}
}

func testMissingKey(t *testing.T, st objstore.Store) {
	put(t, st, "dir/present", []byte("x"))
	// Not tested: a key below an object ("dir/present/x") or naming a
	// "directory" ("dir"). Filesystem-backed stores (the directory
	// backend, versitygw's posix) cannot hold both, and Vigil's keys never
	// nest that way.
	for _, key := range []string{"absent", "dir/absent", "other/dir/absent"} {
		for _, r := range []struct{ off, n int64 }{{0, -1}, {0, 10}, {5, 0}} {
			_, err := st.GetRange(ctx(t), key, r.off, r.n)
			if !errors.Is(err, objstore.ErrNotExist) {
				t.Fatalf("get missing %s [%d,+%d): err %v, want ErrNotExist", key, r.off, r.n, err)
			}
		}
	}
	if objs := list(t, st, "absent"); len(objs) != 0 {
		t.Fatalf("list of a missing prefix: %v", objs)
	}
	if err := st.Delete(ctx(t), "absent"); err != nil {
		t.Fatalf("delete of a missing key: %v", err)
	}
	if err := st.Delete(ctx(t), "nodir/absent"); err != nil {
		t.Fatalf("delete of a missing key under a missing prefix: %v", err)
	}
}

func testEmptyObject(t *testing.T, st objstore.Store) {
	put(t, st, "empty", nil)
	if got := get(t, st, "empty", 0, -1); len(got) != 0 {
		t.Fatalf("empty object read back as %d bytes", len(got))
	}
	if got := get(t, st, "empty", 0, 10); len(got) != 0 {
		t.Fatalf("range of an empty object read back as %d bytes", len(got))
	}
	if objs := list(t, st, ""); len(objs) != 1 || objs[0].Key != "empty" || objs[0].Size != 0 {
		t.Fatalf("list: %v", objs)
	}
}

func testList(t *testing.T, st objstore.Store) {
	if objs := list(t, st, ""); len(objs) != 0 {
		t.Fatalf("new store lists %v", objs)
	}
	all := []string{
		"a/b/c", "a/b2", "a/b/d", "ab", "b", "segments/0000000000000002-ff.seg",
		"segments/0000000000000001-aa.seg", "segments/0000000000000010-00.seg", "a-b", "a.b", "z/y/x/w",
	}
	sizes := map[string]int64{}
	for i, k := range slices.Clone(all) {
		// Sizes differ so List must report each object's own.
		b := data(uint64(i), 10+i*7)
		sizes[k] = int64(len(b))
		put(t, st, k, b)
	}
	check := func(prefix string) {
		t.Helper()
		var want []string
		for _, k := range all {
			if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
				want = append(want, k)
			}
		}
		slices.Sort(want)
		objs := list(t, st, prefix)
		if got := keys(objs); !slices.Equal(got, want) {
			t.Fatalf("list %q:\n got %q\nwant %q", prefix, got, want)
		}
		for _, o := range objs {
			if o.Size != sizes[o.Key] {
				t.Fatalf("list %q: %s has size %d, want %d", prefix, o.Key, o.Size, sizes[o.Key])
			}
		}
	}
	for _, p := range []string{"", "a", "a/", "a/b", "a/b/", "segments/", "segments/00000000000000", "b", "z/", "zz", "c"} {
		check(p)
	}
}

func testDelete(t *testing.T, st objstore.Store) {
	put(t, st, "d/1", []byte("one"))
	put(t, st, "d/2", []byte("two"))
	if err := st.Delete(ctx(t), "d/1"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := st.GetRange(ctx(t), "d/1", 0, -1); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("get after delete: err %v, want ErrNotExist", err)
	}
	if got := keys(list(t, st, "")); !slices.Equal(got, []string{"d/2"}) {
		t.Fatalf("list after delete: %q", got)
	}
	if err := st.Delete(ctx(t), "d/1"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	wantBytes(t, "the other object", get(t, st, "d/2", 0, -1), []byte("two"))
	// A deleted key can be written again.
	put(t, st, "d/1", []byte("again"))
	wantBytes(t, "rewritten object", get(t, st, "d/1", 0, -1), []byte("again"))
}

func testOverwrite(t *testing.T, st objstore.Store) {
	long, short := data(3, 5000), data(4, 100)
	put(t, st, "o", long)
	put(t, st, "o", short)
	wantBytes(t, "after overwrite with a shorter object", get(t, st, "o", 0, -1), short)
	if got := get(t, st, "o", 200, 10); len(got) != 0 {
		t.Fatalf("bytes of the old, longer object are still readable: %d", len(got))
	}
	if objs := list(t, st, "o"); len(objs) != 1 || objs[0].Size != 100 {
		t.Fatalf("list after overwrite: %v", objs)
	}
	put(t, st, "o", long)
	wantBytes(t, "after overwrite with a longer object", get(t, st, "o", 0, -1), long)
}

func testLarge(t *testing.T, st objstore.Store) {
	const n = 20 << 20
	b := data(5, n)
	start := time.Now()
	put(t, st, "large/object", b)
	took := time.Since(start)
	start = time.Now()
	wantBytes(t, "whole large object", get(t, st, "large/object", 0, -1), b)
	t.Logf("20 MiB: put %v, get %v", took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	for _, r := range []struct{ off, n int64 }{{0, 1 << 20}, {n - 1<<20, 1 << 20}, {7 << 20, 3<<20 + 17}, {n - 10, 100}} {
		want := b[r.off:min(r.off+r.n, n)]
		wantBytes(t, fmt.Sprintf("large [%d,+%d)", r.off, r.n), get(t, st, "large/object", r.off, r.n), want)
	}
	if objs := list(t, st, "large/"); len(objs) != 1 || objs[0].Size != n {
		t.Fatalf("list: %v", objs)
	}
	// Sizes and memory a page-aligned fast path must handle: a tail that
	// is not a whole page, and a buffer that does not start on a page.
	odd := data(6, 5<<20+1234)
	put(t, st, "large/odd", odd)
	wantBytes(t, "odd-sized object", get(t, st, "large/odd", 0, -1), odd)
	unaligned := data(7, 3<<20+1)[1:]
	put(t, st, "large/unaligned", unaligned)
	wantBytes(t, "object from unaligned memory", get(t, st, "large/unaligned", 0, -1), unaligned)
}

// testConcurrent has many workers put, read, delete and list keys of one
// flat prefix at once, as uploads, compaction and retention do under
// "segments/". The prefix always holds one object (as segments/ does in
// use): filesystem-backed gateways (versitygw's posix backend) remove a
// directory its last object leaves, and a put into that directory at the
// same moment fails; that is the gateway's race, not the contract.
func testConcurrent(t *testing.T, st objstore.Store) {
	const workers, perWorker = 8, 12
	c := ctx(t)
	put(t, st, "c/keep", []byte("k"))
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker+workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				key := fmt.Sprintf("c/%02d-%03d", w, i)
				b := data(uint64(w*1000+i), 1000+w*100+i)
				if err := st.Put(c, key, b); err != nil {
					errs <- fmt.Errorf("put %s: %w", key, err)
					return
				}
				got, err := st.GetRange(c, key, 0, -1)
				if err != nil || !bytes.Equal(got, b) {
					errs <- fmt.Errorf("get %s: %d bytes, err %v", key, len(got), err)
					return
				}
				// Every third object is deleted again, racing with the
				// listings of the other workers.
				if i%3 == 0 {
					if err := st.Delete(c, key); err != nil {
						errs <- fmt.Errorf("delete %s: %w", key, err)
						return
					}
				}
				if i%4 == 0 {
					if _, err := st.List(c, "c/"); err != nil {
						errs <- fmt.Errorf("list while writing: %w", err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	var want []string
	for w := range workers {
		for i := range perWorker {
			if i%3 != 0 {
				want = append(want, fmt.Sprintf("c/%02d-%03d", w, i))
			}
		}
	}
	want = append(want, "c/keep")
	if got := keys(list(t, st, "c/")); !slices.Equal(got, want) {
		t.Fatalf("after concurrent writes, list:\n got %q\nwant %q", got, want)
	}
}

func testCanceled(t *testing.T, st objstore.Store) {
	put(t, st, "k", []byte("v"))
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if err := st.Put(c, "k2", []byte("v")); err == nil {
		t.Fatalf("put with a canceled context succeeded")
	}
	if _, err := st.GetRange(c, "k", 0, -1); err == nil {
		t.Fatalf("get with a canceled context succeeded")
	}
	if _, err := st.List(c, ""); err == nil {
		t.Fatalf("list with a canceled context succeeded")
	}
	if err := st.Delete(c, "k"); err == nil {
		t.Fatalf("delete with a canceled context succeeded")
	}
	wantBytes(t, "object after canceled calls", get(t, st, "k", 0, -1), []byte("v"))
}

func testCreate(t *testing.T, st objstore.Store) {
	before := time.Now()
	if err := st.Create(ctx(t), "c/1", []byte("first")); err != nil {
		t.Fatalf("create of a new key: %v", err)
	}
	if err := st.Create(ctx(t), "c/1", []byte("second")); !errors.Is(err, objstore.ErrExist) {
		t.Fatalf("create of a key that exists: err %v, want ErrExist", err)
	}
	wantBytes(t, "object after a refused create", get(t, st, "c/1", 0, -1), []byte("first"))
	put(t, st, "c/2", []byte("put"))
	if err := st.Create(ctx(t), "c/2", []byte("created")); !errors.Is(err, objstore.ErrExist) {
		t.Fatalf("create of a key Put wrote: err %v, want ErrExist", err)
	}
	wantBytes(t, "put object after a refused create", get(t, st, "c/2", 0, -1), []byte("put"))
	// A deleted key is free again.
	if err := st.Delete(ctx(t), "c/1"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := st.Create(ctx(t), "c/1", []byte("again")); err != nil {
		t.Fatalf("create after delete: %v", err)
	}
	objs := list(t, st, "c/")
	if got := keys(objs); !slices.Equal(got, []string{"c/1", "c/2"}) {
		t.Fatalf("list after creates: %q", got)
	}
	// Modified is the store's clock: allow it some skew from this one.
	for _, o := range objs {
		if o.Modified.Before(before.Add(-time.Hour)) || o.Modified.After(time.Now().Add(time.Hour)) {
			t.Fatalf("%s: modified %v, written at about %v", o.Key, o.Modified, before)
		}
	}
}

// testCreateRace has creators race for one key: exactly one wins, and
// the object holds what the winner wrote.
func testCreateRace(t *testing.T, st objstore.Store) {
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = st.Create(ctx(t), "race", data(uint64(100+i), 4096))
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("creators %d and %d both created the key", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, objstore.ErrExist):
			t.Fatalf("creator %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no creator won")
	}
	wantBytes(t, "the winner's object", get(t, st, "race", 0, -1), data(uint64(100+winner), 4096))
}
