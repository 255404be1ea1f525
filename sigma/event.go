package sigma

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

type kind uint8

const (
	kindString kind = iota
	kindNumber
	kindBool
	kindNull
)

// value is one JSON leaf of an event, resolved to a Sigma field. raw and
// low point into the event arena: they are valid until the next event is
// decoded into the same Matcher, which is what keeps decoding allocation-free.
type value struct {
	raw, low string
	fid      int32 // Sigma field id, -1 for leaves no rule names
	next     int32 // next value of the same field, -1 at the end
	primary  bool  // first record of this leaf (aliases add more records)
	lowered  bool  // low is set (leaves no rule names are lowered on demand)
	kind     kind
}

// event is a decoded event, reused across events by one Matcher.
type event struct {
	vals    []value
	head    []int32 // per field id: first value index or -1
	touched []int32
	arena   []byte
	key     []byte
	key2    []byte // key without spaces
	// cache remembers the Sigma fields of keys seen before: events of one
	// source repeat the same keys, so a leaf costs one map lookup instead
	// of one per strip prefix. Bounded so hostile input cannot grow it.
	cache map[string]*keyFields
	// recent is a direct-mapped cache in front of cache, indexed by a
	// cheap hash of the key's length and last bytes: a hit costs one
	// comparison instead of a map lookup.
	recent *[recentKeys]keyFields
	ids    []int32
	data   []byte
	pos    int
	res    *resolver
}

// resolver turns event keys into Sigma field ids.
type resolver struct {
	ids          map[string][]int32
	prefixes     []prefix
	removeSpaces bool
}

func newEvent(res *resolver, nfields int) *event {
	e := &event{res: res, head: make([]int32, nfields)}
	for i := range e.head {
		e.head[i] = -1
	}
	return e
}

func (e *event) reset() {
	for _, f := range e.touched {
		e.head[f] = -1
	}
	e.touched = e.touched[:0]
	e.vals = e.vals[:0]
	e.arena = e.arena[:0]
	e.key = e.key[:0]
}

var errSyntax = errors.New("invalid JSON")

const (
	maxDepth      = 256
	maxCachedKeys = 8192
)

// decode flattens one JSON document into the event.
func (e *event) decode(data []byte) error {
	e.reset()
	e.data, e.pos = data, 0
	e.skipSpace()
	if err := e.parseValue(0); err != nil {
		return fmt.Errorf("decode event at byte %d: %w", e.pos, err)
	}
	e.skipSpace()
	if e.pos != len(e.data) {
		return fmt.Errorf("decode event at byte %d: %w: trailing data", e.pos, errSyntax)
	}
	return nil
}

func (e *event) skipSpace() {
	for e.pos < len(e.data) {
		switch e.data[e.pos] {
		case ' ', '\t', '\n', '\r':
			e.pos++
		default:
			return
		}
	}
}

func (e *event) parseValue(depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nested too deep", errSyntax)
	}
	if e.pos >= len(e.data) {
		return fmt.Errorf("%w: unexpected end", errSyntax)
	}
	switch c := e.data[e.pos]; {
	case c == '{':
		return e.parseObject(depth)
	case c == '[':
		e.pos++
		e.skipSpace()
		if e.pos < len(e.data) && e.data[e.pos] == ']' {
			e.pos++
			return nil
		}
		for {
			e.skipSpace()
			if err := e.parseValue(depth + 1); err != nil {
				return err
			}
			e.skipSpace()
			if e.pos >= len(e.data) {
				return fmt.Errorf("%w: unterminated array", errSyntax)
			}
			if e.data[e.pos] == ',' {
				e.pos++
				continue
			}
			if e.data[e.pos] == ']' {
				e.pos++
				return nil
			}
			return fmt.Errorf("%w: expected , or ]", errSyntax)
		}
	case c == '"':
		start := len(e.arena)
		if err := e.parseString(); err != nil {
			return err
		}
		e.leaf(kindString, start)
		return nil
	case c == '-' || (c >= '0' && c <= '9'):
		start := e.pos
		for e.pos < len(e.data) {
			switch e.data[e.pos] {
			case '-', '+', '.', 'e', 'E', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
				e.pos++
				continue
			}
			break
		}
		as := len(e.arena)
		e.arena = append(e.arena, e.data[start:e.pos]...)
		e.leaf(kindNumber, as)
		return nil
	default:
		for _, lit := range [...]struct {
			s string
			k kind
		}{{"true", kindBool}, {"false", kindBool}, {"null", kindNull}} {
			if len(e.data)-e.pos >= len(lit.s) && string(e.data[e.pos:e.pos+len(lit.s)]) == lit.s {
				e.pos += len(lit.s)
				as := len(e.arena)
				if lit.k != kindNull {
					e.arena = append(e.arena, lit.s...)
				}
				e.leaf(lit.k, as)
				return nil
			}
		}
		return fmt.Errorf("%w: unexpected %q", errSyntax, c)
	}
}

