package sigma

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// reMatcher runs a Go (RE2) regular expression on the raw value. lits, when
// set, are lower-cased literals one of which every match contains: a cheap
// substring test on the lowered value rejects most values before the
// regex runs, and they double as prefilter anchors.
type reMatcher struct {
	re   *regexp.Regexp
	lits []string
	// factor, when set, is a run of byte classes every match contains
	// (e.g. the 64 hex digits of `\s[a-f0-9]{64}\s`): checked first with a
	// shift-and scan, which costs about a nanosecond a byte where the
	// regexp costs tens.
	factor *classFactor
}

func (m *reMatcher) match(_ *event, v *value) bool {
	if v.kind == kindNull {
		return false
	}
	if m.factor != nil && !m.factor.in(v.raw) {
		return false
	}
	if len(m.lits) > 0 {
		found := false
		for _, l := range m.lits {
			if strings.Contains(v.low, l) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return m.re.MatchString(v.raw)
}

func newReMatcher(expr string) (*reMatcher, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	m := &reMatcher{re: re}
	if tree, err := syntax.Parse(expr, syntax.Perl); err == nil {
		tree = tree.Simplify()
		m.lits = requiredLiterals(tree)
		m.factor = requiredFactor(tree)
	}
	return m, nil
}

// foldSafe reports whether every rune a case-folded literal rune r
// matches lowers to lower(r), so that a lowered value holds lower(r)
// wherever the regex matches r: false for a few Greek and Cyrillic
// letters (`(?i)σ` also matches "ς", which lowers to itself).
func foldSafe(r rune) bool {
	l := lowerRune(r)
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if lowerRune(f) != l {
			return false
		}
	}
	return true
}

// literalParts splits an OpLiteral into lower-cased one-rune parts; nil
// stands for a rune that cannot be lowered soundly (a case-folded rune
// that is not foldSafe, or U+FFFD, which also matches an invalid byte
// that lowering keeps as it is).
func literalParts(re *syntax.Regexp) [][]string {
	out := make([][]string, len(re.Rune))
	for i, r := range re.Rune {
		if r == utf8.RuneError || re.Flags&syntax.FoldCase != 0 && !foldSafe(r) {
			continue
		}
		out[i] = []string{string(lowerRune(r))}
	}
	return out
}

// classSet returns the lower-cased strings of a small character class
// (at most maxClassSet runes, none of them unsafe to lower).
func classSet(re *syntax.Regexp) []string {
	if re.Op != syntax.OpCharClass {
		return nil
	}
	n := 0
	for i := 0; i < len(re.Rune); i += 2 {
		n += int(re.Rune[i+1]-re.Rune[i]) + 1
		if n > maxClassSet {
			return nil
		}
	}
	var out []string
	for i := 0; i < len(re.Rune); i += 2 {
		for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
			if r == utf8.RuneError || !foldSafe(r) {
				return nil
			}
			out = append(out, lower(string(r)))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// maxClassSet bounds the characters of a class that literal extraction
// expands (`\.[ "']` yields ". ", ".\"" and ".'"); maxLitSet bounds the
// strings such expansion produces.
const (
	maxClassSet = 4
	maxLitSet   = 16
)

// requiredLiterals returns lower-cased literals at least one of which
// occurs in every string the regex matches, or nil if it finds none.
func requiredLiterals(re *syntax.Regexp) []string {
	switch re.Op {
	case syntax.OpLiteral, syntax.OpCharClass:
		return concatLiterals([]*syntax.Regexp{re})
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLiterals(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLiterals(re.Sub[0])
		}
	case syntax.OpAlternate:
		var out []string
		for _, s := range re.Sub {
			ls := requiredLiterals(s)
			if ls == nil {
				return nil
			}
			out = append(out, ls...)
		}
		return out
	case syntax.OpConcat:
		return concatLiterals(concatLeaves(re, nil))
	}
	return nil
}

// concatLiterals finds required literals of a concatenation: adjacent
// literal runes and small classes form runs (the cross product of their
// strings), other parts contribute their own; the best candidate is the
// set whose shortest literal is longest.
func concatLiterals(subs []*syntax.Regexp) []string {
	var best []string
	consider := func(ls []string) {
		if ls != nil && minLen(ls) > minLen(best) {
			best = ls
		}
	}
	var run []string // nil: no run open
	extend := func(part []string) {
		if part == nil || len(run)*len(part) > maxLitSet {
			consider(run)
			run = part // nil, or start over from this part
			return
		}
		if run == nil {
			run = part
			return
		}
		var next []string
		for _, a := range run {
			for _, b := range part {
				next = append(next, a+b)
			}
		}
		run = next
	}
	for _, s := range subs {
		switch s.Op {
		case syntax.OpLiteral:
			for _, p := range literalParts(s) {
				extend(p)
			}
		case syntax.OpCharClass:
			extend(classSet(s))
		default:
			extend(nil)
			consider(requiredLiterals(s))
		}
	}
	consider(run)
	return best
}

// classFactor is a fixed run of ASCII byte classes that every match of a
// regex contains, checked with the shift-and (bitap) algorithm.
type classFactor struct {
	masks [256]uint64 // per byte: the positions of the run it may fill
	last  uint64      // bit of the run's final position
}

// in reports whether s contains the run.
func (f *classFactor) in(s string) bool {
	d := uint64(0)
	for i := 0; i < len(s); i++ {
		d = (d<<1 | 1) & f.masks[s[i]]
		if d&f.last != 0 {
			return true
		}
	}
	return false
}

// minFactor is the shortest run worth a scan; maxFactor the longest a
// 64-bit shift-and state holds.
const (
	minFactor = 8
	maxFactor = 64
)

// requiredFactor finds, among the top-level concatenation of a simplified
// regex, the longest run of single ASCII bytes (literals and classes;
// Simplify has unrolled fixed repeats), and returns it as a classFactor if
// it has minFactor positions or more. A class holding a non-ASCII rune,
// or a case-folded literal whose fold orbit leaves ASCII (`(?i)k` also
// matches the Kelvin sign), ends a run: its match is not one byte.
func requiredFactor(re *syntax.Regexp) *classFactor {
	var best, cur [][256]bool
	flush := func() {
		if len(cur) > len(best) {
			best = cur
		}
		cur = nil
	}
	for _, s := range concatLeaves(re, nil) {
		switch s.Op {
		case syntax.OpLiteral:
			for _, r := range s.Rune {
				set, ok := asciiRunes(r, s.Flags&syntax.FoldCase != 0)
				if !ok {
					flush()
					continue
				}
				cur = append(cur, set)
			}
		case syntax.OpCharClass:
			var set [256]bool
			ok := true
			for i := 0; i < len(s.Rune) && ok; i += 2 {
				if s.Rune[i+1] >= utf8.RuneSelf {
					ok = false
					break
				}
				for r := s.Rune[i]; r <= s.Rune[i+1]; r++ {
					set[r] = true
				}
			}
			if !ok {
				flush()
				continue
			}
			cur = append(cur, set)
		default:
			flush()
		}
	}
	flush()
	if len(best) < minFactor {
		return nil
	}
	if len(best) > maxFactor {
		best = best[:maxFactor] // a prefix of a required run is required
	}
	f := &classFactor{last: 1 << (len(best) - 1)}
	for pos, set := range best {
		for b, in := range set {
			if in {
				f.masks[b] |= 1 << pos
			}
		}
	}
	return f
}

// concatLeaves appends the parts of a concatenation, flattening nested
// concatenations and groups (Simplify unrolls x{3} into a nested concat).
func concatLeaves(re *syntax.Regexp, out []*syntax.Regexp) []*syntax.Regexp {
	switch re.Op {
	case syntax.OpCapture:
		return concatLeaves(re.Sub[0], out)
	case syntax.OpConcat:
		for _, s := range re.Sub {
			out = concatLeaves(s, out)
		}
		return out
	}
	return append(out, re)
}

// asciiRunes is the set of bytes a literal rune matches, if all are ASCII.
func asciiRunes(r rune, fold bool) (set [256]bool, ok bool) {
	if r >= utf8.RuneSelf {
		return set, false
	}
	set[r] = true
	if fold {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f >= utf8.RuneSelf {
				return set, false
			}
			set[f] = true
		}
	}
	return set, true
}

func minLen(ls []string) int {
	if len(ls) == 0 {
		return 0
	}
	m := len(ls[0])
	for _, l := range ls[1:] {
		m = min(m, len(l))
	}
	return m
}
