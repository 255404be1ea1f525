package txn

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/meta/boltstore"
	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/producer"
	"github.com/vigilhq/vigil/internal/storage"
)

// recMarkers records the markers written. It fails the next failN writes,
// and while block is set every write waits for it (or for ctx: a crash
// mid-commit is a coordinator closed while its markers wait).
type recMarkers struct {
	mu       sync.Mutex
	failN    int
	block    chan struct{}
	attempts int
	writes   []Marker
	wrote    chan struct{} // a token per successful write
}

func newRecMarkers() *recMarkers { return &recMarkers{wrote: make(chan struct{}, 1024)} }

func (r *recMarkers) Write(ctx context.Context, m Marker) error {
	r.mu.Lock()
	r.attempts++
	if r.failN > 0 {
		r.failN--
		r.mu.Unlock()
		return errors.New("injected marker failure")
	}
	block := r.block
	r.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	r.writes = append(r.writes, m)
	r.mu.Unlock()
	r.wrote <- struct{}{}
	return nil
}

func (r *recMarkers) hold() {
	r.mu.Lock()
	r.block = make(chan struct{})
	r.mu.Unlock()
}

func (r *recMarkers) release() {
	r.mu.Lock()
	close(r.block)
	r.block = nil
	r.mu.Unlock()
}

func (r *recMarkers) failNext(n int) {
	r.mu.Lock()
	r.failN = n
	r.mu.Unlock()
}

func (r *recMarkers) written() []Marker {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.writes)
}

// env is a coordinator over a real storage engine (bbolt, a directory
// object store, the file WAL) in a directory that outlives restarts.
type env struct {
	t    *testing.T
	dir  string
	cfg  Config
	ms   *boltstore.Store
	objs objstore.Store
	e    *storage.Engine
	it   *storage.InternalTopic
	mk   *recMarkers
	gl   *gatedLog
	c    *Coordinator
	down bool

	marked int // markRecords
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testConfig: 4 state partitions, timers off (tests drive them), fast
// marker retries.
func testConfig() Config {
	return Config{Partitions: 4, AbortInterval: -1, IDExpirationCheck: -1, MarkerBackoff: 5 * time.Millisecond, Logger: quiet}
}

// openEnv opens the engine in dir (creating the data topics t1, t2 and
// t3 on first use), the state log, and a loaded coordinator.
func openEnv(t *testing.T, dir string, cfg Config, mk *recMarkers) *env {
	t.Helper()
	ev := &env{t: t, dir: dir, cfg: cfg, mk: mk}
	ev.openEngine()
	ev.c = ev.newCoordinator()
	if err := ev.c.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ev.shutdown)
	return ev
}

