// Package storage ties the write path together: the topics and their
// partition logs, the write-ahead log, the background uploader that turns
// WAL contents into segment objects and commits their index to the
// metadata store, and recovery after a restart.
package storage

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/objwal"
	"github.com/vigilhq/vigil/internal/partition"
	"github.com/vigilhq/vigil/internal/producer"
	"github.com/vigilhq/vigil/internal/readcache"
	"github.com/vigilhq/vigil/internal/segment"
	"github.com/vigilhq/vigil/internal/wal"
)

// Errors mapped to Kafka error codes by the broker.
var (
	ErrUnknownTopic = errors.New("storage: unknown topic or partition")
	ErrTopicExists  = errors.New("storage: topic already exists")
)

// Options configure an Engine.
type Options struct {
	// WAL is the write-ahead log kind: "file" (or "") keeps it in WALDir,
	// "object" puts it as chunk objects in WALStore under BrokerID's
	// prefix, group-committed every WALFlushInterval or WALFlushBytes.
	WAL              string
	WALDir           string
	WALSync          bool
	WALStore         objstore.Store // default: the engine's object store
	BrokerID         int32
	WALFlushInterval time.Duration
	WALFlushBytes    int64

	UploadInterval time.Duration
	SegmentBytes   int64
	TailCacheBytes int64
	// RetentionMs and RetentionBytes are the broker defaults of the topic
	// configs retention.ms and retention.bytes (-1: no limit).
	RetentionMs, RetentionBytes int64
	// RetentionInterval is how often retention runs; zero means a minute.
	RetentionInterval time.Duration
	// ObjectDeleteDelay is how long an unreferenced object is kept for reads
	// already in flight.
	ObjectDeleteDelay time.Duration
	// ReadCache bounds catch-up reads of segment objects (block cache,
	// I/O workers, read-ahead); zero values take its defaults.
	ReadCache readcache.Options
	// CompactTargetBytes is the largest object compaction builds; zero
	// turns compaction off.
	CompactTargetBytes int64
	// Observer, if set, is told of WAL commits, uploads, retention,
	// compaction and the cleaner.
	Observer Observer
	// ProducerExpiry is how long an idle producer id keeps its idempotence
	// state (Kafka's producer.id.expiration.ms); zero means one day.
	ProducerExpiry time.Duration
	Logger         *slog.Logger
	// Cluster, if set, runs the engine in cluster mode (see
	// ClusterOptions): it leads no partition until Acquire.
	Cluster *ClusterOptions
}

// Observer receives the engine's activity (metrics).
type Observer interface {
	WALSync(d time.Duration, bytes int64)
	Upload(d time.Duration, bytes int64, err error)
	RetentionDeleted(segments int)
	Compacted(inputs int, bytes int64)
	Cleaned(read, written int64)
}

type noObserver struct{}

func (noObserver) WALSync(time.Duration, int64)       {}
func (noObserver) Upload(time.Duration, int64, error) {}
func (noObserver) RetentionDeleted(int)               {}
func (noObserver) Compacted(int, int64)               {}
func (noObserver) Cleaned(int64, int64)               {}

// Topic is a live topic: its durable description and its partition logs.
type Topic struct {
	meta.Topic
	Logs []*partition.Log
}

// Engine owns the topics and their storage. Safe for concurrent use.
type Engine struct {
	opts Options
	log  *slog.Logger
	meta meta.Store
	objs objstore.Store
	wal  writeAheadLog
	// discardWAL removes the WAL's contents after a clean shutdown has
	// uploaded all of them.
	discardWAL func() error
	// cache serves every read of segment objects (fetch catch-up,
	// timestamp lookups), shared by all partitions.
	cache *readcache.Cache

	// adminMu serializes topic changes (create, delete, update), which
	// call the metadata store; mu guards the maps only, never held across
	// a store call.
	adminMu sync.Mutex
	mu      sync.RWMutex
	topics  map[string]*Topic
	byID    map[[16]byte]*Topic
	// dropped is told of each topic the engine drops; see OnTopicDeleted.
	dropped atomic.Pointer[func(ctx context.Context, name string, partitions int32)]

	upMu    sync.Mutex
	upQueue []queued
	upBytes int64
	upKick  chan struct{}
	// walClosed is set by Close before the final uploads, which then must
	// not trim a closed WAL; only the uploader goroutine or Close read it.
	walClosed bool
	stop      chan struct{}
	done      chan struct{}

	// upProducers is each partition's producer state as of its uploaded
	// data: what the uploader persists. Only the uploader touches it (and
	// Open and Close while the uploader is not running).
	retentionDone chan struct{}
	gcWG          sync.WaitGroup

	// upLock serializes uploads, and leadership changes with them: both
	// touch upProducers and the upload queue's view of a partition.
	upLock      sync.Mutex
	upProducers map[*partition.Log]*producer.State
	// segBuf is the last uploaded object's memory, reused for the next
	// one (under upLock).
	segBuf []byte
	// cl is the cluster state: nil for a single-process broker, which
	// leads every partition.
	cl         *clustered
	lastExpiry time.Time
	pids       *producer.IDs
	// cleaner is the log cleaner of compacted topics (cleaner.go).
	cleaner *cleaner
}

