// Package producer holds the broker side of Kafka's idempotent and
// transactional producer: per-partition producer state (epoch, the last
// five batches of every producer id, its ongoing transaction), the
// sequence checks that turn a client's retry into a duplicate answered
// with the original offset, the transaction rules of data batches and
// markers, and the allocation of producer ids.
//
// The rules follow Kafka 3.x (ProducerStateManager / ProducerAppendInfo):
//   - a batch whose epoch is older than the producer's is refused with
//     INVALID_PRODUCER_EPOCH;
//   - a batch that repeats one of the producer's last five batches (same
//     epoch, same sequence range) is a duplicate: nothing is written and
//     the client is told the original offset;
//   - a batch of a newer epoch must start at sequence 0;
//   - otherwise the first sequence must follow the last one (wrapping at
//     2^31-1), else OUT_OF_ORDER_SEQUENCE_NUMBER;
//   - a producer the partition has no state for is accepted at any
//     sequence (Kafka stopped answering UNKNOWN_PRODUCER_ID in 2.x, KIP-360);
//     one whose only state is a marker (no batch of its epoch yet) starts
//     at sequence 0.
//
// Transactions follow ProducerAppendInfo (KIP-98, KIP-890):
//   - the first transactional batch of a producer with no ongoing
//     transaction starts one at its base offset; a non-transactional
//     batch while one is ongoing is INVALID_TXN_STATE;
//   - a marker (control batch) ends the ongoing transaction, if any, and
//     returns it completed; it takes the marker's epoch (a coordinator
//     bumps it to fence a producer or, KIP-890 part 2, at every commit)
//     and coordinator epoch;
//   - a marker with an older epoch than the producer's is
//     INVALID_PRODUCER_EPOCH; under transaction version 2 one at the
//     producer's epoch too, unless no transaction is ongoing (a retried
//     marker, KAFKA-19999); an older coordinator epoch is
//     TRANSACTION_COORDINATOR_FENCED;
//   - a producer with an ongoing transaction never expires.
package producer

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// MaxInFlight is how many batches per producer and partition are
// remembered for duplicate detection; clients cap their in-flight requests
// per connection at the same number when idempotence is on.
const MaxInFlight = 5

// Errors the broker maps to Kafka error codes.
var (
	ErrOutOfOrder   = errors.New("producer: out of order sequence number")      // OUT_OF_ORDER_SEQUENCE_NUMBER
	ErrInvalidEpoch = errors.New("producer: producer epoch older than current") // INVALID_PRODUCER_EPOCH
	// ErrInvalidTxnState: a non-transactional batch of a producer in a
	// transaction, or (KIP-890 part 1) a verified batch whose transaction
	// ended before it was appended.
	ErrInvalidTxnState = errors.New("producer: invalid transaction state") // INVALID_TXN_STATE
	// ErrCoordinatorFenced: a marker from a transaction coordinator older
	// than the one that wrote this producer's last marker.
	ErrCoordinatorFenced = errors.New("producer: transaction coordinator fenced") // TRANSACTION_COORDINATOR_FENCED
)

// Batch is the producer view of one record batch header.
type Batch struct {
	ID        int64 // -1: not an idempotent batch
	Epoch     int16
	FirstSeq  int32
	LastDelta int32 // lastOffsetDelta: the batch holds LastDelta+1 records
	// Transactional is the batch's transactional attribute.
	Transactional bool
}

// Marker is what a transaction marker (a control batch) tells the
// producer state.
type Marker struct {
	ID               int64
	Epoch            int16
	Commit           bool
	CoordinatorEpoch int32
	// TV2: the coordinator runs transaction version 2 (KIP-890 part 2),
	// which bumps the epoch for every marker, so a marker at or below the
	// producer's epoch is a late one. It is not in the log: markers read
	// back (recovery) are applied without it, as Kafka's followers do.
	TV2 bool
}

// Txn is a transaction a marker completed on this partition: the
// producer's first transactional offset and the marker's offset.
type Txn struct {
	ID          int64
	First, Last int64
	Commit      bool
}

// LastSeq is the sequence number of the batch's last record.
func (b Batch) LastSeq() int32 { return addSeq(b.FirstSeq, b.LastDelta) }

func addSeq(seq, n int32) int32 {
	if seq > math.MaxInt32-n {
		return n - (math.MaxInt32 - seq) - 1
	}
	return seq + n
}

// Appended is what is remembered of one appended batch.
type Appended struct {
	FirstSeq, LastSeq int32
	Base              int64 // offset of the batch's first record
	LastDelta         int32
}

// LastOffset is the offset of the batch's last record.
func (a Appended) LastOffset() int64 { return a.Base + int64(a.LastDelta) }

