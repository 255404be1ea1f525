// Package partition holds one partition's log as the leader sees it: the
// offsets it has assigned, the high watermark (everything below it is
// durable), recent batches in memory for tail reads, and the index of
// segment objects for older data.
//
// Transactions (Kafka's KIP-98): the producer state tracks each
// producer's ongoing transaction; a marker (control batch) ends it. The
// last stable offset (LSO) is the high watermark, held back to the first
// offset of the earliest transaction that is ongoing or whose marker is
// not yet durable (never below the log start); read_committed readers
// read below it only. Every aborted transaction is in the log's aborted
// index, {producer, first offset, marker offset} in marker order: in
// memory for the whole log, persisted with the index entry (run) that
// holds its marker, so it outlives the tail and a restart.
package partition

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/producer"
	"github.com/vigilhq/vigil/internal/readcache"
)

// Errors the broker maps to Kafka error codes.
var (
	ErrOffsetOutOfRange = errors.New("partition: offset out of range")
	ErrDeleted          = errors.New("partition: topic deleted")
	// ErrNotLeader: in a cluster, this broker does not lead the partition
	// (now); the client refreshes its metadata and retries.
	ErrNotLeader = errors.New("partition: not the leader")
)

// AbortedTxn is one entry of the aborted-transaction index.
type AbortedTxn = meta.AbortedTxn

// Isolation is a read's isolation level, as Kafka's.
type Isolation int8

const (
	ReadUncommitted Isolation = 0 // up to the high watermark
	ReadCommitted   Isolation = 1 // up to the last stable offset
)

// Batch is one stored record batch.
type Batch struct {
	Base, Last int64
	MaxTs      int64
	Data       []byte // header offsets already assigned
	Seq        uint64 // WAL sequence number
}

// Log is one partition. All methods are safe for concurrent use.
type Log struct {
	Topic     string
	TopicID   [16]byte
	Partition int32
	objs      *readcache.Cache
	cacheCap  int64

	mu       sync.Mutex
	logStart int64
	next     int64 // next offset to assign (log end offset)
	hw       int64 // offsets below are durable and readable
	mem      []*Batch
	memBytes int64
	uploaded int64 // offsets below are in segs
	segs     []meta.Segment
	waiters  map[chan struct{}]struct{}
	deleted  bool
	failed   error
	// epoch is the leader epoch stamped on appended batches; led is false
	// for a partition a cluster peer leads (or nobody yet). epochs is the
	// leader-epoch history, oldest first, ending with epoch (empty for a
	// single broker, whose epoch stays 0).
	epoch  int32
	epochs []meta.EpochStart
	led    bool
	// producers is the idempotence state as of the log end: checked and
	// advanced under mu by Append, so it follows offset order exactly.
	producers *producer.State
	// completing are the transactions whose marker is appended but not
	// yet durable, in offset order: they hold the last stable offset back
	// until the high watermark passes their marker.
	completing []producer.Txn
	// aborted is the aborted-transaction index of the whole log, by
	// marker offset; abortSpan bounds LastOffset-FirstOffset over it (it
	// only grows), so a lookup knows where to stop.
	aborted   []AbortedTxn
	abortSpan int64
}

// New builds a log from its persisted state: the segment index (sorted by
// FirstOffset) and the log start offset. cacheBytes bounds the memory kept
// for tail reads once batches are uploaded.
func New(topic string, topicID [16]byte, partition int32, objs *readcache.Cache, segs []meta.Segment, logStart, cacheBytes int64) *Log {
	l := &Log{Topic: topic, TopicID: topicID, Partition: partition, objs: objs, cacheCap: cacheBytes, segs: segs, logStart: logStart,
		producers: producer.NewState(), led: true}
	for _, s := range segs {
		l.addAbortedLocked(s.Aborted...)
	}
	if n := len(segs); n > 0 {
		l.next = segs[n-1].LastOffset + 1
		l.logStart = max(l.logStart, segs[0].FirstOffset)
	}
	l.next = max(l.next, l.logStart)
	l.hw, l.uploaded = l.next, l.next
	return l
}

// RestoreProducer installs a producer's state from its last snapshot,
// before the WAL is replayed over it.
func (l *Log) RestoreProducer(e *producer.Entry) {
	l.mu.Lock()
	l.producers.Put(e)
	l.mu.Unlock()
}

// Recover re-adds a data batch replayed from the WAL. It reports whether
// the batch was new (not already uploaded); batches must come in WAL
// order. Either way the batch's producer state is replayed (a no-op for
// what the restored snapshot already holds).
func (l *Log) Recover(b *Batch, pb producer.Batch, nowMs int64) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.producers.Apply(pb, b.Base, nowMs)
	return l.recoverLocked(b)
}

