package sigma

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Routing: a Sigma rule names the logs it is written for with its
// logsource (product, category, service); an event says where it came
// from with a few fields (an evtx_dump event its Channel and EventID, an
// OCSF event from `vigil ingest` its metadata.product.name, log_name and
// log_provider, and its class_uid). A LogsourceTable joins the two: each
// Source is one stream of events, recognised by the values of those
// fields (Match), and described in Sigma's taxonomy (Product, Services,
// Categories). A rule is evaluated on the events of the sources its
// logsource names, and nowhere else; a rule whose logsource names no
// source is reported when the engine is built (ErrNoSource).
//
// An event that matches no source and carries none of the fields that
// would say where it came from is unrouted: every rule is evaluated on it,
// so flat JSON events keep matching rules written for them.

// Source is one stream of events and its place in Sigma's taxonomy.
type Source struct {
	// Name identifies the source in reports and config ("linux/sshd").
	Name string `yaml:"name"`
	// Product, Services and Categories are the Sigma logsource values the
	// source's events belong to: a rule applies when each of its
	// logsource's product, service and category (those it sets) is
	// among them. A source without Product serves only rules without one
	// (product-less categories such as proxy or dns).
	Product    string   `yaml:"product"`
	Services   []string `yaml:"services"`
	Categories []string `yaml:"categories"`
	// Match recognises the source's events: an event belongs to the
	// source when it has, for every field of one alternative, that value
	// (Sigma field names, after the field mapping; values compared
	// case-insensitively; "*" means any value). When several sources
	// match, the one whose alternative compares the most values wins,
	// then the one naming more fields, then the one listed first.
	Match []map[string]string `yaml:"match"`
	// Fields is a field mapping that holds only in this source's events:
	// each Sigma field also takes the values of the fields listed for it
	// (Sigma names, or event keys such as process.cmd_line).
	Fields map[string][]string `yaml:"fields"`
	// Values translates what a field takes through Fields: for field F,
	// a value v of a mapped field is also seen as Values[F][v]. Windows
	// Security 4688 writes the integrity level as a SID (MandatoryLabel
	// S-1-16-12288) where Sysmon writes its name (IntegrityLevel High).
	Values map[string]map[string]string `yaml:"values"`
}

// LogsourceTable is the set of sources rules are routed to.
type LogsourceTable struct {
	Sources []Source `yaml:"sources"`
}

// Source returns the source named name, if the table has it.
func (t *LogsourceTable) Source(name string) (Source, bool) {
	for _, s := range t.Sources {
		if s.Name == name {
			return s, true
		}
	}
	return Source{}, false
}

// With returns a copy of the table where each of more replaces the source
// of the same name, or is added after the others.
func (t *LogsourceTable) With(more ...Source) *LogsourceTable {
	out := &LogsourceTable{Sources: slices.Clone(t.Sources)}
	for _, s := range more {
		i := slices.IndexFunc(out.Sources, func(x Source) bool { return x.Name == s.Name })
		if i >= 0 {
			out.Sources[i] = s
		} else {
			out.Sources = append(out.Sources, s)
		}
	}
	return out
}

