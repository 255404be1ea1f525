// Package metacodec holds the stored forms of metadata records, shared by
// every meta.Store backend so that they agree byte for byte: topics as
// JSON (decoupled from the Go struct, so renaming a field cannot silently
// change the stored format), segment index entries as a fixed-width key
// and a varint value, partition states as varints. Each value carries a
// version byte (or is JSON) so one record type can evolve without a
// migration of the whole store.
package metacodec

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/vigilhq/vigil/internal/meta"
)

// Value versions.
const (
	SegValueV1 = 1
	// SegValueV2 adds the run's aborted-transaction index; it is written
	// only for runs that have one, so stores without transactions keep
	// version-1 values that older brokers read.
	SegValueV2   = 2
	StateValueV1 = 1
)

// SegmentKeyLen is the length of a segment entry's key within its topic.
const SegmentKeyLen = 12

// topicRecord is the stored form of meta.Topic.
type topicRecord struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"` // hex
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
	CreatedMs  int64             `json:"created_ms"`
}

// EncodeTopic is a topic's stored form.
func EncodeTopic(t *meta.Topic) ([]byte, error) {
	return json.Marshal(topicRecord{
		Name: t.Name, ID: hex.EncodeToString(t.ID[:]), Partitions: t.Partitions,
		Configs: t.Configs, CreatedMs: t.CreatedMs,
	})
}

// DecodeTopic parses a stored topic.
func DecodeTopic(b []byte) (meta.Topic, error) {
	var r topicRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return meta.Topic{}, fmt.Errorf("corrupt topic record: %w", err)
	}
	t := meta.Topic{Name: r.Name, Partitions: r.Partitions, Configs: r.Configs, CreatedMs: r.CreatedMs}
	if n, err := hex.Decode(t.ID[:], []byte(r.ID)); err != nil || n != len(t.ID) {
		return meta.Topic{}, fmt.Errorf("corrupt topic record %q: bad id %q", r.Name, r.ID)
	}
	return t, nil
}

// AppendProducerKey appends a producer state's key within its topic:
// partition then producer id, fixed-width big endian, so one partition's
// producers are one key range.
func AppendProducerKey(dst []byte, partition int32, producerID int64) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(partition))
	return binary.BigEndian.AppendUint64(dst, uint64(producerID))
}

// DecodeProducer parses a producer state of topic from its key k (within
// the topic) and value v.
func DecodeProducer(topic string, k, v []byte) (meta.Producer, error) {
	if len(k) != 12 {
		return meta.Producer{}, fmt.Errorf("corrupt producer key %x of topic %q", k, topic)
	}
	return meta.Producer{Topic: topic, Partition: int32(binary.BigEndian.Uint32(k)),
		ProducerID: int64(binary.BigEndian.Uint64(k[4:])), Data: append([]byte(nil), v...)}, nil
}

// PutSegmentKey writes partition then FirstOffset with its sign bit
// flipped, so unsigned byte order equals signed numeric order even for
// offsets below zero.
func PutSegmentKey(dst []byte, partition int32, firstOffset int64) {
	binary.BigEndian.PutUint32(dst[0:4], uint32(partition))
	binary.BigEndian.PutUint64(dst[4:12], uint64(firstOffset)^(1<<63))
}

