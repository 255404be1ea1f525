// Package objwal is the object write-ahead log (`--wal object`): the same
// group-committed log as internal/wal, but each group commit is one chunk
// object Put to the shared object store instead of a write and fsync of a
// local file. A broker's disk then holds nothing the cluster needs, and any
// broker can read a dead broker's tail (Scan) and take its partitions over.
//
// # Chunk objects
//
// A chunk is named wal/<broker id, %010d>/<first seq, %020d>-<incarnation>,
// so a listing of one broker's prefix returns its chunks in sequence
// order; the incarnation (8 random hex digits per Open) keeps two
// processes of one broker id from overwriting each other's chunks. Its content
// (integers little-endian):
//
//	header (28 bytes)
//	  0  magic     uint32  chunkMagic ("VWCH")
//	  4  version   uint16  1
//	  6  flags     uint16  0 (reserved)
//	  8  broker    int32   the writer's broker id, as in the key
//	  12 firstSeq  uint64  as in the key
//	  20 count     uint32  records that follow, with seqs firstSeq..firstSeq+count-1
//	  24 crc       uint32  CRC-32C of bytes 0..24
//	records: count records in the file WAL's record encoding
//	  (wal.AppendRecord: magic, length, CRC-32C of the payload, seq,
//	  partition, topic, data), and nothing after them.
//
// An object store Put is atomic (the object is whole or absent), so a crash
// never leaves a torn chunk; a chunk that does not decode is corruption and
// is reported with its key, never skipped.
//
// # Ordering rule
//
// At most one chunk Put is in flight per WAL, and a chunk is Put only after
// the previous chunk's Put returned nil. A failed Put is retried (same key,
// same bytes) with backoff until it succeeds; later entries queue behind it.
// Hence the durable chunks of a broker are always a gap-free sequence, the
// callbacks of an entry run only once it and every entry before it are
// durable, and Replay treats any gap between chunks as lost acknowledged
// data (an error). The only way a chunk is abandoned is Close running out of
// time with the store down: then that chunk's entries and everything queued
// after it are answered with an error, and the WAL accepts nothing more. The
// abandoned chunk's outcome is unknown (a Put may land after it was given
// up), which is the usual ambiguity of a failed write: its entries were
// never acknowledged, and if the chunk did land it is the last one, so the
// next Open continues after it without a gap.
//
// # Leader epochs
//
// Every entry's Data is a Kafka record batch whose header carries the
// partition leader epoch at bytes 12..16 (PartitionLeaderEpoch, big-endian
// int32), written by the leader when it assigned offsets. A broker taking
// over a dead broker's partitions with Scan can compare it with the epoch
// under which the dead broker led the partition and discard entries of
// stale epochs.
package objwal

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/wal"
)

const (
	chunkMagic      uint32 = 0x48435756 // "VWCH" read as little-endian
	chunkVersion    uint16 = 1
	chunkHeaderSize        = 28

	// KeyPrefix is where every broker's chunks live in the object store.
	KeyPrefix = "wal/"

	defaultFlushInterval  = 5 * time.Millisecond
	defaultFlushBytes     = 4 << 20
	defaultMaxPending     = 64 << 20
	defaultRequestTimeout = 30 * time.Second
	defaultCloseTimeout   = 30 * time.Second

	// Retries start fast, since most store errors are brief, and settle at
	// a second, so a store back after a long outage is noticed within one.
	minBackoff = 10 * time.Millisecond
	maxBackoff = time.Second
	// retryLogEvery spaces out the warnings of a long outage.
	retryLogEvery = 10 * time.Second
	// abandonGrace is how long Close's deadline waits for a Put that was
	// cancelled to report, so a store that honours cancellation gets its
	// real outcome (possibly success) recorded.
	abandonGrace = 200 * time.Millisecond
)

// ErrCorrupt is wrapped by every error about a chunk that does not decode.
var ErrCorrupt = errors.New("objwal: corrupt chunk")