func (ev *env) openEngine() {
	t := ev.t
	ctx := context.Background()
	var err error
	if ev.ms, err = boltstore.Open(filepath.Join(ev.dir, "meta.db")); err != nil {
		t.Fatal(err)
	}
	if ev.objs, err = objstore.Open(ctx, filepath.Join(ev.dir, "objects"), objstore.Options{}); err != nil {
		t.Fatal(err)
	}
	ev.e, err = storage.Open(ctx, ev.ms, ev.objs, storage.Options{WALDir: filepath.Join(ev.dir, "wal"), WALSync: true,
		UploadInterval: 20 * time.Millisecond, SegmentBytes: 1 << 20, TailCacheBytes: 1 << 10, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range []struct {
		name string
		n    int32
	}{{"t1", 3}, {"t2", 2}, {"t3", 1}, {OffsetsTopic, 8}} {
		if ev.e.Topic(tp.name) == nil {
			if _, err := ev.e.CreateTopic(ctx, tp.name, tp.n, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ev.it, err = OpenLog(ctx, ev.e, ev.cfg); err != nil {
		t.Fatal(err)
	}
	ev.down = false
}

func (ev *env) newCoordinator() *Coordinator {
	ev.gl = &gatedLog{Log: ev.it}
	return New(ev.cfg, Deps{Log: ev.gl, IDs: producer.NewIDs(ev.ms), Markers: ev.mk, Topics: ev.e,
		OffsetsPartitionFor: func(g string) (int32, bool) { return PartitionFor(g, 8), true }})
}

// shutdown closes the coordinator, then the engine (which flushes and
// uploads everything: what a restart then reads is the objects).
func (ev *env) shutdown() {
	if ev.down {
		return
	}
	ev.down = true
	ev.c.Close()
	if err := ev.e.Close(); err != nil {
		ev.t.Error(err)
	}
	ev.objs.Close()
	ev.ms.Close()
}

// restart is a crash of the coordinator and a restart of the broker: the
// coordinator is closed wherever it was (markers in flight are abandoned),
// the engine reopened, and a new coordinator loads the state log with the
// markers mk.
func (ev *env) restart(mk *recMarkers) {
	ev.shutdown()
	ev.mk = mk
	ev.openEngine()
	ev.c = ev.newCoordinator()
	if err := ev.c.Load(context.Background()); err != nil {
		ev.t.Fatal(err)
	}
}

// inject appends a transactional id's state straight to the state log, as
// an older coordinator would have left it (for states only reachable
// after thousands of transactions, such as an exhausted epoch). Call
// restart afterwards to load it.
func (ev *env) inject(id string, t transit) {
	ev.t.Helper()
	if t.parts == nil {
		t.parts = partSet{}
	}
	ch := make(chan error, 1)
	ev.it.Append(PartitionFor(id, ev.it.Partitions()), []batch.KV{{Key: keyBytes(id), Value: valueBytes(&t)}},
		func(_ int64, err error) { ch <- err })
	if err := <-ch; err != nil {
		ev.t.Fatal(err)
	}
}

func (ev *env) describe(id string) kmsg.DescribeTransactionsResponseTransactionState {
	return ev.c.Describe([]string{id})[0]
}

// waitState waits until id is in state s (markers complete in the
// background).
func (ev *env) waitState(id string, s State) kmsg.DescribeTransactionsResponseTransactionState {
	ev.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := ev.describe(id)
		if d.ErrorCode == 0 && d.State == s.String() {
			return d
		}
		if time.Now().After(deadline) {
			ev.t.Fatalf("%s: state %s (code %v), want %s", id, d.State, kerr.ErrorForCode(d.ErrorCode), s)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// pending reports whether id has a transition in flight (markers being
// written, or an append).
func (ev *env) pending(id string) bool {
	ev.c.mu.Lock()
	defer ev.c.mu.Unlock()
	m := ev.c.txns[id]
	return m != nil && m.pending != none
}

func (ev *env) waitIdle(id string) {
	ev.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for ev.pending(id) {
		if time.Now().After(deadline) {
			ev.t.Fatalf("%s: a transition stays pending", id)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// gatedLog is the real state log with its durability callbacks held back
// on demand (an append in flight for as long as a test wants), or appends
// refused with an error.
type gatedLog struct {
	Log
	runMu   sync.Mutex // callbacks run one at a time, in order
	mu      sync.Mutex
	held    bool
	queue   []func()
	failN   int
	failErr error
}

func (g *gatedLog) Append(p int32, recs []batch.KV, done func(int64, error)) {
	g.mu.Lock()
	if g.failN > 0 {
		g.failN--
		err := g.failErr
		g.mu.Unlock()
		done(0, err)
		return
	}
	g.mu.Unlock()
	g.Log.Append(p, recs, func(first int64, err error) {
		g.mu.Lock()
		if g.held || len(g.queue) > 0 {
			g.queue = append(g.queue, func() { done(first, err) })
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		g.runMu.Lock()
		defer g.runMu.Unlock()
		done(first, err)
	})
}

func (g *gatedLog) hold() {
	g.mu.Lock()
	g.held = true
	g.mu.Unlock()
}

func (g *gatedLog) fail(n int, err error) {
	g.mu.Lock()
	g.failN, g.failErr = n, err
	g.mu.Unlock()
}

// waitQueued waits until n durability callbacks are held.
func (g *gatedLog) waitQueued(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.mu.Lock()
		q := len(g.queue)
		g.mu.Unlock()
		if q >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d appends held, want %d", q, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// release runs the first n held callbacks, in order; all: -1, which also
// stops holding.
func (g *gatedLog) release(n int) {
	g.runMu.Lock()
	defer g.runMu.Unlock()
	g.mu.Lock()
	if n < 0 {
		n = len(g.queue)
		g.held = false
	}
	run := g.queue[:n]
	g.queue = slices.Clone(g.queue[n:])
	g.mu.Unlock()
	for _, fn := range run {
		fn()
	}
}

var ctx = context.Background()

func codeName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if err := kerr.ErrorForCode(code); err != nil {
		return err.Error()
	}
	return "?"
}

// producerAt is what a producer holds.
type producerAt struct {
	pid   int64
	epoch int16
}

func (ev *env) init(id string) producerAt {
	ev.t.Helper()
	pid, epoch, code := ev.c.InitProducerID(ctx, id, 60000, -1, -1)
	if code != 0 {
		ev.t.Fatalf("InitProducerId %s: %s", id, codeName(code))
	}
	return producerAt{pid, epoch}
}

func (ev *env) add(id string, p producerAt, parts ...TopicPartition) {
	ev.t.Helper()
	if code := ev.c.AddPartitions(ctx, id, p.pid, p.epoch, parts); code != 0 {
		ev.t.Fatalf("AddPartitions %s: %s", id, codeName(code))
	}
}

// end ends the transaction and returns what the producer holds after.
func (ev *env) end(id string, p producerAt, commit, v2 bool) producerAt {
	ev.t.Helper()
	pid, epoch, code := ev.c.EndTxn(ctx, id, p.pid, p.epoch, commit, v2)
	if code != 0 {
		ev.t.Fatalf("EndTxn %s: %s", id, codeName(code))
	}
	if v2 {
		return producerAt{pid, epoch}
	}
	return p
}

var (
	t1p0 = TopicPartition{"t1", 0}
	t1p1 = TopicPartition{"t1", 1}
	t2p1 = TopicPartition{"t2", 1}
	t3p0 = TopicPartition{"t3", 0}
)
