// Package sigma is a compiled Sigma rule engine: rules are parsed (Sigma
// spec 2.x) and compiled once into an Engine; events (JSON objects) are
// matched by a Matcher that decodes each event into reusable buffers, looks
// the values up in a literal index per field, and evaluates only the rules
// all of whose necessary literal clauses occur (plus rules that have
// none), so the hot path allocates nothing per event.
package sigma

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Engine is an immutable set of compiled rules; it is safe for concurrent
// use through one Matcher per goroutine.
type Engine struct {
	cfg     Config
	router  *router
	rules   []*compiledRule
	res     *resolver
	nfields int
	// classIdx[class][fid] and keywordIdx[class] are the prefilter
	// literal indexes; nlits counts their literals.
	classIdx   [][]*fieldIndex
	keywordIdx []*fieldIndex
	nlits      int
	// A rule is a candidate for an event when each of its need[rule]
	// prefilter clauses has a literal in the event; nclauses counts the
	// clauses of rules with several.
	need     []uint16
	nclauses int
	// always[class] are the rules without clauses, evaluated on every
	// event of that route class; allowed[class][rule] says which rules a
	// class's indexes hold.
	always  [][]int32
	allowed [][]bool
	// classFields[class] are the logsource field mappings of the class.
	classFields [][]fieldPair
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
	// suppress is the suppression entry of each rule that has one.
	suppress map[*Rule]*Suppression
}

// Suppression returns the suppression entry that holds for r, or nil.
func (e *Engine) Suppression(r *Rule) *Suppression { return e.suppress[r] }

type compiledRule struct {
	rule *Rule
	root node
}

// NewEngine compiles rules. Rules that cannot be compiled are returned as
// problems (with ErrUnsupported for valid Sigma the engine does not
// evaluate); the engine holds every other rule. A rule whose logsource
// names no source of the routing table is held too, and reported with
// ErrNoSource: it runs only on unrouted events.
func NewEngine(rules []*Rule, cfg Config) (*Engine, []LoadProblem) {
	e := &Engine{cfg: cfg}
	table := cfg.Logsources
	if table == nil {
		table = DefaultLogsources()
	}
	c := &compiler{cfg: &e.cfg, fields: map[string]int32{}}
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
	sources, err := withLogsourceMappings(table.Sources, cfg.Mapping.Logsources)
	if err == nil {
		e.router, err = newRouter(sources, c.field)
	}
	if err != nil {
		// A broken table routes nothing: every rule sees every event.
		problems = append(problems, LoadProblem{Err: fmt.Errorf("logsource table: %w", err)})
		e.router = &router{}
	}
	// Fields of source mappings must resolve in every event.
	for _, src := range e.router.sources {
		for to, froms := range src.Fields {
			c.field(to)
			for _, f := range froms {
				c.field(f)
			}
		}
	}
	for _, lm := range cfg.Mapping.Logsources {
		for to, froms := range lm.Fields {
			c.field(to)
			for _, f := range froms {
				c.field(f)
			}
		}
	}
	e.suppress = map[*Rule]*Suppression{}
	for _, r := range e.rules {
		for i := range cfg.Suppression {
			if s := &e.cfg.Suppression[i]; s.applies(r.rule) {
				e.suppress[r.rule] = s
				break
			}
		}
	}
	for _, s := range cfg.Suppression {
		for _, f := range s.GroupBy {
			c.field(f)
		}
	}
	e.fieldIDs = c.fields
	e.res = newResolver(c, cfg.Mapping)
	e.nfields = len(c.names)
	for _, r := range e.rules {
		if !e.router.routed(r.rule.Logsource) {
			problems = append(problems, LoadProblem{Path: r.rule.Path, ID: r.rule.ID, Title: r.rule.Title, Err: noSourceError{r.rule.Logsource}})
		}
	}
	e.buildRouting()
	e.buildPrefilter()
	return e, problems
}

// newResolver maps event keys to Sigma fields: each field's own name,
// its aliases and, with DotsAsUnderscores, its name with underscores.
func newResolver(c *compiler, m FieldMapping) *resolver {
	ids := map[string][]int32{}
	add := func(key string, id int32) {
		if !slices.Contains(ids[key], id) {
			ids[key] = append(ids[key], id)
		}
	}
	for _, name := range slices.Clone(c.names) {
		add(name, c.fields[name])
	}
	for _, name := range slices.Sorted(maps.Keys(m.Aliases)) {
		id := c.field(name)
		add(name, id)
		for _, k := range m.Aliases[name] {
			add(k, id)
		}
	}
	if m.DotsAsUnderscores {
		for _, name := range slices.Clone(c.names) {
			if strings.Contains(name, ".") {
				add(strings.ReplaceAll(name, ".", "_"), c.fields[name])
			}
		}
	}
	return &resolver{ids: ids, prefixes: compilePrefixes(m.StripPrefixes), removeSpaces: m.RemoveSpaces}
}