// writeAheadLog is what the engine needs of a WAL; the file WAL
// (internal/wal) and the object WAL (internal/objwal) both provide it.
type writeAheadLog interface {
	Append(e wal.Entry, done func(seq uint64, err error)) uint64
	Replay(fn func(seq uint64, e wal.Entry) error) error
	Sync() error
	// Full is non-nil (wrapping wal.ErrFull) while the WAL refuses new
	// entries for want of space.
	Full() error
	TrimBefore(seq uint64) error
	Close() error
	Stats() wal.Stats
}

var (
	_ writeAheadLog = (*wal.WAL)(nil)
	_ writeAheadLog = (*objwal.WAL)(nil)
)

// openWAL opens the WAL opts ask for.
func (e *Engine) openWAL(ctx context.Context) error {
	opts := e.opts
	switch opts.WAL {
	case "", "file":
		w, err := wal.Open(opts.WALDir, wal.Options{NoSync: !opts.WALSync, Logger: opts.Logger, OnCommit: opts.Observer.WALSync})
		if err != nil {
			return fmt.Errorf("storage: open WAL: %w", err)
		}
		e.wal = w
		e.discardWAL = func() error { return os.RemoveAll(opts.WALDir) }
	case "object":
		store := opts.WALStore
		if store == nil {
			store = e.objs
		}
		w, err := objwal.Open(ctx, store, opts.BrokerID, objwal.Options{FlushInterval: opts.WALFlushInterval,
			FlushBytes: opts.WALFlushBytes, Logger: opts.Logger, OnCommit: opts.Observer.WALSync})
		if err != nil {
			return fmt.Errorf("storage: open object WAL: %w", err)
		}
		e.wal = w
		if e.cl != nil {
			e.cl.walStore = store
		}
		if e.cl != nil && e.cl.opts.ScanWALs == nil {
			e.cl.opts.ScanWALs = func(ctx context.Context, fn func(wal.Entry) error) error {
				return objwal.ScanAll(ctx, store, fn)
			}
		}
		// Every entry is uploaded, so every chunk may go.
		e.discardWAL = func() error { return w.TrimBefore(math.MaxUint64) }
	default:
		return fmt.Errorf("storage: unknown WAL kind %q (file or object)", opts.WAL)
	}
	return nil
}

// queued is a durable batch waiting to be uploaded.
type queued struct {
	log *partition.Log
	b   *partition.Batch
}

// Open loads topics from the metadata store, replays the WAL tail on top
// of the segment index, and starts the uploader.
func Open(ctx context.Context, ms meta.Store, objs objstore.Store, opts Options) (*Engine, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Observer == nil {
		opts.Observer = noObserver{}
	}
	if opts.RetentionInterval <= 0 {
		opts.RetentionInterval = time.Minute
	}
	if opts.ProducerExpiry <= 0 {
		opts.ProducerExpiry = 24 * time.Hour
	}
	e := &Engine{
		opts: opts, log: opts.Logger, meta: ms, objs: objs,
		topics: map[string]*Topic{}, byID: map[[16]byte]*Topic{},
		upKick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		retentionDone: make(chan struct{}),
		upProducers:   map[*partition.Log]*producer.State{}, lastExpiry: time.Now(),
		pids: producer.NewIDs(ms), cache: readcache.New(objs, opts.ReadCache), cleaner: newCleaner(),
	}
	if opts.Cluster != nil {
		e.cl = &clustered{e: e, opts: *opts.Cluster, lost: map[lostKey]int32{}, floor: ^uint64(0),
			releasing: map[*partition.Log]bool{}}
	}
	tops, err := ms.Topics(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: load topics: %w", err)
	}
	for _, t := range tops {
		top, err := e.loadTopic(ctx, t)
		if err != nil {
			return nil, err
		}
		e.topics[t.Name], e.byID[t.ID] = top, top
	}
	if err := e.openWAL(ctx); err != nil {
		return nil, err
	}
	w := e.wal
	start := time.Now()
	nowMs := start.UnixMilli()
	var replayed, skipped int
	replay := func(seq uint64, ent wal.Entry) error {
		top := e.byID[topicKeyID(ent.Topic)]
		if top == nil || int(ent.Partition) >= len(top.Logs) {
			skipped++ // the topic was deleted after this write
			return nil
		}
		if e.cl != nil {
			// A cluster broker leads nothing after a restart: whoever
			// takes these partitions over reads this tail, which must
			// stay until then.
			e.cl.noteLost(top.Name, ent.Partition, ent.Data, seq)
			return nil
		}
		info, err := batch.Peek(ent.Data)
		if err != nil {
			return fmt.Errorf("WAL entry %d: %w", seq, err)
		}
		l := top.Logs[ent.Partition]
		// The WAL reuses its read buffer between entries.
		data := append([]byte(nil), ent.Data...)
		b := &partition.Batch{Base: info.BaseOffset, Last: info.LastOffset, MaxTs: info.MaxTimestamp, Data: data, Seq: seq}
		e.noteWALGap(top.Topic, l, b)
		isNew, err := l.RecoverStored(b, nowMs)
		if err != nil {
			return err
		}
		if isNew {
			replayed++
			e.enqueue(l, b)
		}
		return nil
	}
	if e.cl != nil && e.cl.walStore != nil {
		// Only noted, never replayed here; read tolerantly, since a
		// previous run of this id may still have been writing (paused
		// past its lease) when this one started.
		err = objwal.ScanBroker(ctx, e.cl.walStore, opts.BrokerID, func(_ string, seq uint64, ent wal.Entry) error { return replay(seq, ent) })
	} else {
		err = w.Replay(replay)
	}
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("storage: replay WAL: %w", err)
	}
	e.log.Info("storage recovered", "topics", len(tops), "wal", cmp.Or(opts.WAL, "file"), "wal_batches_replayed", replayed, "wal_batches_of_deleted_topics", skipped, "took", time.Since(start))
	go e.uploadLoop()
	go e.retentionLoop()
	e.gcWG.Add(1)
	go func() {
		defer e.gcWG.Done()
		n, err := e.sweepOrphans(context.Background(), time.Now())
		switch {
		case err != nil:
			e.log.Warn("sweep of unreferenced segment objects failed", "err", err)
		case n > 0:
			e.log.Info("deleted unreferenced segment objects", "objects", n, "older_than", orphanAge)
		}
	}()
	return e, nil
}

