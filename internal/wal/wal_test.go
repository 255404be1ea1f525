package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func quietOpts(o Options) Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func openT(t testing.TB, dir string, o Options) *WAL {
	t.Helper()
	w, err := Open(dir, quietOpts(o))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// testEntry is deterministic in i so replayed data can be checked exactly.
func testEntry(i int) Entry {
	data := make([]byte, 1+(i*37)%300)
	for j := range data {
		data[j] = byte(i + j)
	}
	return Entry{Topic: fmt.Sprintf("topic-%d", i%3), Partition: int32(i % 5), Data: data}
}

type record struct {
	seq uint64
	e   Entry
}

func replayAll(t *testing.T, w *WAL) []record {
	t.Helper()
	var recs []record
	if err := w.Replay(func(seq uint64, e Entry) error {
		recs = append(recs, record{seq, e})
		return nil
	}); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return recs
}

func equalEntry(a, b Entry) bool {
	return a.Topic == b.Topic && a.Partition == b.Partition && bytes.Equal(a.Data, b.Data)
}

// checkRecords asserts recs are exactly testEntry(from..to) with seq == index.
func checkRecords(t *testing.T, recs []record, from, to int) {
	t.Helper()
	if len(recs) != to-from+1 {
		t.Fatalf("replayed %d records, want %d (seqs %d..%d)", len(recs), to-from+1, from, to)
	}
	for k, r := range recs {
		i := from + k
		if r.seq != uint64(i) {
			t.Fatalf("record %d: seq %d, want %d", k, r.seq, i)
		}
		if !equalEntry(r.e, testEntry(i)) {
			t.Fatalf("seq %d: entry mismatch: got %s/%d %d bytes", i, r.e.Topic, r.e.Partition, len(r.e.Data))
		}
	}
}

// appendN appends testEntry(from..to), checks the returned seqs, and waits
// until they are durable. It syncs every few entries so that groups stay
// small and files with a small FileBytes rotate often.
func appendN(t *testing.T, w *WAL, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if seq := w.Append(testEntry(i), nil); seq != uint64(i) {
			t.Fatalf("Append(%d) = seq %d", i, seq)
		}
		if i%8 == 0 || i == to {
			if err := w.Sync(); err != nil {
				t.Fatalf("Sync: %v", err)
			}
		}
	}
}

func walFiles(t *testing.T, dir string) []uint64 {
	t.Helper()
	files, err := listFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var firsts []uint64
	for _, f := range files {
		firsts = append(firsts, f.first)
	}
	return firsts
}

func lastFilePath(t *testing.T, dir string) string {
	fs := walFiles(t, dir)
	return filepath.Join(dir, fileName(fs[len(fs)-1]))
}

func TestRoundTripAcrossRotatedFiles(t *testing.T) {
	dir := t.TempDir()
	o := Options{FileBytes: 4 << 10}
	w := openT(t, dir, o)
	if err := w.Replay(func(uint64, Entry) error { t.Fatal("replay of empty log called fn"); return nil }); err != nil {
		t.Fatal(err)
	}
	const n = 500
	appendN(t, w, 1, n)
	st := w.Stats()
	if st.Files < 5 || st.Entries != n || st.LastSeq != n {
		t.Fatalf("stats after %d appends: %+v", n, st)
	}
	var onDisk int64
	for _, f := range walFiles(t, dir) {
		fi, err := os.Stat(filepath.Join(dir, fileName(f)))
		if err != nil {
			t.Fatal(err)
		}
		onDisk += fi.Size()
	}
	if st.Bytes != onDisk || st.Files != len(walFiles(t, dir)) {
		t.Fatalf("stats say %d files/%d bytes, disk has %d files/%d bytes", st.Files, st.Bytes, len(walFiles(t, dir)), onDisk)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// Every file is named after its first entry, and files are contiguous.
	w2 := openT(t, dir, o)
	recs := replayAll(t, w2)
	checkRecords(t, recs, 1, n)
	starts := map[uint64]bool{}
	for _, f := range walFiles(t, dir) {
		starts[f] = true
	}
	if !starts[1] {
		t.Fatal("no file starts at seq 1")
	}
}

func TestSeqContinuityAfterReopen(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir, Options{})
	if seq := w.Append(testEntry(1), nil); seq != 1 {
		t.Fatalf("first Append on an empty log = %d, want 1", seq)
	}
	appendN(t, w, 2, 10)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	w = openT(t, dir, Options{})
	checkRecords(t, replayAll(t, w), 1, 10)
	if got := w.Stats().LastSeq; got != 10 {
		t.Fatalf("LastSeq after reopen = %d", got)
	}
	appendN(t, w, 11, 20)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// Without Replay, Open alone must still continue the sequence.
	w = openT(t, dir, Options{})
	appendN(t, w, 21, 25)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	w = openT(t, dir, Options{})
	checkRecords(t, replayAll(t, w), 1, 25)
}

