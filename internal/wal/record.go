package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// The record encoding is shared with internal/objwal, whose chunk objects
// are sequences of these records: one format, one checksum discipline, and
// no second encoder to keep in step with this one.

// RecordSize is the encoded size of e.
func RecordSize(e Entry) int64 { return recordSize(&e) }

// AppendRecord appends the encoding of e with sequence number seq to b. It
// fails for an entry the format cannot describe (topic over 65535 bytes,
// payload over 4 GiB), leaving b unchanged.
func AppendRecord(b []byte, seq uint64, e Entry) ([]byte, error) {
	if len(e.Topic) > math.MaxUint16 || recordSize(&e)-headerSize > math.MaxUint32 {
		return b, fmt.Errorf("wal: entry too large to encode (topic %d bytes, data %d bytes)", len(e.Topic), len(e.Data))
	}
	// appendRecordHeader checksums and patches its buffer from its start,
	// so it gets an empty slice over b's spare capacity (when that suffices
	// the header lands in place and the append below copies it onto
	// itself). MakeTable returns Go's shared Castagnoli table, so this
	// allocates nothing and keeps the hardware-accelerated path.
	start := len(b)
	h := appendRecordHeader(b[start:], crc32.MakeTable(crc32.Castagnoli), seq, &e)
	b = append(b[:start], h...)
	return append(b, e.Data...), nil
}

// DecodeRecord decodes the record at the start of b and returns it with the
// number of bytes it took. e.Data aliases b. Any damage (short input, bad
// magic, impossible length, checksum mismatch) is an error saying which;
// the caller adds where the record was.
func DecodeRecord(b []byte) (seq uint64, e Entry, n int, err error) {
	if len(b) < headerSize {
		return 0, Entry{}, 0, fmt.Errorf("short record header (%d of %d bytes)", len(b), headerSize)
	}
	if m := binary.LittleEndian.Uint32(b[0:]); m != recordMagic {
		return 0, Entry{}, 0, fmt.Errorf("bad record magic %#08x", m)
	}
	length := int64(binary.LittleEndian.Uint32(b[4:]))
	if length < payloadFixed || length > int64(len(b)-headerSize) {
		return 0, Entry{}, 0, fmt.Errorf("record length %d does not fit in the %d remaining bytes", length, len(b)-headerSize)
	}
	p := b[headerSize : headerSize+length]
	if got, want := crc32.Checksum(p, crc32.MakeTable(crc32.Castagnoli)), binary.LittleEndian.Uint32(b[8:]); got != want {
		return 0, Entry{}, 0, fmt.Errorf("record checksum mismatch (got %#08x, want %#08x)", got, want)
	}
	topicLen := int64(binary.LittleEndian.Uint16(p[12:]))
	if payloadFixed+topicLen > length {
		return 0, Entry{}, 0, fmt.Errorf("record topic length %d exceeds payload %d despite a valid checksum", topicLen, length)
	}
	e = Entry{
		Topic:     string(p[payloadFixed : payloadFixed+topicLen]),
		Partition: int32(binary.LittleEndian.Uint32(p[8:])),
		Data:      p[payloadFixed+topicLen:],
	}
	return binary.LittleEndian.Uint64(p[0:]), e, headerSize + int(length), nil
}
