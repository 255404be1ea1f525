package intel

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"

	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Formats a Load reads.
const (
	FormatWarninglist = "misp-warninglist"
	FormatMISP        = "misp-feed"
	FormatSTIX        = "stix"
	FormatCSV         = "csv"
)

// Formats lists the formats Load reads.
func Formats() []string { return []string{FormatWarninglist, FormatMISP, FormatSTIX, FormatCSV} }

// LoadOptions say how a file's indicators become records.
type LoadOptions struct {
	// Set names the set (default: the list's or file's own name).
	Set string
	// Action and Severity override the format's defaults.
	Action, Severity string
	// Now decides which indicators have expired (STIX valid_until,
	// revoked); default time.Now.
	Now func() time.Time
}

// Loaded is what Load made of one file.
type Loaded struct {
	Records []Record
	// Skipped are the entries that are not indicators Vigil matches, with
	// the reason (a STIX pattern with AND, a warninglist regex).
	Skipped []string
}

func (l *Loaded) skip(format string, args ...any) {
	l.Skipped = append(l.Skipped, fmt.Sprintf(format, args...))
}

// add normalises r and keeps it, or records why not.
func (l *Loaded) add(r Record, o LoadOptions) {
	if o.Action != "" {
		r.Action = o.Action
	}
	if o.Severity != "" {
		r.Severity = o.Severity
	}
	orig := r.Value
	if err := r.Normalize(); err != nil {
		l.skip("%s %q: %v", r.Type, orig, err)
		return
	}
	l.Records = append(l.Records, r)
}

// Load reads one file of the given format; name is the file's name (the
// default set name for CSV).
func Load(format, name string, data []byte, o LoadOptions) (*Loaded, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	switch format {
	case FormatWarninglist:
		return loadWarninglist(data, o)
	case FormatMISP:
		return loadMISP(data, o)
	case FormatSTIX:
		return loadSTIX(data, o)
	case FormatCSV:
		return loadCSV(name, data, o)
	}
	return nil, fmt.Errorf("intel: format %q: want one of %s", format, strings.Join(Formats(), ", "))
}

// A MISP warninglist (github.com/MISP/misp-warninglists, lists/*/list.json):
// known-good values that make an indicator a likely false positive.
// Types: cidr (addresses and prefixes), hostname (the name and every name
// under it), string (exact values, typed by their shape), substring and
// regex (not matched: skipped).
type warninglist struct {
	Name               string   `json:"name"`
	Description        string   `json:"description"`
	Version            int      `json:"version"`
	Type               string   `json:"type"`
	List               []string `json:"list"`
	MatchingAttributes []string `json:"matching_attributes"`
}

func loadWarninglist(data []byte, o LoadOptions) (*Loaded, error) {
	var w warninglist
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("intel: warninglist: %w", err)
	}
	if w.Name == "" || w.List == nil {
		return nil, errors.New("intel: warninglist: no name or list (is this a MISP warninglist list.json?)")
	}
	set := o.Set
	if set == "" {
		set = "misp-warninglist:" + w.Name
	}
	base := Record{Set: set, Source: FormatWarninglist, Action: ActionContext, Severity: "informational",
		Title: w.Name, Description: w.Description}
	l := &Loaded{}
	for _, v := range w.List {
		r := base
		switch w.Type {
		case "cidr":
			r.Type, r.Value = TypeIP, v
		case "hostname":
			r.Type, r.Value, r.Suffix = TypeDomain, v, true
		case "string":
			r.Type, r.Value = Guess(v), v
			if r.Type == "" {
				l.skip("%q: not an indicator type Vigil matches", v)
				continue
			}
			if r.Type == TypeCIDR {
				r.Type = TypeIP
			}
		default:
			l.skip("warninglist type %q (%d entries) is not matched", w.Type, len(w.List))
			return l, nil
		}
		l.add(r, o)
	}
	return l, nil
}

