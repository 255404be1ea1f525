package sigma

import (
	"regexp"
	"regexp/syntax"
	"strings"
)

// reMatcher runs a Go (RE2) regular expression on the raw value. lits, when
// set, are lower-cased literals one of which every match contains: a cheap
// substring test on the lowered value rejects most values before the
// regex runs, and they double as prefilter anchors.
type reMatcher struct {
	re   *regexp.Regexp
	lits []string
}

func (m *reMatcher) match(_ *event, v *value) bool {
	if v.kind == kindNull {
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
		m.lits = requiredLiterals(tree.Simplify())
	}
	return m, nil
}

// requiredLiterals returns lower-cased literals at least one of which
// occurs in every string the regex matches, or nil if it finds none.
func requiredLiterals(re *syntax.Regexp) []string {
	switch re.Op {
	case syntax.OpLiteral:
		return []string{lower(string(re.Rune))}
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
		// Adjacent literals form one run; the best candidate is the set
		// whose shortest literal is longest.
		var best []string
		consider := func(ls []string) {
			if ls != nil && minLen(ls) > minLen(best) {
				best = ls
			}
		}
		run := ""
		for _, s := range re.Sub {
			if s.Op == syntax.OpLiteral {
				run += lower(string(s.Rune))
				continue
			}
			if run != "" {
				consider([]string{run})
				run = ""
			}
			consider(requiredLiterals(s))
		}
		if run != "" {
			consider([]string{run})
		}
		return best
	}
	return nil
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
