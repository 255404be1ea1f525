package sigma

import "sort"

// acAutomaton is an Aho-Corasick automaton over the lower-cased anchor
// literals of all rules. The root has a dense transition table (most bytes
// of a value fail back to the root); other states keep sorted sparse edges
// to keep memory proportional to the literal bytes.
type acAutomaton struct {
	root   [256]int32
	edges  [][]acEdge
	fail   []int32
	out    [][]int32 // literal ids ending exactly here
	dict   []int32   // nearest state on the fail chain with outputs, -1 if none
	hasOut []bool
}

type acEdge struct {
	b  byte
	to int32
}

func (a *acAutomaton) next(s int32, b byte) int32 {
	for {
		if s == 0 {
			return a.root[b]
		}
		es := a.edges[s]
		// Linear scan: sparse states have few edges.
		for i := range es {
			if es[i].b == b {
				return es[i].to
			}
		}
		s = a.fail[s]
	}
}

func buildAC(lits []string) *acAutomaton {
	a := &acAutomaton{edges: [][]acEdge{nil}, fail: []int32{0}, out: [][]int32{nil}}
	child := func(s int32, b byte) int32 {
		for _, e := range a.edges[s] {
			if e.b == b {
				return e.to
			}
		}
		return -1
	}
	for id, lit := range lits {
		s := int32(0)
		for i := 0; i < len(lit); i++ {
			n := child(s, lit[i])
			if n < 0 {
				n = int32(len(a.edges))
				a.edges = append(a.edges, nil)
				a.fail = append(a.fail, 0)
				a.out = append(a.out, nil)
				a.edges[s] = append(a.edges[s], acEdge{lit[i], n})
			}
			s = n
		}
		a.out[s] = append(a.out[s], int32(id))
	}
	for s := range a.edges {
		sort.Slice(a.edges[s], func(i, j int) bool { return a.edges[s][i].b < a.edges[s][j].b })
	}
	// Breadth-first: fail links of depth-1 states are the root.
	queue := make([]int32, 0, len(a.edges))
	for _, e := range a.edges[0] {
		a.root[e.b] = e.to
		queue = append(queue, e.to)
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, e := range a.edges[s] {
			f := a.fail[s]
			for {
				if n := child(f, e.b); n >= 0 {
					a.fail[e.to] = n
					break
				}
				if f == 0 {
					a.fail[e.to] = 0
					break
				}
				f = a.fail[f]
			}
			queue = append(queue, e.to)
		}
	}
	a.dict = make([]int32, len(a.edges))
	a.hasOut = make([]bool, len(a.edges))
	// States in BFS order guarantee a state's fail target is settled first.
	order := []int32{0}
	for i := 0; i < len(order); i++ {
		for _, e := range a.edges[order[i]] {
			order = append(order, e.to)
		}
	}
	for _, s := range order {
		a.dict[s] = -1
		if s == 0 {
			continue
		}
		f := a.fail[s]
		if len(a.out[f]) > 0 {
			a.dict[s] = f
		} else {
			a.dict[s] = a.dict[f]
		}
		a.hasOut[s] = len(a.out[s]) > 0 || a.dict[s] >= 0
	}
	return a
}

// scan calls hit for every literal occurring in s (with repeats).
func (a *acAutomaton) scan(s string, hit func(lit int32)) {
	st := int32(0)
	for i := 0; i < len(s); i++ {
		st = a.next(st, s[i])
		if !a.hasOut[st] {
			continue
		}
		for o := st; o >= 0; o = a.dict[o] {
			for _, l := range a.out[o] {
				hit(l)
			}
			if o == 0 {
				break
			}
		}
	}
}