// A MISP event as feeds publish it (one JSON file per event, {"Event":
// {...}}): its attributes and its objects' attributes. Only attributes
// marked to_ids are indicators; types map onto Vigil's (ip-src, ip-dst,
// domain, hostname, url, md5, sha1, sha256, sha512, email-src,
// email-dst, and the composite ip-dst|port, domain|ip, filename|sha256 ...
// by their indicator part).
type mispEvent struct {
	Event struct {
		UUID          string          `json:"uuid"`
		Info          string          `json:"info"`
		ThreatLevelID json.RawMessage `json:"threat_level_id"`
		Attribute     []mispAttr      `json:"Attribute"`
		Object        []struct {
			Attribute []mispAttr `json:"Attribute"`
		} `json:"Object"`
		Tag []struct {
			Name string `json:"name"`
		} `json:"Tag"`
	} `json:"Event"`
}

type mispAttr struct {
	UUID     string          `json:"uuid"`
	Type     string          `json:"type"`
	Category string          `json:"category"`
	Value    string          `json:"value"`
	ToIDS    json.RawMessage `json:"to_ids"`
	Comment  string          `json:"comment"`
}

func loadMISP(data []byte, o LoadOptions) (*Loaded, error) {
	var ev mispEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return nil, fmt.Errorf("intel: MISP event: %w", err)
	}
	if ev.Event.UUID == "" && ev.Event.Info == "" {
		return nil, errors.New("intel: MISP event: no Event object (is this a MISP feed event file?)")
	}
	set := o.Set
	if set == "" {
		set = "misp:" + ev.Event.UUID
	}
	// threat_level_id: 1 high, 2 medium, 3 low, 4 undefined.
	sev := "medium"
	switch strings.Trim(string(ev.Event.ThreatLevelID), `"`) {
	case "1":
		sev = "high"
	case "3":
		sev = "low"
	}
	var labels []string
	for _, t := range ev.Event.Tag {
		labels = append(labels, t.Name)
	}
	attrs := ev.Event.Attribute
	for _, ob := range ev.Event.Object {
		attrs = append(attrs, ob.Attribute...)
	}
	l := &Loaded{}
	for _, a := range attrs {
		if t := strings.Trim(string(a.ToIDS), `"`); t != "true" && t != "1" {
			continue
		}
		typ, val := mispType(a.Type, a.Value)
		if typ == "" {
			l.skip("MISP attribute type %q is not matched", a.Type)
			continue
		}
		l.add(Record{Set: set, Type: typ, Value: val, Source: FormatMISP, Action: ActionAlert, Severity: sev,
			Title: ev.Event.Info, Description: a.Comment, Labels: labels, ID: a.UUID}, o)
	}
	return l, nil
}

// mispType maps a MISP attribute type onto an indicator type, taking the
// indicator part of composite values (ip-dst|port: "1.2.3.4|443").
func mispType(t, v string) (string, string) {
	base, rest, composite := strings.Cut(t, "|")
	parts := strings.SplitN(v, "|", 2)
	pick := func(typ string, i int) (string, string) {
		if i >= len(parts) {
			return "", ""
		}
		return typ, parts[i]
	}
	switch {
	case base == "ip-src" || base == "ip-dst":
		return pick(TypeIP, 0)
	case base == "domain" || base == "hostname":
		if composite && rest == "ip" {
			return pick(TypeDomain, 0) // domain|ip: the name is the indicator
		}
		return pick(TypeDomain, 0)
	case base == "url" || base == "uri" && strings.Contains(v, "://"):
		return TypeURL, v
	case base == "email-src" || base == "email-dst" || base == "email":
		return TypeEmail, v
	case base == "filename" && composite:
		switch rest {
		case TypeMD5, TypeSHA1, TypeSHA256, TypeSHA512:
			return pick(rest, 1)
		}
	case base == TypeMD5 || base == TypeSHA1 || base == TypeSHA256 || base == TypeSHA512:
		return base, v
	}
	return "", ""
}

