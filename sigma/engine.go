// Package sigma is a compiled Sigma rule engine: rules are parsed (Sigma
// spec 2.x) and compiled once into an Engine; events (JSON objects) are
// matched by a Matcher that decodes each event into reusable buffers, runs
// one Aho-Corasick prefilter over all rule literals, and evaluates only the
// rules whose literals occur (plus rules that have none), so the hot path
// allocates nothing per event.
package sigma

import (
	"fmt"
	"slices"
)

// Engine is an immutable set of compiled rules; it is safe for concurrent
// use through one Matcher per goroutine.
type Engine struct {
	cfg     Config
	table   *LogsourceTable
	router  *router
	rules   []*compiledRule
	res     *resolver
	nfields int
	channel int32 // field id of Channel
	eventID int32 // field id of EventID
	// classAC[class][fid] and keywordAC[class] are the prefilter
	// automata; nlits counts their literals.
	classAC   [][]*fieldAC
	keywordAC []*fieldAC
	nlits     int
	// always[class] are the rules without anchors, evaluated on every event
	// of that route class; allowed[class][rule] gates prefilter hits.
	always  [][]int32
	allowed [][]bool
	// keywordClass[class]: some rule of the class searches every value,
	// so every value must be lowered.
	keywordClass []bool

	// Correlation rules (correlation.go): corrs are the loaded ones,
	// listeners the correlations each detection rule feeds, silent the
	// rules that do not alert on their own (generate: false).
	corrs     []*compiledCorr
	listeners map[*Rule][]listener
	silent    map[*Rule]bool
	fieldIDs  map[string]int32
}

type compiledRule struct {
	rule *Rule
	root node
}

// NewEngine compiles rules. Rules that cannot be compiled are returned as
// problems (with ErrUnsupported for valid Sigma the engine does not
// evaluate); the engine holds every other rule.
func NewEngine(rules []*Rule, cfg Config) (*Engine, []LoadProblem) {
	e := &Engine{cfg: cfg, table: cfg.Logsources}
	if e.table == nil {
		e.table = WindowsLogsources()
	}
	c := &compiler{cfg: &e.cfg, fields: map[string]int32{}}
	e.channel = c.field("Channel")
	e.eventID = c.field("EventID")
	var problems []LoadProblem
	var corrs []*Rule
	for _, r := range rules {
		if r.Correlation != nil {
			corrs = append(corrs, r)
			continue
		}
		root, err := c.compileRule(r)
		if err != nil {
			problems = append(problems, LoadProblem{Path: r.Path, ID: r.ID, Title: r.Title, Err: fmt.Errorf("compile: %w", err)})
			continue
		}
		e.rules = append(e.rules, &compiledRule{rule: r, root: root})
	}
	problems = append(problems, e.resolveCorrelations(corrs, rules, c)...)
	e.fieldIDs = c.fields
	// Aliases make extra event keys resolve to a Sigma field.
	ids := map[string]int32{}
	for name, id := range c.fields {
		ids[name] = id
	}
	for name, keys := range cfg.Mapping.Aliases {
		id := c.field(name)
		ids[name] = id
		for _, k := range keys {
			ids[k] = id
		}
	}
	e.res = &resolver{ids: ids, prefixes: compilePrefixes(cfg.Mapping.StripPrefixes), removeSpaces: cfg.Mapping.RemoveSpaces}
	e.nfields = len(c.names)
	e.buildRouting()
	e.buildPrefilter()
	return e, problems
}

func (e *Engine) buildRouting() {
	e.router = newRouter(e.table)
	n := len(e.router.keys)
	e.allowed = make([][]bool, n)
	for cl := range e.allowed {
		e.allowed[cl] = make([]bool, len(e.rules))
		for i, r := range e.rules {
			e.allowed[cl][i] = e.router.allows(e.table, r.rule.Logsource, int32(cl))
		}
	}
}

// fieldAC is the prefilter of one field for one route class: an
// automaton over the anchors of the rules allowed in that class.
type fieldAC struct {
	ac    *acAutomaton
	base  int32     // offset of this automaton's literals in Matcher.litMark
	rules [][]int32 // per literal: the rules it anchors
}