// RecoverMarker is Recover for a transaction marker: a new abort marker
// adds its transaction to the aborted index (an uploaded one is in its
// index entry's already).
func (l *Log) RecoverMarker(b *Batch, m producer.Marker, nowMs int64) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	txn, ended := l.producers.ApplyMarker(m, b.Base, nowMs)
	isNew, err := l.recoverLocked(b)
	if isNew && ended && !txn.Commit {
		l.addAbortedLocked(AbortedTxn{ProducerID: txn.ID, FirstOffset: txn.First, LastOffset: txn.Last})
	}
	return isNew, err
}

// RecoverStored re-adds a stored batch, data or marker, read back from a
// WAL (restart, takeover).
func (l *Log) RecoverStored(b *Batch, nowMs int64) (bool, error) {
	info, err := batch.Peek(b.Data)
	if err != nil {
		return false, fmt.Errorf("partition %s/%d: batch at %d: %w", l.Topic, l.Partition, b.Base, err)
	}
	if !info.IsControl() {
		return l.Recover(b, info.Producer(), nowMs)
	}
	m, err := batch.ProducerMarker(b.Data)
	if errors.Is(err, batch.ErrNotMarker) {
		return l.Recover(b, producer.Batch{ID: -1}, nowMs) // no transaction of ours: kept, not applied
	}
	if err != nil {
		return false, fmt.Errorf("partition %s/%d: control batch at %d: %w", l.Topic, l.Partition, b.Base, err)
	}
	return l.RecoverMarker(b, m, nowMs)
}

// ApplyStored applies a stored batch's producer fields to st, a marker's
// too: how the state as of uploaded data follows the uploads.
func ApplyStored(st *producer.State, data []byte, nowMs int64) error {
	info, err := batch.Peek(data)
	if err != nil {
		return err
	}
	if !info.IsControl() {
		st.Apply(info.Producer(), info.BaseOffset, nowMs)
		return nil
	}
	m, err := batch.ProducerMarker(data)
	switch {
	case errors.Is(err, batch.ErrNotMarker):
		return nil
	case err != nil:
		return err
	}
	st.ApplyMarker(m, info.BaseOffset, nowMs)
	return nil
}

func (l *Log) recoverLocked(b *Batch) (bool, error) {
	if b.Last < l.next {
		return false, nil
	}
	// A batch beyond the log end is a mirrored one that kept its source's
	// offsets across a gap (AppendMirror); one that begins below the end
	// and reaches past it fits no log.
	if b.Base < l.next {
		return false, fmt.Errorf("partition %s/%d: WAL batch at offsets [%d, %d] overlaps the log ending at %d", l.Topic, l.Partition, b.Base, b.Last, l.next)
	}
	l.mem = append(l.mem, b)
	l.memBytes += int64(len(b.Data))
	l.next, l.hw = b.Last+1, b.Last+1
	return true, nil
}

// Append checks a validated batch against the producer state, assigns
// its offsets (rewriting its header) and hands it to write, which must
// enqueue it durably in offset order (the WAL); the caller calls Commit or
// Fail when it is durable. Append itself never waits for the disk.
//
// A retry of one of the producer's last batches is not written again: dup
// is that original batch (the caller answers once it is durable). Sequence
// and epoch violations are errors wrapping producer.ErrOutOfOrder or
// producer.ErrInvalidEpoch.
func (l *Log) Append(h *batch.Header, nowMs int64, write func(*Batch)) (dup *producer.Appended, err error) {
	return l.AppendVerified(h, producer.NoGuard, nowMs, write)
}

// AppendVerified is Append for a transactional batch verified with its
// coordinator (KIP-890 part 1) when TxnGuard returned guard: if a marker
// of its producer was appended since, the batch is refused with an error
// wrapping producer.ErrInvalidTxnState rather than begin a transaction
// no coordinator knows of.
func (l *Log) AppendVerified(h *batch.Header, guard producer.Guard, nowMs int64, write func(*Batch)) (dup *producer.Appended, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.appendableLocked(); err != nil {
		return nil, err
	}
	pb := h.Producer()
	if dup, err := l.producers.Check(pb); dup != nil || err != nil {
		return dup, err
	}
	if err := l.producers.CheckGuard(pb, guard); err != nil {
		return nil, err
	}
	batch.Assign(h.Raw, l.next, l.epoch)
	b := &Batch{Base: l.next, Last: l.next + int64(h.LastOffsetDelta), MaxTs: h.MaxTimestamp, Data: h.Raw}
	l.producers.Apply(pb, b.Base, nowMs)
	l.next = b.Last + 1
	l.mem = append(l.mem, b)
	l.memBytes += int64(len(b.Data))
	write(b)
	return nil, nil
}

func (l *Log) appendableLocked() error {
	switch {
	case l.deleted:
		return ErrDeleted
	case !l.led:
		return ErrNotLeader
	}
	return l.failed
}