// STIX 2.1: indicators of pattern_type stix whose pattern is one or more
// comparisons of an observable's value with =, or IN, joined by OR
// (`[ipv4-addr:value = '198.51.100.7']`, `[domain-name:value = 'a' OR
// url:value = 'b']`, `[file:hashes.'SHA-256' = '...'] OR [file:hashes.MD5
// = '...']`). Patterns that need more than one observable at once (AND,
// FOLLOWEDBY), other operators (LIKE, MATCHES, !=) or qualifiers (WITHIN,
// REPEATS) are not single indicators and are skipped with the reason;
// revoked or expired indicators too. Written for Vigil: the Go STIX
// libraries parse objects but not patterns, and this is the part needed.
type stixObject struct {
	Type           string   `json:"type"`
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	Description    string   `json:"description"`
	Pattern        string   `json:"pattern"`
	PatternType    string   `json:"pattern_type"`
	ValidUntil     string   `json:"valid_until"`
	Revoked        bool     `json:"revoked"`
	Labels         []string `json:"labels"`
	IndicatorTypes []string `json:"indicator_types"`
	Confidence     int      `json:"confidence"`
}

func loadSTIX(data []byte, o LoadOptions) (*Loaded, error) {
	var objs []stixObject
	var bundle struct {
		Type    string       `json:"type"`
		ID      string       `json:"id"`
		Objects []stixObject `json:"objects"`
	}
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) > 0 && trimmed[0] == '[':
		if err := json.Unmarshal(trimmed, &objs); err != nil {
			return nil, fmt.Errorf("intel: STIX objects: %w", err)
		}
	default:
		if err := json.Unmarshal(trimmed, &bundle); err != nil {
			return nil, fmt.Errorf("intel: STIX bundle: %w", err)
		}
		if bundle.Type == "indicator" {
			var one stixObject
			_ = json.Unmarshal(trimmed, &one)
			objs = []stixObject{one}
		} else if bundle.Type != "bundle" {
			return nil, fmt.Errorf("intel: STIX: type %q, want a bundle", bundle.Type)
		} else {
			objs = bundle.Objects
		}
	}
	set := o.Set
	if set == "" {
		set = "stix"
		if bundle.ID != "" {
			set = "stix:" + bundle.ID
		}
	}
	now := o.Now()
	l := &Loaded{}
	for _, ob := range objs {
		if ob.Type != "indicator" {
			continue
		}
		if ob.PatternType != "" && ob.PatternType != "stix" {
			l.skip("%s: pattern_type %q is not matched", ob.ID, ob.PatternType)
			continue
		}
		if ob.Revoked {
			l.skip("%s: revoked", ob.ID)
			continue
		}
		validUntil := ""
		if ob.ValidUntil != "" {
			t, err := time.Parse(time.RFC3339Nano, ob.ValidUntil)
			if err != nil {
				l.skip("%s: valid_until %q: %v", ob.ID, ob.ValidUntil, err)
				continue
			}
			if t.Before(now) {
				l.skip("%s: expired %s", ob.ID, ob.ValidUntil)
				continue
			}
			validUntil = t.UTC().Format(time.RFC3339)
		}
		iocs, err := ParseSTIXPattern(ob.Pattern)
		if err != nil {
			l.skip("%s: %v", ob.ID, err)
			continue
		}
		sev := "high"
		if ob.Confidence > 0 && ob.Confidence < 50 {
			sev = "medium"
		}
		labels := append(append([]string(nil), ob.IndicatorTypes...), ob.Labels...)
		for _, ioc := range iocs {
			l.add(Record{Set: set, Type: ioc.Type, Value: ioc.Value, Source: FormatSTIX, Action: ActionAlert, Severity: sev,
				Title: ob.Name, Description: ob.Description, Labels: labels, ID: ob.ID, Confidence: ob.Confidence, ValidUntil: validUntil}, o)
		}
	}
	return l, nil
}

// IOC is one (type, value) a STIX pattern names.
type IOC struct{ Type, Value string }

