package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/meta/boltstore"
	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/partition"
	"github.com/vigilhq/vigil/internal/producer"
)

// txnEngine is an engine over dir with a file WAL that syncs, uploading
// only when the test says so (or at Close).
type txnEngine struct {
	t     *testing.T
	e     *Engine
	close func()
}

func openTxnEngine(t *testing.T, dir string, compactTarget int64) *txnEngine {
	t.Helper()
	ctx := context.Background()
	ms, err := boltstore.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := objstore.Open(ctx, filepath.Join(dir, "objects"), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open(ctx, ms, objs, Options{WALDir: filepath.Join(dir, "wal"), WALSync: true, UploadInterval: time.Hour,
		RetentionInterval: time.Hour, SegmentBytes: 1 << 30, TailCacheBytes: 0, CompactTargetBytes: compactTarget,
		RetentionMs: -1, RetentionBytes: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	x := &txnEngine{t: t, e: e}
	x.close = func() {
		if closed {
			return
		}
		closed = true
		if err := e.Close(); err != nil {
			t.Error(err)
		}
		objs.Close()
		ms.Close()
	}
	t.Cleanup(x.close)
	return x
}

func (x *txnEngine) log(topic string) (*Topic, *partition.Log) {
	top := x.e.Topic(topic)
	if top == nil {
		x.t.Fatalf("no topic %s", topic)
	}
	return top, top.Logs[0]
}

// produce appends records (keys k0.. with value v) as one batch of
// producer pid (-1: a plain batch), transactional if txn, and returns its
// base offset or the error.
func (x *txnEngine) produce(topic string, pid int64, epoch int16, seq int32, txn bool, kvs ...string) (int64, error) {
	x.t.Helper()
	var recs []batch.KV
	for i := 0; i+1 < len(kvs); i += 2 {
		recs = append(recs, batch.KV{Key: []byte(kvs[i]), Value: []byte(kvs[i+1])})
	}
	raw := batch.Build(recs, time.Now().UnixMilli())
	if pid >= 0 {
		raw = batch.BuildTxn(recs, time.Now().UnixMilli(), pid, epoch, seq)
		if !txn {
			// The producer's idempotent, non-transactional batch.
			raw[22] &^= 0x10
			binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
		}
	}
	hs, err := batch.Split(raw)
	if err != nil {
		x.t.Fatal(err)
	}
	top, l := x.log(topic)
	ch := make(chan struct {
		off int64
		err error
	}, 1)
	x.e.Produce(top, l, &hs[0], func(off int64, err error) {
		ch <- struct {
			off int64
			err error
		}{off, err}
	})
	r := <-ch
	return r.off, r.err
}

func (x *txnEngine) mustProduce(topic string, pid int64, epoch int16, seq int32, txn bool, kvs ...string) int64 {
	x.t.Helper()
	off, err := x.produce(topic, pid, epoch, seq, txn, kvs...)
	if err != nil {
		x.t.Fatal(err)
	}
	return off
}

func (x *txnEngine) marker(topic string, m Marker) (int64, error) {
	top, l := x.log(topic)
	ch := make(chan struct {
		off int64
		err error
	}, 1)
	x.e.AppendMarker(top, l, m, func(off int64, err error) {
		ch <- struct {
			off int64
			err error
		}{off, err}
	})
	r := <-ch
	return r.off, r.err
}

func (x *txnEngine) mustMarker(topic string, pid int64, epoch int16, commit bool) int64 {
	x.t.Helper()
	off, err := x.marker(topic, Marker{ProducerID: pid, Epoch: epoch, Commit: commit})
	if err != nil {
		x.t.Fatal(err)
	}
	return off
}

func (x *txnEngine) upload() {
	x.t.Helper()
	if err := x.e.upload(context.Background()); err != nil {
		x.t.Fatal(err)
	}
}

// copyDisk copies a running engine's directory, as a crash would leave it.
func copyDisk(t *testing.T, dir string) string {
	t.Helper()
	crashed := t.TempDir()
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	return crashed
}

type stored struct {
	off     int64
	key     string
	control bool
	pid     int64
}

// records reads every batch of the log from its start, through objects
// and memory.
func records(t *testing.T, l *partition.Log) []stored {
	t.Helper()
	ls, _ := l.Offsets()
	res, err := l.Read(context.Background(), ls, 1<<30, true)
	if err != nil {
		t.Fatal(err)
	}
	var out []stored
	for data := res.Data; len(data) > 0; {
		info, err := batch.Peek(data)
		if err != nil {
			t.Fatal(err)
		}
		rb, recs, err := batch.Records(data[:info.Size], nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			out = append(out, stored{rb.FirstOffset + int64(r.OffsetDelta), string(r.Key), info.IsControl(), rb.ProducerID})
		}
		data = data[info.Size:]
	}
	return out
}

// TestTransactionsAcrossRestart: the LSO, the open transactions and the
// aborted index are rebuilt after a crash (from the WAL over the
// snapshot and index of the last upload) and after a clean close (from
// segment objects and producer snapshots), and the producers' rules hold
// on: a plain batch inside a transaction is still refused.
func TestTransactionsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	x := openTxnEngine(t, dir, 0)
	if _, err := x.e.CreateTopic(context.Background(), "tx", 1, nil); err != nil {
		t.Fatal(err)
	}
	x.mustProduce("tx", -1, 0, 0, false, "a", "1")     // 0
	a1 := x.mustProduce("tx", 5, 0, 0, true, "b", "2") // 1: producer 5
	x.mustProduce("tx", -1, 0, 0, false, "c", "3")     // 2
	x.mustProduce("tx", 6, 0, 0, true, "d", "4")       // 3: producer 6
	m1 := x.mustMarker("tx", 5, 0, false)              // 4: abort 5
	x.upload()                                         // 0-4 in an object, with its aborted index
	open5 := x.mustProduce("tx", 5, 0, 1, true, "e", "5")
	x.mustMarker("tx", 6, 0, true) // commit 6
	a3 := x.mustProduce("tx", 7, 3, 0, true, "f", "6", "g", "7")
	m3 := x.mustMarker("tx", 7, 3, false)
	wantAborted := []partition.AbortedTxn{{ProducerID: 5, FirstOffset: a1, LastOffset: m1}, {ProducerID: 7, FirstOffset: a3, LastOffset: m3}}
	check := func(x *txnEngine, what string) {
		t.Helper()
		_, l := x.log("tx")
		if lso := l.LSO(); lso != open5 {
			t.Fatalf("%s: LSO %d, want %d (producer 5's open transaction)", what, lso, open5)
		}
		if got := l.AbortedTxns(0, 100); !reflect.DeepEqual(got, wantAborted) {
			t.Fatalf("%s: aborted index %v, want %v", what, got, wantAborted)
		}
		if got := l.OngoingTxns(); len(got) != 1 || got[0].ID != 5 || got[0].First != open5 {
			t.Fatalf("%s: ongoing %v", what, got)
		}
		if _, err := x.produce("tx", 5, 0, 2, false, "h", "8"); !errors.Is(err, producer.ErrInvalidTxnState) {
			t.Fatalf("%s: plain batch of producer 5 in its transaction: %v", what, err)
		}
	}
	check(x, "live")
	crashed := copyDisk(t, dir)
	x.close()

	t.Run("after crash", func(t *testing.T) {
		y := openTxnEngine(t, crashed, 0)
		check(y, "recovered from the WAL")
		// The transaction can still end, and a late marker of the
		// producer's old epoch is refused.
		m := y.mustMarker("tx", 5, 1, false)
		if _, err := y.marker("tx", Marker{ProducerID: 5, Epoch: 0}); !errors.Is(err, producer.ErrInvalidEpoch) {
			t.Fatalf("marker of a fenced epoch: %v", err)
		}
		_, l := y.log("tx")
		if got := l.AbortedTxns(m, m); len(got) != 1 || got[0] != (partition.AbortedTxn{ProducerID: 5, FirstOffset: open5, LastOffset: m}) {
			t.Fatalf("after the abort: %v", got)
		}
		if lso, hw := l.LSO(), hwOf(l); lso != hw {
			t.Fatalf("LSO %d with no transaction open, HW %d", lso, hw)
		}
	})
	t.Run("after clean close", func(t *testing.T) {
		y := openTxnEngine(t, dir, 0)
		check(y, "read from objects")
		_, l := y.log("tx")
		var persisted []partition.AbortedTxn
		for _, s := range l.Segments() {
			persisted = append(persisted, s.Aborted...)
		}
		if !reflect.DeepEqual(persisted, wantAborted) {
			t.Fatalf("index entries hold %v, want %v", persisted, wantAborted)
		}
	})
}

// TestAbortedIndexThroughCompactionAndRetention: merged runs keep the
// union of their aborted indexes; retention drops the entries of the runs
// it deletes.
func TestAbortedIndexThroughCompactionAndRetention(t *testing.T) {
	dir := t.TempDir()
	x := openTxnEngine(t, dir, 1<<20)
	if _, err := x.e.CreateTopic(context.Background(), "tx", 1, nil); err != nil {
		t.Fatal(err)
	}
	var want []partition.AbortedTxn
	for i := range 6 {
		pid := int64(10 + i)
		first := x.mustProduce("tx", pid, 0, 0, true, "k", "v")
		m := x.mustMarker("tx", pid, 0, i%2 == 1)
		if i%2 == 0 {
			want = append(want, partition.AbortedTxn{ProducerID: pid, FirstOffset: first, LastOffset: m})
		}
		x.upload()
	}
	_, l := x.log("tx")
	if n := len(l.Segments()); n != 6 {
		t.Fatalf("%d index entries before compaction", n)
	}
	if n, err := x.e.Compact(context.Background()); err != nil || n != 6 {
		t.Fatalf("Compact = %d, %v", n, err)
	}
	segs := l.Segments()
	if len(segs) != 1 || !reflect.DeepEqual(segs[0].Aborted, want) || !reflect.DeepEqual(l.AbortedTxns(0, 100), want) {
		t.Fatalf("after compaction: %d entries, aborted %v (index %v), want %v", len(segs), segs[0].Aborted, l.AbortedTxns(0, 100), want)
	}
	stored, err := x.e.meta.Segments(context.Background(), "tx", 0)
	if err != nil || len(stored) != 1 || !reflect.DeepEqual(stored[0].Aborted, want) {
		t.Fatalf("stored index after compaction: %v, %v", stored, err)
	}
	// A later run, then retention deletes the merged one.
	last := x.mustProduce("tx", 20, 0, 0, true, "k", "v")
	lm := x.mustMarker("tx", 20, 0, false)
	x.upload()
	top, _ := x.log("tx")
	if _, err := x.e.SetLogStart(context.Background(), top, l, last); err != nil {
		t.Fatal(err)
	}
	if n, err := x.e.EnforceRetention(context.Background(), time.Now()); err != nil || n != 1 {
		t.Fatalf("EnforceRetention = %d, %v", n, err)
	}
	if got := l.AbortedTxns(0, 100); !reflect.DeepEqual(got, []partition.AbortedTxn{{ProducerID: 20, FirstOffset: last, LastOffset: lm}}) {
		t.Fatalf("after retention: %v", got)
	}
}

// TestCleanerTransactions: Kafka's cleaner rules. An aborted record never
// supersedes a committed one and goes; its abort marker stays (with its
// index entry) in the pass that removed its data; the next pass drops the
// entry and stamps the marker's delete horizon (KIP-534), and a pass past
// that horizon removes the marker; a commit marker stays while its data
// does; nothing at or after the LSO is cleaned.
func TestCleanerTransactions(t *testing.T) {
	dir := t.TempDir()
	x := openTxnEngine(t, dir, 0)
	cfg := map[string]string{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0", "delete.retention.ms": "0"}
	if _, err := x.e.CreateTopic(context.Background(), "cx", 1, cfg); err != nil {
		t.Fatal(err)
	}
	x.mustProduce("cx", -1, 0, 0, false, "k", "committed")       // 0
	x.mustProduce("cx", 5, 0, 0, true, "k", "aborted", "j", "a") // 1-2
	abortAt := x.mustMarker("cx", 5, 0, false)                   // 3
	x.mustProduce("cx", 6, 0, 0, true, "m", "mine")              // 4
	commitAt := x.mustMarker("cx", 6, 0, true)                   // 5
	openAt := x.mustProduce("cx", 7, 0, 0, true, "o", "open")    // 6: still open
	x.upload()
	_, l := x.log("cx")
	keys := func() map[int64]string {
		m := map[int64]string{}
		for _, r := range records(t, l) {
			if r.control {
				m[r.off] = "marker"
			} else {
				m[r.off] = r.key
			}
		}
		return m
	}
	// Each pass a second after the last: with a zero delete.retention.ms
	// a pass is past the horizons the one before stamped.
	now := time.Now()
	clean := func() {
		t.Helper()
		now = now.Add(time.Second)
		if _, err := x.e.Clean(context.Background(), now); err != nil {
			t.Fatal(err)
		}
	}
	// The open transaction holds the LSO at 6: the run ending at 6 is not
	// cleanable at all.
	clean()
	if got := keys(); len(got) != 7 {
		t.Fatalf("cleaned past the LSO: %v", got)
	}
	x.mustMarker("cx", 7, 0, true) // 7
	x.mustProduce("cx", -1, 0, 0, false, "z", "tail")
	x.upload()
	clean()
	got := keys()
	// The aborted k at 1 superseded nothing (offset 0 stays) and went.
	want := map[int64]string{0: "k", abortAt: "marker", 4: "m", commitAt: "marker", openAt: "o", 7: "marker", 8: "z"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after the first pass: %v, want %v", got, want)
	}
	if a := l.AbortedTxns(0, 100); len(a) != 1 || a[0].LastOffset != abortAt {
		t.Fatalf("aborted index after the pass that removed its data: %v", a)
	}
	// The next pass meets no data of the aborted transaction: its index
	// entry goes and its marker is stamped, not removed: a consumer that
	// has not reached it yet still sees the transaction end.
	x.mustProduce("cx", -1, 0, 0, false, "y", "more")
	x.upload()
	clean()
	got = keys()
	if got[abortAt] != "marker" {
		t.Fatalf("abort marker removed in the pass that found its data gone: %v", got)
	}
	if h, ok := deleteHorizonAt(t, l, abortAt); !ok || h != now.UnixMilli() {
		t.Fatalf("abort marker's delete horizon %d (stamped %v), want the pass's time %d", h, ok, now.UnixMilli())
	}
	if a := l.AbortedTxns(0, 100); len(a) != 0 {
		t.Fatalf("aborted index after the marker's data went: %v", a)
	}
	// A pass past the horizon removes it. The commit marker stays while
	// "m" does, never stamped.
	x.mustProduce("cx", -1, 0, 0, false, "x", "more")
	x.upload()
	clean()
	got = keys()
	if _, ok := got[abortAt]; ok {
		t.Fatalf("abort marker kept past its delete horizon: %v", got)
	}
	if got[commitAt] != "marker" || got[4] != "m" {
		t.Fatalf("commit marker or its data went: %v", got)
	}
	if _, ok := deleteHorizonAt(t, l, commitAt); ok {
		t.Fatal("a commit marker whose data remains was stamped")
	}
}

// deleteHorizonAt reads the delete horizon of the stored batch at off.
func deleteHorizonAt(t *testing.T, l *partition.Log, off int64) (int64, bool) {
	t.Helper()
	ls, _ := l.Offsets()
	res, err := l.Read(context.Background(), ls, 1<<30, true)
	if err != nil {
		t.Fatal(err)
	}
	for data := res.Data; len(data) > 0; {
		info, err := batch.Peek(data)
		if err != nil {
			t.Fatal(err)
		}
		if info.BaseOffset == off {
			return batch.DeleteHorizon(data[:info.Size])
		}
		data = data[info.Size:]
	}
	t.Fatalf("no batch at offset %d", off)
	return 0, false
}

func hwOf(l *partition.Log) int64 {
	_, hw := l.Offsets()
	return hw
}

// TestCleanerMapsAfterCleanAbort: an aborted transaction wholly in the
// clean section does not make the producer's next, committed transaction
// look aborted to the offset map: its records still supersede older ones.
func TestCleanerMapsAfterCleanAbort(t *testing.T) {
	x := openTxnEngine(t, t.TempDir(), 0)
	cfg := map[string]string{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0", "delete.retention.ms": "86400000"}
	if _, err := x.e.CreateTopic(context.Background(), "cm", 1, cfg); err != nil {
		t.Fatal(err)
	}
	old := x.mustProduce("cm", -1, 0, 0, false, "k", "old")
	x.mustProduce("cm", 5, 0, 0, true, "x", "aborted")
	x.mustMarker("cm", 5, 0, false)
	x.upload()
	if _, err := x.e.Clean(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	x.mustProduce("cm", 5, 0, 1, true, "k", "new")
	x.mustMarker("cm", 5, 0, true)
	x.mustProduce("cm", -1, 0, 0, false, "z", "z")
	x.upload()
	if _, err := x.e.Clean(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	_, l := x.log("cm")
	for _, r := range records(t, l) {
		if r.off == old {
			t.Fatalf("k=old at %d survived the committed k=new: %v", old, records(t, l))
		}
	}
}