// TxnGuard is what a transactional batch's verification with its
// coordinator needs (KIP-890 part 1): whether the producer has a
// transaction ongoing here at epoch (then no verification is needed),
// and the guard AppendVerified checks.
func (l *Log) TxnGuard(producerID int64, epoch int16) (producer.Guard, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.producers.Guard(producerID, epoch)
}

// AppendMarker checks a transaction marker against the producer state
// (errors wrap producer.ErrInvalidEpoch or producer.ErrCoordinatorFenced),
// appends its control batch at the log end, stamped nowMs, and hands it
// to write like Append. The marker ends the producer's ongoing
// transaction; an abort adds it to the aborted index at once, and the
// last stable offset passes it once the marker is durable.
func (l *Log) AppendMarker(m producer.Marker, nowMs int64, write func(*Batch)) (*Batch, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.appendableLocked(); err != nil {
		return nil, err
	}
	if err := l.producers.CheckMarker(m); err != nil {
		return nil, fmt.Errorf("partition %s/%d: %w", l.Topic, l.Partition, err)
	}
	raw := batch.BuildMarker(m.ID, m.Epoch, m.Commit, m.CoordinatorEpoch, nowMs)
	batch.Assign(raw, l.next, l.epoch)
	b := &Batch{Base: l.next, Last: l.next, MaxTs: nowMs, Data: raw}
	if txn, ended := l.producers.ApplyMarker(m, b.Base, nowMs); ended {
		l.completing = append(l.completing, txn)
		if !txn.Commit {
			l.addAbortedLocked(AbortedTxn{ProducerID: txn.ID, FirstOffset: txn.First, LastOffset: txn.Last})
		}
	}
	l.next++
	l.mem = append(l.mem, b)
	l.memBytes += int64(len(b.Data))
	write(b)
	return b, nil
}

// ErrMirrorConflict: a mirrored batch that overlaps the log end, or
// repeats offsets the log holds with other contents (INVALID_REQUEST:
// the mirror and this log disagree, and nothing will reconcile them).
var ErrMirrorConflict = errors.New("partition: mirrored batch conflicts with the log")

// AppendMirror appends a batch copied from another cluster's log at the
// offsets it has there (h.FirstOffset): the mirror's path, which keeps a
// topic's offsets, gaps and markers as the source has them.
//
//   - A batch at or beyond the log end is appended at its own base
//     offset; offsets between the end and it stay a gap (compaction's, on
//     the source), and the log end becomes its last offset plus one.
//   - A batch wholly below the log end is a retry of one appended
//     already: when it is still in memory, it must be the batch there at
//     the same offsets with the same CRC (which covers everything but the
//     base offset and leader epoch), and dup is that batch; when only
//     segment objects hold it, cold is true and the caller compares it
//     (MirrorMatches). Anything else is ErrMirrorConflict.
//   - A batch that begins below the log end and ends beyond it is
//     ErrMirrorConflict.
//
// The producer state follows the batch as it follows a batch produced
// here, without the checks: the source enforced sequences and epochs, and
// compaction there may have removed batches in between. A data batch
// keeps its producer id, epoch and sequences and may begin a transaction;
// a control batch ends one as a marker written here by the coordinator
// does (an abort joins the aborted index, the last stable offset passes
// the marker once it is durable), so read_committed readers here see what
// they see on the source.
func (l *Log) AppendMirror(h *batch.Header, nowMs int64, write func(*Batch)) (dup *Batch, cold bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.appendableLocked(); err != nil {
		return nil, false, err
	}
	base, last := h.FirstOffset, h.LastOffset()
	switch {
	case base < 0:
		return nil, false, fmt.Errorf("%w: %s/%d: base offset %d", ErrMirrorConflict, l.Topic, l.Partition, base)
	case last < l.next:
		return l.mirroredLocked(h)
	case base < l.next:
		return nil, false, fmt.Errorf("%w: %s/%d: batch [%d, %d] overlaps the log ending at %d", ErrMirrorConflict, l.Topic, l.Partition, base, last, l.next)
	}
	var marker producer.Marker
	isMarker := false
	if h.IsControl() {
		m, err := batch.ProducerMarker(h.Raw)
		switch {
		case err == nil:
			marker, isMarker = m, true
		case !errors.Is(err, batch.ErrNotMarker):
			return nil, false, fmt.Errorf("partition %s/%d: control batch at %d: %w", l.Topic, l.Partition, base, err)
		}
	}
	batch.Assign(h.Raw, base, l.epoch)
	b := &Batch{Base: base, Last: last, MaxTs: h.MaxTimestamp, Data: h.Raw}
	switch {
	case isMarker:
		if txn, ended := l.producers.ApplyMarker(marker, base, nowMs); ended {
			l.completing = append(l.completing, txn)
			if !txn.Commit {
				l.addAbortedLocked(AbortedTxn{ProducerID: txn.ID, FirstOffset: txn.First, LastOffset: txn.Last})
			}
		}
	case !h.IsControl():
		l.producers.Apply(h.Producer(), base, nowMs)
	}
	l.next = last + 1
	l.mem = append(l.mem, b)
	l.memBytes += int64(len(b.Data))
	write(b)
	return nil, false, nil
}

