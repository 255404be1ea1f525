package sigma

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf16"
)

// knownModifiers lists every value modifier of the Sigma 2.x spec the
// engine evaluates; any other modifier makes the rule unsupported.
var knownModifiers = map[string]bool{
	"contains": true, "startswith": true, "endswith": true, "all": true,
	"re": true, "i": true, "m": true, "s": true, "windash": true, "cidr": true,
	"base64": true, "base64offset": true, "utf16le": true, "utf16be": true,
	"utf16": true, "wide": true, "exists": true, "fieldref": true,
	"gt": true, "gte": true, "lt": true, "lte": true, "cased": true, "expand": true,
}

// maxVariants bounds the values one pattern may expand to (windash and
// placeholders multiply), so a hostile rule cannot blow up compilation.
const maxVariants = 4096

// compileField compiles "Field|mod|mod: values" into a field node.
func (c *compiler) compileField(key string, raw any) (*fieldNode, error) {
	parts := strings.Split(key, "|")
	field, mods := parts[0], parts[1:]
	has := map[string]bool{}
	for _, m := range mods {
		if !knownModifiers[m] {
			return nil, unsupported("modifier " + m)
		}
		has[m] = true
	}
	n := &fieldNode{all: has["all"], fid: -1}
	if field != "" {
		n.fid = c.field(field)
	}
	values, ok := raw.([]any)
	if !ok {
		values = []any{raw}
	}
	if len(values) == 0 {
		return nil, fmt.Errorf("field %s: empty value list", key)
	}
	switch {
	case has["exists"]:
		b, ok := values[0].(bool)
		if !ok || len(values) != 1 {
			return nil, fmt.Errorf("field %s: exists needs one boolean", key)
		}
		n.exists = &b
		return n, nil
	case has["re"]:
		flags := ""
		for _, f := range []string{"i", "m", "s"} {
			if has[f] {
				flags += f
			}
		}
		for i, v := range values {
			n.value = int32(i)
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("field %s: regex %v is not a string", key, v)
			}
			if flags != "" {
				s = "(?" + flags + ")" + s
			}
			m, err := newReMatcher(s)
			if err != nil {
				return nil, unsupported(fmt.Sprintf("regex %q (RE2 syntax): %v", s, err))
			}
			n.add(m, m.lits...)
		}
		return n, nil
	case has["cidr"]:
		m := &cidrMatcher{} // one pattern for the whole list
		for _, v := range values {
			p, err := netip.ParsePrefix(fmt.Sprint(v))
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", key, err)
			}
			m.prefixes = append(m.prefixes, p.Masked())
		}
		n.add(m)
		return n, nil
	case has["gt"] || has["gte"] || has["lt"] || has["lte"]:
		op := "lte"
		for _, o := range []string{"gt", "gte", "lt"} {
			if has[o] {
				op = o
			}
		}
		for i, v := range values {
			n.value = int32(i)
			f, err := strconv.ParseFloat(fmt.Sprint(v), 64)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", key, err)
			}
			n.add(&numMatcher{op: op, n: f})
		}
		return n, nil
	case has["fieldref"]:
		op := byte('=')
		switch {
		case has["contains"]:
			op = 'c'
		case has["startswith"]:
			op = 'p'
		case has["endswith"]:
			op = 's'
		}
		for i, v := range values {
			n.value = int32(i)
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("field %s: fieldref %v is not a field name", key, v)
			}
			n.add(&fieldrefMatcher{ref: c.field(s), op: op, cased: has["cased"]})
		}
		return n, nil
	}
	for i, v := range values {
		n.value = int32(i)
		if v == nil {
			n.null = true
			n.anchorless = true
			continue
		}
		variants, err := c.stringVariants(key, v, mods)
		if err != nil {
			return nil, err
		}
		for _, s := range variants {
			m, anchor := newStrMatcher(s, has["cased"])
			n.add(m, anchor)
		}
	}
	n.foldContains()
	return n, nil
}