// Allows reports whether a rule with logsource ls applies to the source's
// events.
func (s *Source) Allows(ls Logsource) bool {
	if ls.Product != "" && !strings.EqualFold(ls.Product, s.Product) {
		return false
	}
	if ls.Service != "" && !containsFold(s.Services, ls.Service) {
		return false
	}
	if ls.Category != "" && !containsFold(s.Categories, ls.Category) {
		return false
	}
	return true
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// ErrNoSource marks a rule whose logsource names no source of the table:
// it would never see an event Vigil routes (it still runs on unrouted
// events).
var ErrNoSource = errors.New("logsource matches no configured source")

// noSourceError is the load problem of such a rule; its text is
// "logsource product=foo service=bar matches no configured source".
type noSourceError struct{ ls Logsource }

func (e noSourceError) Error() string {
	return "logsource " + e.ls.String() + " matches no configured source"
}

func (e noSourceError) Unwrap() error { return ErrNoSource }

// String is the logsource as "product=p category=c service=s" (only the
// keys it sets; "(empty)" for none).
func (ls Logsource) String() string {
	var parts []string
	for _, kv := range [][2]string{{"product", ls.Product}, {"category", ls.Category}, {"service", ls.Service}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	if len(parts) == 0 {
		return "(empty)"
	}
	return strings.Join(parts, " ")
}

// classUnrouted is the route class of events no source matches: every
// rule is evaluated on them. Source i of the table is class i+1.
const classUnrouted = 0

// router classifies decoded events into route classes.
type router struct {
	sources []Source // class c is sources[c-1]
	shapes  []*shape
}

// shape is the set of fields some Match alternatives compare: one map
// lookup finds which of them an event satisfies.
type shape struct {
	exact   []int32          // fields compared, in key order
	present []int32          // fields that must merely exist
	classes map[string]int32 // lower-case values of exact, joined by 0 -> class
	order   int              // first source using the shape
}

// newRouter compiles the sources' Match alternatives. field registers a
// Sigma field name and returns its id.
func newRouter(sources []Source, field func(string) int32) (*router, error) {
	r := &router{sources: sources}
	byShape := map[string]*shape{}
	for i, src := range sources {
		if len(src.Match) == 0 {
			return nil, fmt.Errorf("source %q: no match", src.Name)
		}
		for _, alt := range src.Match {
			if len(alt) == 0 {
				return nil, fmt.Errorf("source %q: an empty match alternative", src.Name)
			}
			var exact, present []string
			for f, v := range alt {
				if v == "*" {
					present = append(present, f)
				} else {
					exact = append(exact, f)
				}
			}
			sort.Strings(exact)
			sort.Strings(present)
			sig := strings.Join(exact, "\x00") + "\x01" + strings.Join(present, "\x00")
			s := byShape[sig]
			if s == nil {
				s = &shape{classes: map[string]int32{}, order: i}
				for _, f := range exact {
					s.exact = append(s.exact, field(f))
				}
				for _, f := range present {
					s.present = append(s.present, field(f))
				}
				byShape[sig] = s
				r.shapes = append(r.shapes, s)
			}
			vals := make([]string, len(exact))
			for k, f := range exact {
				vals[k] = lower(alt[f])
			}
			key := strings.Join(vals, "\x00")
			if _, dup := s.classes[key]; !dup { // the first source listed keeps it
				s.classes[key] = int32(i + 1)
			}
		}
	}
	sort.SliceStable(r.shapes, func(i, j int) bool {
		a, b := r.shapes[i], r.shapes[j]
		if len(a.exact) != len(b.exact) {
			return len(a.exact) > len(b.exact)
		}
		if len(a.present) != len(b.present) {
			return len(a.present) > len(b.present)
		}
		return a.order < b.order
	})
	return r, nil
}

// classify returns the route class of a decoded event; key is scratch
// space reused across events.
func (r *router) classify(ev *event, key []byte) (int32, []byte) {
next:
	for _, s := range r.shapes {
		for _, f := range s.present {
			if ev.head[f] < 0 {
				continue next
			}
		}
		key = key[:0]
		for k, f := range s.exact {
			h := ev.head[f]
			if h < 0 {
				continue next
			}
			if k > 0 {
				key = append(key, 0)
			}
			key = append(key, ev.vals[h].low...)
		}
		if c, ok := s.classes[string(key)]; ok {
			return c, key
		}
	}
	return classUnrouted, key
}

// name returns the source name of class c ("" for unrouted events).
func (r *router) name(c int32) string {
	if c == classUnrouted {
		return ""
	}
	return r.sources[c-1].Name
}

// allows reports whether a rule with logsource ls may match events of
// class c; routed tells whether ls names any source at all (unrouted
// events see every rule).
func (r *router) allows(ls Logsource, c int32) bool {
	if c == classUnrouted {
		return true
	}
	return r.sources[c-1].Allows(ls)
}

// routed reports whether some source serves ls.
func (r *router) routed(ls Logsource) bool {
	for i := range r.sources {
		if r.sources[i].Allows(ls) {
			return true
		}
	}
	return false
}

// withLogsourceMappings returns the sources with the field mappings of
// mapping.logsources applied: a mapping for a channel adds its fields to
// every source matching that channel; one for event ids of a channel the
// table matches as a whole adds, per id, a source for that channel and id
// (as specific as a Sysmon event id is) that inherits the channel's
// taxonomy.
func withLogsourceMappings(sources []Source, lms []LogsourceMapping) ([]Source, error) {
	if len(lms) == 0 {
		return sources, nil
	}
	out := make([]Source, len(sources))
	for i, s := range sources {
		out[i] = s
		out[i].Fields = cloneFields(s.Fields)
	}
	addFields := func(s *Source, fields map[string][]string) {
		if s.Fields == nil {
			s.Fields = map[string][]string{}
		}
		for to, froms := range fields {
			for _, f := range froms {
				if !slices.Contains(s.Fields[to], f) {
					s.Fields[to] = append(s.Fields[to], f)
				}
			}
		}
	}
	for _, lm := range lms {
		switch {
		case lm.Source != "":
			i := slices.IndexFunc(out, func(s Source) bool { return s.Name == lm.Source })
			if i < 0 {
				return nil, fmt.Errorf("mapping.logsources: no source %q", lm.Source)
			}
			addFields(&out[i], lm.Fields)
		case lm.Channel != "":
			ch := lower(lm.Channel)
			var ids []string
			for _, id := range lm.EventIDs {
				ids = append(ids, itoa(id))
			}
			found := false
			n := len(out)
			for i := 0; i < n; i++ {
				for _, alt := range out[i].Match {
					if lower(alt["Channel"]) != ch {
						continue
					}
					found = true
					id, hasID := alt["EventID"]
					switch {
					case len(ids) == 0, hasID && slices.Contains(ids, id):
						addFields(&out[i], lm.Fields)
					case !hasID:
						for _, id := range ids {
							if hasPair(out, ch, id) {
								continue // the table names that event id already
							}
							d := deriveSource(out[i], lm.Channel, id)
							addFields(&d, lm.Fields)
							out = append(out, d)
						}
					}
				}
			}
			if !found {
				// A channel the table does not name: a Windows source of
				// its own, serving rules for Windows as a whole.
				base := Source{Name: "windows/" + ch, Product: "windows", Match: []map[string]string{{"Channel": lm.Channel}}}
				if len(ids) == 0 {
					addFields(&base, lm.Fields)
					out = append(out, base)
				}
				for _, id := range ids {
					d := deriveSource(base, lm.Channel, id)
					addFields(&d, lm.Fields)
					out = append(out, d)
				}
			}
		default:
			return nil, errors.New("mapping.logsources: an entry without source or channel")
		}
	}
	return out, nil
}

// hasPair reports whether a source matches exactly a channel and event id.
func hasPair(sources []Source, ch, id string) bool {
	for _, s := range sources {
		for _, alt := range s.Match {
			if len(alt) == 2 && lower(alt["Channel"]) == ch && alt["EventID"] == id {
				return true
			}
		}
	}
	return false
}

func deriveSource(base Source, channel, id string) Source {
	d := base
	d.Name = base.Name + "#" + id
	d.Match = []map[string]string{{"Channel": channel, "EventID": id}}
	d.Fields = cloneFields(base.Fields)
	return d
}

func cloneFields(m map[string][]string) map[string][]string {
	if m == nil {
		return nil
	}
	out := make(map[string][]string, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	neg := i < 0
	if neg {
		i = -i
	}
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			break
		}
	}
	if neg {
		n--
		b[n] = '-'
	}
	return string(b[n:])
}