// mirroredLocked answers a mirrored batch wholly below the log end.
func (l *Log) mirroredLocked(h *batch.Header) (*Batch, bool, error) {
	base, last := h.FirstOffset, h.LastOffset()
	if len(l.mem) == 0 || base < l.mem[0].Base {
		return nil, true, nil
	}
	i := sort.Search(len(l.mem), func(i int) bool { return l.mem[i].Last >= base })
	if i < len(l.mem) {
		if b := l.mem[i]; b.Base == base && b.Last == last && SameBatch(b.Data, h.Raw) {
			return b, false, nil
		}
	}
	return nil, false, fmt.Errorf("%w: %s/%d: batch [%d, %d] is below the log end %d but differs from what the log holds there",
		ErrMirrorConflict, l.Topic, l.Partition, base, last, l.next)
}

// SameBatch reports whether two stored batches are the same but for the
// fields a broker owns (base offset, leader epoch): same length and CRC.
func SameBatch(a, b []byte) bool {
	const offLength, offCRC = 8, 17
	if len(a) < batch.HeaderLen || len(b) < batch.HeaderLen || len(a) != len(b) {
		return false
	}
	return string(a[offLength:offLength+4]) == string(b[offLength:offLength+4]) && string(a[offCRC:offCRC+4]) == string(b[offCRC:offCRC+4])
}

// addAbortedLocked adds entries to the aborted index, which they must
// follow in marker order.
func (l *Log) addAbortedLocked(txns ...AbortedTxn) {
	for _, t := range txns {
		l.aborted = append(l.aborted, t)
		l.abortSpan = max(l.abortSpan, t.LastOffset-t.FirstOffset)
	}
}

// LSO is the last stable offset: read_committed readers read below it.
func (l *Log) LSO() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lsoLocked()
}

func (l *Log) lsoLocked() int64 {
	lso := l.hw
	if first, ok := l.producers.FirstUnstable(); ok {
		lso = min(lso, first)
	}
	for _, t := range l.completing {
		lso = min(lso, t.First)
	}
	// Kafka's first unstable offset never lies below the log start: data
	// deleted there can be read by nobody anyway.
	return max(lso, l.logStart)
}

// AbortedTxns returns the aborted transactions a read_committed read of
// offsets [from, to] must be told of (Kafka's collectAbortedTxns): those
// whose marker is at or after from and whose first offset is at or
// before to, in marker order.
func (l *Log) AbortedTxns(from, to int64) []AbortedTxn {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.aborted), func(i int) bool { return l.aborted[i].LastOffset >= from })
	stop := int64(math.MaxInt64)
	if to <= math.MaxInt64-l.abortSpan {
		stop = to + l.abortSpan // no later marker can end a transaction begun by to
	}
	var out []AbortedTxn
	for ; i < len(l.aborted) && l.aborted[i].LastOffset <= stop; i++ {
		if a := l.aborted[i]; a.FirstOffset <= to {
			out = append(out, a)
		}
	}
	return out
}

// AbortedIn returns the aborted-index entries whose marker lies in
// [first, last]: those of the run (index entry) holding those offsets.
func (l *Log) AbortedIn(first, last int64) []AbortedTxn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.abortedInLocked(first, last)
}

func (l *Log) abortedInLocked(first, last int64) []AbortedTxn {
	i := sort.Search(len(l.aborted), func(i int) bool { return l.aborted[i].LastOffset >= first })
	j := sort.Search(len(l.aborted), func(i int) bool { return l.aborted[i].LastOffset > last })
	if i >= j {
		return nil
	}
	return append([]AbortedTxn(nil), l.aborted[i:j]...)
}

// OngoingTxns returns the transactions ongoing on the partition.
func (l *Log) OngoingTxns() []producer.Txn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.producers.Ongoing()
}

// Durable reports whether every offset up to and including off is durable,
// or why it never will be.
func (l *Log) Durable(off int64) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return off < l.hw, l.failed
}

// Producers is the idempotent producers' state as of the log end.
func (l *Log) Producers() []*producer.Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.producers.All()
}

// ExpireProducers forgets producers idle since before beforeMs.
func (l *Log) ExpireProducers(beforeMs int64) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.producers.Expire(beforeMs)
}