// stixPaths maps a STIX object path onto an indicator type.
func stixType(path string) string {
	switch strings.ToLower(strings.ReplaceAll(path, " ", "")) {
	case "ipv4-addr:value", "ipv6-addr:value":
		return TypeIP
	case "domain-name:value":
		return TypeDomain
	case "url:value":
		return TypeURL
	case "email-addr:value", "email-message:from_ref.value", "email-message:sender_ref.value":
		return TypeEmail
	case "file:hashes.md5", "file:hashes.'md5'", "artifact:hashes.md5", "artifact:hashes.'md5'":
		return TypeMD5
	case "file:hashes.sha1", "file:hashes.'sha1'", "file:hashes.'sha-1'", "artifact:hashes.'sha-1'":
		return TypeSHA1
	case "file:hashes.sha256", "file:hashes.'sha256'", "file:hashes.'sha-256'", "artifact:hashes.'sha-256'":
		return TypeSHA256
	case "file:hashes.sha512", "file:hashes.'sha512'", "file:hashes.'sha-512'", "artifact:hashes.'sha-512'":
		return TypeSHA512
	}
	return ""
}

// ParseSTIXPattern returns the indicators of a pattern that is a
// disjunction of equality (or IN) comparisons, or an error saying why the
// pattern is not one.
func ParseSTIXPattern(p string) ([]IOC, error) {
	s := &stixScanner{src: p}
	var out []IOC
	for {
		s.space()
		if !s.eat("[") {
			return nil, fmt.Errorf("pattern %q: expected [ at %d", p, s.pos)
		}
		for {
			s.space()
			path := s.path()
			typ := stixType(path)
			if typ == "" {
				return nil, fmt.Errorf("pattern %q: object path %q is not matched", p, path)
			}
			s.space()
			switch {
			case s.eat("="):
				s.space()
				v, err := s.str()
				if err != nil {
					return nil, fmt.Errorf("pattern %q: %w", p, err)
				}
				out = append(out, IOC{typ, v})
			case s.word("IN"):
				s.space()
				if !s.eat("(") {
					return nil, fmt.Errorf("pattern %q: expected ( after IN", p)
				}
				for {
					s.space()
					v, err := s.str()
					if err != nil {
						return nil, fmt.Errorf("pattern %q: %w", p, err)
					}
					out = append(out, IOC{typ, v})
					s.space()
					if s.eat(")") {
						break
					}
					if !s.eat(",") {
						return nil, fmt.Errorf("pattern %q: expected , or ) in IN list", p)
					}
				}
			default:
				return nil, fmt.Errorf("pattern %q: only = and IN comparisons are single indicators", p)
			}
			s.space()
			if s.eat("]") {
				break
			}
			if !s.word("OR") {
				return nil, fmt.Errorf("pattern %q: only OR joins comparisons of single indicators", p)
			}
		}
		s.space()
		if s.pos == len(s.src) {
			return out, nil
		}
		if !s.word("OR") {
			return nil, fmt.Errorf("pattern %q: only OR joins observation expressions of single indicators (no AND, FOLLOWEDBY or qualifiers)", p)
		}
	}
}

type stixScanner struct {
	src string
	pos int
}

func (s *stixScanner) space() {
	for s.pos < len(s.src) && (s.src[s.pos] == ' ' || s.src[s.pos] == '\t' || s.src[s.pos] == '\n' || s.src[s.pos] == '\r') {
		s.pos++
	}
}

func (s *stixScanner) eat(t string) bool {
	if strings.HasPrefix(s.src[s.pos:], t) {
		s.pos += len(t)
		return true
	}
	return false
}

// word eats a keyword followed by a non-letter.
func (s *stixScanner) word(w string) bool {
	if len(s.src)-s.pos < len(w) || !strings.EqualFold(s.src[s.pos:s.pos+len(w)], w) {
		return false
	}
	if e := s.pos + len(w); e < len(s.src) && (s.src[e] >= 'A' && s.src[e] <= 'Z' || s.src[e] >= 'a' && s.src[e] <= 'z') {
		return false
	}
	s.pos += len(w)
	return true
}