func (e *Engine) loadTopic(ctx context.Context, t meta.Topic) (*Topic, error) {
	top := &Topic{Topic: t, Logs: make([]*partition.Log, t.Partitions)}
	for p := int32(0); p < t.Partitions; p++ {
		segs, err := e.meta.Segments(ctx, t.Name, p)
		if err != nil {
			return nil, fmt.Errorf("storage: load index of %s/%d: %w", t.Name, p, err)
		}
		st, err := e.meta.PartitionState(ctx, t.Name, p)
		if err != nil {
			return nil, fmt.Errorf("storage: load state of %s/%d: %w", t.Name, p, err)
		}
		top.Logs[p] = partition.New(t.Name, t.ID, p, e.cache, segs, st.LogStart, e.opts.TailCacheBytes)
		if e.cl != nil {
			top.Logs[p].Fence() // led by nobody until taken over
		}
		if err := e.loadProducers(ctx, t.Name, top.Logs[p]); err != nil {
			return nil, err
		}
	}
	return top, nil
}

// The WAL names a batch's topic by its id, so a batch of a deleted topic
// is never replayed into a new topic of the same name.
func topicKey(id [16]byte) string { return hex.EncodeToString(id[:]) }

func topicKeyID(key string) [16]byte {
	var id [16]byte
	hex.Decode(id[:], []byte(key))
	return id
}

// Topic returns a live topic by name, or nil.
func (e *Engine) Topic(name string) *Topic {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.topics[name]
}

// OnTopicDeleted sets fn to be told of each topic the engine drops: one
// deleted through it, or one Refresh finds deleted, or replaced by a new
// topic of the same name, by another broker. fn runs once per topic, after
// the topic is gone from Topic and TopicByID; for a deletion here, before
// DeleteTopic returns, so before this broker can create the name again.
// The server drops the groups' offsets of the topic with it, as Kafka's
// onPartitionsDeleted.
func (e *Engine) OnTopicDeleted(fn func(ctx context.Context, name string, partitions int32)) {
	e.dropped.Store(&fn)
}

func (e *Engine) topicDropped(ctx context.Context, t *Topic) {
	if fn := e.dropped.Load(); fn != nil {
		(*fn)(ctx, t.Name, int32(len(t.Logs)))
	}
}

// TopicByID returns a live topic by id, or nil.
func (e *Engine) TopicByID(id [16]byte) *Topic {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.byID[id]
}