// Options configure a WAL. Zero values take the defaults noted.
type Options struct {
	// FlushInterval is the longest an entry waits before the chunk holding
	// it is Put (default 5ms): the latency bought for fewer, larger chunks.
	FlushInterval time.Duration
	// FlushBytes starts a chunk early once this many encoded bytes wait; it
	// is also the largest a chunk grows, unless one entry is larger
	// (default 4 MiB).
	FlushBytes int64
	// MaxPending: Append blocks while this many bytes are queued or in
	// flight (default 64 MiB), so a store outage backpressures producers
	// instead of growing memory without bound.
	MaxPending int64
	// RequestTimeout bounds one store request (a Put attempt, a read, a
	// list or a delete); a timed-out Put is retried (default 30s).
	RequestTimeout time.Duration
	// CloseTimeout is how long Close keeps trying to put what is queued
	// before it fails the rest (default 30s).
	CloseTimeout time.Duration
	// OnCommit, if set, is told the duration (first attempt to success) and
	// size of every chunk Put, on the flusher goroutine (metrics).
	OnCommit func(d time.Duration, bytes int64)
	Logger   *slog.Logger // default slog.Default()
}

// chunk is one durable chunk object of this WAL.
type chunk struct {
	key   string
	first uint64
	// last is the seq of the chunk's last entry. For chunks found at Open
	// other than the newest it is the next chunk's first seq - 1, an upper
	// bound that is all TrimBefore needs and spares reading every header.
	last uint64
	size int64
}

// WAL is a group-committed write-ahead log kept as chunk objects. One
// flusher goroutine builds and puts chunks; Append only queues, so
// producers never wait on the store except through MaxPending.
type WAL struct {
	store  objstore.Store
	broker int32
	prefix string
	// incarnation is random per Open; it suffixes this WAL's chunk keys.
	incarnation string
	opts        Options
	log         *slog.Logger

	// trimMu keeps TrimBefore from deleting chunks Replay is reading, and
	// concurrent TrimBefore calls from deleting the same chunk twice.
	trimMu sync.Mutex

	mu           sync.Mutex
	flushed      sync.Cond // broadcast after each chunk: wakes backpressure and Sync waiters
	queue        []pending
	queuedBytes  int64 // encoded bytes queued and not yet taken into a chunk
	pendingBytes int64 // queued plus in-flight cost; bounded by MaxPending
	nextSeq      uint64
	durable      uint64 // highest seq in a chunk whose Put returned nil
	err          error  // sticky: set only when Close gives up
	closed       bool
	appended     bool
	replayed     bool
	chunks       []chunk // durable chunks, oldest first
	puts         uint64
	entries      uint64

	// wake tells the flusher the queue changed: first entry, FlushBytes
	// reached, or Close.
	wake chan struct{}
	// giveUp is cancelled CloseTimeout after Close; until then a failing
	// Put is retried forever.
	giveUp      context.Context
	stopGiving  context.CancelFunc
	flusherDone chan struct{}
	buf         []byte // the flusher's chunk buffer, reused between chunks
}

type pending struct {
	seq  uint64
	e    wal.Entry
	done func(seq uint64, err error)
	size int64     // encoded record bytes
	cost int64     // what this entry counts against MaxPending
	at   time.Time // when it was appended; zero for rejections
	err  error     // set for Appends rejected up front; they are not written
}

// pendingOverhead is charged per queued entry on top of its record bytes, so
// that MaxPending also bounds the queue itself when entries are tiny.
const pendingOverhead = int64(unsafe.Sizeof(pending{}))

// BrokerPrefix is the key prefix of one broker's chunks.
func BrokerPrefix(brokerID int32) string { return fmt.Sprintf("%s%010d/", KeyPrefix, brokerID) }

// chunkKey names a chunk: its first seq, zero-padded so keys sort in seq
// order, then the writing WAL's incarnation. Two processes running with
// one broker id (a restarted broker while the old one hangs past its
// lease) thus never overwrite each other's chunks, even at equal seqs.
func chunkKey(prefix string, first uint64, incarnation string) string {
	return fmt.Sprintf("%s%020d-%s", prefix, first, incarnation)
}

// parseChunkKey returns the first seq a chunk key of prefix names (with or
// without the incarnation suffix).
func parseChunkKey(prefix, key string) (uint64, bool) {
	name, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return 0, false
	}
	if seq, inc, found := strings.Cut(name, "-"); found {
		if len(inc) == 0 {
			return 0, false
		}
		name = seq
	}
	if len(name) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(name, 10, 64)
	return n, err == nil && n > 0
}

