// Package producer holds the broker side of Kafka's idempotent producer:
// per-partition producer state (epoch and the last five batches of every
// producer id), the sequence checks that turn a client's retry into a
// duplicate answered with the original offset, and the allocation of
// producer ids.
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
//     sequence (Kafka stopped answering UNKNOWN_PRODUCER_ID in 2.x, KIP-360).
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
)

// Batch is the producer view of one record batch header.
type Batch struct {
	ID        int64 // -1: not an idempotent batch
	Epoch     int16
	FirstSeq  int32
	LastDelta int32 // lastOffsetDelta: the batch holds LastDelta+1 records
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
}

// NewState returns an empty state.
func NewState() *State { return &State{m: map[int64]*Entry{}} }

// Len is the number of producers with state.
func (s *State) Len() int { return len(s.m) }

// Get returns the entry of producer id, or nil.
func (s *State) Get(id int64) *Entry { return s.m[id] }

// Check validates b against the state before it is appended. It returns
// the original batch when b is a duplicate of one of the last MaxInFlight
// batches, or an error wrapping ErrInvalidEpoch or ErrOutOfOrder.
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
	if b.Epoch != e.Epoch {
		if b.FirstSeq != 0 {
			return nil, fmt.Errorf("%w: producer %d starts epoch %d at sequence %d, must be 0", ErrOutOfOrder, b.ID, b.Epoch, b.FirstSeq)
		}
		return nil, nil
	}
	if n := len(e.Batches); n > 0 {
		if want := addSeq(e.Batches[n-1].LastSeq, 1); b.FirstSeq != want {
			return nil, fmt.Errorf("%w: producer %d epoch %d sent sequence %d, expected %d", ErrOutOfOrder, b.ID, b.Epoch, b.FirstSeq, want)
		}
	}
	return nil, nil
}

// Apply records that b was appended at offset base. Applying a batch at or
// before the producer's last remembered batch is a no-op, so recovery may
// replay batches the state already holds.
func (s *State) Apply(b Batch, base, nowMs int64) {
	if b.ID < 0 {
		return
	}
	e := s.m[b.ID]
	if e == nil {
		e = &Entry{ID: b.ID, Epoch: b.Epoch}
		s.m[b.ID] = e
	}
	if n := len(e.Batches); n > 0 && base <= e.Batches[n-1].Base {
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
}

// Put installs an entry as is (recovery from a snapshot).
func (s *State) Put(e *Entry) { s.m[e.ID] = e.clone() }

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
// sequence, as Kafka does after producer.id.expiration.ms.
func (s *State) Expire(beforeMs int64) []int64 {
	var gone []int64
	for id, e := range s.m {
		if e.LastMs < beforeMs {
			delete(s.m, id)
			gone = append(gone, id)
		}
	}
	return gone
}

// entryVersion prefixes the encoded form so it can evolve.
const entryVersion = 1

// Encode serialises an entry for the metadata store.
func (e *Entry) Encode() []byte {
	b := make([]byte, 0, 1+8+2+8+1+len(e.Batches)*20)
	b = append(b, entryVersion)
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
	return b
}

// Decode parses an entry written by Encode.
func Decode(b []byte) (*Entry, error) {
	const head = 1 + 8 + 2 + 8 + 1
	if len(b) < head || b[0] != entryVersion {
		return nil, fmt.Errorf("producer: bad state entry (%d bytes)", len(b))
	}
	e := &Entry{
		ID:     int64(binary.BigEndian.Uint64(b[1:])),
		Epoch:  int16(binary.BigEndian.Uint16(b[9:])),
		LastMs: int64(binary.BigEndian.Uint64(b[11:])),
	}
	n := int(b[19])
	rest := b[head:]
	if n > MaxInFlight || len(rest) != n*20 {
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
	return e, nil
}