func (e *event) parseObject(depth int) error {
	e.pos++ // {
	keyLen := len(e.key)
	for first := true; ; first = false {
		e.skipSpace()
		if e.pos >= len(e.data) {
			return fmt.Errorf("%w: unterminated object", errSyntax)
		}
		if e.data[e.pos] == '}' && first {
			e.pos++
			return nil
		}
		if e.data[e.pos] != '"' {
			return fmt.Errorf("%w: expected key", errSyntax)
		}
		// The key is unescaped into the arena, then copied after the
		// parent path; the arena bytes are dropped again.
		as := len(e.arena)
		if err := e.parseString(); err != nil {
			return err
		}
		if keyLen > 0 {
			e.key = append(e.key, '.')
		}
		e.key = append(e.key, e.arena[as:]...)
		e.arena = e.arena[:as]
		e.skipSpace()
		if e.pos >= len(e.data) || e.data[e.pos] != ':' {
			return fmt.Errorf("%w: expected :", errSyntax)
		}
		e.pos++
		e.skipSpace()
		if err := e.parseValue(depth + 1); err != nil {
			return err
		}
		e.key = e.key[:keyLen]
		e.skipSpace()
		if e.pos >= len(e.data) {
			return fmt.Errorf("%w: unterminated object", errSyntax)
		}
		switch e.data[e.pos] {
		case ',':
			e.pos++
		case '}':
			e.pos++
			return nil
		default:
			return fmt.Errorf("%w: expected , or }", errSyntax)
		}
	}
}

// parseString unescapes a JSON string at e.pos into the arena.
func (e *event) parseString() error {
	e.pos++ // opening quote
	for e.pos < len(e.data) {
		// Copy the run up to the next quote or backslash in one append.
		start := e.pos
		e.pos += plainRun(e.data[e.pos:])
		e.arena = append(e.arena, e.data[start:e.pos]...)
		if e.pos >= len(e.data) {
			break
		}
		if e.data[e.pos] == '"' {
			e.pos++
			return nil
		}
		if e.pos+1 >= len(e.data) {
			break
		}
		esc := e.data[e.pos+1]
		e.pos += 2
		switch esc {
		case '"', '\\', '/':
			e.arena = append(e.arena, esc)
		case 'b':
			e.arena = append(e.arena, '\b')
		case 'f':
			e.arena = append(e.arena, '\f')
		case 'n':
			e.arena = append(e.arena, '\n')
		case 'r':
			e.arena = append(e.arena, '\r')
		case 't':
			e.arena = append(e.arena, '\t')
		case 'u':
			r, ok := e.hex4()
			if !ok {
				return fmt.Errorf("%w: bad \\u escape", errSyntax)
			}
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if e.pos+1 < len(e.data) && e.data[e.pos] == '\\' && e.data[e.pos+1] == 'u' {
					e.pos += 2
					if x, ok := e.hex4(); ok {
						r2 = x
					}
				}
				r = utf16.DecodeRune(r, r2)
			}
			e.arena = utf8.AppendRune(e.arena, r)
		default:
			return fmt.Errorf("%w: bad escape \\%c", errSyntax, esc)
		}
	}
	return fmt.Errorf("%w: unterminated string", errSyntax)
}

// plainRun returns the length of the prefix of b without '"' or '\\',
// testing 8 bytes at a time.
func plainRun(b []byte) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		q, bs := w^(ones*'"'), w^(ones*'\\') // zero bytes where b is '"' or '\\'
		if ((q-ones)&^q|(bs-ones)&^bs)&highs != 0 {
			break
		}
	}
	for i < len(b) && b[i] != '"' && b[i] != '\\' {
		i++
	}
	return i
}