// Commit marks b durable, making it readable, and wakes waiting fetches.
func (l *Log) Commit(b *Batch) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hw = max(l.hw, b.Last+1)
	i := 0
	for i < len(l.completing) && l.completing[i].Last < l.hw {
		i++
	}
	if i > 0 {
		l.completing = append(l.completing[:0], l.completing[i:]...)
	}
	for w := range l.waiters {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// Fail records that the batch could not be made durable: the log accepts
// nothing more, because offsets after the failed batch would leave a hole.
func (l *Log) Fail(err error) {
	l.mu.Lock()
	if l.failed == nil {
		l.failed = fmt.Errorf("partition %s/%d: write-ahead log failed: %w", l.Topic, l.Partition, err)
	}
	l.mu.Unlock()
}

// SetLeader makes this broker the partition's leader at epoch (the log
// must have been built from the state the new epoch starts from). hist is
// the partition's leader-epoch history as the takeover committed it,
// oldest first; if it does not end with epoch beginning at the log end,
// that entry is assigned here.
func (l *Log) SetLeader(epoch int32, hist []meta.EpochStart) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(hist); n == 0 || hist[n-1] != (meta.EpochStart{Epoch: epoch, Offset: l.next}) {
		hist = AssignEpoch(hist, epoch, l.next, l.logStart)
	}
	l.epoch, l.epochs, l.led = epoch, hist, true
}

// Fence stops serving the partition: another broker leads it, or this
// one's lease is in doubt. Appends and reads fail with ErrNotLeader, and
// waiting fetches wake up to notice.
func (l *Log) Fence() {
	l.mu.Lock()
	l.led = false
	for w := range l.waiters {
		select {
		case w <- struct{}{}:
		default:
		}
	}
	l.mu.Unlock()
}

// Settled reports whether every appended batch has been committed (or
// the log failed): nothing is in flight to the WAL.
func (l *Log) Settled() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hw >= l.next || l.failed != nil
}

// Leader reports the epoch and whether this broker leads the partition.
func (l *Log) Leader() (int32, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch, l.led
}

// MarkDeleted stops appends after the topic is deleted.
func (l *Log) MarkDeleted() {
	l.mu.Lock()
	l.deleted = true
	l.mu.Unlock()
}

// Deleted reports whether the topic was deleted.
func (l *Log) Deleted() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deleted
}

// Uploaded records that seg now holds offsets up to seg.LastOffset, and
// drops uploaded batches from memory beyond the tail cache budget.
func (l *Log) Uploaded(seg meta.Segment) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.segs = append(l.segs, seg)
	l.uploaded = max(l.uploaded, seg.LastOffset+1)
	l.evictLocked()
}

// DropCachedThrough drops the uploaded batches held in memory whose offsets
// all lie at or below last, so reads of them go to the segment objects:
// the log cleaner calls it once the objects hold a cleaned copy, which the
// tail cache would otherwise keep hiding.
func (l *Log) DropCachedThrough(last int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := 0
	for i < len(l.mem) && l.mem[i].Last <= last && l.mem[i].Last < l.uploaded {
		l.memBytes -= int64(len(l.mem[i].Data))
		l.mem[i] = nil
		i++
	}
	l.mem = l.mem[i:]
}

func (l *Log) evictLocked() {
	i := 0
	for i < len(l.mem) && l.memBytes > l.cacheCap && l.mem[i].Last < l.uploaded {
		l.memBytes -= int64(len(l.mem[i].Data))
		l.mem[i] = nil
		i++
	}
	l.mem = l.mem[i:]
}

// Size is the partition's bytes of record batches: those in segment
// objects plus those durable or on their way in the WAL, not yet uploaded.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, s := range l.segs {
		n += s.Size
	}
	for _, b := range l.mem {
		if b.Base >= l.uploaded {
			n += int64(len(b.Data))
		}
	}
	return n
}

// Segments returns a copy of the segment index, oldest first.
func (l *Log) Segments() []meta.Segment {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]meta.Segment(nil), l.segs...)
}

// DropSegmentsThrough forgets the index entries whose offsets all lie at
// or below last (they were removed from the metadata store), and moves
// the log start past them.
func (l *Log) DropSegmentsThrough(last int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := 0
	for i < len(l.segs) && l.segs[i].LastOffset <= last {
		i++
	}
	l.segs = append([]meta.Segment(nil), l.segs[i:]...)
	l.logStart = max(l.logStart, min(last+1, l.hw))
	// The aborted index goes with the runs that held the markers, as
	// Kafka's transaction index goes with its segment.
	k := sort.Search(len(l.aborted), func(i int) bool { return l.aborted[i].LastOffset > last })
	l.aborted = append([]AbortedTxn(nil), l.aborted[k:]...)
}