func TestEmptyLogReopen(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir, Options{})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = openT(t, dir, Options{})
	if recs := replayAll(t, w); len(recs) != 0 {
		t.Fatalf("replayed %d records from an empty log", len(recs))
	}
	if seq := w.Append(testEntry(1), nil); seq != 1 {
		t.Fatalf("Append = %d, want 1", seq)
	}
}

func TestReplayMisuse(t *testing.T) {
	w := openT(t, t.TempDir(), Options{})
	replayAll(t, w)
	if err := w.Replay(func(uint64, Entry) error { return nil }); err == nil {
		t.Fatal("second Replay succeeded")
	}
	w2 := openT(t, t.TempDir(), Options{})
	w2.Append(testEntry(1), nil)
	if err := w2.Replay(func(uint64, Entry) error { return nil }); err == nil {
		t.Fatal("Replay after Append succeeded")
	}
}

func TestReplayCallbackError(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir, Options{})
	appendN(t, w, 1, 5)
	w.Close()
	w = openT(t, dir, Options{})
	stop := errors.New("stop")
	calls := 0
	err := w.Replay(func(seq uint64, e Entry) error {
		calls++
		if seq == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Fatalf("Replay = %v after %d calls, want the callback's error after 3", err, calls)
	}
}

func TestCallbacksInOrderExactlyOnce(t *testing.T) {
	w := openT(t, t.TempDir(), Options{})
	const n = 2000
	var (
		mu       sync.Mutex
		order    []uint64
		inFlight atomic.Int32
		overlap  atomic.Bool
	)
	counts := make([]int, n+1)
	for i := 1; i <= n; i++ {
		want := uint64(i)
		seq := w.Append(testEntry(i), func(seq uint64, err error) {
			if inFlight.Add(1) != 1 {
				overlap.Store(true) // callbacks must come from the one flusher
			}
			defer inFlight.Add(-1)
			if err != nil {
				t.Errorf("done(%d): %v", seq, err)
			}
			if seq != want {
				t.Errorf("done got seq %d for the entry appended as %d", seq, want)
			}
			mu.Lock()
			order = append(order, seq)
			counts[seq]++
			mu.Unlock()
		})
		if seq != want {
			t.Fatalf("Append = %d, want %d", seq, want)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Close has returned, so every callback has run.
	mu.Lock()
	defer mu.Unlock()
	if len(order) != n {
		t.Fatalf("%d callbacks, want %d", len(order), n)
	}
	if !slices.IsSorted(order) {
		t.Fatal("callbacks out of sequence order")
	}
	for i := 1; i <= n; i++ {
		if counts[i] != 1 {
			t.Fatalf("seq %d: %d callbacks", i, counts[i])
		}
	}
	if overlap.Load() {
		t.Fatal("callbacks ran concurrently")
	}
}

func TestTornTail(t *testing.T) {
	const n = 20
	lastRec := recordSize(ptr(testEntry(n)))
	garbage := []byte("\x13\x37this is not a record, just noise left by a crash\xff\xfe")
	cases := []struct {
		name    string
		damage  func(t *testing.T, path string, size int64)
		keep    int // entries expected to survive
		wantLog bool
	}{
		{"truncated mid payload", func(t *testing.T, p string, size int64) {
			truncate(t, p, size-5)
		}, n - 1, true},
		{"truncated mid header", func(t *testing.T, p string, size int64) {
			truncate(t, p, size-lastRec+7)
		}, n - 1, true},
		{"truncated mid record then garbage", func(t *testing.T, p string, size int64) {
			truncate(t, p, size-lastRec/2)
			appendBytes(t, p, garbage)
		}, n - 1, true},
		{"garbage after intact records", func(t *testing.T, p string, size int64) {
			appendBytes(t, p, garbage)
		}, n, true},
		{"zero-filled tail", func(t *testing.T, p string, size int64) {
			appendBytes(t, p, make([]byte, 4096))
		}, n, true},
		{"bit flip in last record", func(t *testing.T, p string, size int64) {
			flipBit(t, p, size-3)
		}, n - 1, true},
		{"length field points past EOF", func(t *testing.T, p string, size int64) {
			flipBit(t, p, size-lastRec+4+3) // high byte of the length
		}, n - 1, true},
		{"whole file torn", func(t *testing.T, p string, size int64) {
			truncate(t, p, 5)
		}, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w := openT(t, dir, Options{})
			appendN(t, w, 1, n)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			path := lastFilePath(t, dir)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(t, path, fi.Size())

			var logs bytes.Buffer
			w = openT(t, dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if tc.wantLog && !strings.Contains(logs.String(), "truncating damaged tail") {
				t.Fatalf("damage not logged; log: %q", logs.String())
			}
			if strings.Contains(logs.String(), "intact records follow") {
				t.Fatalf("a plain torn tail was reported as mid-file damage; log: %q", logs.String())
			}
			checkRecords(t, replayAll(t, w), 1, tc.keep)
			fi, err = os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			var want int64
			for i := 1; i <= tc.keep; i++ {
				want += recordSize(ptr(testEntry(i)))
			}
			if fi.Size() != want {
				t.Fatalf("file is %d bytes after recovery, want %d", fi.Size(), want)
			}

			// Appends continue right after the last intact entry.
			appendN(t, w, tc.keep+1, tc.keep+10)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			w = openT(t, dir, Options{})
			checkRecords(t, replayAll(t, w), 1, tc.keep+10)
		})
	}
}

func TestTornTailOfRotatedLog(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir, Options{FileBytes: 2 << 10})
	appendN(t, w, 1, 100)
	w.Close()
	files := walFiles(t, dir)
	if len(files) < 3 {
		t.Fatalf("only %d files", len(files))
	}
	appendBytes(t, lastFilePath(t, dir), []byte{1, 2, 3})
	w = openT(t, dir, Options{FileBytes: 2 << 10})
	checkRecords(t, replayAll(t, w), 1, 100)
}

// Damage in the middle of the newest file is indistinguishable from a torn
// group write, so it is truncated as the spec says, but reported loudly.
func TestMidFileDamageInNewestFileIsTruncatedLoudly(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir, Options{})
	appendN(t, w, 1, 20)
	w.Close()
	var off int64
	for i := 1; i <= 10; i++ {
		off += recordSize(ptr(testEntry(i)))
	}
	flipBit(t, lastFilePath(t, dir), off+headerSize+payloadFixed+3) // inside entry 11
	var logs bytes.Buffer
	w = openT(t, dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "intact_seq=12") {
		t.Fatalf("mid-file damage not reported as such; log: %q", logs.String())
	}
	checkRecords(t, replayAll(t, w), 1, 10)
	appendN(t, w, 11, 12)
}

