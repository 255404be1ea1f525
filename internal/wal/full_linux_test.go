package wal

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// smallFS mounts a tmpfs of the given size at a temporary directory: a
// real filesystem that fills up. It skips the test where mounting is not
// allowed (not root, or no CAP_SYS_ADMIN).
func smallFS(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// TestDiskFull: on a filesystem that fills up, the WAL refuses new
// entries with ErrFull once it cannot reserve its next file, before
// handing out their seqs; every entry it accepted is written and
// acknowledged (the active file's reservation holds them), nothing fails
// for good, and once space is freed it takes entries again by itself.
// After a reopen the log holds exactly the acknowledged entries, in
// order, with no gap.
func TestDiskFull(t *testing.T) {
	fsDir := smallFS(t, "16m")
	dir := filepath.Join(fsDir, "wal")
	o := Options{FileBytes: 1 << 20, MaxPending: 256 << 10, KeepFree: -1}
	w := openT(t, dir, o)

	// Leave room for about two more files and their reservations.
	filler := filepath.Join(fsDir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 0, freeBytes(t, fsDir)-(3<<20)); err != nil {
		t.Fatal(err)
	}
	f.Close()

	acked := 0
	var refused error
	for i := 1; refused == nil; i++ {
		if i > 10000 {
			t.Fatal("the filesystem never filled")
		}
		e := testEntry(i)
		e.Data = append(make([]byte, 16<<10), e.Data...) // 16 KiB entries fill it sooner
		done := make(chan error, 1)
		w.Append(e, func(_ uint64, err error) { done <- err })
		switch err := <-done; {
		case err == nil:
			acked++
		case errors.Is(err, ErrFull):
			refused = err
		default:
			t.Fatalf("entry %d failed with %v after %d were acknowledged; want acknowledgements, then ErrFull", i, err, acked)
		}
	}
	t.Logf("acknowledged %d entries, then: %v", acked, refused)
	if err := w.Full(); !errors.Is(err, ErrFull) {
		t.Fatalf("Full() = %v after a refusal", err)
	}
	if st := w.Stats(); st.LastSeq != uint64(acked) {
		t.Fatalf("last seq %d after %d acknowledged entries: a refused entry took a seq", st.LastSeq, acked)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * spaceRetry)
	for w.Full() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("still full %s after space was freed", 10*spaceRetry)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := acked + 1; i <= acked+100; i++ {
		done := make(chan error, 1)
		w.Append(testEntry(i), func(_ uint64, err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatalf("entry %d after space was freed: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	w = openT(t, dir, o)
	recs := replayAll(t, w)
	if len(recs) != acked+100 {
		t.Fatalf("replayed %d entries, want the %d acknowledged", len(recs), acked+100)
	}
	for k, r := range recs {
		if r.seq != uint64(k+1) {
			t.Fatalf("entry %d replayed with seq %d", k+1, r.seq)
		}
	}
	checkRecords(t, recs[acked:], acked+1, acked+100)
}