// buildPrefilter builds, per route class, one automaton per field (and one
// for keyword anchors over all fields). Splitting by class and field keeps
// each automaton small (a Sysmon process-creation event scans only the
// process_creation rules' CommandLine literals in its CommandLine), and
// fields no allowed rule anchors on are not scanned at all. Classes with
// the same rule set for a field share the automaton.
func (e *Engine) buildPrefilter() {
	anchors := make([]anchored, len(e.rules))
	for i, r := range e.rules {
		as, ok := anchorsOf(r.root)
		anchors[i] = anchored{as, ok}
	}
	shared := map[string]*fieldAC{}
	e.always = make([][]int32, len(e.router.keys))
	e.keywordClass = make([]bool, len(e.router.keys))
	for cl := range e.router.keys {
		for i, r := range e.rules {
			if e.allowed[cl][i] && hasKeywords(r.root) {
				e.keywordClass[cl] = true
			}
		}
	}
	e.classAC = make([][]*fieldAC, len(e.router.keys))
	e.keywordAC = make([]*fieldAC, len(e.router.keys))
	for cl := range e.router.keys {
		byField := map[int32][]int32{} // fid -> rules (in order)
		for i := range e.rules {
			if !e.allowed[cl][i] {
				continue
			}
			if !anchors[i].ok {
				e.always[cl] = append(e.always[cl], int32(i))
				continue
			}
			seen := map[int32]bool{}
			for _, a := range anchors[i].as {
				if !seen[a.fid] {
					seen[a.fid] = true
					byField[a.fid] = append(byField[a.fid], int32(i))
				}
			}
		}
		e.classAC[cl] = make([]*fieldAC, e.nfields)
		for fid, rules := range byField {
			sig := fmt.Sprint(fid, rules)
			f, ok := shared[sig]
			if !ok {
				f = e.newFieldAC(fid, rules, pick(anchors, rules))
				shared[sig] = f
			}
			if fid < 0 {
				e.keywordAC[cl] = f
			} else {
				e.classAC[cl][fid] = f
			}
		}
	}
}

type anchored struct {
	as []anchor
	ok bool
}

// pick returns all[i] for each i in idx.
func pick[T any](all []T, idx []int32) []T {
	out := make([]T, len(idx))
	for i, j := range idx {
		out[i] = all[j]
	}
	return out
}

func (e *Engine) newFieldAC(fid int32, rules []int32, anchors []anchored) *fieldAC {
	f := &fieldAC{base: int32(e.nlits)}
	ids := map[string]int32{}
	var lits []string
	for k, r := range rules {
		for _, a := range anchors[k].as {
			if a.fid != fid {
				continue
			}
			id, ok := ids[a.lit]
			if !ok {
				id = int32(len(lits))
				ids[a.lit] = id
				lits = append(lits, a.lit)
				f.rules = append(f.rules, nil)
			}
			if n := len(f.rules[id]); n == 0 || f.rules[id][n-1] != r {
				f.rules[id] = append(f.rules[id], r)
			}
		}
	}
	f.ac = buildAC(lits)
	e.nlits += len(lits)
	return f
}

// Rules returns the compiled rules in evaluation order.
func (e *Engine) Rules() []*Rule {
	out := make([]*Rule, len(e.rules))
	for i, r := range e.rules {
		out[i] = r.rule
	}
	return out
}

// Stats describes the compiled engine: Rules counts detection rules,
// Correlations the loaded correlation rules.
type Stats struct {
	Rules, Correlations, Literals, Fields, AnchorlessRules int
}

func (e *Engine) Stats() Stats {
	s := Stats{Rules: len(e.rules), Correlations: len(e.corrs), Literals: e.nlits, Fields: e.nfields}
	s.AnchorlessRules = len(e.always[classUnrouted])
	return s
}

// Matcher evaluates events against an Engine. It owns the per-event
// buffers, so it is not safe for concurrent use: use one per goroutine.
type Matcher struct {
	e       *Engine
	ev      *event
	mark    []uint32 // per rule: epoch it became a candidate
	litMark []uint32 // per prefilter literal: epoch it was handled
	epoch   uint32
	cands   []int32
	matches []*Rule
	class   int32
	key     []byte
	// Evaluated counts rules evaluated since the Matcher was created
	// (prefilter effectiveness).
	Evaluated uint64
}