func TestCorruptNonFinalFileIsError(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string, files []uint64)
	}{
		{"bit flip in the middle", func(t *testing.T, dir string, files []uint64) {
			p := filepath.Join(dir, fileName(files[0]))
			fi, _ := os.Stat(p)
			flipBit(t, p, fi.Size()/2)
		}},
		{"torn end of a non-final file", func(t *testing.T, dir string, files []uint64) {
			p := filepath.Join(dir, fileName(files[1]))
			fi, _ := os.Stat(p)
			truncate(t, p, fi.Size()-3)
		}},
		{"missing middle file", func(t *testing.T, dir string, files []uint64) {
			if err := os.Remove(filepath.Join(dir, fileName(files[1]))); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o := Options{FileBytes: 2 << 10}
			w := openT(t, dir, o)
			appendN(t, w, 1, 100)
			w.Close()
			files := walFiles(t, dir)
			if len(files) < 4 {
				t.Fatalf("only %d files", len(files))
			}
			tc.damage(t, dir, files)
			w = openT(t, dir, o)
			err := w.Replay(func(uint64, Entry) error { return nil })
			if err == nil {
				t.Fatal("Replay succeeded over damaged acknowledged data")
			}
			t.Logf("Replay: %v", err)
			// Nothing was truncated away: the damage is left for an operator.
			if got := walFiles(t, dir); len(got) != len(files)-boolInt(tc.name == "missing middle file") {
				t.Fatalf("files changed: %v -> %v", files, got)
			}
		})
	}
}

