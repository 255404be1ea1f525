// Package segment builds and reads segment objects: the immutable objects
// that hold record batches of many partitions, uploaded from the WAL.
//
// Layout: the batches of each partition are contiguous (so one ranged read
// returns a run of one partition), followed by a JSON footer that indexes
// them, the footer's length (4 bytes, big endian) and the magic "VIGLSEG1".
// The footer makes an object self-describing, so the metadata index can be
// rebuilt from the object store alone: each run carries its aborted-
// transaction index too (the aborted transactions whose marker it holds),
// omitted when empty, so objects without transactions read as before.
package segment

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
)

// Magic ends every segment object.
const Magic = "VIGLSEG1"

const trailerLen = 4 + len(Magic)

// Run is one partition's contiguous range in a segment object.
type Run struct {
	Topic        string `json:"t"`
	Partition    int32  `json:"p"`
	Position     int64  `json:"pos"`
	Size         int64  `json:"size"`
	FirstOffset  int64  `json:"first"`
	LastOffset   int64  `json:"last"`
	MaxTimestamp int64  `json:"maxts"`
	// Aborted is the run's aborted-transaction index, in marker order.
	Aborted []AbortedTxn `json:"aborted,omitempty"`
}

// AbortedTxn is one aborted transaction: its producer, its first offset
// and the offset of its abort marker.
type AbortedTxn struct {
	ProducerID  int64 `json:"pid"`
	FirstOffset int64 `json:"first"`
	LastOffset  int64 `json:"last"`
}

type key struct {
	topic string
	part  int32
}

type pending struct {
	run     Run
	batches [][]byte
}

// Builder accumulates batches for one segment object. Batches of one
// partition must be added in offset order.
type Builder struct {
	parts map[key]*pending
	size  int64
}

func NewBuilder() *Builder { return &Builder{parts: make(map[key]*pending)} }

// Add appends a batch whose offsets are [base, last] and whose max
// timestamp is maxTs.
func (b *Builder) Add(topic string, partition int32, batch []byte, base, last, maxTs int64) {
	k := key{topic, partition}
	p := b.parts[k]
	if p == nil {
		p = &pending{run: Run{Topic: topic, Partition: partition, FirstOffset: base, MaxTimestamp: maxTs}}
		b.parts[k] = p
	}
	p.batches = append(p.batches, batch)
	p.run.LastOffset = last
	p.run.Size += int64(len(batch))
	p.run.MaxTimestamp = max(p.run.MaxTimestamp, maxTs)
	b.size += int64(len(batch))
}

// SetAborted sets the aborted-transaction index of a partition's run,
// once its batches are added (it has none otherwise).
func (b *Builder) SetAborted(topic string, partition int32, txns []AbortedTxn) {
	if p := b.parts[key{topic, partition}]; p != nil {
		p.run.Aborted = txns
	}
}

// Size is the number of batch bytes added so far.
func (b *Builder) Size() int64 { return b.size }

// Empty reports whether nothing was added.
func (b *Builder) Empty() bool { return len(b.parts) == 0 }

// Build lays out the object and returns its bytes and its runs.
func (b *Builder) Build() ([]byte, []Run) { return b.BuildInto(nil) }

// BuildInto is Build writing into buf's memory when it is large enough, so
// an uploader can reuse one buffer instead of allocating an object's size
// for every upload (garbage that makes the collector run, and stall
// produce latency, several times a second at full ingest).
func (b *Builder) BuildInto(buf []byte) ([]byte, []Run) {
	keys := make([]key, 0, len(b.parts))
	for k := range b.parts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].topic != keys[j].topic {
			return keys[i].topic < keys[j].topic
		}
		return keys[i].part < keys[j].part
	})
	// The footer first, from the positions the runs will have, so the
	// object is allocated once at its exact size.
	runs := make([]Run, 0, len(keys))
	var pos int64
	for _, k := range keys {
		p := b.parts[k]
		p.run.Position = pos
		pos += p.run.Size
		runs = append(runs, p.run)
	}
	footer, err := json.Marshal(runs)
	if err != nil {
		panic(fmt.Sprintf("segment: marshal footer: %v", err)) // plain structs cannot fail
	}
	size := int(b.size) + len(footer) + trailerLen
	out := buf[:0]
	if cap(out) < size {
		out = make([]byte, 0, size)
	}
	for _, k := range keys {
		for _, batch := range b.parts[k].batches {
			out = append(out, batch...)
		}
	}
	out = append(out, footer...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(footer)))
	out = append(out, Magic...)
	return out, runs
}

// TrailerLen is how many bytes at the end of an object hold the footer
// length and magic; read them first, then the footer.
const TrailerLen = trailerLen

// FooterLen parses the trailer (the last TrailerLen bytes of an object)
// and returns the footer's length.
func FooterLen(trailer []byte) (int, error) {
	if len(trailer) != trailerLen || string(trailer[4:]) != Magic {
		return 0, errors.New("segment: not a segment object (bad trailer)")
	}
	return int(binary.BigEndian.Uint32(trailer[:4])), nil
}

// ParseFooter decodes a footer.
func ParseFooter(footer []byte) ([]Run, error) {
	var runs []Run
	if err := json.Unmarshal(footer, &runs); err != nil {
		return nil, fmt.Errorf("segment: decode footer: %w", err)
	}
	return runs, nil
}
