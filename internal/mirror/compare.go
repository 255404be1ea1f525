package mirror

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// diffRecords names the first field in which two records at the same
// offset differ, with both values abbreviated; "" when they are the same.
// The fields, in the order checked: whether the record is a control record
// (a transaction marker), a marker's type, the timestamp, the key, the
// value, the headers; a marker's fields are named "marker timestamp" and
// so on. A null key, value or header value differs from an empty one: a
// compacted topic's tombstone is a null value.
func diffRecords(src, dst *kgo.Record) string {
	ctrl := src.Attrs.IsControl()
	if b := dst.Attrs.IsControl(); ctrl != b {
		return fmt.Sprintf("control record: source %s, destination %s", yesNo(ctrl), yesNo(b))
	}
	field := func(name string) string {
		if ctrl {
			return "marker " + name
		}
		return name
	}
	if ctrl && !sameBytes(src.Key, dst.Key) {
		return fmt.Sprintf("marker type: source %s, destination %s", markerType(src.Key), markerType(dst.Key))
	}
	if a, b := src.Timestamp.UnixMilli(), dst.Timestamp.UnixMilli(); a != b {
		return fmt.Sprintf("%s: source %s, destination %s", field("timestamp"), showMilli(a), showMilli(b))
	}
	if !sameBytes(src.Key, dst.Key) {
		return diffBytes(field("key"), src.Key, dst.Key)
	}
	if !sameBytes(src.Value, dst.Value) {
		return diffBytes(field("value"), src.Value, dst.Value)
	}
	if len(src.Headers) != len(dst.Headers) {
		return fmt.Sprintf("%s: source %s, destination %s", field("headers"), headerKeys(src.Headers), headerKeys(dst.Headers))
	}
	for i := range src.Headers {
		a, b := src.Headers[i], dst.Headers[i]
		if a.Key != b.Key {
			return diffBytes(field(fmt.Sprintf("header %d key", i)), []byte(a.Key), []byte(b.Key))
		}
		if !sameBytes(a.Value, b.Value) {
			return diffBytes(field(fmt.Sprintf("header %d (%s) value", i, strconv.Quote(a.Key))), a.Value, b.Value)
		}
	}
	return ""
}

// markerType reads a control record's key (version, then type: Kafka's
// ControlRecordType): commit, abort, or the number of another type.
func markerType(key []byte) string {
	if len(key) < 4 {
		return showBytes(key, 0)
	}
	switch t := binary.BigEndian.Uint16(key[2:4]); t {
	case 0:
		return "abort"
	case 1:
		return "commit"
	default:
		return fmt.Sprintf("type %d", t)
	}
}

// sameBytes is bytes.Equal that tells null from empty.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// showMilli prints a record timestamp as UTC with milliseconds, and the
// number itself, which is what a client set.
func showMilli(ms int64) string {
	return fmt.Sprintf("%s (%d)", time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00"), ms)
}

// headerKeys prints a header list by its count and keys: `2 ("trace",
// "src")`; values are compared once the keys agree.
func headerKeys(hs []kgo.RecordHeader) string {
	keys := make([]string, 0, min(len(hs), 5))
	for i, h := range hs {
		if i == 5 {
			keys = append(keys, "…")
			break
		}
		keys = append(keys, strconv.Quote(abbrev(h.Key, 24)))
	}
	return fmt.Sprintf("%d (%s)", len(hs), strings.Join(keys, ", "))
}

// showWidth is how many bytes of a long key or value a line shows.
const showWidth = 32

// diffBytes prints two different byte strings around the first byte in
// which they differ, so a change deep inside a large value shows where it
// is and what it is.
func diffBytes(field string, a, b []byte) string {
	at := 0
	for at < len(a) && at < len(b) && a[at] == b[at] {
		at++
	}
	if (len(a) > showWidth || len(b) > showWidth) && at > 0 && a != nil && b != nil {
		field = fmt.Sprintf("%s from byte %d", field, at)
	}
	return fmt.Sprintf("%s: source %s, destination %s", field, showBytes(a, at), showBytes(b, at))
}

// showBytes quotes b, or for a long b a window of it beginning a little
// before byte at, with its length; null for nil.
func showBytes(b []byte, at int) string {
	if b == nil {
		return "null"
	}
	if len(b) <= showWidth {
		return strconv.Quote(string(b))
	}
	start := max(0, min(at-8, len(b)-showWidth))
	end := min(len(b), start+showWidth)
	var sb strings.Builder
	if start > 0 {
		sb.WriteString("…")
	}
	sb.WriteString(strconv.Quote(string(b[start:end])))
	if end < len(b) {
		sb.WriteString("…")
	}
	fmt.Fprintf(&sb, " (%d B)", len(b))
	return sb.String()
}

// abbrev cuts s to n bytes, marking the cut.
func abbrev(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// digest is the SHA-256 of the records of a range, each in one canonical
// form: offset, timestamp (ms) and control flag as fixed-width integers,
// then key, value and each header's key and value with a length prefix
// (-1 for null). The same records give the same digest whichever cluster
// and batch shapes they came from, so a digest printed today can be
// checked against another run's.
type digest struct {
	h   hash.Hash
	buf []byte
}

func newDigest() *digest { return &digest{h: sha256.New()} }

func (d *digest) add(r *kgo.Record) {
	b := d.buf[:0]
	b = binary.BigEndian.AppendUint64(b, uint64(r.Offset))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Timestamp.UnixMilli()))
	ctrl := byte(0)
	if r.Attrs.IsControl() {
		ctrl = 1
	}
	b = append(b, ctrl)
	b = appendBytes(b, r.Key)
	b = appendBytes(b, r.Value)
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.Headers)))
	for _, h := range r.Headers {
		b = appendBytes(b, []byte(h.Key))
		b = appendBytes(b, h.Value)
	}
	d.h.Write(b)
	if cap(b) <= 1<<16 { // keep a small buffer, not the largest record's
		d.buf = b
	}
}

func appendBytes(b, v []byte) []byte {
	if v == nil {
		return binary.BigEndian.AppendUint32(b, ^uint32(0))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// sum is the first 128 bits of the digest in hex: enough to tell ranges
// apart, short enough for a line.
func (d *digest) sum() string { return hex.EncodeToString(d.h.Sum(nil)[:16]) }

// recordBytes is what a record weighs for the progress line.
func recordBytes(r *kgo.Record) int64 {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}