// NewMatcher returns a Matcher for the engine.
func (e *Engine) NewMatcher() *Matcher {
	return &Matcher{
		e:       e,
		ev:      newEvent(e.res, e.nfields),
		mark:    make([]uint32, len(e.rules)),
		litMark: make([]uint32, e.nlits),
	}
}

// Match decodes one JSON document and returns the rules it matches, in
// engine order. The returned slice is reused by the next call.
func (m *Matcher) Match(doc []byte) ([]*Rule, error) {
	if err := m.ev.decode(doc); err != nil {
		return nil, err
	}
	return m.evaluate(), nil
}

func (m *Matcher) evaluate() []*Rule {
	e := m.e
	m.matches = m.matches[:0]
	m.cands = m.cands[:0]
	m.epoch++
	if m.epoch == 0 { // wrapped: clear marks so stale epochs cannot collide
		clear(m.mark)
		clear(m.litMark)
		m.epoch = 1
	}
	m.class = m.classify()
	if e.keywordClass[m.class] {
		m.ev.lowerAll()
	}
	fields, keywords := e.classAC[m.class], e.keywordAC[m.class]
	for i := range m.ev.vals {
		v := &m.ev.vals[i]
		if v.kind == kindNull || len(v.low) == 0 {
			continue
		}
		if v.fid >= 0 {
			if f := fields[v.fid]; f != nil {
				m.scan(f, v.low)
			}
		}
		if keywords != nil && v.primary {
			m.scan(keywords, v.low)
		}
	}
	for _, r := range e.always[m.class] {
		if m.mark[r] != m.epoch {
			m.mark[r] = m.epoch
			m.cands = append(m.cands, r)
		}
	}
	slices.Sort(m.cands)
	m.Evaluated += uint64(len(m.cands))
	for _, r := range m.cands {
		if e.rules[r].root.eval(m.ev) {
			m.matches = append(m.matches, e.rules[r].rule)
		}
	}
	return m.matches
}

// classify finds the event's route class from its Channel and EventID.
func (m *Matcher) classify() int32 {
	ev, e := m.ev, m.e
	ch := ev.head[e.channel]
	if ch < 0 {
		return classUnrouted
	}
	m.key = append(m.key[:0], ev.vals[ch].low...)
	m.key = append(m.key, '#')
	n := len(m.key)
	if id := ev.head[e.eventID]; id >= 0 {
		m.key = append(m.key, ev.vals[id].raw...)
		if c, ok := e.router.classes[string(m.key)]; ok {
			return c
		}
	}
	m.key = append(m.key[:n], '*')
	if c, ok := e.router.classes[string(m.key)]; ok {
		return c
	}
	return classOtherWindows
}

// scan runs one prefilter automaton over a value and marks the rules of
// every literal found as candidates.
func (m *Matcher) scan(f *fieldAC, s string) {
	a := f.ac
	st := uint32(0)
	for i := 0; i < len(s); i++ {
		enc := a.next(st, s[i])
		st = enc >> 1
		if enc&1 == 0 {
			continue
		}
		for o := int32(st); o >= 0; o = a.states[o].dict {
			for _, l := range a.out[o] {
				g := f.base + l
				if m.litMark[g] == m.epoch {
					continue
				}
				m.litMark[g] = m.epoch
				for _, r := range f.rules[l] {
					if m.mark[r] != m.epoch {
						m.mark[r] = m.epoch
						m.cands = append(m.cands, r)
					}
				}
			}
		}
	}
}

// hasKeywords reports whether a node searches every value of an event.
func hasKeywords(n node) bool {
	switch x := n.(type) {
	case *fieldNode:
		return x.fid < 0
	case andNode:
		return slices.ContainsFunc(x, hasKeywords)
	case orNode:
		return slices.ContainsFunc(x, hasKeywords)
	case notNode:
		return hasKeywords(x.x)
	}
	return false
}
