package sigma

import (
	"container/list"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Correlation is the correlation section of a Sigma correlation rule
// (Sigma spec 2.x): it fires when the rules it references match events
// that share the group-by field values within Timespan.
type Correlation struct {
	// Type is event_count, value_count, temporal or temporal_ordered.
	Type string
	// Rules are the referenced rules, by name or id.
	Rules   []string
	GroupBy []string
	// Timespan is the window.
	Timespan time.Duration
	// Op and Value are the condition (gt, gte, lt, lte, eq, neq). For
	// temporal types without a condition it is gte len(Rules).
	Op    string
	Value int64
	// Field is value_count's field whose distinct values are counted.
	Field string
	// Generate: the referenced rules also produce alerts of their own
	// (default false).
	Generate bool
}

type rawCorrelation struct {
	Type      string         `yaml:"type"`
	Rules     any            `yaml:"rules"`
	GroupBy   any            `yaml:"group-by"`
	Timespan  string         `yaml:"timespan"`
	Condition map[string]any `yaml:"condition"`
	Generate  *bool          `yaml:"generate"`
	Aliases   any            `yaml:"aliases"`
}

func stringList(v any, what string) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("parse correlation: %s holds %T", what, e)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("parse correlation: %s is %T", what, v)
}

// parseTimespan reads a Sigma timespan: a number and a unit s, m, h, d
// or w.
func parseTimespan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 {
		return 0, fmt.Errorf("parse correlation: timespan %q", s)
	}
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("parse correlation: timespan %q", s)
	}
	unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}[s[len(s)-1]]
	if unit == 0 {
		return 0, unsupported(fmt.Sprintf("timespan unit in %q", s))
	}
	return time.Duration(n) * unit, nil
}

var condOps = []string{"gt", "gte", "lt", "lte", "eq", "neq"}

func (rc *rawCorrelation) parse(topGenerate *bool) (*Correlation, error) {
	c := &Correlation{Type: rc.Type}
	switch rc.Type {
	case "event_count", "value_count", "temporal", "temporal_ordered":
	case "":
		return nil, errors.New("parse correlation: no type")
	default:
		return nil, unsupported("correlation type " + rc.Type)
	}
	if rc.Aliases != nil {
		return nil, unsupported("correlation aliases")
	}
	var err error
	if c.Rules, err = stringList(rc.Rules, "rules"); err != nil {
		return nil, err
	}
	if len(c.Rules) == 0 {
		return nil, errors.New("parse correlation: no rules")
	}
	if c.GroupBy, err = stringList(rc.GroupBy, "group-by"); err != nil {
		return nil, err
	}
	if c.Timespan, err = parseTimespan(rc.Timespan); err != nil {
		return nil, err
	}
	for k, v := range rc.Condition {
		switch {
		case k == "field":
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("parse correlation: condition field is %T", v)
			}
			c.Field = s
		case slices.Contains(condOps, k):
			if c.Op != "" {
				return nil, unsupported("correlation condition with several comparisons")
			}
			n, ok := v.(int)
			if !ok {
				return nil, fmt.Errorf("parse correlation: condition %s is %T, want an integer", k, v)
			}
			c.Op, c.Value = k, int64(n)
		default:
			return nil, fmt.Errorf("parse correlation: unknown condition key %q", k)
		}
	}
	switch c.Type {
	case "event_count", "value_count":
		if c.Op == "" {
			return nil, fmt.Errorf("parse correlation: %s needs a condition", c.Type)
		}
		if c.Type == "value_count" && c.Field == "" {
			return nil, errors.New("parse correlation: value_count needs condition.field")
		}
	default:
		if c.Op == "" {
			c.Op, c.Value = "gte", int64(len(c.Rules))
		}
	}
	switch {
	case rc.Generate != nil:
		c.Generate = *rc.Generate
	case topGenerate != nil:
		c.Generate = *topGenerate
	}
	return c, nil
}

func (c *Correlation) holds(n int64) bool {
	switch c.Op {
	case "gt":
		return n > c.Value
	case "gte":
		return n >= c.Value
	case "lt":
		return n < c.Value
	case "lte":
		return n <= c.Value
	case "eq":
		return n == c.Value
	case "neq":
		return n != c.Value
	}
	return false
}

// keep is how many hits (event_count) or distinct values (value_count) a
// group keeps: enough to tell every comparison with Value, so a group's
// memory is bounded by the condition, not by the event rate.
func (c *Correlation) keep() int {
	return int(min(max(c.Value+1, 1), 1<<16))
}

// compiledCorr is a correlation rule whose references are resolved.
type compiledCorr struct {
	rule *Rule
	refs []*Rule // referenced detection rules, by position
	sig  string  // definition fingerprint: state is restored only into the same definition
}

