package objwal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/wal"
)

func quiet(o Options) Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func dirStore(t *testing.T) *objstore.Dir {
	t.Helper()
	d, err := objstore.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func openT(t *testing.T, store objstore.Store, broker int32, o Options) *WAL {
	t.Helper()
	w, err := Open(context.Background(), store, broker, quiet(o))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// testEntry is deterministic in i so replayed data can be checked exactly.
func testEntry(i int) wal.Entry {
	data := make([]byte, 1+(i*37)%300)
	for j := range data {
		data[j] = byte(i + j)
	}
	return wal.Entry{Topic: fmt.Sprintf("topic-%d", i%3), Partition: int32(i % 5), Data: data}
}

func sameEntry(a, b wal.Entry) bool {
	return a.Topic == b.Topic && a.Partition == b.Partition && bytes.Equal(a.Data, b.Data)
}

// acks records callbacks, checking they come in seq order.
type acks struct {
	t    *testing.T
	mu   sync.Mutex
	seqs []uint64
	errs []error
	all  sync.WaitGroup
}

func (a *acks) done() func(uint64, error) {
	a.all.Add(1)
	return func(seq uint64, err error) {
		defer a.all.Done()
		a.mu.Lock()
		defer a.mu.Unlock()
		if err == nil && len(a.seqs) > 0 && seq <= a.seqs[len(a.seqs)-1] {
			a.t.Errorf("callback for seq %d after seq %d", seq, a.seqs[len(a.seqs)-1])
		}
		a.seqs = append(a.seqs, seq)
		a.errs = append(a.errs, err)
	}
}

func (a *acks) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seqs)
}

func (a *acks) wait(t *testing.T, d time.Duration) {
	t.Helper()
	ch := make(chan struct{})
	go func() { a.all.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("callbacks not all called within %v (%d called)", d, a.count())
	}
}