// stringVariants applies the transforming modifiers in rule order to one
// value and returns the Sigma strings any of which must match.
func (c *compiler) stringVariants(key string, v any, mods []string) ([]sigmaString, error) {
	var str string
	switch x := v.(type) {
	case string:
		str = x
	case int, int64, uint64, float64, bool:
		str = fmt.Sprint(x)
	default:
		return nil, fmt.Errorf("field %s: value of type %T", key, v)
	}
	raws := []string{str}
	for _, m := range mods {
		if m == "expand" {
			var err error
			if raws, err = c.expand(raws); err != nil {
				return nil, err
			}
		}
	}
	var vs []sigmaString
	for _, r := range raws {
		vs = append(vs, parseSigmaString(r))
	}
	var contains, starts, ends bool
	for _, m := range mods {
		switch m {
		case "contains":
			contains = true
		case "startswith":
			starts = true
		case "endswith":
			ends = true
		case "windash":
			var out []sigmaString
			for _, s := range vs {
				out = append(out, windash(s)...)
			}
			if len(out) > maxVariants {
				return nil, unsupported("windash expands to too many values")
			}
			vs = out
		case "utf16le", "wide", "utf16be", "utf16", "base64", "base64offset":
			var out []sigmaString
			for _, s := range vs {
				if s.hasWildcards() {
					return nil, unsupported("wildcards inside an encoded (" + m + ") value")
				}
				for _, e := range encode(m, s.literal()) {
					out = append(out, plainString(e))
				}
			}
			vs = out
		}
	}
	for i, s := range vs {
		if contains || (starts && ends) {
			s = s.withLeadingStar().withTrailingStar()
		} else if starts {
			s = s.withTrailingStar()
		} else if ends {
			s = s.withLeadingStar()
		}
		vs[i] = s
	}
	return vs, nil
}

// expand replaces %name% placeholders with every configured value.
func (c *compiler) expand(in []string) ([]string, error) {
	var out []string
	for _, s := range in {
		i := strings.IndexByte(s, '%')
		j := -1
		if i >= 0 {
			j = strings.IndexByte(s[i+1:], '%')
		}
		if j < 0 {
			out = append(out, s)
			continue
		}
		name := s[i+1 : i+1+j]
		vals, ok := c.cfg.Placeholders[name]
		if !ok {
			return nil, unsupported("placeholder %" + name + "% is not configured")
		}
		var repl []string
		for _, v := range vals {
			repl = append(repl, s[:i]+v+s[i+2+j:])
		}
		rest, err := c.expand(repl) // further placeholders in the same value
		if err != nil {
			return nil, err
		}
		out = append(out, rest...)
		if len(out) > maxVariants {
			return nil, unsupported("placeholders expand to too many values")
		}
	}
	return out, nil
}

// windashChars are the dash characters Windows command lines accept for
// option prefixes (pySigma's windash set).
var windashChars = []string{"-", "/", "\u2013", "\u2014", "\u2015"}

func isWord(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// windash replaces each '-' or '/' that starts an option (a non-word
// character or the start before it, a word character after it: the regex
// \B[-/]\b) by every Windows dash, producing all combinations.
func windash(s sigmaString) []sigmaString {
	out := []sigmaString{nil}
	for _, t := range s {
		if t.wild != 0 {
			for i := range out {
				out[i] = append(out[i], t)
			}
			continue
		}
		lits := []string{""}
		prev := 0
		for i := 0; i < len(t.lit); i++ {
			c := t.lit[i]
			if (c == '-' || c == '/') && (i == 0 || !isWord(t.lit[i-1])) && i+1 < len(t.lit) && isWord(t.lit[i+1]) {
				var next []string
				for _, l := range lits {
					for _, d := range windashChars {
						next = append(next, l+t.lit[prev:i]+d)
					}
				}
				lits = next
				prev = i + 1
			}
		}
		var next []sigmaString
		for _, o := range out {
			for _, l := range lits {
				c := append(append(sigmaString{}, o...), token{lit: l + t.lit[prev:]})
				next = append(next, c)
			}
		}
		out = next
		if len(out) > maxVariants {
			return out
		}
	}
	return out
}

// encode applies one encoding modifier to a literal value.
func encode(mod, s string) []string {
	switch mod {
	case "utf16le", "wide":
		return []string{utf16Bytes(s, false, false)}
	case "utf16be":
		return []string{utf16Bytes(s, true, false)}
	case "utf16":
		return []string{utf16Bytes(s, false, true)}
	case "base64":
		return []string{base64.StdEncoding.EncodeToString([]byte(s))}
	default: // base64offset: the three alignments, trimmed of edge characters
		// that depend on the surrounding bytes.
		starts := [3]int{0, 2, 3}
		ends := [3]int{0, 3, 2}
		var out []string
		for i := 0; i < 3; i++ {
			e := base64.StdEncoding.EncodeToString([]byte(strings.Repeat(" ", i) + s))
			end := len(e) - ends[(len(s)+i)%3]
			if starts[i] < end {
				out = append(out, e[starts[i]:end])
			}
		}
		return out
	}
}

func utf16Bytes(s string, bigEndian, bom bool) string {
	var b []byte
	if bom {
		b = append(b, 0xff, 0xfe)
	}
	for _, u := range utf16.Encode([]rune(s)) {
		if bigEndian {
			b = append(b, byte(u>>8), byte(u))
		} else {
			b = append(b, byte(u), byte(u>>8))
		}
	}
	return string(b)
}
