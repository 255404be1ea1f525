package sigma

import (
	"net/netip"
	"strconv"
	"strings"
)

// valueMatcher tests one event value. Case-insensitive matchers compare the
// pre-lowered value with a pattern lowered at compile time.
type valueMatcher interface {
	match(ev *event, v *value) bool
}

// strMatcher covers the string forms Sigma wildcards reduce to.
type strMatcher struct {
	op    byte // '=' exact, 'c' contains, 'p' prefix, 's' suffix, 'g' glob, '*' any
	s     string
	glob  []token
	cased bool
}

func (m *strMatcher) match(_ *event, v *value) bool {
	if v.kind == kindNull {
		return false
	}
	x := v.low
	if m.cased {
		x = v.raw
	}
	switch m.op {
	case '=':
		return x == m.s
	case 'c':
		return strings.Contains(x, m.s)
	case 'p':
		return strings.HasPrefix(x, m.s)
	case 's':
		return strings.HasSuffix(x, m.s)
	case 'g':
		return globMatch(m.glob, x)
	default:
		return true
	}
}

// newStrMatcher reduces a Sigma string to the cheapest equivalent test and
// returns the prefilter anchor (a substring every match contains).
func newStrMatcher(s sigmaString, cased bool) (*strMatcher, string) {
	norm := func(x string) string {
		if cased {
			return x
		}
		return lower(x)
	}
	for i := range s {
		s[i].lit = norm(s[i].lit)
	}
	m := &strMatcher{cased: cased}
	n := len(s)
	star := func(i int) bool { return i >= 0 && i < n && s[i].wild == '*' }
	plain := func(ts sigmaString) bool { return !ts.hasWildcards() }
	switch {
	case n == 0:
		m.op, m.s = '=', ""
	case n == 1 && star(0):
		m.op = '*'
	case plain(s):
		m.op, m.s = '=', s.literal()
	case n == 3 && star(0) && star(2) && plain(s[1:2]):
		m.op, m.s = 'c', s[1].lit
	case n == 2 && star(1) && plain(s[:1]):
		m.op, m.s = 'p', s[0].lit
	case n == 2 && star(0) && plain(s[1:]):
		m.op, m.s = 's', s[1].lit
	default:
		m.op, m.glob = 'g', s
	}
	anchor := s.longestLiteral()
	if cased {
		anchor = lower(anchor)
	}
	return m, anchor
}

type cidrMatcher struct{ prefixes []netip.Prefix }

func (m *cidrMatcher) match(_ *event, v *value) bool {
	if v.kind != kindString {
		return false
	}
	a, err := netip.ParseAddr(v.raw)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range m.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

type numMatcher struct {
	op string // gt, gte, lt, lte
	n  float64
}

func (m *numMatcher) match(_ *event, v *value) bool {
	if v.kind != kindNumber && v.kind != kindString {
		return false
	}
	x, err := strconv.ParseFloat(strings.TrimSpace(v.raw), 64)
	if err != nil {
		return false
	}
	switch m.op {
	case "gt":
		return x > m.n
	case "gte":
		return x >= m.n
	case "lt":
		return x < m.n
	default:
		return x <= m.n
	}
}

// fieldrefMatcher compares with the values of another field of the same event.
type fieldrefMatcher struct {
	ref   int32
	op    byte // '=', 'c', 'p', 's'
	cased bool
}

func (m *fieldrefMatcher) match(ev *event, v *value) bool {
	for i := ev.head[m.ref]; i >= 0; i = ev.vals[i].next {
		o := &ev.vals[i]
		a, b := v.low, o.low
		if m.cased {
			a, b = v.raw, o.raw
		}
		var ok bool
		switch m.op {
		case 'c':
			ok = strings.Contains(a, b)
		case 'p':
			ok = strings.HasPrefix(a, b)
		case 's':
			ok = strings.HasSuffix(a, b)
		default:
			ok = a == b && v.kind != kindNull
		}
		if ok {
			return true
		}
	}
	return false
}