// Sources returns the routing table's sources; route class i+1 is
// source i.
func (e *Engine) Sources() []Source { return slices.Clone(e.router.sources) }

func (e *Engine) buildRouting() {
	n := len(e.router.sources) + 1
	// Each class's source field mappings, as (to, from) field pairs.
	e.classFields = make([][]fieldPair, n)
	for i, src := range e.router.sources {
		cl := i + 1
		for _, to := range slices.Sorted(maps.Keys(src.Fields)) {
			var tr *valueMap
			if vs := src.Values[to]; len(vs) > 0 {
				tr = &valueMap{}
				for from, v := range vs {
					tr.m = append(tr.m, [3]string{lower(from), v, lower(v)})
				}
			}
			for _, from := range src.Fields[to] {
				p := fieldPair{to: e.fieldIDs[to], from: e.fieldIDs[from], tr: tr}
				if p.to != p.from && !slices.Contains(e.classFields[cl], p) {
					e.classFields[cl] = append(e.classFields[cl], p)
				}
			}
		}
	}
	e.allowed = make([][]bool, n)
	for cl := range e.allowed {
		e.allowed[cl] = make([]bool, len(e.rules))
		for i, r := range e.rules {
			e.allowed[cl][i] = e.router.allows(r.rule.Logsource, int32(cl))
		}
	}
}

// fieldIndex is the prefilter of one field for one route class: a literal
// index over the clause literals, in that field, of the rules allowed in
// that class.
type fieldIndex struct {
	idx  *litIndex
	base int32         // offset of this index's literals in Matcher.litMark
	refs [][]clauseRef // per literal: the clauses it satisfies
}

// clauseRef is a clause a literal satisfies: clause numbers the clauses
// of rules with several (Matcher.clauseMark), -1 is the only clause of
// its rule.
type clauseRef struct {
	rule, clause int32
}

// buildPrefilter builds, per route class, one literal index per field
// (and one for keyword anchors over all fields). Splitting by class and
// field keeps each index small (a Sysmon process-creation event looks up
// only the process_creation rules' CommandLine literals in its
// CommandLine) and exact about where a literal counts; fields no allowed
// rule anchors on are not scanned at all. Classes with the same rule set
// for a field share the index.
func (e *Engine) buildPrefilter() {
	clauses := make([][]clause, len(e.rules))
	first := make([]int32, len(e.rules)) // number of each rule's first clause, -1 for single ones
	e.need = make([]uint16, len(e.rules))
	for i, r := range e.rules {
		clauses[i] = prefilterClauses(r.root)
		e.need[i] = uint16(len(clauses[i]))
		first[i] = -1
		if len(clauses[i]) > 1 {
			first[i] = int32(e.nclauses)
			e.nclauses += len(clauses[i])
		}
	}
	nclasses := len(e.router.sources) + 1
	shared := map[string]*fieldIndex{}
	e.always = make([][]int32, nclasses)
	e.keywordClass = make([]bool, nclasses)
	for cl := range nclasses {
		for i, r := range e.rules {
			if e.allowed[cl][i] && hasKeywords(r.root) {
				e.keywordClass[cl] = true
			}
		}
	}
	e.classIdx = make([][]*fieldIndex, nclasses)
	e.keywordIdx = make([]*fieldIndex, nclasses)
	for cl := range nclasses {
		byField := map[int32][]int32{} // fid -> rules (in order)
		for i := range e.rules {
			if !e.allowed[cl][i] {
				continue
			}
			if len(clauses[i]) == 0 {
				e.always[cl] = append(e.always[cl], int32(i))
				continue
			}
			seen := map[int32]bool{}
			for _, c := range clauses[i] {
				for _, a := range c {
					if !seen[a.fid] {
						seen[a.fid] = true
						byField[a.fid] = append(byField[a.fid], int32(i))
					}
				}
			}
		}
		// Keyword literals (fid -1) count in any value: a value with a
		// field index of its own looks them up there too, so that each
		// value is scanned once.
		kw := byField[-1]
		e.classIdx[cl] = make([]*fieldIndex, e.nfields)
		for fid, rules := range byField {
			var with []int32
			if fid >= 0 {
				with = kw
			}
			sig := fmt.Sprint(fid, rules, with)
			f, ok := shared[sig]
			if !ok {
				f = e.newFieldIndex(fid, rules, with, clauses, first)
				shared[sig] = f
			}
			if fid < 0 {
				e.keywordIdx[cl] = f
			} else {
				e.classIdx[cl][fid] = f
			}
		}
	}
}