// Open lists brokerID's chunks in store and returns a WAL that continues
// after the last seq found (1 for none). Only the newest chunk's header is
// read here; Replay reads and checks everything.
func Open(ctx context.Context, store objstore.Store, brokerID int32, opts Options) (*WAL, error) {
	if brokerID < 0 {
		return nil, fmt.Errorf("objwal: broker id %d: must not be negative", brokerID)
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = defaultFlushInterval
	}
	if opts.FlushBytes <= 0 {
		opts.FlushBytes = defaultFlushBytes
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = defaultMaxPending
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = defaultRequestTimeout
	}
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = defaultCloseTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	var inc [4]byte
	crand.Read(inc[:])
	w := &WAL{
		store: store, broker: brokerID, prefix: BrokerPrefix(brokerID), opts: opts, log: opts.Logger,
		incarnation: hex.EncodeToString(inc[:]), wake: make(chan struct{}, 1), flusherDone: make(chan struct{}),
	}
	w.flushed.L = &w.mu
	chunks, err := listChunks(ctx, store, w.prefix, w.log)
	if err != nil {
		return nil, err
	}
	w.nextSeq = 1
	if n := len(chunks); n > 0 {
		newest := &chunks[n-1]
		raw, err := getRetried(ctx, store, newest.key, 0, chunkHeaderSize, opts.RequestTimeout)
		if err != nil {
			return nil, fmt.Errorf("objwal: read header of newest chunk %s: %w", newest.key, err)
		}
		h, err := parseHeader(raw, brokerID, newest.first)
		if err != nil {
			return nil, fmt.Errorf("objwal: newest chunk %s: %w", newest.key, err)
		}
		newest.last = newest.first + uint64(h.count) - 1
		w.nextSeq = newest.last + 1
	}
	w.chunks = chunks
	w.durable = w.nextSeq - 1
	w.giveUp, w.stopGiving = context.WithCancel(context.Background())
	go w.run()
	return w, nil
}

// listChunks lists the chunks under prefix, oldest first, with last set from
// the next chunk's first seq (the newest is left for the caller).
func listChunks(ctx context.Context, store objstore.Store, prefix string, log *slog.Logger) ([]chunk, error) {
	var objs []objstore.Object
	err := retryRead(ctx, func() error {
		var err error
		objs, err = store.List(ctx, prefix)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("objwal: list %s: %w", prefix, err)
	}
	chunks := make([]chunk, 0, len(objs))
	for _, o := range objs {
		first, ok := parseChunkKey(prefix, o.Key)
		if !ok {
			log.Warn("objwal: ignoring an object that is not a chunk under a WAL prefix", "key", o.Key)
			continue
		}
		chunks = append(chunks, chunk{key: o.Key, first: first, size: o.Size})
	}
	// The zero-padded keys sort numerically; the Store promises sorted
	// listings, but a backend bug here would reorder the log.
	slices.SortFunc(chunks, func(a, b chunk) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		}
		return 0
	})
	for i := 0; i+1 < len(chunks); i++ {
		chunks[i].last = chunks[i+1].first - 1
	}
	return chunks, nil
}

// Append enqueues e and returns its sequence number (consecutive, starting
// after the last one found at Open). done is called exactly once, after the
// chunk holding the entry was Put (err == nil) or when the entry failed; it
// runs on the flusher goroutine, in sequence order, and must not block,
// since it holds up every later chunk.
//
// Append blocks while MaxPending bytes are queued or in flight, which is
// how a store outage slows producers down. A rejected Append (WAL closed or
// failed, or an entry too large to encode) returns 0, never a valid seq.
// The done of an Append after Close runs on a fresh goroutine, since the
// flusher has exited and calling it inline could deadlock a caller holding
// a lock that done also takes.
//
// e.Data is retained, not copied, until the entry is in a chunk; the caller
// must not modify it after the call.
func (w *WAL) Append(e wal.Entry, done func(seq uint64, err error)) uint64 {
	size := wal.RecordSize(e)
	cost := size + pendingOverhead
	w.mu.Lock()
	w.appended = true
	if w.closed {
		w.mu.Unlock()
		rejectClosed(done)
		return 0
	}
	if len(e.Topic) > math.MaxUint16 || size > math.MaxUint32 {
		w.rejectLocked(done, fmt.Errorf("objwal: entry too large to encode (topic %d bytes, data %d bytes)", len(e.Topic), len(e.Data)))
		w.mu.Unlock()
		return 0
	}
	// A lone entry larger than MaxPending is still admitted when nothing
	// else is pending; otherwise it could never be written.
	for w.pendingBytes > 0 && w.pendingBytes+cost > w.opts.MaxPending && w.err == nil && !w.closed {
		w.flushed.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		rejectClosed(done)
		return 0
	}
	if w.err != nil {
		w.rejectLocked(done, fmt.Errorf("objwal: append after earlier failure: %w", w.err))
		w.mu.Unlock()
		return 0
	}
	seq := w.nextSeq
	w.nextSeq++
	w.pendingBytes += cost
	before := w.queuedBytes
	w.queuedBytes += size
	w.queue = append(w.queue, pending{seq: seq, e: e, done: done, size: size, cost: cost, at: time.Now()})
	kick := len(w.queue) == 1 || (before < w.opts.FlushBytes && w.queuedBytes >= w.opts.FlushBytes)
	w.mu.Unlock()
	if kick {
		w.kick()
	}
	return seq
}

