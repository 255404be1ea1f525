package enrich

import (
	"encoding/json"
	"errors"
	"fmt"
)

// scanner walks one JSON event once: it yields every string leaf with its
// dotted path (array elements share their array's path, as the Sigma
// engine flattens them) and remembers, for the top-level keys, where
// their values end, so the enricher can append to the event without
// re-encoding it.
type scanner struct {
	data  []byte
	pos   int
	path  []byte
	arena []byte
	// leaves of the last scan: path and value as offsets into arena
	// (escaped strings) or data (the rest).
	leaves []leaf
	top    []topKey
	end    int // position of the top-level object's closing brace
	empty  bool
}

type leaf struct {
	path     span // in arena
	val      span
	valArena bool // val is in arena (it had escapes)
	top      int  // index of its top-level key
	direct   bool // a direct child of the top-level object (path "top.key")
}

type span struct{ s, e int }

// topKey is one key of the top-level object.
type topKey struct {
	name        span // in data, without quotes
	kind        byte // '{', '[', or 0 for scalars
	close       int  // position of the value's closing } or ]
	nonEmpty    bool
	hasLocation bool // object with a direct "location" key
	hasAS       bool // object with a direct "autonomous_system" key
}

var errNotObject = errors.New("not a JSON object")

// skipTop are top-level keys whose values are not looked at: the original
// text (free text, and a copy of what the other fields hold), and what an
// enricher wrote before.
var skipTop = map[string]bool{"raw_data": true, "message": true, "enrichments": true, "observables": true, "evidences": true}

const maxScanDepth = 64

func (s *scanner) scan(data []byte) error {
	s.data, s.pos = data, 0
	s.path, s.arena = s.path[:0], s.arena[:0]
	s.leaves, s.top = s.leaves[:0], s.top[:0]
	s.ws()
	if s.pos >= len(data) || data[s.pos] != '{' {
		return errNotObject
	}
	s.pos++
	s.empty = true
	for {
		s.ws()
		if s.pos >= len(data) {
			return errSyntax("unterminated object")
		}
		if data[s.pos] == '}' {
			s.end = s.pos
			s.pos++
			s.ws()
			if s.pos != len(data) {
				return errSyntax("trailing data")
			}
			return nil
		}
		if !s.empty {
			if data[s.pos] != ',' {
				return errSyntax("expected ,")
			}
			s.pos++
			s.ws()
		}
		s.empty = false
		ks, ke, esc, err := s.str()
		if err != nil {
			return err
		}
		if esc {
			return errSyntax("escaped top-level key")
		}
		s.ws()
		if s.pos >= len(data) || data[s.pos] != ':' {
			return errSyntax("expected :")
		}
		s.pos++
		s.ws()
		ti := len(s.top)
		s.top = append(s.top, topKey{name: span{ks, ke}})
		name := data[ks:ke]
		s.path = append(s.path[:0], name...)
		vstart := s.pos
		if skipTop[string(name)] {
			if err := s.skip(0); err != nil {
				return err
			}
			if c := data[vstart]; c == '{' || c == '[' {
				s.top[ti].kind = c
				for _, b := range data[vstart+1 : s.pos-1] {
					if b != ' ' && b != '\t' && b != '\n' && b != '\r' {
						s.top[ti].nonEmpty = true
						break
					}
				}
			}
		} else if err := s.value(ti, 1); err != nil {
			return err
		}
		if s.top[ti].kind != 0 {
			s.top[ti].close = s.pos - 1
		}
	}
}

type errSyntax string

func (e errSyntax) Error() string { return "invalid JSON: " + string(e) }

func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// str reads a string at pos; it returns the bounds of its content in
// data and whether it holds escapes.
func (s *scanner) str() (int, int, bool, error) {
	if s.pos >= len(s.data) || s.data[s.pos] != '"' {
		return 0, 0, false, errSyntax("expected string")
	}
	start := s.pos + 1
	esc := false
	for i := start; i < len(s.data); i++ {
		switch s.data[i] {
		case '\\':
			esc = true
			i++
		case '"':
			s.pos = i + 1
			return start, i, esc, nil
		}
	}
	return 0, 0, false, errSyntax("unterminated string")
}