// ReplaceSegments swaps the contiguous index entries old for the ones
// that rewrote them (compaction merges several into one; the cleaner
// writes any number). It reports false if old are no longer all there.
func (l *Log) ReplaceSegments(old []meta.Segment, rewritten ...meta.Segment) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].FirstOffset >= old[0].FirstOffset })
	if i+len(old) > len(l.segs) {
		return false
	}
	for k, s := range old {
		if !meta.SameSegment(l.segs[i+k], s) {
			return false
		}
	}
	segs := append(append(append([]meta.Segment(nil), l.segs[:i]...), rewritten...), l.segs[i+len(old):]...)
	l.segs = segs
	// The rewritten runs' aborted index replaces the old runs' (the same
	// after a merge; what the cleaner kept after cleaning).
	first, last := old[0].FirstOffset, old[len(old)-1].LastOffset
	a := sort.Search(len(l.aborted), func(i int) bool { return l.aborted[i].LastOffset >= first })
	b := sort.Search(len(l.aborted), func(i int) bool { return l.aborted[i].LastOffset > last })
	var mid []AbortedTxn
	for _, s := range rewritten {
		mid = append(mid, s.Aborted...)
	}
	l.aborted = append(append(append([]AbortedTxn(nil), l.aborted[:a]...), mid...), l.aborted[b:]...)
	for _, t := range mid {
		l.abortSpan = max(l.abortSpan, t.LastOffset-t.FirstOffset)
	}
	return true
}

// Cold reports whether a read at offset would come from segment objects,
// not memory: a catch-up read. The answer may be stale by the time the read
// runs, as the memory window moves on.
func (l *Log) Cold(offset int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return offset < l.hw && (len(l.mem) == 0 || offset < l.mem[0].Base)
}

// Offsets returns the log start offset and the high watermark.
func (l *Log) Offsets() (logStart, hw int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.logStart, l.hw
}

// Watch registers ch to be signalled (without blocking) the next time the
// high watermark moves. ch should have a buffer of one.
func (l *Log) Watch(ch chan struct{}) {
	l.mu.Lock()
	if l.waiters == nil {
		l.waiters = map[chan struct{}]struct{}{}
	}
	l.waiters[ch] = struct{}{}
	l.mu.Unlock()
}

// Unwatch removes ch, so a finished long poll leaves nothing behind on
// partitions that stayed idle.
func (l *Log) Unwatch(ch chan struct{}) {
	l.mu.Lock()
	delete(l.waiters, ch)
	l.mu.Unlock()
}

// SetLogStart moves the log start offset forward (DeleteRecords,
// retention). off may not exceed the high watermark; -1 means the high
// watermark. It returns the new log start.
func (l *Log) SetLogStart(off int64) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if off == -1 {
		off = l.hw
	}
	if off < 0 || off > l.hw {
		return l.logStart, fmt.Errorf("%w: %d is beyond the high watermark %d", ErrOffsetOutOfRange, off, l.hw)
	}
	l.logStart = max(l.logStart, off)
	return l.logStart, nil
}

// ReadResult is what a fetch gets from one partition.
type ReadResult struct {
	Data        []byte // whole batches, starting with the one holding the offset
	HW          int64
	LSO         int64 // the last stable offset
	LogStart    int64
	FromObjects bool  // Data was read from segment objects: a catch-up read
	Last        int64 // the last offset of Data's last batch; -1 if Data is empty
}

// Read returns batches from offset on, up to maxBytes. With minOne, at
// least one whole batch is returned when any is readable (KIP-74), so a
// large batch never wedges a consumer; a fetch sets it for the first
// partition that has data. Recent data comes from memory; older data from
// objects.
func (l *Log) Read(ctx context.Context, offset int64, maxBytes int, minOne bool) (ReadResult, error) {
	return l.ReadInto(ctx, offset, maxBytes, minOne, ReadUncommitted, nil)
}