// Entry is one producer's state on one partition.
type Entry struct {
	ID      int64
	Epoch   int16
	Batches []Appended // oldest first, at most MaxInFlight
	// LastMs is the broker's wall clock at the producer's last append
	// (not the client's timestamps, which may be anything); it drives expiry.
	LastMs int64
	// CoordinatorEpoch is that of the producer's last marker; -1 if none.
	CoordinatorEpoch int32
	// TxnFirst is the first offset of the producer's ongoing transaction
	// on this partition; -1 if none.
	TxnFirst int64
	// LastOffset is the offset of the last batch or marker applied; -1 if
	// none. Replaying anything at or before it changes nothing, so
	// recovery may replay what a snapshot already holds (a marker's epoch
	// bump clears Batches, which cannot tell).
	LastOffset int64
}

func newEntry(id int64, epoch int16) *Entry {
	return &Entry{ID: id, Epoch: epoch, CoordinatorEpoch: -1, TxnFirst: -1, LastOffset: -1}
}

func (e *Entry) clone() *Entry {
	c := *e
	c.Batches = append([]Appended(nil), e.Batches...)
	return &c
}

// State is the producer state of one partition. It is not safe for
// concurrent use: the partition log guards it with its own lock.
type State struct {
	m map[int64]*Entry
	// ongoing holds the producers with an ongoing transaction: few, next
	// to every idempotent producer of the partition, and what the last
	// stable offset is computed from.
	ongoing map[int64]*Entry
}

// NewState returns an empty state.
func NewState() *State { return &State{m: map[int64]*Entry{}, ongoing: map[int64]*Entry{}} }

// Len is the number of producers with state.
func (s *State) Len() int { return len(s.m) }

// Get returns the entry of producer id, or nil.
func (s *State) Get(id int64) *Entry { return s.m[id] }

// Check validates b against the state before it is appended. It returns
// the original batch when b is a duplicate of one of the last MaxInFlight
// batches, or an error wrapping ErrInvalidEpoch, ErrOutOfOrder or
// ErrInvalidTxnState.
func (s *State) Check(b Batch) (*Appended, error) {
	if b.ID < 0 {
		return nil, nil
	}
	e := s.m[b.ID]
	if e == nil {
		return nil, nil
	}
	if b.Epoch < e.Epoch {
		return nil, fmt.Errorf("%w: producer %d sent epoch %d, current epoch is %d", ErrInvalidEpoch, b.ID, b.Epoch, e.Epoch)
	}
	if b.Epoch == e.Epoch {
		last := b.LastSeq()
		for i := range e.Batches {
			if a := &e.Batches[i]; a.FirstSeq == b.FirstSeq && a.LastSeq == last {
				dup := *a
				return &dup, nil
			}
		}
	}
	switch n := len(e.Batches); {
	case b.Epoch != e.Epoch:
		if b.FirstSeq != 0 {
			return nil, fmt.Errorf("%w: producer %d starts epoch %d at sequence %d, must be 0", ErrOutOfOrder, b.ID, b.Epoch, b.FirstSeq)
		}
	case n > 0:
		if want := addSeq(e.Batches[n-1].LastSeq, 1); b.FirstSeq != want {
			return nil, fmt.Errorf("%w: producer %d epoch %d sent sequence %d, expected %d", ErrOutOfOrder, b.ID, b.Epoch, b.FirstSeq, want)
		}
	case b.FirstSeq != 0:
		// Only a marker gave this producer state: it knows the epoch, so
		// the epoch's first batch starts the sequence, as in Kafka.
		return nil, fmt.Errorf("%w: producer %d epoch %d sent sequence %d, expected 0 after its transaction marker", ErrOutOfOrder, b.ID, b.Epoch, b.FirstSeq)
	}
	if e.TxnFirst >= 0 && !b.Transactional {
		return nil, fmt.Errorf("%w: producer %d sent a non-transactional batch inside its transaction (begun at offset %d)", ErrInvalidTxnState, b.ID, e.TxnFirst)
	}
	return nil, nil
}

// Guard is what a transactional batch's verification (KIP-890 part 1)
// saw of its producer on the partition: see CheckGuard.
type Guard int64

// NoGuard skips the check: the batch was not verified.
const NoGuard Guard = math.MinInt64

// Guard returns the state of producer id a verification is about to
// vouch for, and whether the producer has a transaction ongoing on the
// partition at epoch (then a batch needs no verification).
func (s *State) Guard(id int64, epoch int16) (Guard, bool) {
	e := s.m[id]
	if e == nil {
		return -1, false
	}
	return Guard(e.LastOffset), e.TxnFirst >= 0 && e.Epoch == epoch
}