// value reads one value under the current path; depth 1 is a value of a
// top-level key.
func (s *scanner) value(ti, depth int) error {
	if depth > maxScanDepth {
		return errSyntax("nested too deep")
	}
	if s.pos >= len(s.data) {
		return errSyntax("unexpected end")
	}
	switch c := s.data[s.pos]; c {
	case '{':
		if depth == 1 {
			s.top[ti].kind = '{'
		}
		s.pos++
		plen := len(s.path)
		for first := true; ; first = false {
			s.ws()
			if s.pos >= len(s.data) {
				return errSyntax("unterminated object")
			}
			if s.data[s.pos] == '}' {
				s.pos++
				s.path = s.path[:plen]
				return nil
			}
			if !first {
				if s.data[s.pos] != ',' {
					return errSyntax("expected , in object")
				}
				s.pos++
				s.ws()
			}
			if depth == 1 {
				s.top[ti].nonEmpty = true
			}
			ks, ke, esc, err := s.str()
			if err != nil {
				return err
			}
			s.ws()
			if s.pos >= len(s.data) || s.data[s.pos] != ':' {
				return errSyntax("expected :")
			}
			s.pos++
			s.ws()
			s.path = append(s.path[:plen], '.')
			if esc {
				k, err := unescape(s.data[ks-1 : ke+1])
				if err != nil {
					return err
				}
				s.path = append(s.path, k...)
			} else {
				s.path = append(s.path, s.data[ks:ke]...)
			}
			if depth == 1 && !esc {
				switch string(s.data[ks:ke]) {
				case "location":
					s.top[ti].hasLocation = true
				case "autonomous_system":
					s.top[ti].hasAS = true
				}
			}
			if err := s.value(ti, depth+1); err != nil {
				return err
			}
		}
	case '[':
		if depth == 1 {
			s.top[ti].kind = '['
		}
		s.pos++
		for first := true; ; first = false {
			s.ws()
			if s.pos >= len(s.data) {
				return errSyntax("unterminated array")
			}
			if s.data[s.pos] == ']' {
				s.pos++
				return nil
			}
			if !first {
				if s.data[s.pos] != ',' {
					return errSyntax("expected , in array")
				}
				s.pos++
				s.ws()
			}
			if depth == 1 {
				s.top[ti].nonEmpty = true
			}
			if err := s.value(ti, depth+1); err != nil {
				return err
			}
		}
	case '"':
		vs, ve, esc, err := s.str()
		if err != nil {
			return err
		}
		if ve-vs > maxLeaf {
			return nil
		}
		ps := len(s.arena)
		s.arena = append(s.arena, s.path...)
		l := leaf{path: span{ps, len(s.arena)}, val: span{vs, ve}, top: ti, direct: depth == 2}
		if esc {
			v, err := unescape(s.data[vs-1 : ve+1])
			if err != nil {
				return err
			}
			as := len(s.arena)
			s.arena = append(s.arena, v...)
			l.val, l.valArena = span{as, len(s.arena)}, true
		}
		s.leaves = append(s.leaves, l)
		return nil
	default:
		return s.skip(depth)
	}
}

// maxLeaf bounds the strings looked at: no indicator is longer.
const maxLeaf = 2048

// skip reads over one value without looking at it.
func (s *scanner) skip(depth int) error {
	if depth > maxScanDepth {
		return errSyntax("nested too deep")
	}
	if s.pos >= len(s.data) {
		return errSyntax("unexpected end")
	}
	switch c := s.data[s.pos]; {
	case c == '"':
		_, _, _, err := s.str()
		return err
	case c == '{' || c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		s.pos++
		for first := true; ; first = false {
			s.ws()
			if s.pos >= len(s.data) {
				return errSyntax("unterminated value")
			}
			if s.data[s.pos] == closer {
				s.pos++
				return nil
			}
			if !first {
				if s.data[s.pos] != ',' {
					return errSyntax("expected ,")
				}
				s.pos++
				s.ws()
			}
			if c == '{' {
				if _, _, _, err := s.str(); err != nil {
					return err
				}
				s.ws()
				if s.pos >= len(s.data) || s.data[s.pos] != ':' {
					return errSyntax("expected :")
				}
				s.pos++
				s.ws()
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
		}
	default:
		// number, true, false, null
		start := s.pos
		for s.pos < len(s.data) {
			switch s.data[s.pos] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if s.pos == start {
					return errSyntax("expected a value")
				}
				return nil
			}
			s.pos++
		}
		return nil
	}
}

func unescape(quoted []byte) ([]byte, error) {
	var v string
	if err := json.Unmarshal(quoted, &v); err != nil {
		return nil, fmt.Errorf("invalid JSON string: %w", err)
	}
	return []byte(v), nil
}

func (s *scanner) leafPath(l *leaf) []byte { return s.arena[l.path.s:l.path.e] }

func (s *scanner) leafVal(l *leaf) []byte {
	if l.valArena {
		return s.arena[l.val.s:l.val.e]
	}
	return s.data[l.val.s:l.val.e]
}

func (s *scanner) topName(i int) []byte { return s.data[s.top[i].name.s:s.top[i].name.e] }