func (w *WAL) kick() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func rejectClosed(done func(uint64, error)) {
	if done != nil {
		go done(0, wal.ErrClosed)
	}
}

// rejectLocked routes a rejection through the flusher so that done still runs
// on the flusher goroutine, in order with the callbacks queued before it.
func (w *WAL) rejectLocked(done func(uint64, error), err error) {
	if done == nil {
		return
	}
	w.queue = append(w.queue, pending{done: done, err: err})
	if len(w.queue) == 1 {
		w.kick()
	}
}

// Full is always nil: the object WAL takes no local disk space.
func (w *WAL) Full() error { return nil }

// Sync blocks until everything appended before the call is durable (or
// returns the failure that prevents it). While the store is down it waits
// for it, like the Appends' callbacks.
func (w *WAL) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	target := w.nextSeq - 1
	for w.durable < target && w.err == nil {
		w.flushed.Wait()
	}
	if w.durable >= target {
		return nil
	}
	return w.err
}

// Replay calls fn for every entry of this broker's chunks found at Open, in
// sequence order. It must be called (at most once) before the first Append.
// Every chunk is read and checked before any of its entries is passed on;
// a chunk that does not decode, or a gap between chunks, is an error: both
// mean acknowledged entries are missing. Entries' Data is not reused.
func (w *WAL) Replay(fn func(seq uint64, e wal.Entry) error) error {
	w.trimMu.Lock()
	defer w.trimMu.Unlock()
	w.mu.Lock()
	switch {
	case w.replayed:
		w.mu.Unlock()
		return errors.New("objwal: Replay called twice")
	case w.appended:
		w.mu.Unlock()
		return errors.New("objwal: Replay called after Append")
	}
	w.replayed = true
	chunks := slices.Clone(w.chunks)
	end := w.nextSeq - 1
	w.mu.Unlock()

	last, err := scanChunks(context.Background(), w.store, w.broker, chunks, w.opts.RequestTimeout, fn)
	if err != nil {
		return err
	}
	if len(chunks) > 0 && last != end {
		return fmt.Errorf("objwal: replay of %s ended at seq %d, but the log was opened at %d", w.prefix, last, end)
	}
	return nil
}

// TrimBefore deletes the chunk objects all of whose entries have seq < seq
// (the uploader has put them in segment objects), oldest first, so that the
// chunks left are still a gap-free sequence if a delete fails. It also works
// after Close: a clean shutdown trims everything once it is uploaded.
func (w *WAL) TrimBefore(seq uint64) error {
	w.trimMu.Lock()
	defer w.trimMu.Unlock()
	// Only TrimBefore removes from the front of chunks and the flusher only
	// appends, so the victims stay valid after mu is released.
	w.mu.Lock()
	var victims []chunk
	for i := 0; i < len(w.chunks) && w.chunks[i].last < seq; i++ {
		victims = append(victims, w.chunks[i])
	}
	w.mu.Unlock()
	var err error
	removed := 0
	for _, v := range victims {
		ctx, cancel := context.WithTimeout(context.Background(), w.opts.RequestTimeout)
		derr := w.store.Delete(ctx, v.key)
		cancel()
		if derr != nil {
			err = fmt.Errorf("objwal: trim chunk %s (seqs %d-%d): %w", v.key, v.first, v.last, derr)
			break
		}
		removed++
	}
	if removed > 0 {
		w.mu.Lock()
		w.chunks = slices.Delete(w.chunks, 0, removed)
		w.mu.Unlock()
	}
	return err
}

