package sigma

import (
	"fmt"
	"strings"
)

// Condition grammar (Sigma 2.x, without aggregations):
//
//	expr   := term { "or" term }
//	term   := factor { "and" factor }
//	factor := "not" factor | "(" expr ")" | ("1"|"all") "of" (pattern|"them") | ident

type condExpr interface{}

type (
	condAnd   struct{ l, r condExpr }
	condOr    struct{ l, r condExpr }
	condNot   struct{ x condExpr }
	condIdent struct{ name string }
	condOf    struct {
		all     bool
		pattern string // "them" for all identifiers
	}
)

func tokenizeCondition(s string) []string {
	var toks []string
	cur := strings.Builder{}
	flush := func() {
		if cur.Len() > 0 {
			toks = append(toks, cur.String())
			cur.Reset()
		}
	}
	for _, r := range s {
		switch r {
		case '(', ')', '|':
			flush()
			toks = append(toks, string(r))
		case ' ', '\t', '\n', '\r':
			flush()
		default:
			cur.WriteRune(r)
		}
	}
	flush()
	return toks
}

type condParser struct {
	toks []string
	pos  int
}

func parseCondition(s string) (condExpr, error) {
	p := &condParser{toks: tokenizeCondition(s)}
	for _, t := range p.toks {
		if t == "|" {
			return nil, unsupported("aggregation in condition " + s)
		}
		if l := strings.ToLower(t); l == "near" {
			return nil, unsupported("near in condition")
		}
	}
	e, err := p.expr()
	if err != nil {
		return nil, fmt.Errorf("condition %q: %w", s, err)
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("condition %q: unexpected %q", s, p.toks[p.pos])
	}
	return e, nil
}

func (p *condParser) peek() string {
	if p.pos < len(p.toks) {
		return strings.ToLower(p.toks[p.pos])
	}
	return ""
}

func (p *condParser) expr() (condExpr, error) {
	l, err := p.term()
	if err != nil {
		return nil, err
	}
	for p.peek() == "or" {
		p.pos++
		r, err := p.term()
		if err != nil {
			return nil, err
		}
		l = condOr{l, r}
	}
	return l, nil
}

func (p *condParser) term() (condExpr, error) {
	l, err := p.factor()
	if err != nil {
		return nil, err
	}
	for p.peek() == "and" {
		p.pos++
		r, err := p.factor()
		if err != nil {
			return nil, err
		}
		l = condAnd{l, r}
	}
	return l, nil
}

func (p *condParser) factor() (condExpr, error) {
	switch t := p.peek(); t {
	case "":
		return nil, fmt.Errorf("unexpected end")
	case "not":
		p.pos++
		x, err := p.factor()
		if err != nil {
			return nil, err
		}
		return condNot{x}, nil
	case "(":
		p.pos++
		x, err := p.expr()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("missing )")
		}
		p.pos++
		return x, nil
	case "1", "all", "any":
		if p.pos+1 < len(p.toks) && strings.ToLower(p.toks[p.pos+1]) == "of" {
			if p.pos+2 >= len(p.toks) {
				return nil, fmt.Errorf("%s of: missing target", t)
			}
			pat := p.toks[p.pos+2]
			p.pos += 3
			return condOf{all: t == "all", pattern: pat}, nil
		}
		if t == "all" {
			return nil, fmt.Errorf("%q not followed by of", t)
		}
	case ")", "and", "or", "of":
		return nil, fmt.Errorf("unexpected %q", t)
	}
	if p.peek() != "" && p.pos+1 < len(p.toks) && strings.ToLower(p.toks[p.pos+1]) == "of" {
		return nil, unsupported(p.toks[p.pos] + " of (only 1 of / all of)")
	}
	name := p.toks[p.pos]
	p.pos++
	return condIdent{name}, nil
}