// AppendSegmentValue encodes the fields not in the key. Varints keep an
// entry around 40-60 bytes (mostly the object key), which matters with
// hundreds of thousands of entries; LastOffset is stored relative to
// FirstOffset because that difference is small while offsets are not.
// Version 2 appends the aborted index: a count, then per transaction its
// producer id and its first and last offsets relative to FirstOffset (the
// first may lie before the run: a transaction spans runs).
func AppendSegmentValue(dst []byte, seg *meta.Segment) []byte {
	if len(seg.Aborted) == 0 {
		dst = append(dst, SegValueV1)
	} else {
		dst = append(dst, SegValueV2)
	}
	dst = binary.AppendUvarint(dst, uint64(len(seg.Object)))
	dst = append(dst, seg.Object...)
	dst = binary.AppendVarint(dst, seg.Position)
	dst = binary.AppendVarint(dst, seg.Size)
	dst = binary.AppendVarint(dst, seg.LastOffset-seg.FirstOffset)
	dst = binary.AppendVarint(dst, seg.MaxTimestamp)
	if len(seg.Aborted) > 0 {
		dst = binary.AppendUvarint(dst, uint64(len(seg.Aborted)))
		for _, a := range seg.Aborted {
			dst = binary.AppendVarint(dst, a.ProducerID)
			dst = binary.AppendVarint(dst, a.FirstOffset-seg.FirstOffset)
			dst = binary.AppendVarint(dst, a.LastOffset-seg.FirstOffset)
		}
	}
	return dst
}

// DecodeSegment parses a segment entry of topic from its key k (within
// the topic) and value v.
func DecodeSegment(topic string, k, v []byte) (meta.Segment, error) {
	bad := func(what string) (meta.Segment, error) {
		return meta.Segment{}, fmt.Errorf("corrupt segment entry of topic %q key %x: %s", topic, k, what)
	}
	if len(k) != SegmentKeyLen {
		return bad("key length")
	}
	seg := meta.Segment{
		Topic:       topic,
		Partition:   int32(binary.BigEndian.Uint32(k[0:4])),
		FirstOffset: int64(binary.BigEndian.Uint64(k[4:12]) ^ (1 << 63)),
	}
	if len(v) == 0 || (v[0] != SegValueV1 && v[0] != SegValueV2) {
		return bad("unknown value version")
	}
	version := v[0]
	v = v[1:]
	n, w := binary.Uvarint(v)
	if w <= 0 || n > uint64(len(v)-w) {
		return bad("object key")
	}
	seg.Object = string(v[w : w+int(n)])
	v = v[w+int(n):]
	var delta int64
	for _, dst := range []*int64{&seg.Position, &seg.Size, &delta, &seg.MaxTimestamp} {
		x, w := binary.Varint(v)
		if w <= 0 {
			return bad("truncated value")
		}
		*dst, v = x, v[w:]
	}
	seg.LastOffset = seg.FirstOffset + delta
	if version == SegValueV2 {
		n, w := binary.Uvarint(v)
		if w <= 0 || n > uint64(len(v)) { // each entry takes 3 bytes at least
			return bad("aborted index count")
		}
		v = v[w:]
		seg.Aborted = make([]meta.AbortedTxn, n)
		for i := range seg.Aborted {
			a := &seg.Aborted[i]
			for _, dst := range []*int64{&a.ProducerID, &a.FirstOffset, &a.LastOffset} {
				x, w := binary.Varint(v)
				if w <= 0 {
					return bad("truncated aborted index")
				}
				*dst, v = x, v[w:]
			}
			a.FirstOffset += seg.FirstOffset
			a.LastOffset += seg.FirstOffset
		}
	}
	return seg, nil
}

// EncodeState is a partition state's stored form.
func EncodeState(st meta.PartitionState) []byte {
	b := []byte{StateValueV1}
	b = binary.AppendVarint(b, st.LogStart)
	b = binary.AppendVarint(b, int64(st.LeaderEpoch))
	return b
}

// DecodeState parses a stored partition state.
func DecodeState(v []byte) (meta.PartitionState, error) {
	if len(v) == 0 || v[0] != StateValueV1 {
		return meta.PartitionState{}, fmt.Errorf("corrupt partition state %x: unknown version", v)
	}
	v = v[1:]
	ls, w1 := binary.Varint(v)
	if w1 <= 0 {
		return meta.PartitionState{}, fmt.Errorf("corrupt partition state: log start")
	}
	ep, w2 := binary.Varint(v[w1:])
	if w2 <= 0 {
		return meta.PartitionState{}, fmt.Errorf("corrupt partition state: leader epoch")
	}
	return meta.PartitionState{LogStart: ls, LeaderEpoch: int32(ep)}, nil
}