// Close puts everything queued and stops the flusher. If the store stays
// down for CloseTimeout, the chunk being put and everything queued behind it
// are answered with an error, which Close returns. Calling Close again
// returns nil.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.flushed.Broadcast() // backpressured Appends give up with ErrClosed
	w.mu.Unlock()
	w.kick()

	deadline := time.AfterFunc(w.opts.CloseTimeout, w.stopGiving)
	<-w.flusherDone
	deadline.Stop()
	w.stopGiving()

	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Stats for metrics/tests: Files and Bytes count this WAL's chunk objects,
// Syncs its chunk Puts.
func (w *WAL) Stats() wal.Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := wal.Stats{Files: len(w.chunks), Syncs: w.puts, Entries: w.entries, LastSeq: w.nextSeq - 1}
	for _, c := range w.chunks {
		s.Bytes += c.size
	}
	return s
}

// run is the flusher: it waits until FlushBytes are queued or the oldest
// queued entry has waited FlushInterval, puts one chunk of them, and then
// answers their callbacks. Entries appended while a Put is in flight wait
// for the next chunk, which is what keeps chunks in order.
func (w *WAL) run() {
	defer close(w.flusherDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var batch []pending
	for {
		w.mu.Lock()
		if len(w.queue) == 0 {
			closed := w.closed
			w.mu.Unlock()
			if closed {
				return
			}
			<-w.wake
			continue
		}
		if !w.closed && w.err == nil && w.queuedBytes < w.opts.FlushBytes {
			if wait := time.Until(w.queue[0].at.Add(w.opts.FlushInterval)); wait > 0 {
				w.mu.Unlock()
				timer.Reset(wait)
				select {
				case <-w.wake:
					timer.Stop()
				case <-timer.C:
				}
				continue
			}
		}
		// Take up to FlushBytes (at least one entry) from the front.
		n, taken := 0, int64(0)
		for n < len(w.queue) {
			s := w.queue[n].size
			if n > 0 && taken+s > w.opts.FlushBytes {
				break
			}
			taken += s
			n++
		}
		batch = append(batch[:0], w.queue[:n]...)
		rest := copy(w.queue, w.queue[n:])
		clear(w.queue[rest:])
		w.queue = w.queue[:rest]
		w.queuedBytes -= taken
		err := w.err
		w.mu.Unlock()

		var cost int64
		for i := range batch {
			cost += batch[i].cost
		}
		if ackBeforeCommit {
			// Only in a chaosbroken build (ackearly_chaosbroken.go): the
			// chaos campaign must see the writes this loses.
			for i := range batch {
				if p := &batch[i]; p.done != nil && p.err == nil {
					p.done(p.seq, nil)
					p.done = nil
				}
			}
			time.Sleep(brokenCommitDelay)
		}
		var c chunk
		var count uint64
		if err == nil {
			c, count, err = w.commit(batch)
		}

		w.mu.Lock()
		w.pendingBytes -= cost
		if err == nil {
			if count > 0 {
				w.durable = c.last
				w.chunks = append(w.chunks, c)
				w.puts++
				w.entries += count
			}
		} else if w.err == nil {
			w.err = err
			w.log.Error("objwal: gave up putting a chunk at close; failing it and everything queued after it", "err", err)
		}
		w.flushed.Broadcast()
		w.mu.Unlock()

		for i := range batch {
			p := &batch[i]
			if p.done == nil {
				continue
			}
			perr := p.err
			if perr == nil {
				perr = err
			}
			p.done(p.seq, perr)
		}
		clear(batch) // drop Data and callbacks so they can be collected
	}
}

// commit encodes batch's accepted entries into one chunk and puts it,
// retrying until it is durable or Close gives up. It returns the chunk and
// how many entries it holds (0: nothing to put).
func (w *WAL) commit(batch []pending) (chunk, uint64, error) {
	var first, last, count uint64
	buf := w.buf[:0]
	buf = append(buf, make([]byte, chunkHeaderSize)...)
	for i := range batch {
		p := &batch[i]
		if p.err != nil {
			continue
		}
		var err error
		if buf, err = wal.AppendRecord(buf, p.seq, p.e); err != nil {
			// Append checked the limits, so this is a bug, not bad input.
			return chunk{}, 0, fmt.Errorf("objwal: encode seq %d: %w", p.seq, err)
		}
		if count == 0 {
			first = p.seq
		}
		last = p.seq
		count++
	}
	if count == 0 {
		return chunk{}, 0, nil
	}
	putHeader(buf, w.broker, first, uint32(count))
	key := chunkKey(w.prefix, first, w.incarnation)
	start := time.Now()
	abandoned, err := w.put(key, buf)
	if abandoned {
		// A Put still running may be reading buf; never write to it again.
		w.buf = nil
	} else {
		w.buf = buf
	}
	if err != nil {
		return chunk{}, 0, err
	}
	if w.opts.OnCommit != nil {
		w.opts.OnCommit(time.Since(start), int64(len(buf)))
	}
	return chunk{key: key, first: first, last: last, size: int64(len(buf))}, count, nil
}

// put stores one chunk, retrying with backoff until a Put returns nil or
// Close's deadline passes. abandoned reports that a Put was left running
// (a store that ignored cancellation), so data may still be read.
func (w *WAL) put(key string, data []byte) (abandoned bool, err error) {
	backoff := minBackoff
	start := time.Now()
	var lastLog time.Time
	for attempt := 1; ; attempt++ {
		left, perr := w.putOnce(key, data)
		if perr == nil {
			if attempt > 1 {
				w.log.Info("objwal: chunk put succeeded after the store failed", "key", key, "attempts", attempt,
					"after", time.Since(start).Round(time.Millisecond))
			}
			return false, nil
		}
		if left || w.giveUp.Err() != nil {
			return left, fmt.Errorf("objwal: put chunk %s: store still failing at the close deadline after %d attempts over %s: %w",
				key, attempt, time.Since(start).Round(time.Millisecond), perr)
		}
		if time.Since(lastLog) >= retryLogEvery {
			lastLog = time.Now()
			w.log.Warn("objwal: chunk put failed; retrying, appends queue behind it", "key", key, "attempts", attempt,
				"failing_for", time.Since(start).Round(time.Millisecond), "err", perr)
		}
		// Jitter keeps brokers that lost the store together from retrying
		// in lockstep.
		d := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-w.giveUp.Done():
			t.Stop()
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// putOnce runs one Put attempt bounded by RequestTimeout. The Put runs on
// its own goroutine so that Close's deadline bounds even a store that
// ignores cancellation; left reports such an abandoned Put.
func (w *WAL) putOnce(key string, data []byte) (left bool, err error) {
	ctx, cancel := context.WithTimeout(w.giveUp, w.opts.RequestTimeout)
	defer cancel()
	res := make(chan error, 1)
	go func() { res <- w.store.Put(ctx, key, data) }()
	select {
	case err := <-res:
		return false, err
	case <-w.giveUp.Done():
	}
	grace := time.NewTimer(abandonGrace)
	defer grace.Stop()
	select {
	case err := <-res:
		return false, err
	case <-grace.C:
		return true, fmt.Errorf("put abandoned at the close deadline: %w", w.giveUp.Err())
	}
}

// header is a chunk header's variable fields.
type header struct {
	broker int32
	first  uint64
	count  uint32
}

func putHeader(b []byte, broker int32, first uint64, count uint32) {
	binary.LittleEndian.PutUint32(b[0:], chunkMagic)
	binary.LittleEndian.PutUint16(b[4:], chunkVersion)
	binary.LittleEndian.PutUint16(b[6:], 0)
	binary.LittleEndian.PutUint32(b[8:], uint32(broker))
	binary.LittleEndian.PutUint64(b[12:], first)
	binary.LittleEndian.PutUint32(b[20:], count)
	binary.LittleEndian.PutUint32(b[24:], crc32.Checksum(b[:24], crc32.MakeTable(crc32.Castagnoli)))
}

// parseHeader checks a chunk header against what its key says.
func parseHeader(b []byte, broker int32, first uint64) (header, error) {
	if len(b) < chunkHeaderSize {
		return header{}, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrCorrupt, len(b), chunkHeaderSize)
	}
	if m := binary.LittleEndian.Uint32(b[0:]); m != chunkMagic {
		return header{}, fmt.Errorf("%w: bad magic %#08x", ErrCorrupt, m)
	}
	if got, want := crc32.Checksum(b[:24], crc32.MakeTable(crc32.Castagnoli)), binary.LittleEndian.Uint32(b[24:]); got != want {
		return header{}, fmt.Errorf("%w: header checksum mismatch (got %#08x, want %#08x)", ErrCorrupt, got, want)
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != chunkVersion {
		return header{}, fmt.Errorf("%w: unsupported version %d", ErrCorrupt, v)
	}
	h := header{
		broker: int32(binary.LittleEndian.Uint32(b[8:])),
		first:  binary.LittleEndian.Uint64(b[12:]),
		count:  binary.LittleEndian.Uint32(b[20:]),
	}
	switch {
	case h.broker != broker:
		return header{}, fmt.Errorf("%w: written by broker %d, stored under broker %d", ErrCorrupt, h.broker, broker)
	case h.first != first:
		return header{}, fmt.Errorf("%w: first seq %d, but the key says %d", ErrCorrupt, h.first, first)
	case h.count == 0:
		return header{}, fmt.Errorf("%w: no records", ErrCorrupt)
	}
	return h, nil
}

type decoded struct {
	seq uint64
	e   wal.Entry
}

// decodeChunk checks a whole chunk and returns its entries.
func decodeChunk(b []byte, broker int32, first uint64) ([]decoded, error) {
	h, err := parseHeader(b, broker, first)
	if err != nil {
		return nil, err
	}
	out := make([]decoded, 0, h.count)
	off := chunkHeaderSize
	for i := uint32(0); i < h.count; i++ {
		seq, e, n, err := wal.DecodeRecord(b[off:])
		if err != nil {
			return nil, fmt.Errorf("%w: record %d of %d at offset %d of %d: %v", ErrCorrupt, i+1, h.count, off, len(b), err)
		}
		if want := first + uint64(i); seq != want {
			return nil, fmt.Errorf("%w: record %d at offset %d has seq %d, want %d", ErrCorrupt, i+1, off, seq, want)
		}
		out = append(out, decoded{seq, e})
		off += n
	}
	if off != len(b) {
		return nil, fmt.Errorf("%w: %d bytes after the last of %d records", ErrCorrupt, len(b)-off, h.count)
	}
	return out, nil
}

// readAttempts bounds the attempts at one read of the WAL (a listing or a
// chunk): a store that throttles (503 SlowDown) or fails a request now
// and then must not fail a broker's start or a takeover, which read every
// chunk and used to give up at the first failed one; a store that is
// down still fails them after about readAttempts backoffs (~10 s), and
// they are retried whole by their callers.
const readAttempts = 15

// retryRead runs read until it succeeds, the object is missing, ctx ends
// or readAttempts are used, backing off between attempts.
func retryRead(ctx context.Context, read func() error) error {
	backoff := minBackoff
	for attempt := 1; ; attempt++ {
		err := read()
		if err == nil || errors.Is(err, objstore.ErrNotExist) || ctx.Err() != nil || attempt >= readAttempts {
			return err
		}
		t := time.NewTimer(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// getRetried reads a range of key, each attempt bounded by timeout.
func getRetried(ctx context.Context, store objstore.Store, key string, off, length int64, timeout time.Duration) ([]byte, error) {
	var raw []byte
	err := retryRead(ctx, func() error {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var err error
		raw, err = store.GetRange(rctx, key, off, length)
		return err
	})
	return raw, err
}

// scanChunks reads chunks in order, checks each whole and that each starts
// where the previous ended, and passes their entries to fn. It returns the
// last seq passed on.
func scanChunks(ctx context.Context, store objstore.Store, broker int32, chunks []chunk, timeout time.Duration,
	fn func(uint64, wal.Entry) error) (uint64, error) {
	var last uint64
	for i, c := range chunks {
		if i > 0 && c.first != last+1 {
			return last, fmt.Errorf("objwal: chunk %s starts at seq %d but the previous chunk ends at %d: acknowledged entries are missing",
				c.key, c.first, last)
		}
		raw, err := getRetried(ctx, store, c.key, 0, -1, timeout)
		if err != nil {
			return last, fmt.Errorf("objwal: read chunk %s: %w", c.key, err)
		}
		ents, err := decodeChunk(raw, broker, c.first)
		if err != nil {
			return last, fmt.Errorf("objwal: chunk %s: %w", c.key, err)
		}
		for _, d := range ents {
			if err := fn(d.seq, d.e); err != nil {
				return last, fmt.Errorf("objwal: chunk %s, seq %d: %w", c.key, d.seq, err)
			}
			last = d.seq
		}
	}
	return last, nil
}

// Scan calls fn for every entry in brokerID's chunks, in sequence order,
// with the same checks as Replay. It is for a broker taking over another's
// partitions: it only reads, so the owner may still be trimming (a chunk
// deleted between the listing and its read is an error, and the caller
// scans again). Entries' Data is not reused. See the package comment for
// discarding entries of stale leader epochs.
func Scan(ctx context.Context, store objstore.Store, brokerID int32, fn func(seq uint64, e wal.Entry) error) error {
	if brokerID < 0 {
		return fmt.Errorf("objwal: broker id %d: must not be negative", brokerID)
	}
	chunks, err := listChunks(ctx, store, BrokerPrefix(brokerID), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	_, err = scanChunks(ctx, store, brokerID, chunks, defaultRequestTimeout, fn)
	return err
}

// Brokers lists, in increasing order, the ids of the brokers that have
// chunks in store.
func Brokers(ctx context.Context, store objstore.Store) ([]int32, error) {
	var objs []objstore.Object
	err := retryRead(ctx, func() error {
		var err error
		objs, err = store.List(ctx, KeyPrefix)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("objwal: list %s: %w", KeyPrefix, err)
	}
	var ids []int32
	for _, o := range objs {
		rest := strings.TrimPrefix(o.Key, KeyPrefix)
		dir, _, ok := strings.Cut(rest, "/")
		if !ok || len(dir) != 10 {
			continue
		}
		id, err := strconv.ParseInt(dir, 10, 32)
		if err != nil || id < 0 {
			continue
		}
		if _, ok := parseChunkKey(BrokerPrefix(int32(id)), o.Key); !ok {
			continue
		}
		ids = append(ids, int32(id))
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// ScanAll calls fn for the entries of every broker's chunks, broker by
// broker, each in sequence order: what a broker taking partitions over
// reads. A chunk its owner deletes during the scan is skipped: owners
// delete only chunks whose every entry is in the segment index (or
// superseded by a newer leader), so the taker needs nothing from it.
func ScanAll(ctx context.Context, store objstore.Store, fn func(e wal.Entry) error) error {
	ids, err := Brokers(ctx, store)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := ScanBroker(ctx, store, id, func(_ string, _ uint64, e wal.Entry) error { return fn(e) }); err != nil {
			return err
		}
	}
	return nil
}

// DropBroker deletes the chunks of brokerID listed in keys: the chunks of
// a broker that is gone, once the metadata shows every entry in them is
// superseded (see storage's dead-WAL collection). The caller names the
// keys it checked, so a chunk written afterwards (the id came back) is
// never deleted unread. Missing keys are not an error.
func DropBroker(ctx context.Context, store objstore.Store, keys []string) error {
	for _, k := range keys {
		if err := store.Delete(ctx, k); err != nil {
			return fmt.Errorf("objwal: delete chunk %s: %w", k, err)
		}
	}
	return nil
}

// ScanBroker is Scan that also names each entry's chunk and tolerates
// chunks that overlap (two incarnations of one broker id) or vanish
// during the scan (they are skipped): for callers that only collect
// entries, such as a takeover or dead-WAL collection.
func ScanBroker(ctx context.Context, store objstore.Store, brokerID int32, fn func(chunkKey string, seq uint64, e wal.Entry) error) error {
	chunks, err := listChunks(ctx, store, BrokerPrefix(brokerID), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	for _, c := range chunks {
		_, err := scanChunks(ctx, store, brokerID, []chunk{c}, defaultRequestTimeout, func(seq uint64, e wal.Entry) error { return fn(c.key, seq, e) })
		if errors.Is(err, objstore.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}
