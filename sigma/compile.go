package sigma

import (
	"fmt"
	"sort"
	"strings"
)

// compiler turns parsed rules into node trees, sharing one field table
// across all rules of an engine.
type compiler struct {
	cfg    *Config
	fields map[string]int32
	names  []string
}

func (c *compiler) field(name string) int32 {
	if id, ok := c.fields[name]; ok {
		return id
	}
	id := int32(len(c.names))
	c.fields[name] = id
	c.names = append(c.names, name)
	return id
}

// compileRule compiles the detection of one rule.
func (c *compiler) compileRule(r *Rule) (node, error) {
	idents := map[string]node{}
	for name, def := range r.Detection {
		n, err := c.compileIdent(def)
		if err != nil {
			return nil, fmt.Errorf("detection %s: %w", name, err)
		}
		idents[name] = n
	}
	var roots orNode
	for _, cond := range r.Conditions {
		e, err := parseCondition(cond)
		if err != nil {
			return nil, err
		}
		n, err := resolveCondition(e, idents)
		if err != nil {
			return nil, fmt.Errorf("condition %q: %w", cond, err)
		}
		roots = append(roots, n)
	}
	if len(roots) == 1 {
		return roots[0], nil
	}
	return roots, nil
}

// compileIdent compiles one search identifier: a map (AND of fields), a
// list of maps (OR) or a list of keywords.
func (c *compiler) compileIdent(def any) (node, error) {
	switch d := def.(type) {
	case map[string]any:
		return c.compileMap(d)
	case []any:
		maps, others := 0, 0
		for _, x := range d {
			if _, ok := x.(map[string]any); ok {
				maps++
			} else {
				others++
			}
		}
		switch {
		case maps > 0 && others > 0:
			return nil, fmt.Errorf("list mixes maps and keywords")
		case maps > 0:
			var or orNode
			for _, x := range d {
				n, err := c.compileMap(x.(map[string]any))
				if err != nil {
					return nil, err
				}
				or = append(or, n)
			}
			return or, nil
		default:
			return c.compileField("|contains", d)
		}
	case nil:
		return nil, fmt.Errorf("empty search identifier")
	default: // a single keyword
		return c.compileField("|contains", []any{d})
	}
}

func (c *compiler) compileMap(m map[string]any) (node, error) {
	if len(m) == 0 {
		return nil, fmt.Errorf("empty map")
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var and andNode
	for _, k := range keys {
		key := k
		if strings.HasPrefix(k, "|") && !strings.Contains(k, "contains") {
			key = "|contains" + k // keyword map: full-text search
		}
		n, err := c.compileField(key, m[k])
		if err != nil {
			return nil, err
		}
		and = append(and, n)
	}
	if len(and) == 1 {
		return and[0], nil
	}
	// Cheapest tests first: an AND stops at the first miss, and most
	// candidate rules miss.
	sort.SliceStable(and, func(i, j int) bool { return nodeCost(and[i]) < nodeCost(and[j]) })
	return and, nil
}

// nodeCost is a rough evaluation cost used to order AND children.
func nodeCost(n node) int {
	f, ok := n.(*fieldNode)
	if !ok {
		return 100
	}
	c := 0
	if f.multi != nil {
		c += 6
	}
	for _, p := range f.pats {
		switch m := p.(type) {
		case *strMatcher:
			switch m.op {
			case '=', '*':
				c++
			case 'p', 's':
				c += 2
			case 'c':
				c += 4
			default:
				c += 8
			}
		case *reMatcher:
			c += 30
		default:
			c += 4
		}
	}
	if f.fid < 0 {
		c *= 20 // keyword search over every value
	}
	return c
}

func resolveCondition(e condExpr, idents map[string]node) (node, error) {
	switch x := e.(type) {
	case condAnd:
		l, err := resolveCondition(x.l, idents)
		if err != nil {
			return nil, err
		}
		r, err := resolveCondition(x.r, idents)
		if err != nil {
			return nil, err
		}
		return andNode{l, r}, nil
	case condOr:
		l, err := resolveCondition(x.l, idents)
		if err != nil {
			return nil, err
		}
		r, err := resolveCondition(x.r, idents)
		if err != nil {
			return nil, err
		}
		return orNode{l, r}, nil
	case condNot:
		n, err := resolveCondition(x.x, idents)
		if err != nil {
			return nil, err
		}
		return notNode{n}, nil
	case condIdent:
		n, ok := idents[x.name]
		if !ok {
			return nil, fmt.Errorf("unknown search identifier %q", x.name)
		}
		return n, nil
	case condOf:
		var names []string
		pat := parseSigmaString(x.pattern)
		for name := range idents {
			if x.pattern == "them" {
				if !strings.HasPrefix(name, "_") {
					names = append(names, name)
				}
			} else if globMatch(pat, name) {
				names = append(names, name)
			}
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("%q matches no search identifier", x.pattern)
		}
		sort.Strings(names)
		var kids []node
		for _, n := range names {
			kids = append(kids, idents[n])
		}
		if len(kids) == 1 {
			return kids[0], nil
		}
		if x.all {
			return andNode(kids), nil
		}
		return orNode(kids), nil
	}
	return nil, fmt.Errorf("unknown condition node %T", e)
}
