package wal

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// freeFiles lists the trimmed files kept for reuse.
func freeFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+freeSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// copyDir copies a live WAL's files, which is what a crash leaves on disk
// once everything copied was fsynced (no Close: no truncation at close).
func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	des, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(from, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, de.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// TestTrimmedFilesAreReused: trimming keeps KeepFree full files under a
// name that no longer claims entries, and rotations write into them (the
// same inode) instead of creating files; replay across reused files,
// whose older contents lie past their new end, returns exactly the live
// entries, and a clean reopen reports no damage.
func TestTrimmedFilesAreReused(t *testing.T) {
	dir := t.TempDir()
	o := Options{FileBytes: 2 << 10, KeepFree: 2}
	w := openT(t, dir, o)
	appendN(t, w, 1, 200)
	files := walFiles(t, dir)
	if len(files) < 6 {
		t.Fatalf("only %d files", len(files))
	}
	cut := files[4]
	if err := w.TrimBefore(cut); err != nil {
		t.Fatal(err)
	}
	free := freeFiles(t, dir)
	if len(free) != 2 || w.Stats().Free != 2 {
		t.Fatalf("after trimming 4 files: free files %v (Stats.Free %d), want 2", free, w.Stats().Free)
	}
	if got := walFiles(t, dir); got[0] != cut {
		t.Fatalf("files after trim: %v, want the first at %d", got, cut)
	}
	inodes := map[string]os.FileInfo{}
	for _, p := range free {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		inodes[p] = fi
	}

	// Enough appends to rotate past both reused files.
	appendN(t, w, 201, 400)
	if left := freeFiles(t, dir); len(left) != 0 {
		t.Fatalf("free files not reused: %v", left)
	}
	reused := 0
	for _, first := range walFiles(t, dir) {
		fi, err := os.Stat(filepath.Join(dir, fileName(first)))
		if err != nil {
			t.Fatal(err)
		}
		for _, old := range inodes {
			if os.SameFile(fi, old) {
				reused++
			}
		}
	}
	if reused != 2 {
		t.Fatalf("%d of 2 kept files reused as WAL files", reused)
	}

	// A crash now: the reused files hold older records past their end.
	crashed := copyDir(t, dir)
	var logs bytes.Buffer
	cw := openT(t, crashed, Options{FileBytes: o.FileBytes, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	checkRecords(t, replayAll(t, cw), int(cut), 400)
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("a reused file's older contents were reported as lost data: %s", logs.String())
	}

	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	w = openT(t, dir, Options{FileBytes: o.FileBytes, KeepFree: 2, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	checkRecords(t, replayAll(t, w), int(cut), 400)
	if strings.Contains(logs.String(), "truncating") {
		t.Fatalf("clean reopen reported damage: %s", logs.String())
	}
}

// TestCrashInReusedActiveFile: after a crash, the newest file may be a
// reused one whose older records follow the last group, either cut in the
// middle of one (garbage) or, with equal-sized records, at a record
// boundary (an intact record older than the file). Both end the log there,
// quietly for the older records, and appends continue at the end.
func TestCrashInReusedActiveFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		entry  func(i int) Entry
		reason string // why the scan of the newest file stops
	}{
		{"cut mid record", testEntry, "reason="},
		{"cut at a record boundary", func(i int) Entry {
			e := testEntry(i)
			e.Data = bytes.Repeat([]byte{byte(i)}, 100)
			e.Topic = "t"
			return e
		}, "a reused file's previous contents"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o := Options{FileBytes: 4 << 10, KeepFree: 1}
			w := openT(t, dir, o)
			add := func(from, to int) {
				for i := from; i <= to; i++ {
					w.Append(tc.entry(i), nil)
				}
				if err := w.Sync(); err != nil {
					t.Fatal(err)
				}
			}
			for i := 1; i <= 100; i += 10 {
				add(i, i+9)
			}
			files := walFiles(t, dir)
			if err := w.TrimBefore(files[len(files)-1]); err != nil {
				t.Fatal(err)
			}
			if w.Stats().Free != 1 {
				t.Fatalf("Stats.Free = %d, want 1", w.Stats().Free)
			}
			// Fill the active file and rotate into the reused one, then
			// write a little into it.
			last := 100
			for w.Stats().Free != 0 {
				last++
				add(last, last)
			}
			add(last+1, last+3)
			last += 3

			crashed := copyDir(t, dir)
			active := lastFilePath(t, crashed)
			fi, err := os.Stat(active)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() < o.FileBytes {
				t.Fatalf("newest file is %d bytes: not a reused full file", fi.Size())
			}
			var logs bytes.Buffer
			cw := openT(t, crashed, Options{FileBytes: o.FileBytes, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			var got []uint64
			if err := cw.Replay(func(seq uint64, e Entry) error {
				if !equalEntry(e, tc.entry(int(seq))) {
					t.Fatalf("seq %d: entry mismatch", seq)
				}
				got = append(got, seq)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			first := walFiles(t, crashed)[0]
			if len(got) == 0 || got[0] != first || got[len(got)-1] != uint64(last) || len(got) != last-int(first)+1 {
				t.Fatalf("replayed seqs %d..%d (%d), want %d..%d", got[0], got[len(got)-1], len(got), first, last)
			}
			if strings.Contains(logs.String(), "level=ERROR") {
				t.Fatalf("older contents reported as lost data: %s", logs.String())
			}
			if !strings.Contains(logs.String(), tc.reason) {
				t.Fatalf("recovery log does not say %q: %s", tc.reason, logs.String())
			}
			// Appends continue after the last entry and survive a reopen.
			for i := last + 1; i <= last+5; i++ {
				if seq := cw.Append(tc.entry(i), nil); seq != uint64(i) {
					t.Fatalf("Append = seq %d, want %d", seq, i)
				}
			}
			if err := cw.Close(); err != nil {
				t.Fatal(err)
			}
			cw = openT(t, crashed, Options{FileBytes: o.FileBytes})
			n := 0
			if err := cw.Replay(func(seq uint64, e Entry) error {
				if want := uint64(int(first) + n); seq != want || !equalEntry(e, tc.entry(int(seq))) {
					t.Fatalf("after reopen: seq %d, want %d", seq, want)
				}
				n++
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if n != last+5-int(first)+1 {
				t.Fatalf("after reopen: %d entries, want %d", n, last+5-int(first)+1)
			}
		})
	}
}