// ReadInto is Read at an isolation level with the array that copied
// batches go into taken from alloc (an empty slice with room for at least
// n bytes), so a caller can recycle it; nil allocates. Data may also
// alias memory the log owns, and may outgrow what alloc gave.
//
// ReadCommitted returns only batches that begin below the last stable
// offset (a transaction's batches never straddle it: it is the first
// offset of one, or the high watermark); the offset must still lie in
// [log start, high watermark], as Kafka checks it.
func (l *Log) ReadInto(ctx context.Context, offset int64, maxBytes int, minOne bool, iso Isolation, alloc func(n int) []byte) (ReadResult, error) {
	if alloc == nil {
		alloc = func(n int) []byte { return make([]byte, 0, n) }
	}
	fits := func(have, add int) bool { return have+add <= maxBytes || (have == 0 && minOne) }
	l.mu.Lock()
	res := ReadResult{HW: l.hw, LSO: l.lsoLocked(), LogStart: l.logStart, Last: -1}
	if !l.led {
		l.mu.Unlock()
		return res, ErrNotLeader
	}
	if offset < l.logStart || offset > l.hw {
		l.mu.Unlock()
		return res, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, l.logStart, l.hw)
	}
	end := l.hw // batches beginning at or after end are not returned
	if iso == ReadCommitted {
		end = res.LSO
	}
	if offset >= end {
		l.mu.Unlock()
		return res, nil
	}
	if len(l.mem) > 0 && offset >= l.mem[0].Base {
		i := sort.Search(len(l.mem), func(i int) bool { return l.mem[i].Last >= offset })
		// Size first, then copy once: fetches of many small batches would
		// otherwise spend their time regrowing the buffer.
		j, size := i, 0
		adjacent := true // [i, j) lie back to back in the first one's array
		for ; j < len(l.mem) && l.mem[j].Base < end && fits(size, len(l.mem[j].Data)); j++ {
			if j > i && !within(l.mem[i].Data, size, l.mem[j].Data) {
				adjacent = false
			}
			size += len(l.mem[j].Data)
		}
		if j > i {
			res.Last = l.mem[j-1].Last
		}
		if adjacent && j > i {
			// Batches are immutable once committed, and batches written
			// back to back (one batch, or one produce request's) lie in
			// one request frame: hand that memory out instead of copying
			// it, which at full ingest was as much garbage as the produce
			// requests themselves. Clipped, so no caller appends into it.
			res.Data = l.mem[i].Data[:size:size]
			l.mu.Unlock()
			return res, nil
		}
		out := alloc(size)
		for ; i < j; i++ {
			out = append(out, l.mem[i].Data...)
		}
		l.mu.Unlock()
		res.Data = out
		return res, nil
	}
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].LastOffset >= offset })
	var segs []meta.Segment
	var planned int64
	for ; i < len(l.segs) && l.segs[i].FirstOffset < end && (len(segs) == 0 || planned < int64(maxBytes)); i++ {
		segs = append(segs, l.segs[i])
		planned += l.segs[i].Size
	}
	l.mu.Unlock()

	// Sized for what the fetch may take, or for the planned objects when
	// less; a minOne batch beyond both grows it.
	out := alloc(int(min(planned, int64(max(maxBytes, 0)))))
	for _, s := range segs {
		var full bool
		var err error
		if out, full, err = l.readRun(ctx, s, offset, end, out, &res.Last, fits); err != nil {
			return res, err
		}
		if full {
			break
		}
	}
	if len(out) > 0 {
		res.Data, res.FromObjects = out, true
	}
	return res, nil
}

// Run reads go through the cache in spans of this size; hints are
// recorded at most this often, so a run of 16 MiB keeps about 64.
const (
	runSpan      = 1 << 20
	hintInterval = 256 << 10
)

// readRun appends to out the batches of run s that hold offsets at or
// after offset and begin before end, while they fit, and sets *last to
// the last offset appended. full reports that one did not fit (or the
// run reached end). It starts from the cache's hint for offset rather
// than the run's start, so a consumer reading a run over many fetches
// reads it once.
func (l *Log) readRun(ctx context.Context, s meta.Segment, offset, end int64, out []byte, last *int64, fits func(have, add int) bool) ([]byte, bool, error) {
	pos := l.objs.Seek(s, offset)
	lastHint := int64(-hintInterval)
	var buf []byte // the run's bytes from pos on, as far as read
	for pos < s.Size {
		need := int64(batch.HeaderLen)
		if len(buf) >= 12 {
			need = 12 + int64(binary.BigEndian.Uint32(buf[8:12]))
			if need < batch.HeaderLen || pos+need > s.Size {
				return out, false, fmt.Errorf("partition %s/%d: object %s: batch at run position %d claims %d bytes of the %d left",
					l.Topic, l.Partition, s.Object, pos, need, s.Size-pos)
			}
		}
		if int64(len(buf)) < need {
			from := pos + int64(len(buf))
			more, err := l.objs.Read(ctx, s, from, max(pos+need, from+runSpan))
			if err != nil {
				return out, false, fmt.Errorf("partition %s/%d: read %s: %w", l.Topic, l.Partition, s.Object, err)
			}
			if len(more) == 0 {
				return out, false, fmt.Errorf("partition %s/%d: object %s: run ends inside a batch header at position %d", l.Topic, l.Partition, s.Object, pos)
			}
			if len(buf) == 0 {
				// Read-only; clipped so no append can write into it.
				buf = more[:len(more):len(more)]
			} else {
				buf = append(buf, more...)
			}
			continue
		}
		info, err := batch.Peek(buf[:need])
		if err != nil {
			return out, false, fmt.Errorf("partition %s/%d: object %s at %d: %w", l.Topic, l.Partition, s.Object, s.Position+pos, err)
		}
		if pos-lastHint >= hintInterval {
			l.objs.Hint(s, info.BaseOffset, pos)
			lastHint = pos
		}
		if info.BaseOffset >= end {
			return out, true, nil
		}
		if info.LastOffset >= offset {
			if !fits(len(out), info.Size) {
				return out, true, nil
			}
			out = append(out, buf[:info.Size]...)
			*last = info.LastOffset
		}
		buf = buf[info.Size:]
		pos += int64(info.Size)
	}
	return out, false, nil
}