// CheckGuard refuses a verified batch that would start a transaction
// when a marker of its producer was applied since the verification
// (guard): the transaction the coordinator vouched for has ended, and
// the batch would begin one no coordinator knows of, which would hold
// the last stable offset forever (Kafka's VerificationGuard).
func (s *State) CheckGuard(b Batch, guard Guard) error {
	if guard == NoGuard || b.ID < 0 || !b.Transactional {
		return nil
	}
	e := s.m[b.ID]
	if e == nil || e.TxnFirst >= 0 {
		return nil
	}
	if Guard(e.LastOffset) != guard {
		return fmt.Errorf("%w: the transaction of producer %d ended while its batch was verified", ErrInvalidTxnState, b.ID)
	}
	return nil
}

// Apply records that b was appended at offset base, and begins the
// producer's transaction if b is the first transactional batch. Applying
// a batch at or before the producer's last applied offset is a no-op, so
// recovery may replay batches the state already holds.
func (s *State) Apply(b Batch, base, nowMs int64) {
	if b.ID < 0 {
		return
	}
	e := s.m[b.ID]
	if e == nil {
		e = newEntry(b.ID, b.Epoch)
		s.m[b.ID] = e
	}
	if base <= e.LastOffset {
		return
	}
	if b.Epoch != e.Epoch {
		// A new epoch starts a new sequence space; the old batches can no
		// longer be retried (Kafka clears them too).
		e.Epoch, e.Batches = b.Epoch, e.Batches[:0]
	}
	if len(e.Batches) == MaxInFlight {
		copy(e.Batches, e.Batches[1:])
		e.Batches = e.Batches[:MaxInFlight-1]
	}
	e.Batches = append(e.Batches, Appended{FirstSeq: b.FirstSeq, LastSeq: b.LastSeq(), Base: base, LastDelta: b.LastDelta})
	e.LastMs = max(e.LastMs, nowMs)
	e.LastOffset = base + int64(b.LastDelta)
	if b.Transactional && e.TxnFirst < 0 {
		e.TxnFirst = base
		s.ongoing[b.ID] = e
	}
}

// CheckMarker validates a marker before it is appended: an error wraps
// ErrInvalidEpoch or ErrCoordinatorFenced. A producer the partition has
// no state for accepts any marker.
func (s *State) CheckMarker(m Marker) error {
	e := s.m[m.ID]
	if e == nil {
		return nil
	}
	if m.Epoch < e.Epoch || (m.TV2 && m.Epoch == e.Epoch && e.TxnFirst >= 0) {
		return fmt.Errorf("%w: marker for producer %d has epoch %d, current epoch is %d", ErrInvalidEpoch, m.ID, m.Epoch, e.Epoch)
	}
	// TV2 at the producer's epoch with nothing ongoing: a marker retried
	// after it was written (coordinator reload, lost answer), written again.
	if e.CoordinatorEpoch > m.CoordinatorEpoch {
		return fmt.Errorf("%w: marker for producer %d from coordinator epoch %d, current is %d", ErrCoordinatorFenced, m.ID, m.CoordinatorEpoch, e.CoordinatorEpoch)
	}
	return nil
}

// ApplyMarker records that marker m was appended at offset, and returns
// the transaction it completed (ok false if the producer had none
// ongoing: an empty transaction leaves nothing to index). Applying a
// marker at or before the producer's last applied offset is a no-op.
func (s *State) ApplyMarker(m Marker, offset, nowMs int64) (txn Txn, ok bool) {
	e := s.m[m.ID]
	if e == nil {
		e = newEntry(m.ID, m.Epoch)
		s.m[m.ID] = e
	}
	if offset <= e.LastOffset {
		return Txn{}, false
	}
	if m.Epoch != e.Epoch {
		e.Epoch, e.Batches = m.Epoch, e.Batches[:0]
	}
	if e.TxnFirst >= 0 {
		txn, ok = Txn{ID: m.ID, First: e.TxnFirst, Last: offset, Commit: m.Commit}, true
		delete(s.ongoing, m.ID)
	}
	e.TxnFirst = -1
	e.CoordinatorEpoch = m.CoordinatorEpoch
	e.LastOffset = offset
	e.LastMs = max(e.LastMs, nowMs)
	return txn, ok
}

// FirstUnstable is the first offset of the earliest ongoing transaction;
// ok is false if none is ongoing.
func (s *State) FirstUnstable() (first int64, ok bool) {
	for _, e := range s.ongoing {
		if !ok || e.TxnFirst < first {
			first, ok = e.TxnFirst, true
		}
	}
	return first, ok
}

