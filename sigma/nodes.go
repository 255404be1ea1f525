package sigma

import "strings"

// node is a compiled detection expression. Evaluation reads only the
// decoded event, so it allocates nothing.
type node interface {
	eval(ev *event) bool
}

type andNode []node

func (n andNode) eval(ev *event) bool {
	for _, k := range n {
		if !k.eval(ev) {
			return false
		}
	}
	return true
}

type orNode []node

func (n orNode) eval(ev *event) bool {
	for _, k := range n {
		if k.eval(ev) {
			return true
		}
	}
	return false
}

type notNode struct{ x node }

func (n notNode) eval(ev *event) bool { return !n.x.eval(ev) }

// fieldNode is one "Field|modifiers: values" line. fid -1 is a keyword
// search over every value of the event.
type fieldNode struct {
	fid        int32
	pats       []valueMatcher
	anchors    [][]string // per pattern: literals one of which every match contains
	anchorless bool       // some pattern has no anchor (regex, null, numeric ...)
	all        bool       // |all: every pattern must match
	null       bool       // a null in the value list: absent or null field matches
	exists     *bool      // |exists
	// multi folds many case-insensitive contains patterns of an OR into
	// one automaton: one pass over the value instead of one
	// strings.Contains per pattern (rules list dozens of them).
	multi *acAutomaton
}

// minMulti is how many contains patterns make an automaton worthwhile.
const minMulti = 8

// foldContains moves the OR's case-insensitive contains patterns into multi.
func (n *fieldNode) foldContains() {
	if n.all || n.exists != nil {
		return
	}
	var lits []string
	var rest []valueMatcher
	for _, p := range n.pats {
		if m, ok := p.(*strMatcher); ok && m.op == 'c' && !m.cased {
			lits = append(lits, m.s)
			continue
		}
		rest = append(rest, p)
	}
	if len(lits) < minMulti {
		return
	}
	n.multi = buildAC(lits)
	n.pats = rest
}

func (n *fieldNode) add(m valueMatcher, anchors ...string) {
	n.pats = append(n.pats, m)
	var as []string
	for _, a := range anchors {
		if a == "" {
			as = nil // a pattern that can match without any literal
			break
		}
		as = append(as, a)
	}
	n.anchors = append(n.anchors, as)
	if len(as) == 0 {
		n.anchorless = true
	}
}

func (n *fieldNode) eval(ev *event) bool {
	if n.exists != nil {
		present := false
		if n.fid >= 0 {
			for i := ev.head[n.fid]; i >= 0; i = ev.vals[i].next {
				if ev.vals[i].kind != kindNull {
					present = true
					break
				}
			}
		}
		return present == *n.exists
	}
	if n.null && !n.all && n.fid >= 0 {
		absent := true
		for i := ev.head[n.fid]; i >= 0; i = ev.vals[i].next {
			v := &ev.vals[i]
			if v.kind == kindNull {
				return true
			}
			absent = false
		}
		if absent {
			return true
		}
	}
	if n.multi != nil {
		if n.fid < 0 {
			for i := range ev.vals {
				if v := &ev.vals[i]; v.primary && v.kind != kindNull && n.multi.containsAny(v.low) {
					return true
				}
			}
		} else {
			for i := ev.head[n.fid]; i >= 0; i = ev.vals[i].next {
				if v := &ev.vals[i]; v.kind != kindNull && n.multi.containsAny(v.low) {
					return true
				}
			}
		}
	}
	for _, p := range n.pats {
		ok := n.matchOne(ev, p)
		if ok && !n.all {
			return true
		}
		if !ok && n.all {
			return false
		}
	}
	return n.all && len(n.pats) > 0
}

// matchOne reports whether any value of the field matches p.
func (n *fieldNode) matchOne(ev *event, p valueMatcher) bool {
	if n.fid < 0 {
		for i := range ev.vals {
			if v := &ev.vals[i]; v.primary && p.match(ev, v) {
				return true
			}
		}
		return false
	}
	for i := ev.head[n.fid]; i >= 0; i = ev.vals[i].next {
		if p.match(ev, &ev.vals[i]) {
			return true
		}
	}
	return false
}

// anchor is a prefilter literal: the rule can only match if lit occurs in
// a value of field fid (-1: any field).
type anchor struct {
	fid int32
	lit string
}

// anchorsOf returns literals at least one of which occurs in every event the
// node matches; ok is false when no such set exists (negations, regexes).
func anchorsOf(n node) (as []anchor, ok bool) {
	switch x := n.(type) {
	case *fieldNode:
		if x.exists != nil || x.null || len(x.anchors) == 0 {
			return nil, false
		}
		if x.all {
			var best []string
			for _, a := range x.anchors {
				if minLen(a) > minLen(best) {
					best = a
				}
			}
			if best == nil {
				return nil, false
			}
			for _, l := range best {
				as = append(as, anchor{x.fid, l})
			}
			return as, true
		}
		if x.anchorless {
			return nil, false
		}
		for _, a := range x.anchors {
			for _, l := range a {
				as = append(as, anchor{x.fid, l})
			}
		}
		return as, true
	case orNode:
		for _, k := range x {
			ka, ok := anchorsOf(k)
			if !ok {
				return nil, false
			}
			as = append(as, ka...)
		}
		return as, len(as) > 0
	case andNode:
		// Any child's set will do; prefer the one whose shortest literal is
		// longest (fewer false hits), then the smaller set.
		var best []anchor
		bestMin := -1
		for _, k := range x {
			ka, ok := anchorsOf(k)
			if !ok {
				continue
			}
			m := 1 << 30
			for _, a := range ka {
				m = min(m, anchorWeight(a.lit))
			}
			if m > bestMin || m == bestMin && len(ka) < len(best) {
				best, bestMin = ka, m
			}
		}
		return best, best != nil
	default:
		return nil, false
	}
}

// commonText holds strings found in most Windows events. A literal inside
// it occurs in nearly every event, so it makes a poor anchor: an AND then
// prefers a sibling with rarer literals.
const commonText = `c:\\windows\\system32\\ c:\\windows\\syswow64\\ c:\\program files (x86)\\ ` +
	`c:\\program files\\ c:\\programdata\\ c:\\users\\ \\appdata\\local\\temp\\ \\appdata\\roaming\\ ` +
	`.exe .dll microsoft corporation microsoft® windows® operating system nt authority\\system ` +
	`c:\\windows\\ \\windows\\ hklm\\software\\ hku\\ \\currentversion\\`

// anchorWeight is a literal's length, or 1 for common text.
func anchorWeight(lit string) int {
	if strings.Contains(commonText, lit) {
		return 1
	}
	return len(lit)
}