// path reads an object path: type:prop(.prop|.'quoted'|[n])*.
func (s *stixScanner) path() string {
	start := s.pos
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		if c == '\'' {
			if j := strings.IndexByte(s.src[s.pos+1:], '\''); j >= 0 {
				s.pos += j + 2
				continue
			}
		}
		if c == ' ' || c == '=' || c == ']' || c == '!' || c == '<' || c == '>' {
			break
		}
		s.pos++
	}
	return s.src[start:s.pos]
}

// str reads a single-quoted string (\' and \\ escapes).
func (s *stixScanner) str() (string, error) {
	if !s.eat("'") {
		return "", fmt.Errorf("expected a quoted string at %d", s.pos)
	}
	var b strings.Builder
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		s.pos++
		switch c {
		case '\\':
			if s.pos < len(s.src) {
				b.WriteByte(s.src[s.pos])
				s.pos++
			}
		case '\'':
			return b.String(), nil
		default:
			b.WriteByte(c)
		}
	}
	return "", errors.New("unterminated string")
}

// CSV: a header row names the columns. value (or indicator, ioc) is
// required; type (or indicator_type) is optional, guessed from the
// value's shape when absent or empty; set, action, severity, title (or
// name), description, labels (separated by ;), id, confidence and
// valid_until are optional. A file without a header row is one value per
// line. Lines starting with # are comments.
func loadCSV(name string, data []byte, o LoadOptions) (*Loaded, error) {
	rd := csv.NewReader(bytes.NewReader(data))
	rd.Comment = '#'
	rd.FieldsPerRecord = -1
	rd.TrimLeadingSpace = true
	rows, err := rd.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("intel: CSV %s: %w", name, err)
	}
	set := o.Set
	if set == "" {
		set = "csv:" + name
	}
	l := &Loaded{}
	if len(rows) == 0 {
		return l, nil
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	alias := func(names ...string) int {
		for _, n := range names {
			if i, ok := col[n]; ok {
				return i
			}
		}
		return -1
	}
	vi := alias("value", "indicator", "ioc")
	body := rows[1:]
	if vi < 0 {
		// No header: one value per line.
		vi, col, body = 0, map[string]int{}, rows
	}
	ti, si, ai, sv := alias("type", "indicator_type"), alias("set"), alias("action"), alias("severity")
	tt, de, la, id := alias("title", "name"), alias("description"), alias("labels"), alias("id")
	co, vu := alias("confidence"), alias("valid_until")
	get := func(row []string, i int) string {
		if i < 0 || i >= len(row) {
			return ""
		}
		return strings.TrimSpace(row[i])
	}
	for n, row := range body {
		v := get(row, vi)
		if v == "" {
			continue
		}
		r := Record{Set: set, Value: v, Source: FormatCSV, Action: get(row, ai), Severity: get(row, sv),
			Title: get(row, tt), Description: get(row, de), ID: get(row, id), ValidUntil: get(row, vu)}
		if s := get(row, si); s != "" && o.Set == "" {
			r.Set = s
		}
		r.Type = strings.ToLower(get(row, ti))
		if r.Type == "" {
			r.Type = Guess(v)
		}
		if r.Type == "" {
			l.skip("line %d: %q: not an indicator type Vigil matches", n+1, v)
			continue
		}
		if r.Type == TypeDomain && strings.HasPrefix(v, "*.") {
			r.Suffix = true
		}
		if s := get(row, la); s != "" {
			for _, x := range strings.Split(s, ";") {
				if x = strings.TrimSpace(x); x != "" {
					r.Labels = append(r.Labels, x)
				}
			}
		}
		if c := get(row, co); c != "" {
			r.Confidence, _ = strconv.Atoi(c)
		}
		l.add(r, o)
	}
	return l, nil
}

// ParseAddr is netip.ParseAddr for an event value: the address without a
// zone and unmapped from IPv4-in-IPv6.
func ParseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}