// appendN appends entries [from, to) and returns their seqs.
func appendN(t *testing.T, w *WAL, a *acks, from, to int) []uint64 {
	t.Helper()
	var seqs []uint64
	for i := from; i < to; i++ {
		seq := w.Append(testEntry(i), a.done())
		if seq == 0 {
			t.Fatalf("Append %d rejected", i)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

type record struct {
	seq uint64
	e   wal.Entry
}

func replayAll(t *testing.T, w *WAL) []record {
	t.Helper()
	var recs []record
	if err := w.Replay(func(seq uint64, e wal.Entry) error {
		recs = append(recs, record{seq, e})
		return nil
	}); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return recs
}

// checkRecords wants entries [from, from+len) at seqs firstSeq....
func checkRecords(t *testing.T, recs []record, firstSeq uint64, from, n int) {
	t.Helper()
	if len(recs) != n {
		t.Fatalf("got %d entries, want %d", len(recs), n)
	}
	for k, r := range recs {
		if r.seq != firstSeq+uint64(k) || !sameEntry(r.e, testEntry(from+k)) {
			t.Fatalf("entry %d: seq %d %s/%d (%d bytes), want seq %d and entry %d", k, r.seq, r.e.Topic, r.e.Partition, len(r.e.Data),
				firstSeq+uint64(k), from+k)
		}
	}
}

func chunkKeys(t *testing.T, store objstore.Store, broker int32) []string {
	t.Helper()
	objs, err := store.List(context.Background(), BrokerPrefix(broker))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	return keys
}

// TestOrderAndFormat: seqs start at 1 and are consecutive, callbacks run in
// order after the chunk is durable, chunk keys follow the documented
// layout, and a reopened WAL replays every entry exactly.
func TestOrderAndFormat(t *testing.T) {
	store := dirStore(t)
	w := openT(t, store, 3, Options{FlushInterval: time.Millisecond, FlushBytes: 8 << 10})
	a := &acks{t: t}
	const n = 500
	seqs := appendN(t, w, a, 0, n)
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("Append %d got seq %d, want %d", i, s, i+1)
		}
	}
	a.wait(t, 10*time.Second)
	for i, err := range a.errs {
		if err != nil {
			t.Fatalf("callback %d: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	keys := chunkKeys(t, store, 3)
	if len(keys) < 2 {
		t.Fatalf("%d chunks for %d entries of up to 8 KiB each: %v", len(keys), n, keys)
	}
	if !strings.HasPrefix(keys[0], "wal/0000000003/00000000000000000001-") || len(keys[0]) != len("wal/0000000003/00000000000000000001-")+8 {
		t.Errorf("first chunk key %q, want the first seq and an 8-hex-digit incarnation", keys[0])
	}
	for _, k := range keys {
		if _, ok := parseChunkKey("wal/0000000003/", k); !ok {
			t.Errorf("bad chunk key %q", k)
		}
	}
	if st := w.Stats(); st.Files != len(keys) || st.Syncs != uint64(len(keys)) || st.Entries != n || st.LastSeq != n || st.Bytes <= 0 {
		t.Errorf("stats %+v with %d chunk objects", st, len(keys))
	}

	w2 := openT(t, store, 3, Options{})
	checkRecords(t, replayAll(t, w2), 1, 0, n)
}

// TestGroupCommit: a burst of appends becomes few chunks; FlushBytes starts
// a chunk long before FlushInterval and bounds its size.
func TestGroupCommit(t *testing.T) {
	t.Run("interval", func(t *testing.T) {
		store := dirStore(t)
		w := openT(t, store, 0, Options{FlushInterval: 50 * time.Millisecond})
		a := &acks{t: t}
		const n = 2000
		var wg sync.WaitGroup
		for g := range 4 { // concurrent appenders, as produce requests are
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := g; i < n; i += 4 {
					w.Append(testEntry(i), a.done())
				}
			}()
		}
		wg.Wait()
		a.wait(t, 10*time.Second)
		st := w.Stats()
		if st.Entries != n || st.Syncs == 0 || st.Syncs > 10 {
			t.Errorf("%d entries in %d chunks, want %d in at most 10", st.Entries, st.Syncs, n)
		}
		t.Logf("%d entries in %d chunks", st.Entries, st.Syncs)
	})
	t.Run("bytes", func(t *testing.T) {
		store := dirStore(t)
		const flushBytes = 16 << 10
		w := openT(t, store, 0, Options{FlushInterval: time.Hour, FlushBytes: flushBytes})
		a := &acks{t: t}
		entry := wal.Entry{Topic: "t", Data: make([]byte, 1000)}
		const n = 200 // about 12 chunks' worth
		for range n {
			w.Append(entry, a.done())
		}
		// All but the last partial chunk are put long before the hour.
		full := n - flushBytes/int(wal.RecordSize(entry))
		deadline := time.Now().Add(10 * time.Second)
		for a.count() < full && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := a.count(); got < full {
			t.Fatalf("%d of %d entries durable; FlushBytes did not start chunks", got, n)
		}
		objs, err := store.List(context.Background(), BrokerPrefix(0))
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if o.Size > chunkHeaderSize+flushBytes {
				t.Errorf("chunk %s is %d bytes, over FlushBytes %d", o.Key, o.Size, flushBytes)
			}
		}
		// Close puts the rest at once.
		start := time.Now()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		a.wait(t, time.Second)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Close took %v", d)
		}
	})
}

// TestRestartContinuesSeq: a reopened WAL continues after the last seq in
// the store, whether it was closed or its process died (the WAL is simply
// abandoned here, as a crash abandons it).
func TestRestartContinuesSeq(t *testing.T) {
	store := dirStore(t)
	w := openT(t, store, 1, Options{FlushInterval: time.Millisecond})
	a := &acks{t: t}
	appendN(t, w, a, 0, 40)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	w2 := openT(t, store, 1, Options{FlushInterval: time.Millisecond})
	checkRecords(t, replayAll(t, w2), 1, 0, 40)
	a2 := &acks{t: t}
	if seqs := appendN(t, w2, a2, 40, 100); seqs[0] != 41 || seqs[len(seqs)-1] != 100 {
		t.Fatalf("seqs after restart %d..%d, want 41..100", seqs[0], seqs[len(seqs)-1])
	}
	if err := w2.Sync(); err != nil {
		t.Fatal(err)
	}
	a2.wait(t, 5*time.Second)
	// "Crash": w2 is never closed before w3 opens (its flusher is idle,
	// and nothing it did after the Sync is durable).

	w3 := openT(t, store, 1, Options{})
	checkRecords(t, replayAll(t, w3), 1, 0, 100)
	if s := w3.Append(testEntry(100), nil); s != 101 {
		t.Fatalf("seq after crash %d, want 101", s)
	}
}

// TestReplayAfterCrash: entries whose callbacks ran are replayed by the
// next WAL although the first was never closed; Replay's rules hold.
func TestReplayAfterCrash(t *testing.T) {
	store := dirStore(t)
	w := openT(t, store, 2, Options{FlushInterval: 2 * time.Millisecond, FlushBytes: 4 << 10})
	a := &acks{t: t}
	const n = 300
	appendN(t, w, a, 0, n)
	a.wait(t, 10*time.Second)

	w2 := openT(t, store, 2, Options{})
	if got := w2.Stats().LastSeq; got != n {
		t.Fatalf("LastSeq after crash %d, want %d", got, n)
	}
	checkRecords(t, replayAll(t, w2), 1, 0, n)
	if err := w2.Replay(func(uint64, wal.Entry) error { return nil }); err == nil {
		t.Errorf("second Replay succeeded")
	}
	w3 := openT(t, store, 2, Options{})
	w3.Append(testEntry(0), nil)
	if err := w3.Replay(func(uint64, wal.Entry) error { return nil }); err == nil {
		t.Errorf("Replay after Append succeeded")
	}
	stop := errors.New("stop")
	w4 := openT(t, store, 2, Options{})
	if err := w4.Replay(func(uint64, wal.Entry) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Replay callback error not returned: %v", err)
	}
}

// TestTrimBefore deletes exactly the chunks whose entries are all older
// than the given seq, oldest first; a reopened WAL replays what is left.
func TestTrimBefore(t *testing.T) {
	store := dirStore(t)
	entry := func(i int) wal.Entry {
		return wal.Entry{Topic: "t", Partition: int32(i), Data: bytes.Repeat([]byte{byte(i)}, 1000)}
	}
	// About four entries per chunk, every chunk put before the next
	// append, so chunk boundaries are known: 1-4, 5-8, ...
	w := openT(t, store, 5, Options{FlushInterval: time.Hour, FlushBytes: 4 * wal.RecordSize(entry(0))})
	for i := range 20 {
		w.Append(entry(i), nil)
		if i%4 == 3 {
			if err := w.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	keys := chunkKeys(t, store, 5)
	if len(keys) != 5 {
		t.Fatalf("chunks %v, want 5", keys)
	}
	if err := w.TrimBefore(7); err != nil { // 1-4 only: 5-8 still holds 7 and 8
		t.Fatal(err)
	}
	if got := chunkKeys(t, store, 5); len(got) != 4 || got[0] != keys[1] {
		t.Fatalf("after TrimBefore(7): %v", got)
	}
	if err := w.TrimBefore(13); err != nil { // 5-8 and 9-12
		t.Fatal(err)
	}
	if got := chunkKeys(t, store, 5); len(got) != 2 || got[0] != keys[3] || w.Stats().Files != 2 {
		t.Fatalf("after TrimBefore(13): %v, stats %+v", got, w.Stats())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	w2 := openT(t, store, 5, Options{})
	recs := replayAll(t, w2)
	if len(recs) != 8 || recs[0].seq != 13 || recs[0].e.Partition != 12 {
		t.Fatalf("replay after trim: %d entries from seq %d", len(recs), recs[0].seq)
	}
	// After Close too: a clean shutdown discards every chunk this way.
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w2.TrimBefore(math.MaxUint64); err != nil {
		t.Fatal(err)
	}
	if got := chunkKeys(t, store, 5); len(got) != 0 {
		t.Fatalf("after TrimBefore(max): %v", got)
	}
}

// TestCorruptChunk: damage in any chunk (flipped byte, truncation, a
// missing chunk in the middle, a bad newest header) is reported with the
// chunk's key, never skipped.
func TestCorruptChunk(t *testing.T) {
	build := func(t *testing.T) (*objstore.Dir, []string) {
		store := dirStore(t)
		w := openT(t, store, 9, Options{FlushInterval: time.Hour, FlushBytes: 2 << 10})
		for i := range 60 {
			w.Append(testEntry(i), nil)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		keys := chunkKeys(t, store, 9)
		if len(keys) < 4 {
			t.Fatalf("only %d chunks", len(keys))
		}
		return store, keys
	}
	path := func(store *objstore.Dir, key string) string {
		return filepath.Join(store.Root(), filepath.FromSlash(key))
	}
	edit := func(t *testing.T, p string, f func([]byte) []byte) {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f(raw), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	replayErr := func(t *testing.T, store *objstore.Dir) error {
		w, err := Open(context.Background(), store, 9, quiet(Options{}))
		if err != nil {
			return err
		}
		defer w.Close()
		return w.Replay(func(uint64, wal.Entry) error { return nil })
	}
	for _, tc := range []struct {
		name    string
		victim  func(keys []string) string
		damage  func(t *testing.T, p string)
		want    string
		corrupt bool
	}{
		{"flipped data byte", func(k []string) string { return k[1] },
			func(t *testing.T, p string) { edit(t, p, func(b []byte) []byte { b[len(b)-3] ^= 1; return b }) }, "checksum mismatch", true},
		{"flipped header byte", func(k []string) string { return k[1] },
			func(t *testing.T, p string) { edit(t, p, func(b []byte) []byte { b[21] ^= 1; return b }) }, "header checksum", true},
		{"torn", func(k []string) string { return k[2] },
			func(t *testing.T, p string) { edit(t, p, func(b []byte) []byte { return b[:len(b)/2] }) }, "at offset", true},
		{"trailing bytes", func(k []string) string { return k[0] },
			func(t *testing.T, p string) { edit(t, p, func(b []byte) []byte { return append(b, 0) }) }, "after the last", true},
		{"missing chunk", func(k []string) string { return k[2] },
			func(t *testing.T, p string) { os.Remove(p) }, "acknowledged entries are missing", false},
		{"bad newest header", func(k []string) string { return k[len(k)-1] },
			func(t *testing.T, p string) { edit(t, p, func(b []byte) []byte { b[0] ^= 1; return b }) }, "bad magic", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, keys := build(t)
			victim := tc.victim(keys)
			if tc.name == "missing chunk" {
				victim = keys[3] // the error names the chunk after the gap
				tc.damage(t, path(store, keys[2]))
			} else {
				tc.damage(t, path(store, victim))
			}
			err := replayErr(t, store)
			if err == nil || !strings.Contains(err.Error(), victim) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s and saying %q", err, victim, tc.want)
			}
			if tc.corrupt != errors.Is(err, ErrCorrupt) {
				t.Errorf("errors.Is(err, ErrCorrupt) = %v", !tc.corrupt)
			}
			// Scan applies the same checks.
			if err := Scan(context.Background(), store, 9, func(uint64, wal.Entry) error { return nil }); err == nil || !strings.Contains(err.Error(), victim) {
				t.Errorf("Scan: %v", err)
			}
		})
	}
}

// faultyStore is a real directory store whose Puts can be made to fail or
// to hang (ignoring cancellation, like a stuck connection), to simulate an
// unreachable object store.
type faultyStore struct {
	objstore.Store
	down   atomic.Bool
	hang   chan struct{} // when set, Put blocks until it is closed
	failed atomic.Int64
	mu     sync.Mutex
}

func (s *faultyStore) Put(ctx context.Context, key string, data []byte) error {
	s.mu.Lock()
	hang := s.hang
	s.mu.Unlock()
	if hang != nil {
		<-hang
		return errors.New("faulty store: connection reset after hanging")
	}
	if s.down.Load() {
		s.failed.Add(1)
		return errors.New("faulty store: connection refused")
	}
	return s.Store.Put(ctx, key, data)
}

// TestStoreOutage: while Puts fail nothing is acknowledged, Appends queue
// until MaxPending and then block (backpressure), Sync waits; when the store
// returns, everything queued is put in order and acknowledged.
func TestStoreOutage(t *testing.T) {
	store := &faultyStore{Store: dirStore(t)}
	const maxPending = 64 << 10
	w := openT(t, store, 4, Options{FlushInterval: time.Millisecond, FlushBytes: 8 << 10, MaxPending: maxPending})
	a := &acks{t: t}
	appendN(t, w, a, 0, 20)
	a.wait(t, 5*time.Second)

	store.down.Store(true)
	// Appends continue until MaxPending bytes wait, then one blocks.
	appended := make(chan int, 1000)
	go func() {
		for i := 20; i < 1000; i++ {
			if w.Append(testEntry(i), a.done()) == 0 {
				t.Errorf("Append %d rejected", i)
			}
			appended <- i
		}
		close(appended)
	}()
	synced := make(chan error, 1)
	time.Sleep(300 * time.Millisecond)
	go func() { synced <- w.Sync() }()
	time.Sleep(300 * time.Millisecond)
	if n := a.count(); n != 20 {
		t.Fatalf("%d callbacks while the store is down, want the 20 from before", n)
	}
	if n := len(appended); n == 0 || n >= 980 {
		t.Fatalf("%d of 980 Appends returned during the outage; want some, then backpressure", n)
	}
	select {
	case err := <-synced:
		t.Fatalf("Sync returned during the outage: %v", err)
	default:
	}
	if store.failed.Load() < 3 {
		t.Fatalf("only %d failed Puts: not retrying", store.failed.Load())
	}
	t.Logf("outage: %d Appends queued before backpressure, %d Puts failed", len(appended), store.failed.Load())

	store.down.Store(false)
	for range appended {
	}
	a.wait(t, 10*time.Second)
	if err := <-synced; err != nil {
		t.Fatalf("Sync after recovery: %v", err)
	}
	for i, err := range a.errs {
		if err != nil {
			t.Fatalf("callback %d failed: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2 := openT(t, store, 4, Options{})
	checkRecords(t, replayAll(t, w2), 1, 0, 1000)
}

// TestCloseWithStoreDown: Close gives up after CloseTimeout, answers every
// queued entry with an error, and returns one; a store that ignores
// cancellation cannot hold it longer. The next Open replays only what was
// acknowledged.
func TestCloseWithStoreDown(t *testing.T) {
	for _, hang := range []bool{false, true} {
		t.Run(fmt.Sprintf("hang=%v", hang), func(t *testing.T) {
			store := &faultyStore{Store: dirStore(t)}
			w, err := Open(context.Background(), store, 6, quiet(Options{FlushInterval: time.Millisecond, CloseTimeout: 300 * time.Millisecond}))
			if err != nil {
				t.Fatal(err)
			}
			a := &acks{t: t}
			appendN(t, w, a, 0, 10)
			a.wait(t, 5*time.Second)

			release := make(chan struct{})
			defer close(release)
			if hang {
				store.mu.Lock()
				store.hang = release
				store.mu.Unlock()
			} else {
				store.down.Store(true)
			}
			late := &acks{t: t}
			appendN(t, w, late, 10, 30)
			time.Sleep(50 * time.Millisecond)
			start := time.Now()
			err = w.Close()
			took := time.Since(start)
			if err == nil || !strings.Contains(err.Error(), "close deadline") {
				t.Fatalf("Close = %v, want the give-up error", err)
			}
			if took > 2*time.Second {
				t.Errorf("Close took %v with CloseTimeout 300ms", took)
			}
			late.wait(t, time.Second)
			for i, e := range late.errs {
				if e == nil {
					t.Errorf("entry %d acknowledged although its chunk was never put", 10+i)
				}
			}
			rejected := make(chan error, 1)
			if s := w.Append(testEntry(99), func(_ uint64, err error) { rejected <- err }); s != 0 {
				t.Errorf("Append after Close got seq %d", s)
			}
			if err := <-rejected; !errors.Is(err, wal.ErrClosed) {
				t.Errorf("Append after Close: %v", err)
			}
			if err := w.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}

			store.down.Store(false)
			store.mu.Lock()
			store.hang = nil
			store.mu.Unlock()
			w2 := openT(t, store, 6, Options{})
			checkRecords(t, replayAll(t, w2), 1, 0, 10)
		})
	}
}

// TestScanOtherBroker: Brokers lists every broker with chunks, and Scan
// reads another broker's chunks, in order, while that broker still runs.
func TestScanOtherBroker(t *testing.T) {
	store := dirStore(t)
	w1 := openT(t, store, 1, Options{FlushInterval: time.Millisecond, FlushBytes: 4 << 10})
	w2 := openT(t, store, 12, Options{FlushInterval: time.Millisecond, FlushBytes: 4 << 10})
	openT(t, store, 30, Options{}) // no chunks: not listed
	a1, a2 := &acks{t: t}, &acks{t: t}
	appendN(t, w1, a1, 0, 50)
	appendN(t, w2, a2, 1000, 1200)
	a1.wait(t, 10*time.Second)
	a2.wait(t, 10*time.Second)
	// Segment objects and stray keys beside the WAL are not brokers.
	ctx := context.Background()
	if err := store.Put(ctx, "segments/0000-x.seg", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, "wal/notabroker/00000000000000000001", []byte("x")); err != nil {
		t.Fatal(err)
	}

	ids, err := Brokers(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ids) != "[1 12]" {
		t.Fatalf("Brokers = %v, want [1 12]", ids)
	}
	var recs []record
	if err := Scan(ctx, store, 12, func(seq uint64, e wal.Entry) error {
		recs = append(recs, record{seq, e})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if !sameEntry(recs[i].e, testEntry(1000+i)) || recs[i].seq != uint64(i+1) {
			t.Fatalf("Scan entry %d: seq %d", i, recs[i].seq)
		}
	}
	if len(recs) != 200 {
		t.Fatalf("Scan returned %d entries, want 200", len(recs))
	}
	calls := 0
	if err := Scan(ctx, store, 30, func(uint64, wal.Entry) error { calls++; return nil }); err != nil || calls != 0 {
		t.Fatalf("Scan of a broker without chunks: %d calls, %v", calls, err)
	}
	// The owner continues undisturbed.
	if s := w2.Append(testEntry(1200), nil); s != 201 {
		t.Fatalf("owner's next seq %d, want 201", s)
	}
}

func TestOpenRejectsNegativeBroker(t *testing.T) {
	if _, err := Open(context.Background(), dirStore(t), -1, quiet(Options{})); err == nil {
		t.Fatal("Open with broker -1 succeeded")
	}
}

// TestIncarnationsDoNotCollide: two WALs of one broker id (a restarted
// broker while the old process still runs) write at the same seqs into
// different objects, and ScanBroker reads both.
func TestIncarnationsDoNotCollide(t *testing.T) {
	store, err := objstore.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var ws []*WAL
	for range 2 {
		w, err := Open(ctx, store, 5, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	for i, w := range ws {
		done := make(chan error, 1)
		w.Append(wal.Entry{Topic: "t", Partition: int32(i), Data: []byte{byte(i)}}, func(_ uint64, err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	keys := chunkKeys(t, store, 5)
	if len(keys) != 2 {
		t.Fatalf("chunks %v: want one per incarnation, both at seq 1", keys)
	}
	parts := map[int32]bool{}
	if err := ScanBroker(ctx, store, 5, func(_ string, seq uint64, e wal.Entry) error {
		if seq != 1 {
			t.Errorf("seq %d, want 1", seq)
		}
		parts[e.Partition] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !parts[0] || !parts[1] {
		t.Fatalf("scanned entries of partitions %v, want both incarnations' entries", parts)
	}
	if _, ok := parseChunkKey("wal/0000000005/", "wal/0000000005/00000000000000000001"); !ok {
		t.Error("a key without an incarnation suffix is not parsed")
	}
	if _, ok := parseChunkKey("wal/0000000005/", "wal/0000000005/00000000000000000001-"); ok {
		t.Error("a key with an empty incarnation is parsed")
	}
}

// flakyStore fails every other read (GetRange, List) with a transient
// error, as a throttling S3 does with 503 SlowDown.
type flakyStore struct {
	objstore.Store
	mu    sync.Mutex
	reads int
}

var errSlowDown = errors.New("503 SlowDown: Please reduce your request rate")

func (f *flakyStore) flake() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.reads%2 == 1 {
		return errSlowDown
	}
	return nil
}

func (f *flakyStore) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := f.flake(); err != nil {
		return nil, err
	}
	return f.Store.GetRange(ctx, key, off, length)
}

func (f *flakyStore) List(ctx context.Context, prefix string) ([]objstore.Object, error) {
	if err := f.flake(); err != nil {
		return nil, err
	}
	return f.Store.List(ctx, prefix)
}

// TestReadsRideOutThrottling is the regression test of a finding of the
// chaos campaign: with the store answering some reads 503 SlowDown, a
// restarting broker failed to start ("replay WAL: read chunk ...: Please
// reduce your request rate") and takeovers gave up at the first chunk
// they could not read. Opening, replaying and scanning must retry a read
// that fails now and then.
func TestReadsRideOutThrottling(t *testing.T) {
	dir := dirStore(t)
	w := openT(t, dir, 3, Options{FlushInterval: time.Millisecond, FlushBytes: 1 << 10})
	a := &acks{t: t}
	const n = 200
	appendN(t, w, a, 0, n)
	a.wait(t, 10*time.Second)

	store := &flakyStore{Store: dir}
	w2, err := Open(context.Background(), store, 3, quiet(Options{}))
	if err != nil {
		t.Fatalf("Open over a throttling store: %v", err)
	}
	defer w2.Close()
	checkRecords(t, replayAll(t, w2), 1, 0, n)
	var scanned int
	if err := ScanAll(context.Background(), store, func(wal.Entry) error { scanned++; return nil }); err != nil {
		t.Fatalf("ScanAll over a throttling store: %v", err)
	}
	if scanned != n {
		t.Fatalf("ScanAll saw %d entries, want %d", scanned, n)
	}
}