func TestTrimBefore(t *testing.T) {
	dir := t.TempDir()
	o := Options{FileBytes: 2 << 10}
	w := openT(t, dir, o)
	const n = 200
	appendN(t, w, 1, n)
	files := walFiles(t, dir)
	if len(files) < 6 {
		t.Fatalf("only %d files", len(files))
	}

	// Nothing wholly below the first file's second entry.
	if err := w.TrimBefore(files[1] - 1); err != nil {
		t.Fatal(err)
	}
	if got := walFiles(t, dir); !slices.Equal(got, files) {
		t.Fatalf("TrimBefore(%d) removed files: %v -> %v", files[1]-1, files, got)
	}
	// files[0] holds [files[0], files[1]-1], all < files[1].
	if err := w.TrimBefore(files[1]); err != nil {
		t.Fatal(err)
	}
	if got := walFiles(t, dir); !slices.Equal(got, files[1:]) {
		t.Fatalf("TrimBefore(%d): %v, want %v", files[1], got, files[1:])
	}
	// One short of files[3] keeps files[2], whose last entry is files[3]-1.
	if err := w.TrimBefore(files[3] - 1); err != nil {
		t.Fatal(err)
	}
	if got := walFiles(t, dir); !slices.Equal(got, files[2:]) {
		t.Fatalf("TrimBefore(%d): %v, want %v", files[3]-1, got, files[2:])
	}
	if st := w.Stats(); st.Files != len(files)-2 {
		t.Fatalf("Stats().Files = %d, want %d", st.Files, len(files)-2)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	w = openT(t, dir, o)
	recs := replayAll(t, w)
	checkRecords(t, recs, int(files[2]), n)

	// Trimming past the end keeps the active file, and appends continue.
	if err := w.TrimBefore(^uint64(0)); err != nil {
		t.Fatal(err)
	}
	if got := walFiles(t, dir); len(got) != 1 || got[0] != files[len(files)-1] {
		t.Fatalf("after trimming everything: %v, want only the active %d", got, files[len(files)-1])
	}
	appendN(t, w, n+1, n+50)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = openT(t, dir, o)
	checkRecords(t, replayAll(t, w), int(files[len(files)-1]), n+50)
}

func TestCloseFlushesPending(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir, Options{})
	const n = 1000
	var ok atomic.Int64
	for i := 1; i <= n; i++ {
		w.Append(testEntry(i), func(_ uint64, err error) {
			if err == nil {
				ok.Add(1)
			}
		})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ok.Load(); got != n {
		t.Fatalf("%d successful callbacks by the time Close returned, want %d", got, n)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	w = openT(t, dir, Options{})
	checkRecords(t, replayAll(t, w), 1, n)
}

func TestAppendAfterClose(t *testing.T) {
	w := openT(t, t.TempDir(), Options{})
	w.Close()
	errc := make(chan error, 1)
	if seq := w.Append(testEntry(1), func(seq uint64, err error) { errc <- err }); seq != 0 {
		t.Fatalf("Append after Close = %d, want 0", seq)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("done got %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("done not called")
	}
	w.Append(testEntry(2), nil) // must not panic
}

func TestConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir, Options{FileBytes: 256 << 10})
	const goroutines, per = 8, 500
	var (
		mu    sync.Mutex
		order []uint64
	)
	done := func(seq uint64, err error) {
		if err != nil {
			t.Errorf("done(%d): %v", seq, err)
		}
		mu.Lock()
		order = append(order, seq)
		mu.Unlock()
	}
	owner := make([]int, goroutines*per+1) // seq -> goroutine*per + index
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var prev uint64
			for i := range per {
				id := g*per + i
				e := Entry{Topic: fmt.Sprintf("t%d", g), Partition: int32(i), Data: []byte(fmt.Sprintf("g%d-i%d", g, i))}
				seq := w.Append(e, done)
				if seq <= prev {
					t.Errorf("goroutine %d: seq %d after %d", g, seq, prev)
				}
				prev = seq
				mu.Lock()
				owner[seq] = id
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(order) != goroutines*per || !slices.IsSorted(order) {
		t.Fatalf("%d callbacks, sorted=%v", len(order), slices.IsSorted(order))
	}
	mu.Unlock()

	w = openT(t, dir, Options{})
	recs := replayAll(t, w)
	if len(recs) != goroutines*per {
		t.Fatalf("replayed %d", len(recs))
	}
	for k, r := range recs {
		if r.seq != uint64(k+1) {
			t.Fatalf("record %d has seq %d", k, r.seq)
		}
		id := owner[r.seq]
		g, i := id/per, id%per
		if want := fmt.Sprintf("g%d-i%d", g, i); string(r.e.Data) != want || r.e.Topic != fmt.Sprintf("t%d", g) || r.e.Partition != int32(i) {
			t.Fatalf("seq %d: got %s/%d %q, want %s", r.seq, r.e.Topic, r.e.Partition, r.e.Data, want)
		}
	}
}

func TestGroupCommit(t *testing.T) {
	w := openT(t, t.TempDir(), Options{}) // real fsync: that is what groups
	const goroutines, per = 16, 200
	var wg sync.WaitGroup
	var acked atomic.Int64
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each appender waits for its ack, like a producer with
			// acks=all and a few requests in flight.
			sem := make(chan struct{}, 4)
			for i := range per {
				sem <- struct{}{}
				w.Append(testEntry(i), func(_ uint64, err error) {
					if err == nil {
						acked.Add(1)
					}
					<-sem
				})
			}
		}()
	}
	wg.Wait()
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	t.Logf("%d entries in %d group commits (%.1f entries/fsync)", st.Entries, st.Syncs, float64(st.Entries)/float64(st.Syncs))
	if st.Entries != goroutines*per || acked.Load() != goroutines*per {
		t.Fatalf("entries %d, acked %d, want %d", st.Entries, acked.Load(), goroutines*per)
	}
	if st.Syncs >= st.Entries {
		t.Fatalf("no grouping: %d syncs for %d entries", st.Syncs, st.Entries)
	}
}