// OffsetForTimestamp returns the first offset whose record timestamp is at
// or after ts, with that timestamp; ok is false if there is none.
func (l *Log) OffsetForTimestamp(ctx context.Context, ts int64, dec kgo.Decompressor) (offset, recTs int64, ok bool, err error) {
	var found bool
	err = l.scanBatches(ctx, func(b []byte, info batch.Info) (bool, error) {
		if info.MaxTimestamp < ts {
			return true, nil
		}
		rb, recs, err := batch.Records(b, dec)
		if err != nil {
			return false, err
		}
		for _, r := range recs {
			o := rb.FirstOffset + int64(r.OffsetDelta)
			t := batch.Timestamp(&rb, &r)
			if t >= ts && o >= l.startOffset() {
				offset, recTs, found = o, t, true
				return false, nil
			}
		}
		return true, nil
	})
	return offset, recTs, found, err
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp (ListOffsets -3); ok is false for an empty log.
func (l *Log) MaxTimestamp(ctx context.Context, dec kgo.Decompressor) (offset, ts int64, ok bool, err error) {
	var best []byte
	bestTs := int64(-1)
	err = l.scanBatches(ctx, func(b []byte, info batch.Info) (bool, error) {
		if info.MaxTimestamp > bestTs || best == nil {
			best, bestTs = b, info.MaxTimestamp
		}
		return true, nil
	})
	if err != nil || best == nil {
		return -1, -1, false, err
	}
	rb, recs, err := batch.Records(best, dec)
	if err != nil {
		return -1, -1, false, err
	}
	for _, r := range recs {
		if t := batch.Timestamp(&rb, &r); t == bestTs {
			return rb.FirstOffset + int64(r.OffsetDelta), t, true, nil
		}
	}
	// A create-time batch's MaxTimestamp need not equal any record's
	// (clients set it); fall back to its last record. (In a LogAppendTime
	// batch every record has it, so the first one was returned above.)
	return rb.FirstOffset + int64(rb.LastOffsetDelta), bestTs, true, nil
}

func (l *Log) startOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.logStart
}

// scanBatches calls fn on every readable batch from the log start on, in
// offset order, until fn returns false. It reads objects one segment at a
// time, skipping segments fn cannot need by their max timestamp only when
// fn says so; it is for rare admin paths, not the fetch path.
func (l *Log) scanBatches(ctx context.Context, fn func(b []byte, info batch.Info) (bool, error)) error {
	l.mu.Lock()
	segs := append([]meta.Segment(nil), l.segs...)
	uploaded, logStart, hw := l.uploaded, l.logStart, l.hw
	var mem []*Batch
	for _, b := range l.mem {
		if b.Base >= uploaded && b.Base < hw {
			mem = append(mem, b)
		}
	}
	l.mu.Unlock()
	for _, s := range segs {
		if s.LastOffset < logStart {
			continue
		}
		data, err := l.objs.Read(ctx, s, 0, s.Size)
		if err != nil {
			return fmt.Errorf("partition %s/%d: read %s: %w", l.Topic, l.Partition, s.Object, err)
		}
		for len(data) > 0 {
			info, err := batch.Peek(data)
			if err != nil {
				return fmt.Errorf("partition %s/%d: object %s: %w", l.Topic, l.Partition, s.Object, err)
			}
			if info.LastOffset >= logStart {
				more, err := fn(data[:info.Size], info)
				if err != nil || !more {
					return err
				}
			}
			data = data[info.Size:]
		}
	}
	for _, b := range mem {
		info := batch.Info{BaseOffset: b.Base, LastOffset: b.Last, MaxTimestamp: b.MaxTs, Size: len(b.Data)}
		if info.LastOffset < logStart {
			continue
		}
		more, err := fn(b.Data, info)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// within reports whether b lies at offset off of first's array, so that
// first[:off+len(b)] holds it: only then is the span one allocation.
func within(first []byte, off int, b []byte) bool {
	if len(b) == 0 || off+len(b) > cap(first) {
		return false
	}
	at := unsafe.Add(unsafe.Pointer(unsafe.SliceData(first)), off)
	return at == unsafe.Pointer(unsafe.SliceData(b))
}