// newFieldIndex indexes the literals, in field fid, of the clauses of
// rules, and the keyword literals of the clauses of kwRules.
func (e *Engine) newFieldIndex(fid int32, rules, kwRules []int32, clauses [][]clause, first []int32) *fieldIndex {
	f := &fieldIndex{base: int32(e.nlits)}
	ids := map[string]int32{}
	var lits []string
	add := func(rules []int32, fid int32) {
		for _, r := range rules {
			for k, c := range clauses[r] {
				ref := clauseRef{r, -1}
				if first[r] >= 0 {
					ref.clause = first[r] + int32(k)
				}
				for _, a := range c {
					if a.fid != fid {
						continue
					}
					id, ok := ids[a.lit]
					if !ok {
						id = int32(len(lits))
						ids[a.lit] = id
						lits = append(lits, a.lit)
						f.refs = append(f.refs, nil)
					}
					if !slices.Contains(f.refs[id], ref) {
						f.refs[id] = append(f.refs[id], ref)
					}
				}
			}
		}
	}
	add(rules, fid)
	add(kwRules, -1)
	f.idx = buildLitIndex(lits)
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
// Correlations the loaded correlation rules, Literals the prefilter's
// literals (over all route classes and fields), Fields the Sigma fields,
// AnchorlessRules the rules without a literal clause, evaluated on every
// event their logsource allows.
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
	e          *Engine
	ev         *event
	rules      []ruleMark // per rule: clauses satisfied in the current event
	clauseMark []uint32   // per clause of a rule with several: epoch it was satisfied
	litMark    []uint32   // per prefilter literal: epoch it was handled
	epoch      uint32
	cands      []int32
	found      []int32 // literals one scan found
	matches    []*Rule
	class      int32
	key        []byte
	// Evaluated counts rules evaluated since the Matcher was created
	// (prefilter effectiveness).
	Evaluated uint64
}

// NewMatcher returns a Matcher for the engine.
func (e *Engine) NewMatcher() *Matcher {
	return &Matcher{
		e:          e,
		ev:         newEvent(e.res, e.nfields),
		rules:      make([]ruleMark, len(e.rules)),
		clauseMark: make([]uint32, e.nclauses),
		litMark:    make([]uint32, e.nlits),
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
	m.prefilter()
	slices.Sort(m.cands)
	m.Evaluated += uint64(len(m.cands))
	for _, r := range m.cands {
		if e.rules[r].root.eval(m.ev) {
			m.matches = append(m.matches, e.rules[r].rule)
		}
	}
	return m.matches
}

// prefilter classifies the decoded event and collects the candidate rules
// in m.cands.
func (m *Matcher) prefilter() {
	e := m.e
	m.cands = m.cands[:0]
	m.epoch++
	if m.epoch == 0 { // wrapped: clear marks so stale epochs cannot collide
		clear(m.rules)
		clear(m.clauseMark)
		clear(m.litMark)
		m.epoch = 1
	}
	m.class = m.classify()
	if pairs := e.classFields[m.class]; len(pairs) > 0 {
		m.ev.alias(pairs)
	}
	if e.keywordClass[m.class] {
		m.ev.lowerAll()
	}
	fields, keywords := e.classIdx[m.class], e.keywordIdx[m.class]
	for i := range m.ev.vals {
		v := &m.ev.vals[i]
		if v.kind == kindNull || len(v.low) == 0 {
			continue
		}
		// A field's index holds the class's keyword literals too; the
		// keyword index serves primary values without one. (A keyword
		// literal found in an alias record is in its primary record too.)
		var f *fieldIndex
		if v.fid >= 0 {
			f = fields[v.fid]
		}
		if f == nil && v.primary {
			f = keywords
		}
		if f != nil {
			m.scan(f, v.low)
		}
	}
	m.cands = append(m.cands, e.always[m.class]...)
}

// classify finds the event's route class (its source).
func (m *Matcher) classify() int32 {
	c, key := m.e.router.classify(m.ev, m.key)
	m.key = key
	return c
}

// Source returns the name of the source the event last matched came
// from ("" when no source of the routing table matched it).
func (m *Matcher) Source() string { return m.e.router.name(m.class) }

// scan looks a value up in one field's literal index and counts the
// clauses of every literal found; a rule becomes a candidate when all its
// clauses are satisfied.
func (m *Matcher) scan(f *fieldIndex, s string) {
	m.found = f.idx.find(s, m.found[:0], false)
	epoch := m.epoch
	for _, l := range m.found {
		g := f.base + l
		if m.litMark[g] == epoch {
			continue
		}
		m.litMark[g] = epoch
		for _, ref := range f.refs[l] {
			st := &m.rules[ref.rule]
			if ref.clause < 0 { // the rule's only clause
				if st.epoch != epoch {
					st.epoch = epoch
					m.cands = append(m.cands, ref.rule)
				}
				continue
			}
			if m.clauseMark[ref.clause] == epoch {
				continue
			}
			m.clauseMark[ref.clause] = epoch
			if st.epoch != epoch {
				st.epoch, st.hits = epoch, 0
			}
			st.hits++
			if st.hits == uint32(m.e.need[ref.rule]) {
				m.cands = append(m.cands, ref.rule)
			}
		}
	}
}

// ruleMark counts the satisfied clauses of a rule in one event (epoch).
type ruleMark struct {
	epoch, hits uint32
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