// Ongoing returns the producers with an ongoing transaction and where
// each began, by producer id.
func (s *State) Ongoing() []Txn {
	out := make([]Txn, 0, len(s.ongoing))
	for id, e := range s.ongoing {
		out = append(out, Txn{ID: id, First: e.TxnFirst, Last: -1})
	}
	slices.SortFunc(out, func(a, b Txn) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Put installs an entry as is (recovery from a snapshot).
func (s *State) Put(e *Entry) {
	c := e.clone()
	s.m[e.ID] = c
	if c.TxnFirst >= 0 {
		s.ongoing[e.ID] = c
	} else {
		delete(s.ongoing, e.ID)
	}
}

// All copies every entry, by producer id.
func (s *State) All() []*Entry {
	out := make([]*Entry, 0, len(s.m))
	for _, e := range s.m {
		out = append(out, e.clone())
	}
	slices.SortFunc(out, func(a, b *Entry) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Clone copies one entry, or returns nil.
func (s *State) Clone(id int64) *Entry {
	if e := s.m[id]; e != nil {
		return e.clone()
	}
	return nil
}

// Expire forgets producers whose last append is older than beforeMs and
// returns their ids. A producer that comes back later is accepted at any
// sequence, as Kafka does after producer.id.expiration.ms. A producer in
// a transaction stays: its transaction holds the last stable offset until
// a marker ends it.
func (s *State) Expire(beforeMs int64) []int64 {
	var gone []int64
	for id, e := range s.m {
		if e.LastMs < beforeMs && e.TxnFirst < 0 {
			delete(s.m, id)
			gone = append(gone, id)
		}
	}
	return gone
}

// Versions of the encoded form. Version 1 is written whenever it holds
// everything (no marker, no transaction), so idempotent producers' state
// stays readable by brokers that predate transactions.
const (
	entryVersion   = 1
	entryVersionV2 = 2 // adds coordinator epoch, transaction start, last offset
)

// lastBatchOffset is the last offset of the entry's last batch; -1 if none.
func (e *Entry) lastBatchOffset() int64 {
	if n := len(e.Batches); n > 0 {
		return e.Batches[n-1].LastOffset()
	}
	return -1
}

// Encode serialises an entry for the metadata store.
func (e *Entry) Encode() []byte {
	v2 := e.CoordinatorEpoch != -1 || e.TxnFirst != -1 || e.LastOffset != e.lastBatchOffset()
	b := make([]byte, 0, 1+8+2+8+1+len(e.Batches)*20+4+8+8)
	if v2 {
		b = append(b, entryVersionV2)
	} else {
		b = append(b, entryVersion)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(e.ID))
	b = binary.BigEndian.AppendUint16(b, uint16(e.Epoch))
	b = binary.BigEndian.AppendUint64(b, uint64(e.LastMs))
	b = append(b, byte(len(e.Batches)))
	for _, a := range e.Batches {
		b = binary.BigEndian.AppendUint32(b, uint32(a.FirstSeq))
		b = binary.BigEndian.AppendUint32(b, uint32(a.LastSeq))
		b = binary.BigEndian.AppendUint64(b, uint64(a.Base))
		b = binary.BigEndian.AppendUint32(b, uint32(a.LastDelta))
	}
	if v2 {
		b = binary.BigEndian.AppendUint32(b, uint32(e.CoordinatorEpoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.TxnFirst))
		b = binary.BigEndian.AppendUint64(b, uint64(e.LastOffset))
	}
	return b
}

// Decode parses an entry written by Encode, of either version.
func Decode(b []byte) (*Entry, error) {
	const head = 1 + 8 + 2 + 8 + 1
	const txnTail = 4 + 8 + 8
	if len(b) < head || (b[0] != entryVersion && b[0] != entryVersionV2) {
		return nil, fmt.Errorf("producer: bad state entry (%d bytes)", len(b))
	}
	e := newEntry(int64(binary.BigEndian.Uint64(b[1:])), int16(binary.BigEndian.Uint16(b[9:])))
	e.LastMs = int64(binary.BigEndian.Uint64(b[11:]))
	n := int(b[19])
	rest := b[head:]
	want := n * 20
	if b[0] == entryVersionV2 {
		want += txnTail
	}
	if n > MaxInFlight || len(rest) != want {
		return nil, fmt.Errorf("producer: bad state entry for producer %d: %d batches in %d bytes", e.ID, n, len(rest))
	}
	for i := 0; i < n; i++ {
		r := rest[i*20:]
		e.Batches = append(e.Batches, Appended{
			FirstSeq:  int32(binary.BigEndian.Uint32(r)),
			LastSeq:   int32(binary.BigEndian.Uint32(r[4:])),
			Base:      int64(binary.BigEndian.Uint64(r[8:])),
			LastDelta: int32(binary.BigEndian.Uint32(r[16:])),
		})
	}
	e.LastOffset = e.lastBatchOffset()
	if b[0] == entryVersionV2 {
		t := rest[n*20:]
		e.CoordinatorEpoch = int32(binary.BigEndian.Uint32(t))
		e.TxnFirst = int64(binary.BigEndian.Uint64(t[4:]))
		e.LastOffset = int64(binary.BigEndian.Uint64(t[12:]))
	}
	return e, nil
}