func TestLoneAppendIsWrittenImmediately(t *testing.T) {
	w := openT(t, t.TempDir(), Options{})
	for i := 1; i <= 3; i++ {
		start := time.Now()
		errc := make(chan error, 1)
		w.Append(testEntry(i), func(_ uint64, err error) { errc <- err })
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		// Generous bound: this only catches a batching timer, not slow disks.
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("lone append took %v", d)
		}
		time.Sleep(10 * time.Millisecond) // let the flusher go idle again
	}
	if st := w.Stats(); st.Syncs != 3 {
		t.Fatalf("3 spaced-out appends took %d syncs", st.Syncs)
	}
}

var errInjected = errors.New("injected write failure")

func TestWriteFailure(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir, Options{})
	var fail atomic.Bool
	w.writeHook = func(f *os.File, p []byte) (int, error) {
		if fail.Load() {
			// Like a disk filling up mid-write: part of it lands.
			n, _ := f.Write(p[:len(p)/2])
			return n, errInjected
		}
		return f.Write(p)
	}
	appendN(t, w, 1, 10)

	fail.Store(true)
	errc := make(chan error, 1)
	if seq := w.Append(testEntry(11), func(_ uint64, err error) { errc <- err }); seq != 11 {
		t.Fatalf("Append = %d", seq)
	}
	if err := <-errc; !errors.Is(err, errInjected) {
		t.Fatalf("done got %v, want the injected failure", err)
	}
	if err := w.Sync(); !errors.Is(err, errInjected) {
		t.Fatalf("Sync = %v, want the injected failure", err)
	}

	// The WAL stays failed even though the disk "recovered".
	fail.Store(false)
	for i := 12; i <= 14; i++ {
		errc := make(chan error, 1)
		if seq := w.Append(testEntry(i), func(_ uint64, err error) { errc <- err }); seq != 0 {
			t.Fatalf("Append after failure = %d, want 0", seq)
		}
		if err := <-errc; !errors.Is(err, errInjected) {
			t.Fatalf("later done got %v, want a wrapped injected failure", err)
		}
	}
	if err := w.Close(); !errors.Is(err, errInjected) {
		t.Fatalf("Close = %v, want the failure", err)
	}

	// The half-written entry was cut off, so a restart does not resurrect
	// an entry its producer was told failed.
	w = openT(t, dir, Options{})
	checkRecords(t, replayAll(t, w), 1, 10)
	appendN(t, w, 11, 12)
}