func (e *event) hex4() (rune, bool) {
	if e.pos+4 > len(e.data) {
		return 0, false
	}
	var r rune
	for _, c := range e.data[e.pos : e.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	e.pos += 4
	return r, true
}

// arenaString views arena bytes as a string without copying; see value.
func (e *event) arenaString(start, end int) string {
	if start == end {
		return ""
	}
	return unsafe.String(&e.arena[start], end-start)
}

// leaf records the value whose raw text is arena[start:] under the current
// key, once per Sigma field the key resolves to.
func (e *event) leaf(k kind, start int) {
	ids := e.fields()
	rawEnd := len(e.arena)
	if len(ids) == 0 {
		// No Sigma field: kept for keyword search, lowered later only if
		// a keyword search needs it (lowerAll).
		e.vals = append(e.vals, value{raw: e.arenaString(start, rawEnd), fid: -1, next: -1, primary: true, kind: k})
		return
	}
	e.arena = appendLower(e.arena, e.arena[start:rawEnd])
	raw := e.arenaString(start, rawEnd)
	low := e.arenaString(rawEnd, len(e.arena))
	for i, fid := range ids {
		if e.head[fid] < 0 {
			e.touched = append(e.touched, fid)
		}
		e.vals = append(e.vals, value{raw: raw, low: low, fid: fid, next: e.head[fid], primary: i == 0, lowered: true, kind: k})
		e.head[fid] = int32(len(e.vals) - 1)
	}
}

type keyFields struct {
	key string
	ids []int32
	set bool
}

const recentKeys = 512

// recentSlot hashes a key's length and last eight bytes (where keys of
// one object differ).
func recentSlot(key []byte) uint32 {
	var tail uint64
	if len(key) >= 8 {
		tail = binary.LittleEndian.Uint64(key[len(key)-8:])
	} else {
		for _, c := range key {
			tail = tail<<8 | uint64(c)
		}
	}
	return uint32((tail^uint64(len(key)))*0x9E3779B97F4A7C15>>32) % recentKeys
}

// fields returns the Sigma fields of the current key.
func (e *event) fields() []int32 {
	if e.recent == nil {
		e.recent = new([recentKeys]keyFields)
	}
	slot := &e.recent[recentSlot(e.key)]
	if slot.set && slot.key == string(e.key) {
		return slot.ids
	}
	if kf, ok := e.cache[string(e.key)]; ok {
		*slot = *kf
		return kf.ids
	}
	e.ids = e.ids[:0]
	collect := func(id int32) { e.ids = append(e.ids, id) }
	e.resolve(e.key, collect)
	if len(e.ids) == 0 && e.res.removeSpaces && bytes.IndexByte(e.key, ' ') >= 0 {
		e.key2 = e.key2[:0]
		for _, c := range e.key {
			if c != ' ' {
				e.key2 = append(e.key2, c)
			}
		}
		e.resolve(e.key2, collect)
	}
	if len(e.cache) < maxCachedKeys {
		if e.cache == nil {
			e.cache = map[string]*keyFields{}
		}
		kf := &keyFields{key: string(e.key), ids: slices.Clone(e.ids), set: true}
		e.cache[kf.key] = kf
		*slot = *kf
	}
	return e.ids
}

// resolve calls add for each Sigma field the event key maps to.
func (e *event) resolve(key []byte, add func(int32)) {
	for _, id := range e.res.ids[string(key)] {
		add(id)
	}
	for _, p := range e.res.prefixes {
		if rem, ok := p.strip(key); ok {
			for _, id := range e.res.ids[string(rem)] {
				add(id)
			}
		}
	}
}

// fieldPair makes field to take the values of field from, and the
// translations tr gives for them.
type fieldPair struct {
	to, from int32
	tr       *valueMap
}

// valueMap translates values: entries are (lower-case from, to, lower-case
// to); a handful per field, so a scan beats a map.
type valueMap struct{ m [][3]string }

// alias adds, for each pair, a record of every value of from under to
// (not primary: keyword searches see each leaf once), and one of its
// translation when the pair has one.
func (e *event) alias(pairs []fieldPair) {
	for _, p := range pairs {
		for i := e.head[p.from]; i >= 0; i = e.vals[i].next {
			v := e.vals[i]
			v.fid, v.primary = p.to, false
			e.push(v)
			if p.tr == nil {
				continue
			}
			for _, t := range p.tr.m {
				if t[0] == v.low {
					v.raw, v.low, v.kind = t[1], t[2], kindString
					e.push(v)
					break
				}
			}
		}
	}
}

// push adds v to the chain of its field.
func (e *event) push(v value) {
	if e.head[v.fid] < 0 {
		e.touched = append(e.touched, v.fid)
	}
	v.next = e.head[v.fid]
	e.head[v.fid] = int32(len(e.vals))
	e.vals = append(e.vals, v)
}

// lowerAll lowers the leaves decode left raw, for keyword searches.
func (e *event) lowerAll() {
	for i := range e.vals {
		v := &e.vals[i]
		if v.lowered {
			continue
		}
		start := len(e.arena)
		e.arena = appendLower(e.arena, []byte(v.raw))
		v.low = e.arenaString(start, len(e.arena))
		v.lowered = true
	}
}
