package sigma

import (
	"slices"
	"strings"
)

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
	fid  int32
	pats []valueMatcher
	// valueOf[i] is the index, in the rule's value list, of the value
	// pattern i came from: a transform (windash, base64offset, expand)
	// turns one value into several patterns, any of which matches it.
	valueOf    []int32
	anchors    [][]string // per pattern: literals one of which every match contains
	anchorless bool       // some pattern has no anchor (regex, null, numeric ...)
	all        bool       // |all: every value must match
	null       bool       // a null in the value list: absent or null field matches
	exists     *bool      // |exists
	// multi folds many case-insensitive contains patterns of an OR into
	// one literal index: one pass over the value instead of one
	// strings.Contains per pattern (rules list dozens of them).
	multi *litIndex
	value int32 // the value being compiled (see add)
}

// minMulti is how many contains patterns make a literal index worthwhile.
const minMulti = 8

// foldContains moves the OR's case-insensitive contains patterns into multi.
func (n *fieldNode) foldContains() {
	if n.all || n.exists != nil {
		return
	}
	var lits []string
	var rest []valueMatcher
	var restOf []int32
	for i, p := range n.pats {
		if m, ok := p.(*strMatcher); ok && m.op == 'c' && !m.cased && m.s != "" {
			lits = append(lits, m.s)
			continue
		}
		rest = append(rest, p)
		restOf = append(restOf, n.valueOf[i])
	}
	if len(lits) < minMulti {
		return
	}
	n.multi = buildLitIndex(lits)
	n.pats, n.valueOf = rest, restOf
}

// add appends a pattern of the current value with the literals one of
// which every value it matches contains ("" or none: no such literal).
func (n *fieldNode) add(m valueMatcher, anchors ...string) {
	n.pats = append(n.pats, m)
	n.valueOf = append(n.valueOf, n.value)
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
	if n.all {
		// Every value must match through one of its patterns.
		ok := false
		for i, p := range n.pats {
			if i > 0 && n.valueOf[i] != n.valueOf[i-1] {
				if !ok {
					return false
				}
				ok = false
			}
			if !ok {
				ok = n.matchOne(ev, p)
			}
		}
		return ok
	}
	for _, p := range n.pats {
		if n.matchOne(ev, p) {
			return true
		}
	}
	return false
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

// A clause is a set of anchors at least one of which occurs in every
// event a node matches. A node's clauses are a conjunction: all of them
// hold for every event it matches (so a rule can only match an event in
// which every clause of its root has a literal).
type clause []anchor

// clausesOf returns necessary clauses of a node; none when the node can
// match without any literal (not, null, exists, numeric, fieldref, a regex
// without required literal).
//
//   - A field line without |all needs one literal of any of its patterns:
//     one clause, unless some pattern has no anchor.
//   - With |all every value must match: one clause per value (its
//     patterns' anchors; a value's transforms are alternatives).
//   - AND needs each child's clauses.
//   - OR needs, for any choice of one clause per child, their union: the
//     children's best clauses, and their second best.
//   - NOT needs nothing: not x matches events without any of x's
//     literals.
func clausesOf(n node) []clause {
	switch x := n.(type) {
	case *fieldNode:
		if x.exists != nil || x.null || len(x.anchors) == 0 {
			return nil
		}
		if !x.all {
			if x.anchorless {
				return nil
			}
			var c clause
			for _, as := range x.anchors {
				for _, l := range as {
					c = append(c, anchor{x.fid, l})
				}
			}
			return []clause{c}
		}
		var out []clause
		for i := 0; i < len(x.pats); {
			j, ok := i, true
			var c clause
			for ; j < len(x.pats) && x.valueOf[j] == x.valueOf[i]; j++ {
				ok = ok && len(x.anchors[j]) > 0
				for _, l := range x.anchors[j] {
					c = append(c, anchor{x.fid, l})
				}
			}
			if ok {
				out = append(out, c)
			}
			i = j
		}
		return out
	case andNode:
		var out []clause
		for _, k := range x {
			out = append(out, clausesOf(k)...)
		}
		return out
	case orNode:
		kids := make([][]clause, len(x))
		for i, k := range x {
			kids[i] = clausesOf(k)
			if len(kids[i]) == 0 {
				return nil
			}
			sortClauses(kids[i])
		}
		var out []clause
		for j := 0; j < 2; j++ {
			var c clause
			for _, kc := range kids {
				c = append(c, kc[min(j, len(kc)-1)]...)
			}
			out = append(out, c)
		}
		return out
	default:
		return nil
	}
}

// maxClauses bounds the clauses a rule's candidacy waits for: each costs
// index literals and marks, and the first few already exclude most events.
const maxClauses = 4

// prefilterClauses are the clauses the prefilter checks for a rule: its
// root's clauses deduplicated, without clauses implied by others (a
// superset of another clause), the best maxClauses first, and without
// clauses of only common text unless nothing else is left. None means
// the rule is evaluated on every event of its logsource.
func prefilterClauses(root node) []clause {
	cs := clausesOf(root)
	for i := range cs {
		c := slices.Clone(cs[i])
		slices.SortFunc(c, cmpAnchor)
		cs[i] = slices.Compact(c)
	}
	var kept []clause
	for i, c := range cs {
		implied := false
		for j, d := range cs {
			// c is implied by a different clause d ⊆ c (ties: keep the first).
			if i != j && subset(d, c) && (len(d) < len(c) || j < i) {
				implied = true
				break
			}
		}
		if !implied {
			kept = append(kept, c)
		}
	}
	sortClauses(kept)
	if len(kept) > maxClauses {
		kept = kept[:maxClauses]
	}
	for len(kept) > 1 && clauseWeight(kept[len(kept)-1]) <= 1 {
		kept = kept[:len(kept)-1]
	}
	return kept
}

func cmpAnchor(a, b anchor) int {
	if a.fid != b.fid {
		return int(a.fid) - int(b.fid)
	}
	return strings.Compare(a.lit, b.lit)
}

// subset reports whether sorted clause a is contained in sorted clause b.
func subset(a, b clause) bool {
	i := 0
	for _, x := range b {
		if i < len(a) && a[i] == x {
			i++
		}
	}
	return i == len(a)
}

// sortClauses orders clauses best first: the highest weight of their
// weakest literal (rarely seen), then fewest literals.
func sortClauses(cs []clause) {
	slices.SortStableFunc(cs, func(a, b clause) int {
		if wa, wb := clauseWeight(a), clauseWeight(b); wa != wb {
			return wb - wa
		}
		return len(a) - len(b)
	})
}

// clauseWeight is the weight of a clause's weakest literal.
func clauseWeight(c clause) int {
	w := 1 << 30
	for _, a := range c {
		w = min(w, anchorWeight(a.lit))
	}
	return w
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