// listener is a (correlation, position in its rules) a detection rule feeds.
type listener struct{ corr, pos int }

// resolveCorrelations validates the correlation rules against the compiled
// detection rules (referenced by name or id) and registers their fields.
func (e *Engine) resolveCorrelations(corrs []*Rule, all []*Rule, c *compiler) []LoadProblem {
	byRef := map[string]*Rule{}
	for _, cr := range e.rules {
		if cr.rule.ID != "" {
			byRef[cr.rule.ID] = cr.rule
		}
	}
	for _, cr := range e.rules {
		if cr.rule.Name != "" {
			byRef[cr.rule.Name] = cr.rule
		}
	}
	known := map[string]*Rule{} // every rule given, loaded or not
	for _, r := range all {
		for _, k := range []string{r.ID, r.Name} {
			if k != "" {
				known[k] = r
			}
		}
	}
	var problems []LoadProblem
	e.listeners = map[*Rule][]listener{}
	generates := map[*Rule]bool{}
	for _, r := range corrs {
		cc := &compiledCorr{rule: r}
		var err error
		for _, ref := range r.Correlation.Rules {
			b, ok := byRef[ref]
			if ok {
				cc.refs = append(cc.refs, b)
				continue
			}
			switch k := known[ref]; {
			case k == nil:
				err = fmt.Errorf("correlation: unknown referenced rule %q", ref)
			case k.Correlation != nil:
				err = unsupported(fmt.Sprintf("correlation referencing correlation rule %q", ref))
			default:
				err = fmt.Errorf("correlation: referenced rule %q not loaded", ref)
			}
			break
		}
		if err != nil {
			problems = append(problems, LoadProblem{Path: r.Path, ID: r.ID, Title: r.Title, Err: err})
			continue
		}
		for _, f := range r.Correlation.GroupBy {
			c.field(f)
		}
		if r.Correlation.Field != "" {
			c.field(r.Correlation.Field)
		}
		cc.sig = fmt.Sprintf("%+v", *r.Correlation)
		for pos, b := range cc.refs {
			e.listeners[b] = append(e.listeners[b], listener{len(e.corrs), pos})
			generates[b] = generates[b] || r.Correlation.Generate
		}
		e.corrs = append(e.corrs, cc)
	}
	e.silent = map[*Rule]bool{}
	for b, g := range generates {
		if !g {
			e.silent[b] = true
		}
	}
	return problems
}

// Correlations returns the loaded correlation rules.
func (e *Engine) Correlations() []*Rule {
	out := make([]*Rule, len(e.corrs))
	for i, c := range e.corrs {
		out[i] = c.rule
	}
	return out
}

// Generates reports whether a match of r is an alert of its own: false for
// rules referenced only by correlations with generate: false (the spec's
// default), true for every other rule.
func (e *Engine) Generates(r *Rule) bool { return !e.silent[r] }

// FieldSource gives the value of a Sigma field in the event being
// correlated (a Matcher after Match is one).
type FieldSource interface {
	FieldValue(name string) (string, bool)
}

// FieldValue returns the first value of a Sigma field in the event last
// matched (group-by and value_count fields are always known to the
// engine). The string is a copy.
func (m *Matcher) FieldValue(name string) (string, bool) {
	id, ok := m.e.fieldIDs[name]
	if !ok {
		return "", false
	}
	i := m.ev.head[id]
	if i < 0 || m.ev.vals[i].kind == kindNull {
		return "", false
	}
	return strings.Clone(m.ev.vals[i].raw), true
}

// CorrelationMatch is a correlation rule whose condition became true for
// one group.
type CorrelationMatch struct {
	Rule *Rule
	// Rules are the ids of the referenced rules with matches in the window.
	Rules []string
	// GroupBy are the group's values, in the order of the rule's group-by.
	GroupBy []string
	// First and Last bound the matches in the window; Count is what the
	// condition compared (events, distinct values, or referenced rules
	// seen).
	First, Last time.Time
	Count       int64
}

// DefaultMaxGroups is the default cap on groups per correlation rule.
const DefaultMaxGroups = 10000

// Correlator keeps the windowed state of an Engine's correlation rules,
// per (correlation, group-by values). It is not safe for concurrent use.
//
// Windows slide: a group's clock is the latest event time it has seen,
// and hits older than clock - timespan are dropped (an event older than
// that arrives too late and is ignored). A correlation fires once per
// crossing: when its condition turns true for a group it emits one match,
// and emits again only after an evaluation (at a later match for the
// group) found the condition false. temporal_ordered follows arrival
// order.
//
// Memory is bounded: a group keeps at most Value+1 hits or distinct
// values, groups whose clock is older than the correlation's newest event
// minus its timespan are dropped, and past MaxGroups groups per
// correlation the least recently updated group is evicted (counted by
// Evictions).
type Correlator struct {
	e         *Engine
	maxGroups int
	st        []*corrState
	evictions uint64
	changed   bool
}