// Topics returns the live topics sorted by name.
func (e *Engine) Topics() []*Topic {
	e.mu.RLock()
	out := make([]*Topic, 0, len(e.topics))
	for _, t := range e.topics {
		out = append(out, t)
	}
	e.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CreateTopic creates and stores a topic.
func (e *Engine) CreateTopic(ctx context.Context, name string, partitions int32, configs map[string]string) (*Topic, error) {
	// The metadata store is called without holding e.mu: produce and
	// fetch look topics up under it and must not wait for the store.
	e.adminMu.Lock()
	defer e.adminMu.Unlock()
	if e.Topic(name) != nil {
		return nil, fmt.Errorf("%w: %s", ErrTopicExists, name)
	}
	t := meta.Topic{Name: name, ID: uuid.New(), Partitions: partitions, Configs: configs, CreatedMs: time.Now().UnixMilli()}
	if err := e.meta.CreateTopic(ctx, t); err != nil {
		if errors.Is(err, meta.ErrTopicExists) {
			return nil, fmt.Errorf("%w: %s", ErrTopicExists, name)
		}
		return nil, fmt.Errorf("storage: create topic %s: %w", name, err)
	}
	top := &Topic{Topic: t, Logs: make([]*partition.Log, partitions)}
	for p := range top.Logs {
		top.Logs[p] = e.newLog(t, int32(p))
	}
	e.mu.Lock()
	e.topics[name], e.byID[t.ID] = top, top
	e.mu.Unlock()
	e.log.Info("topic created", "topic", name, "partitions", partitions, "configs", configs)
	return top, nil
}

// DeleteTopic removes a topic; its objects are deleted in the background
// once no other index entry refers to them.
func (e *Engine) DeleteTopic(ctx context.Context, name string) error {
	return e.deleteTopic(ctx, name, nil)
}

// DeleteTopicID is DeleteTopic of the topic named name only while its id
// is id (DeleteTopics by topic id): if the name was deleted and created
// again since the caller looked id up, the new topic stays and
// ErrUnknownTopic is returned.
func (e *Engine) DeleteTopicID(ctx context.Context, name string, id [16]byte) error {
	return e.deleteTopic(ctx, name, &id)
}

func (e *Engine) deleteTopic(ctx context.Context, name string, id *[16]byte) error {
	e.adminMu.Lock()
	defer e.adminMu.Unlock()
	top := e.Topic(name)
	if top == nil || (id != nil && top.ID != *id) {
		return fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	if LegalHold(top.Topic) {
		return holdError(top.Topic, "deleting topic")
	}
	var segs []meta.Segment
	var err error
	if id != nil {
		// The store checks the id too: another broker may have deleted
		// the name and created it again since this one last refreshed.
		segs, err = e.meta.DeleteTopicID(ctx, name, *id)
	} else {
		segs, err = e.meta.DeleteTopic(ctx, name)
	}
	if err != nil && !errors.Is(err, meta.ErrUnknownTopic) {
		return fmt.Errorf("storage: delete topic %s: %w", name, err)
	}
	// Gone from the store already (deleted through another broker): the
	// local topic is dropped all the same. By id, the caller is told.
	gone := err != nil
	e.mu.Lock()
	if cur := e.topics[name]; cur != nil && cur.ID == top.ID {
		delete(e.topics, name)
		delete(e.byID, top.ID)
	}
	e.mu.Unlock()
	for _, l := range top.Logs {
		l.MarkDeleted()
	}
	e.topicDropped(ctx, top)
	if gone && id != nil {
		e.log.Info("topic deleted meanwhile through another broker", "topic", name)
		return fmt.Errorf("%w: %s (id %x)", ErrUnknownTopic, name, *id)
	}
	e.log.Info("topic deleted", "topic", name)
	go e.collectObjects(segs)
	return nil
}

// objectDeletePace spaces object deletions: unlinking large files in a
// burst (a topic or a day of retention at once) keeps the file system
// journal busy and stalls the WAL's fsyncs behind it (a synthetic test:
// WAL fsync p99 3.5 -> 6 ms with a 64 MiB unlink every 0.75 s).
const objectDeletePace = 10 * time.Millisecond

// collectObjects deletes the objects of removed index entries that no
// remaining entry refers to (segment objects hold many partitions), one
// every objectDeletePace; what is left at Close is swept as orphans later.
func (e *Engine) collectObjects(removed []meta.Segment) {
	if len(removed) == 0 {
		return
	}
	lctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	all, err := e.meta.AllSegments(lctx)
	cancel()
	if err != nil {
		e.log.Warn("object collection skipped", "err", err)
		return
	}
	live := map[string]bool{}
	for _, s := range all {
		live[s.Object] = true
	}
	done := map[string]bool{}
	for _, s := range removed {
		if live[s.Object] || done[s.Object] {
			continue
		}
		if len(done) > 0 {
			select {
			case <-e.stop:
				return
			case <-time.After(objectDeletePace):
			}
		}
		done[s.Object] = true
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := e.objs.Delete(dctx, s.Object); err != nil {
			e.log.Warn("delete unreferenced object", "object", s.Object, "err", err)
		}
		cancel()
	}
}

// UpdateTopic changes a topic's stored configs or partition count with
// fn; new partitions get empty logs.
func (e *Engine) UpdateTopic(ctx context.Context, name string, fn func(*meta.Topic) error) error {
	e.adminMu.Lock()
	defer e.adminMu.Unlock()
	top := e.Topic(name)
	if top == nil {
		return fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	var updated meta.Topic
	err := e.meta.UpdateTopic(ctx, name, func(t *meta.Topic) error {
		if err := fn(t); err != nil {
			return err
		}
		updated = *t
		return nil
	})
	if err != nil {
		if errors.Is(err, meta.ErrUnknownTopic) {
			return fmt.Errorf("%w: %s", ErrUnknownTopic, name)
		}
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if cur := e.topics[name]; cur != nil && cur.ID == top.ID {
		top = cur // a takeover may have swapped a log meanwhile
	}
	logs := slices.Clone(top.Logs)
	for p := int32(len(logs)); p < updated.Partitions; p++ {
		logs = append(logs, e.newLog(updated, p))
	}
	// Replace rather than mutate: readers hold the old *Topic without a lock.
	nt := &Topic{Topic: updated, Logs: logs}
	e.topics[name], e.byID[updated.ID] = nt, nt
	return nil
}

// Produce appends one validated batch to a partition. done is called once
// the batch is durable (err nil) or failed, with its base offset; it may
// be called from the WAL's goroutine and must not block.
//
// A retry of an idempotent producer's recent batch writes nothing: done
// gets the original's offset once the original is durable. The producer
// rules (partition.Log.Append) refuse with errors wrapping
// producer.ErrOutOfOrder, ErrInvalidEpoch or ErrInvalidTxnState; a
// transactional batch begins or continues its producer's transaction.
func (e *Engine) Produce(t *Topic, l *partition.Log, h *batch.Header, done func(base int64, err error)) {
	e.ProduceVerified(t, l, h, producer.NoGuard, done)
}

// ProduceVerified is Produce for a transactional batch whose transaction
// was verified with its coordinator (KIP-890 part 1) with the guard
// l.TxnGuard returned before: if a marker of its producer was appended
// since, done gets an error wrapping producer.ErrInvalidTxnState.
func (e *Engine) ProduceVerified(t *Topic, l *partition.Log, h *batch.Header, guard producer.Guard, done func(base int64, err error)) {
	// Refused before the partition hands out offsets: a batch the WAL
	// turned away after that would leave a hole, and fail the partition.
	if err := e.wal.Full(); err != nil {
		done(-1, err)
		return
	}
	key, sess := e.walTarget(t)
	// A closure literal, not one a function returns: l.AppendVerified does
	// not keep it, so it stays on the stack (one allocation less for every
	// produced batch).
	dup, err := l.AppendVerified(h, guard, time.Now().UnixMilli(), func(b *partition.Batch) { e.write(key, sess, l, b, done) })
	switch {
	case err != nil:
		done(-1, err)
	case dup != nil:
		if ok, err := l.Durable(dup.LastOffset()); ok || err != nil {
			done(dup.Base, err)
			return
		}
		// The original is still in the WAL's queue, ahead of anything
		// appended from now on: once a sync returns, it is durable.
		go func() {
			err := e.wal.Sync()
			if err == nil {
				var ok bool
				ok, err = l.Durable(dup.LastOffset())
				if err == nil && !ok && e.cl != nil {
					// The original waits for the lease to be confirmed
					// (or was refused): the client retries.
					err = partition.ErrNotLeader
				}
			}
			done(dup.Base, err)
		}()
	}
}

// MirrorAppend appends a batch copied from another cluster at its own
// offsets (partition.Log.AppendMirror) through the same WAL path as
// Produce; done gets the batch's base offset once it is durable. A retry
// of a batch appended already is answered once the original is durable,
// after checking it is the same batch (read back from the segment
// objects when memory no longer holds it).
func (e *Engine) MirrorAppend(ctx context.Context, t *Topic, l *partition.Log, h *batch.Header, done func(base int64, err error)) {
	if err := e.wal.Full(); err != nil {
		done(-1, err)
		return
	}
	key, sess := e.walTarget(t)
	dup, cold, err := l.AppendMirror(h, time.Now().UnixMilli(), func(b *partition.Batch) { e.write(key, sess, l, b, done) })
	switch {
	case err != nil:
		done(-1, err)
	case cold:
		go func() { done(h.FirstOffset, e.mirroredCold(ctx, l, h)) }()
	case dup != nil:
		if ok, err := l.Durable(dup.Last); ok || err != nil {
			done(dup.Base, err)
			return
		}
		go func() {
			err := e.wal.Sync()
			if err == nil {
				var ok bool
				if ok, err = l.Durable(dup.Last); err == nil && !ok {
					err = partition.ErrNotLeader // as ProduceVerified: the client retries
				}
			}
			done(dup.Base, err)
		}()
	}
}

// mirroredCold checks a mirrored retry against the batch the log holds at
// its offsets, read back from the segment objects.
func (e *Engine) mirroredCold(ctx context.Context, l *partition.Log, h *batch.Header) error {
	res, err := l.Read(ctx, h.FirstOffset, len(h.Raw), true)
	if err != nil {
		// Not a conflict: the mirror sends the batch again.
		return fmt.Errorf("storage: %s/%d: read back the batch at %d to compare a mirrored retry: %w", l.Topic, l.Partition, h.FirstOffset, err)
	}
	if len(res.Data) > 0 {
		if info, err := batch.Peek(res.Data); err == nil && info.BaseOffset == h.FirstOffset && info.LastOffset == h.LastOffset() &&
			partition.SameBatch(res.Data[:info.Size], h.Raw) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s/%d: batch [%d, %d] is below the log end but differs from what the log holds there",
		partition.ErrMirrorConflict, l.Topic, l.Partition, h.FirstOffset, h.LastOffset())
}

// noteWALGap logs a recovered batch that begins past the log's end. On a
// mirror topic that is a gap the source's cleaner left; recovery accepts
// it on any topic (a topic promoted since keeps its mirrored gaps), but on
// one that was never mirrored it means WAL entries are missing, which
// must not pass unseen.
func (e *Engine) noteWALGap(t meta.Topic, l *partition.Log, b *partition.Batch) {
	if _, end := l.Offsets(); b.Base > end && !Mirrored(t) {
		e.log.Warn("WAL batch begins past the log's end: offsets between are missing (expected only on a topic that was mirrored)",
			"topic", t.Name, "partition", l.Partition, "log_end", end, "batch_base", b.Base)
	}
}

// walTarget is where t's batches go in the WAL, and the session a write
// is made under: a later session (after the lease was lost and the broker
// rejoined) does not vouch for it.
func (e *Engine) walTarget(t *Topic) (string, *sessionBox) {
	var sess *sessionBox
	if e.cl != nil {
		sess = e.cl.sess.Load()
	}
	return topicKey(t.ID), sess
}

// write enqueues an appended batch in the WAL (called by the partition
// under its lock, so WAL order is offset order): once durable (and, in a
// cluster, acknowledged under a lease certainly held) the batch is
// committed, queued for upload and done is told its base offset.
func (e *Engine) write(key string, sess *sessionBox, l *partition.Log, b *partition.Batch, done func(base int64, err error)) {
	b.Seq = e.wal.Append(wal.Entry{Topic: key, Partition: l.Partition, Data: b.Data}, func(seq uint64, err error) {
		switch {
		case err != nil:
			l.Fail(err)
		case e.cl != nil:
			// Acknowledge only while the lease is certainly held: the
			// partition may have moved while this batch was written.
			e.cl.ack(sess, l, func(err error) {
				if err != nil {
					l.Fence()
				} else {
					l.Commit(b)
					e.enqueue(l, b)
				}
				done(b.Base, err)
			})
			return
		default:
			l.Commit(b)
			e.enqueue(l, b)
		}
		done(b.Base, err)
	})
}

// Marker is a transaction marker the coordinator writes to a partition
// of a transaction when it ends (WriteTxnMarkers).
type Marker struct {
	ProducerID       int64
	Epoch            int16
	Commit           bool
	CoordinatorEpoch int32
	// TransactionVersion is WriteTxnMarkers' (v2+): 2 (KIP-890 part 2)
	// means the coordinator bumped the epoch for this marker, so one at
	// or below the producer's epoch is late (unless a retry of the marker
	// just written); 0 or 1, Kafka's older rule (at least the epoch).
	TransactionVersion int8
}

// AppendMarker appends a transaction marker to a partition through the
// same WAL path as produced batches; done gets the marker's offset once
// it is durable, or an error: one wrapping producer.ErrInvalidEpoch
// (INVALID_PRODUCER_EPOCH) or producer.ErrCoordinatorFenced
// (TRANSACTION_COORDINATOR_FENCED), partition.ErrNotLeader,
// partition.ErrDeleted, or a WAL error. As in Kafka, writing a marker
// again is harmless: with nothing ongoing it ends nothing (transaction
// version 2 accepts the repeat only at the epoch it bumped to).
func (e *Engine) AppendMarker(t *Topic, l *partition.Log, m Marker, done func(offset int64, err error)) {
	if err := e.wal.Full(); err != nil {
		done(-1, err)
		return
	}
	pm := producer.Marker{ID: m.ProducerID, Epoch: m.Epoch, Commit: m.Commit, CoordinatorEpoch: m.CoordinatorEpoch, TV2: m.TransactionVersion >= 2}
	key, sess := e.walTarget(t)
	if _, err := l.AppendMarker(pm, time.Now().UnixMilli(), func(b *partition.Batch) { e.write(key, sess, l, b, done) }); err != nil {
		done(-1, err)
	}
}

// SetLogStart moves a partition's log start and persists it. A topic
// under legal hold refuses (ErrLegalHold).
func (e *Engine) SetLogStart(ctx context.Context, t *Topic, l *partition.Log, off int64) (int64, error) {
	if LegalHold(t.Topic) {
		ls, _ := l.Offsets()
		return ls, holdError(t.Topic, "deleting records of topic")
	}
	// A mirror topic's log start follows its source's, which moves on a
	// compacted topic too (DeleteRecords there).
	if compact, del := CleanupPolicy(t.Configs); compact && !del && !Mirrored(t.Topic) {
		ls, _ := l.Offsets()
		return ls, fmt.Errorf("%w: %s/%d has cleanup.policy=compact", ErrCompactOnly, t.Name, l.Partition)
	}
	ls, err := l.SetLogStart(off)
	if err != nil {
		return ls, err
	}
	return ls, e.persistLogStart(ctx, t, l, ls)
}

func (e *Engine) persistLogStart(ctx context.Context, t *Topic, l *partition.Log, ls int64) error {
	st, err := e.meta.PartitionState(ctx, t.Name, l.Partition)
	if err != nil {
		return fmt.Errorf("storage: read state of %s/%d: %w", t.Name, l.Partition, err)
	}
	if st.LogStart >= ls {
		return nil
	}
	st.LogStart = ls
	if err := e.meta.SetPartitionState(ctx, t.Name, l.Partition, st); err != nil {
		return fmt.Errorf("storage: persist log start of %s/%d: %w", t.Name, l.Partition, err)
	}
	return nil
}

// ReadCacheStats are the catch-up read counters (metrics).
func (e *Engine) ReadCacheStats() readcache.Stats { return e.cache.Stats() }

// WALFull reports whether the WAL refuses new entries for want of disk
// space (produce answers KAFKA_STORAGE_ERROR meanwhile).
func (e *Engine) WALFull() bool { return e.wal.Full() != nil }

// UploadBacklog is how many bytes are durable in the WAL but not yet in a
// segment object: the uploader's lag behind ingest.
func (e *Engine) UploadBacklog() int64 {
	e.upMu.Lock()
	defer e.upMu.Unlock()
	return e.upBytes
}

func (e *Engine) enqueue(l *partition.Log, b *partition.Batch) {
	e.upMu.Lock()
	e.upQueue = append(e.upQueue, queued{l, b})
	e.upBytes += int64(len(b.Data))
	e.upMu.Unlock()
	e.kickIfFull()
}

// kickIfFull wakes the uploader before its tick once a whole segment's
// worth of bytes is waiting.
func (e *Engine) kickIfFull() {
	e.upMu.Lock()
	full := e.upBytes >= e.opts.SegmentBytes
	e.upMu.Unlock()
	if full {
		select {
		case e.upKick <- struct{}{}:
		default:
		}
	}
}

func (e *Engine) uploadLoop() {
	defer close(e.done)
	t := time.NewTicker(e.opts.UploadInterval)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		case <-e.upKick:
		}
		if err := e.upload(context.Background()); err != nil {
			// A failed upload changed nothing that matters: the batches
			// stay queued and in the WAL, and the retry builds a new
			// object under a new key, so nothing is lost or indexed twice
			// (an object the store kept anyway is unreferenced and swept).
			failures++
			wait := uploadBackoff(e.opts.UploadInterval, failures)
			e.opts.Observer.Upload(0, 0, err)
			e.log.Error("segment upload failed; will retry", "err", err, "failures", failures,
				"retry_in", wait.Round(time.Millisecond), "backlog_bytes", e.UploadBacklog())
			// Kicks are ignored while waiting: during an outage the
			// backlog stays over SegmentBytes and every produce kicks,
			// which would turn the retries into a busy loop.
			select {
			case <-e.stop:
				return
			case <-time.After(wait):
			}
			continue
		}
		if failures > 0 {
			e.log.Info("segment upload succeeded again", "failures_before", failures, "backlog_bytes", e.UploadBacklog())
			failures = 0
		}
		if time.Since(e.lastExpiry) >= time.Minute {
			e.expireProducers(context.Background())
		}
		// One object is bounded by SegmentBytes; keep going while a
		// full one is waiting rather than until the next tick.
		e.kickIfFull()
	}
}

// maxUploadScale bounds how much larger than --segment-bytes an object
// grows while the uploads are behind.
const maxUploadScale = 8

// uploadLimit is the size one object is cut at: segmentBytes, or while
// the uploads are behind (two objects or more waiting) as much of the
// backlog as fits in maxUploadScale of them. Every object costs its own
// file (or PUT), fsyncs and index transaction: on a local directory,
// whose writes share the disk with the WAL's, fewer and larger objects let
// a sustained maximum ingest be uploaded with fewer disk flushes, and the
// uploads catch up sooner. At a rate the uploads keep up with, objects stay
// small, which keeps each upload's burst of writes short beside the WAL's.
func uploadLimit(segmentBytes, backlog int64) int64 {
	if backlog < 2*segmentBytes {
		return segmentBytes
	}
	return min(backlog, maxUploadScale*segmentBytes)
}

// maxUploadBackoff caps the wait between failed uploads: an outage only
// grows the backlog (the WAL holds it), and a short cap drains it soon
// after the store is back, for the cost of one failing PUT every few
// seconds while it is not.
const maxUploadBackoff = 5 * time.Second

// uploadBackoff is the wait after the n-th failed upload in a row: the
// upload interval doubled per failure up to maxUploadBackoff, with half of
// it random so that brokers recovering from one outage do not retry in
// step.
func uploadBackoff(interval time.Duration, n int) time.Duration {
	d := interval
	for i := 1; i < n && d < maxUploadBackoff; i++ {
		d *= 2
	}
	d = min(d, maxUploadBackoff)
	return d/2 + mrand.N(d/2+1)
}

// upload writes every queued durable batch into one segment object,
// commits its index in one metadata write, and trims the WAL.
func (e *Engine) upload(ctx context.Context) error {
	e.upLock.Lock()
	defer e.upLock.Unlock()
	e.upMu.Lock()
	q, backlog := e.upQueue, e.upBytes
	e.upMu.Unlock()
	if len(q) == 0 {
		return nil
	}
	limit := uploadLimit(e.opts.SegmentBytes, backlog)
	b := segment.NewBuilder()
	var lastSeq uint64
	var n int
	type tp struct {
		t string
		p int32
	}
	epochs := map[tp]int32{}
	var kept []queued                      // the batches this object holds
	spans := map[*partition.Log][2]int64{} // the offsets of each partition's run
	for _, it := range q {
		lastSeq = max(lastSeq, it.b.Seq)
		n++
		if it.log.Deleted() {
			continue
		}
		epoch, _ := it.log.Leader()
		if e.cl != nil && e.cl.lostLog(it.log, it.b.Seq) {
			continue // another broker recovers it from this WAL
		}
		kept = append(kept, it)
		epochs[tp{it.log.Topic, it.log.Partition}] = epoch
		b.Add(it.log.Topic, it.log.Partition, it.b.Data, it.b.Base, it.b.Last, it.b.MaxTs)
		if sp, ok := spans[it.log]; ok {
			spans[it.log] = [2]int64{sp[0], it.b.Last}
		} else {
			spans[it.log] = [2]int64{it.b.Base, it.b.Last}
		}
		if b.Size() >= limit {
			break // bound one object; the rest goes next round
		}
	}
	if !b.Empty() {
		for l, sp := range spans {
			b.SetAborted(l.Topic, l.Partition, runAborted(l.AbortedIn(sp[0], sp[1])))
		}
		data, runs := b.BuildInto(e.segBuf)
		e.segBuf = nil
		key := objectKey()
		start := time.Now()
		if err := e.objs.Put(ctx, key, data); err != nil {
			// Not reused: a failed request may still be reading it.
			return fmt.Errorf("put segment %s: %w", key, err)
		}
		e.segBuf = data
		segs := make([]meta.Segment, len(runs))
		for i, r := range runs {
			segs[i] = runSegment(key, r)
			if e.cl != nil {
				segs[i].LeaderEpoch = epochs[tp{r.Topic, r.Partition}]
			}
		}
		// The producer state as of these batches is committed with their
		// index, in one transaction: a restart replays the WAL over a
		// state that matches the index exactly, so every batch and marker
		// beyond it is applied once (and an abort marker's transaction
		// reaches the aborted index).
		prods, ps, err := e.uploadedProducers(kept, func(l *partition.Log) int32 {
			if e.cl == nil {
				return 0
			}
			return epochs[tp{l.Topic, l.Partition}]
		})
		if err != nil {
			return err
		}
		if err := e.meta.AddSegments(ctx, segs, ps...); err != nil {
			e.noteFenced(ctx, err)
			return fmt.Errorf("commit index of %s: %w", key, err)
		}
		e.installProducers(prods)
		e.opts.Observer.Upload(time.Since(start), int64(len(data)), nil)
		for _, s := range segs {
			if top := e.Topic(s.Topic); top != nil && int(s.Partition) < len(top.Logs) {
				top.Logs[s.Partition].Uploaded(s)
			}
		}
		e.log.Debug("segment uploaded", "object", key, "bytes", len(data), "partitions", len(runs), "took", time.Since(start))
	}
	e.upMu.Lock()
	var freed int64
	for _, it := range e.upQueue[:n] {
		freed += int64(len(it.b.Data))
	}
	e.upQueue = append([]queued(nil), e.upQueue[n:]...)
	e.upBytes -= freed
	e.upMu.Unlock()
	if e.walClosed {
		return nil
	}
	trim := lastSeq + 1
	if e.cl != nil {
		trim = min(trim, e.cl.trimFloor())
	}
	if err := e.wal.TrimBefore(trim); err != nil {
		return fmt.Errorf("trim WAL: %w", err)
	}
	if e.cl != nil {
		e.cl.trimmed.Store(max(e.cl.trimmed.Load(), trim))
	}
	return nil
}

// runSegment is the index entry of run r of object key.
func runSegment(key string, r segment.Run) meta.Segment {
	s := meta.Segment{Topic: r.Topic, Partition: r.Partition, Object: key, Position: r.Position,
		Size: r.Size, FirstOffset: r.FirstOffset, LastOffset: r.LastOffset, MaxTimestamp: r.MaxTimestamp}
	for _, a := range r.Aborted {
		s.Aborted = append(s.Aborted, meta.AbortedTxn{ProducerID: a.ProducerID, FirstOffset: a.FirstOffset, LastOffset: a.LastOffset})
	}
	return s
}

// runAborted is an aborted index as a segment footer holds it.
func runAborted(txns []meta.AbortedTxn) []segment.AbortedTxn {
	if len(txns) == 0 {
		return nil
	}
	out := make([]segment.AbortedTxn, len(txns))
	for i, a := range txns {
		out[i] = segment.AbortedTxn{ProducerID: a.ProducerID, FirstOffset: a.FirstOffset, LastOffset: a.LastOffset}
	}
	return out
}

// objectKey names a new segment object: time-ordered so a listing reads
// in upload order, with random bits so brokers never collide.
func objectKey() string {
	var r [6]byte
	rand.Read(r[:])
	return fmt.Sprintf("segments/%016x-%s.seg", time.Now().UnixNano(), hex.EncodeToString(r[:]))
}

// Close flushes the WAL, uploads everything, and removes the WAL files
// (or chunk objects) once their contents are safely in segment objects, so
// a clean restart reads everything from the segments.
func (e *Engine) Close() error {
	close(e.stop)
	<-e.done
	<-e.retentionDone
	e.gcWG.Wait()
	var errs []error
	if err := e.wal.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close WAL: %w", err))
	}
	e.walClosed = true
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		e.upMu.Lock()
		left := len(e.upQueue)
		e.upMu.Unlock()
		if left == 0 {
			break
		}
		if err := e.upload(ctx); err != nil {
			errs = append(errs, fmt.Errorf("final upload: %w", err))
			break
		}
	}
	switch {
	case len(errs) > 0:
	case e.cl != nil && e.cl.trimFloor() != ^uint64(0):
		// Partitions this broker lost still need their tails in the WAL
		// until their new leaders have taken them over.
		if err := e.wal.TrimBefore(e.cl.trimFloor()); err != nil {
			errs = append(errs, fmt.Errorf("trim uploaded WAL: %w", err))
		}
	default:
		if err := e.discardWAL(); err != nil {
			errs = append(errs, fmt.Errorf("remove uploaded WAL: %w", err))
		}
	}
	return errors.Join(errs...)
}

// noteFenced follows a write the metadata store refused for a stale
// leader epoch (index or producer state): some partition moved, so find
// which, and the next upload leaves its batches to the new leader.
func (e *Engine) noteFenced(ctx context.Context, err error) {
	if errors.Is(err, meta.ErrFenced) && e.cl != nil {
		e.cl.checkLeadership(ctx)
	}
}
