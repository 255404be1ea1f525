package sigma

import (
	"encoding/binary"
	"strings"
	"unicode"
	"unicode/utf8"
)

// appendLower appends the lower-case form of s to dst. Events and patterns
// are lowered with the same function so that case-insensitive comparison is
// a plain byte comparison on the hot path; the ASCII fast path avoids the
// rune decoding that dominates strings.ToLower on mostly-ASCII log data.
func appendLower(dst []byte, s []byte) []byte {
	i := 0
	// ASCII, 8 bytes at a time: a byte in 'A'..'Z' gets 0x20 added. The
	// additions cannot carry between bytes below 0x80.
	for ; i+8 <= len(s); i += 8 {
		w := binary.LittleEndian.Uint64(s[i:])
		if w&0x8080808080808080 != 0 {
			break
		}
		ge := w + 0x3f3f3f3f3f3f3f3f // high bit: byte >= 'A'
		gt := w + 0x2525252525252525 // high bit: byte > 'Z'
		dst = binary.LittleEndian.AppendUint64(dst, w|(ge&^gt&0x8080808080808080)>>2)
	}
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, c) // keep invalid bytes as they are
		} else {
			dst = utf8.AppendRune(dst, lowerRune(r))
		}
		i += n
	}
	return dst
}

// lowerRune is unicode.ToLower, except that the long s (U+017F), which
// case-folds to s, lowers to s: then every rune that case-insensitively
// matches an ASCII letter lowers to that letter (the Kelvin sign already
// lowers to k), so a case-insensitive regex's ASCII literals are sound
// prefilter anchors on lowered values.
func lowerRune(r rune) rune {
	if r == 'ſ' {
		return 's'
	}
	return unicode.ToLower(r)
}

func lower(s string) string { return string(appendLower(nil, []byte(s))) }

// token is one piece of a Sigma string: a literal run or a wildcard.
type token struct {
	lit  string
	wild byte // 0 for a literal, '*' or '?'
}

// sigmaString is a Sigma value after escape processing: literals and
// wildcards kept apart so that escaped `\*` stays a literal star.
type sigmaString []token

// parseSigmaString applies the Sigma escaping rules: `*` and `?` are
// wildcards, `\*`, `\?` and `\\` escape them, any other backslash is literal.
func parseSigmaString(s string) sigmaString {
	var out sigmaString
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			out = append(out, token{lit: b.String()})
			b.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '?' || s[i+1] == '\\'):
			b.WriteByte(s[i+1])
			i++
		case c == '*' || c == '?':
			flush()
			out = append(out, token{wild: c})
		default:
			b.WriteByte(c)
		}
	}
	flush()
	return out
}

// plainString is a Sigma string without wildcards (after encodings such as
// base64, where wildcards have no meaning).
func plainString(s string) sigmaString {
	if s == "" {
		return nil
	}
	return sigmaString{{lit: s}}
}

func (s sigmaString) hasWildcards() bool {
	for _, t := range s {
		if t.wild != 0 {
			return true
		}
	}
	return false
}

// literal concatenates the literal parts (only meaningful without wildcards).
func (s sigmaString) literal() string {
	var b strings.Builder
	for _, t := range s {
		b.WriteString(t.lit)
	}
	return b.String()
}

func (s sigmaString) withLeadingStar() sigmaString {
	if len(s) > 0 && s[0].wild == '*' {
		return s
	}
	return append(sigmaString{{wild: '*'}}, s...)
}

func (s sigmaString) withTrailingStar() sigmaString {
	if len(s) > 0 && s[len(s)-1].wild == '*' {
		return s
	}
	return append(append(sigmaString{}, s...), token{wild: '*'})
}

// longestLiteral is the longest wildcard-free run: a substring every
// matching value must contain, used as the prefilter anchor.
func (s sigmaString) longestLiteral() string {
	best := ""
	for _, t := range s {
		if t.wild == 0 && len(t.lit) > len(best) {
			best = t.lit
		}
	}
	return best
}

// globMatch matches value against pattern tokens; '?' matches one UTF-8
// character. It backtracks only to the last '*', so it runs in
// O(len(value)*len(pattern)) and allocates nothing.
func globMatch(pat []token, v string) bool {
	pi, vi := 0, 0
	lit := 0 // offset inside pat[pi].lit
	starP, starV := -1, 0
	for vi < len(v) || pi < len(pat) {
		if pi < len(pat) {
			t := pat[pi]
			switch t.wild {
			case '*':
				starP, starV = pi+1, vi
				pi++
				lit = 0
				continue
			case '?':
				if vi < len(v) {
					_, n := utf8.DecodeRuneInString(v[vi:])
					vi += n
					pi++
					continue
				}
			default:
				if vi < len(v) && v[vi] == t.lit[lit] {
					vi++
					lit++
					if lit == len(t.lit) {
						pi++
						lit = 0
					}
					continue
				}
			}
		}
		if starP >= 0 && starV < len(v) {
			starV++
			pi, vi, lit = starP, starV, 0
			continue
		}
		return false
	}
	return true
}