type corrState struct {
	clock  int64 // newest event time seen (unix ns)
	groups map[string]*group
	lru    list.List // of *group, least recently updated first
}

type hit struct {
	T int64  `json:"t"`
	R int    `json:"r"` // position in the correlation's rules
	V string `json:"v,omitempty"`
}

type group struct {
	Key   []string `json:"key"`
	Clock int64    `json:"clock"`
	Hits  []hit    `json:"hits,omitempty"` // event_count, value_count: oldest first
	Seen  []int64  `json:"seen,omitempty"` // temporal: per position, last match; temporal_ordered: chain start
	Fired bool     `json:"fired,omitempty"`
	id    string
	elem  *list.Element
}

// NewCorrelator returns empty state for e's correlations; maxGroups <= 0
// means DefaultMaxGroups.
func (e *Engine) NewCorrelator(maxGroups int) *Correlator {
	if maxGroups <= 0 {
		maxGroups = DefaultMaxGroups
	}
	c := &Correlator{e: e, maxGroups: maxGroups, st: make([]*corrState, len(e.corrs))}
	for i := range c.st {
		c.st[i] = &corrState{groups: map[string]*group{}}
	}
	return c
}

// Evictions counts groups dropped because of MaxGroups.
func (c *Correlator) Evictions() uint64 { return c.evictions }

// Changed reports whether the state changed since the last Snapshot.
func (c *Correlator) Changed() bool { return c.changed }

// Groups counts the groups held.
func (c *Correlator) Groups() int {
	n := 0
	for _, s := range c.st {
		n += len(s.groups)
	}
	return n
}

// Observe feeds one detection rule match of an event at time t, with the
// event's fields, and appends the correlation matches it completes.
func (c *Correlator) Observe(r *Rule, t time.Time, fields FieldSource, out []CorrelationMatch) []CorrelationMatch {
	ls := c.e.listeners[r]
	if len(ls) == 0 {
		return out
	}
	ts := t.UnixNano()
	// Positions are visited last first, so one event cannot fill two
	// consecutive steps of a temporal_ordered sequence.
	for i := len(ls) - 1; i >= 0; i-- {
		l := ls[i]
		if m, ok := c.observe(l, ts, fields); ok {
			out = append(out, m)
		}
	}
	return out
}

func (c *Correlator) observe(l listener, ts int64, fields FieldSource) (CorrelationMatch, bool) {
	cc := c.e.corrs[l.corr]
	def := cc.rule.Correlation
	st := c.st[l.corr]
	span := int64(def.Timespan)
	var v string
	if def.Type == "value_count" {
		var ok bool
		if v, ok = fields.FieldValue(def.Field); !ok {
			return CorrelationMatch{}, false // no value to count
		}
	}
	key := make([]string, len(def.GroupBy))
	for i, f := range def.GroupBy {
		key[i], _ = fields.FieldValue(f) // a missing field groups as ""
	}
	id := strings.Join(key, "\x00")
	st.clock = max(st.clock, ts)
	// Expire groups whose window has passed.
	for f := st.lru.Front(); f != nil; f = st.lru.Front() {
		g := f.Value.(*group)
		if g.Clock >= st.clock-span {
			break
		}
		st.remove(g)
		c.changed = true
	}
	g := st.groups[id]
	if g == nil {
		g = &group{Key: key, Clock: ts, id: id}
		if def.Type == "temporal" || def.Type == "temporal_ordered" {
			g.Seen = make([]int64, len(cc.refs))
		}
		st.add(g)
		if len(st.groups) > c.maxGroups {
			st.remove(st.lru.Front().Value.(*group))
			c.evictions++
		}
	} else {
		st.lru.MoveToBack(g.elem)
	}
	if ts < g.Clock-span {
		return CorrelationMatch{}, false // too late for the window
	}
	c.changed = true
	g.Clock = max(g.Clock, ts)
	low := g.Clock - span
	var count int64
	switch def.Type {
	case "event_count", "value_count":
		if def.Type == "value_count" {
			if j := slices.IndexFunc(g.Hits, func(h hit) bool { return h.V == v }); j >= 0 {
				if g.Hits[j].T > ts {
					ts = g.Hits[j].T
				}
				g.Hits = slices.Delete(g.Hits, j, j+1)
			}
		}
		j, _ := slices.BinarySearchFunc(g.Hits, ts, func(h hit, t int64) int { return cmpInt(h.T, t+1) })
		g.Hits = slices.Insert(g.Hits, j, hit{T: ts, R: l.pos, V: v})
		k := 0
		for k < len(g.Hits) && g.Hits[k].T < low {
			k++
		}
		if over := len(g.Hits) - k - def.keep(); over > 0 {
			k += over
		}
		g.Hits = slices.Delete(g.Hits, 0, k)
		count = int64(len(g.Hits))
	case "temporal":
		g.Seen[l.pos] = max(g.Seen[l.pos], ts)
		count = g.expireSeen(low)
	case "temporal_ordered":
		switch {
		case l.pos == 0:
			g.Seen[0] = max(g.Seen[0], ts)
		case g.Seen[l.pos-1] != 0 && g.Seen[l.pos-1] >= low:
			g.Seen[l.pos] = max(g.Seen[l.pos], g.Seen[l.pos-1])
		}
		g.expireSeen(low)
		for count < int64(len(g.Seen)) && g.Seen[count] != 0 {
			count++
		}
	}
	if !def.holds(count) {
		g.Fired = false
		return CorrelationMatch{}, false
	}
	if g.Fired {
		return CorrelationMatch{}, false
	}
	g.Fired = true
	m := CorrelationMatch{Rule: cc.rule, GroupBy: slices.Clone(g.Key), Count: count, Last: time.Unix(0, g.Clock).UTC()}
	first := g.Clock
	seen := make([]bool, len(cc.refs))
	for _, h := range g.Hits {
		first = min(first, h.T)
		seen[h.R] = true
	}
	for p, s := range g.Seen {
		if s != 0 {
			first = min(first, s)
			seen[p] = true
		}
	}
	m.First = time.Unix(0, first).UTC()
	for p, ok := range seen {
		if ok && !slices.Contains(m.Rules, cc.refs[p].ID) {
			m.Rules = append(m.Rules, cc.refs[p].ID)
		}
	}
	return m, true
}