func TestFailureFailsQueuedEntries(t *testing.T) {
	w := openT(t, t.TempDir(), Options{})
	gate := make(chan struct{})
	w.writeHook = func(f *os.File, p []byte) (int, error) {
		<-gate
		return 0, errInjected
	}
	var mu sync.Mutex
	var errs []error
	for i := 1; i <= 50; i++ {
		w.Append(testEntry(i), func(_ uint64, err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
	}
	close(gate)
	w.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 50 {
		t.Fatalf("%d callbacks", len(errs))
	}
	for i, err := range errs {
		if !errors.Is(err, errInjected) {
			t.Fatalf("callback %d: %v", i, err)
		}
	}
}

func TestBackpressure(t *testing.T) {
	w := openT(t, t.TempDir(), Options{MaxPending: 4 << 10, NoSync: true})
	gate := make(chan struct{})
	var once sync.Once
	w.writeHook = func(f *os.File, p []byte) (int, error) {
		once.Do(func() { <-gate }) // hold the first group in flight
		return f.Write(p)
	}
	e := Entry{Topic: "t", Data: make([]byte, 1000)}
	const n = 20
	var returned atomic.Int64
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for range n {
			w.Append(e, nil)
			returned.Add(1)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	// ~1 KiB records against a 4 KiB limit: at most 4 can be pending.
	if got := returned.Load(); got > 4 {
		t.Fatalf("%d Appends returned while the disk was stuck; backpressure should cap it at 4", got)
	}
	close(gate)
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("Appends still blocked after the disk recovered")
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Entries != n {
		t.Fatalf("%d entries written, want %d", st.Entries, n)
	}
}

func TestOversizedEntryAboveMaxPending(t *testing.T) {
	w := openT(t, t.TempDir(), Options{MaxPending: 1 << 10, NoSync: true})
	errc := make(chan error, 1)
	w.Append(Entry{Topic: "big", Data: make([]byte, 64<<10)}, func(_ uint64, err error) { errc <- err })
	if err := <-errc; err != nil {
		t.Fatalf("an entry larger than MaxPending must still be written: %v", err)
	}
}

func TestRejectsUnencodableEntry(t *testing.T) {
	w := openT(t, t.TempDir(), Options{NoSync: true})
	errc := make(chan error, 1)
	if seq := w.Append(Entry{Topic: strings.Repeat("x", 1<<16)}, func(_ uint64, err error) { errc <- err }); seq != 0 {
		t.Fatalf("Append of a 64 KiB topic = %d, want 0", seq)
	}
	if err := <-errc; err == nil {
		t.Fatal("64 KiB topic accepted")
	}
	// A rejected entry does not poison the WAL or consume a seq.
	if seq := w.Append(testEntry(1), nil); seq != 1 {
		t.Fatalf("next Append = %d, want 1", seq)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkAppend(b *testing.B) {
	data := make([]byte, 1<<10)
	for i := range data {
		data[i] = byte(i)
	}
	for _, mode := range []struct {
		name string
		wait bool
	}{
		{"wait-each", true},  // producer blocks on every ack (acks=all, one in flight)
		{"pipelined", false}, // producers never wait; bounded only by MaxPending
	} {
		b.Run(mode.name, func(b *testing.B) {
			w, err := Open(b.TempDir(), quietOpts(Options{}))
			if err != nil {
				b.Fatal(err)
			}
			// Stand-in for the uploader, so the benchmark does not fill the disk.
			stop := make(chan struct{})
			trimmed := make(chan struct{})
			go func() {
				defer close(trimmed)
				for {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
						w.TrimBefore(w.Stats().LastSeq)
					}
				}
			}()
			b.SetBytes(int64(len(data)))
			b.SetParallelism(16) // many more producers than CPUs, like a busy broker
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				e := Entry{Topic: "bench", Partition: 0, Data: data}
				acks := make(chan error, 1)
				done := func(_ uint64, err error) { acks <- err }
				for pb.Next() {
					if mode.wait {
						w.Append(e, done)
						if err := <-acks; err != nil {
							b.Error(err)
							return
						}
					} else {
						w.Append(e, nil)
					}
				}
			})
			if err := w.Sync(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			close(stop)
			<-trimmed
			st := w.Stats()
			if st.Syncs > 0 {
				b.ReportMetric(float64(st.Entries)/float64(st.Syncs), "entries/fsync")
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func flipBit(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}