// expireSeen clears positions last seen before low and counts the others.
func (g *group) expireSeen(low int64) int64 {
	var n int64
	for i, s := range g.Seen {
		if s != 0 && s < low {
			g.Seen[i] = 0
		}
		if g.Seen[i] != 0 {
			n++
		}
	}
	return n
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *corrState) add(g *group) {
	s.groups[g.id] = g
	g.elem = s.lru.PushBack(g)
}

func (s *corrState) remove(g *group) {
	delete(s.groups, g.id)
	s.lru.Remove(g.elem)
}

type snapshot struct {
	Version int            `json:"version"`
	Corrs   []snapshotCorr `json:"correlations"`
}

type snapshotCorr struct {
	ID     string   `json:"id"`
	Sig    string   `json:"sig"`
	Clock  int64    `json:"clock"`
	Groups []*group `json:"groups"`
}

// Snapshot serialises the state (JSON, groups least recently updated
// first) and clears Changed.
func (c *Correlator) Snapshot() []byte {
	s := snapshot{Version: 1}
	for i, st := range c.st {
		sc := snapshotCorr{ID: c.e.corrs[i].rule.ID, Sig: c.e.corrs[i].sig, Clock: st.clock}
		for e := st.lru.Front(); e != nil; e = e.Next() {
			sc.Groups = append(sc.Groups, e.Value.(*group))
		}
		s.Corrs = append(s.Corrs, sc)
	}
	b, err := json.Marshal(s)
	if err != nil { // only strings and numbers: not expected
		panic(err)
	}
	c.changed = false
	return b
}

// Restore replaces the state of every correlation found in a Snapshot
// (by rule id, with the same definition: a changed correlation starts
// empty) and returns how many correlations it restored.
func (c *Correlator) Restore(data []byte) (int, error) {
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return 0, fmt.Errorf("correlation state: %w", err)
	}
	if s.Version != 1 {
		return 0, fmt.Errorf("correlation state: version %d", s.Version)
	}
	byID := map[string]snapshotCorr{}
	for _, sc := range s.Corrs {
		byID[sc.ID] = sc
	}
	n := 0
	for i, cc := range c.e.corrs {
		sc, ok := byID[cc.rule.ID]
		if !ok || sc.Sig != cc.sig {
			continue
		}
		st := &corrState{clock: sc.Clock, groups: map[string]*group{}}
		for _, g := range sc.Groups {
			if g == nil || len(g.Key) != len(cc.rule.Correlation.GroupBy) {
				continue
			}
			if g.Seen != nil && len(g.Seen) != len(cc.refs) || slices.ContainsFunc(g.Hits, func(h hit) bool { return h.R < 0 || h.R >= len(cc.refs) }) {
				continue
			}
			g.id = strings.Join(g.Key, "\x00")
			if _, dup := st.groups[g.id]; dup {
				continue
			}
			st.add(g)
		}
		c.st[i] = st
		n++
	}
	return n, nil
}
