package sigma

import "sort"

// acAutomaton is an Aho-Corasick automaton over lower-cased anchor
// literals. States are numbered breadth-first, and the shallow ones (where
// a scan spends most bytes) get dense, fully resolved DFA rows over the
// automaton's byte classes, so a step there is one table load; deeper states
// keep sparse edges and fail links, which keeps memory proportional to the
// literal bytes (a full DFA of the SigmaHQ set would need ~150 MB).
//
// Transitions are encoded as state<<1 | hasOutput so the scan loop learns
// whether to report matches without touching the target state: on large
// automata the scan is bound by cache misses, not instructions.
type acAutomaton struct {
	class  [256]uint8 // byte -> class; 0 for bytes no literal uses
	nclass uint32
	nDense uint32   // states [0, nDense) have dense rows
	dense  []uint32 // nDense rows of nclass encoded transitions
	states []acState
	edges  []acEdge  // sparse edges, by state range
	out    [][]int32 // per state: literal ids ending exactly here
}

// acState is kept to 24 bytes, and a state's only edge (the common case
// deep in the trie) is stored inline, so a step costs one cache miss.
type acState struct {
	row    int32 // dense row of a deep state with many edges, or -1
	fail   uint32
	dict   int32 // nearest state on the fail chain with output, -1 if none
	eStart uint32
	to0    uint32 // the first edge, inline
	nEdges uint16
	b0     byte
}

type acEdge struct {
	b  byte
	to uint32 // encoded
}

// States up to denseDepth, and deeper states with at least denseFanout
// edges (where a linear edge scan is slow), get dense rows.
const (
	denseDepth  = 2
	denseFanout = 4
)

// next returns the encoded transition from state s on byte b.
func (a *acAutomaton) next(s uint32, b byte) uint32 {
	for {
		if s < a.nDense {
			return a.dense[s*a.nclass+uint32(a.class[b])]
		}
		st := &a.states[s]
		if st.row >= 0 {
			return a.dense[uint32(st.row)*a.nclass+uint32(a.class[b])]
		}
		if st.nEdges > 0 && st.b0 == b {
			return st.to0
		}
		for i := st.eStart + 1; i < st.eStart+uint32(st.nEdges); i++ {
			if a.edges[i].b == b {
				return a.edges[i].to
			}
		}
		s = st.fail
	}
}

func buildAC(lits []string) *acAutomaton {
	// A plain trie first, with provisional ids.
	type tnode struct {
		kids  map[byte]int32
		out   []int32
		depth int
	}
	trie := []tnode{{}}
	for id, lit := range lits {
		s := int32(0)
		for i := 0; i < len(lit); i++ {
			n, ok := trie[s].kids[lit[i]]
			if !ok {
				n = int32(len(trie))
				trie = append(trie, tnode{depth: trie[s].depth + 1})
				if trie[s].kids == nil {
					trie[s].kids = map[byte]int32{}
				}
				trie[s].kids[lit[i]] = n
			}
			s = n
		}
		trie[s].out = append(trie[s].out, int32(id))
	}
	// Renumber breadth-first, children in byte order.
	order := []int32{0}
	newID := make([]uint32, len(trie))
	for i := 0; i < len(order); i++ {
		newID[order[i]] = uint32(i)
		kids := trie[order[i]].kids
		bs := make([]int, 0, len(kids))
		for b := range kids {
			bs = append(bs, int(b))
		}
		sort.Ints(bs)
		for _, b := range bs {
			order = append(order, kids[byte(b)])
		}
	}
	a := &acAutomaton{states: make([]acState, len(trie)), out: make([][]int32, len(trie))}
	child := make([]map[byte]uint32, len(trie)) // by new id, unencoded
	for old, t := range trie {
		n := newID[old]
		a.out[n] = t.out
		child[n] = make(map[byte]uint32, len(t.kids))
		for b, k := range t.kids {
			child[n][b] = newID[k]
			if a.class[b] == 0 {
				a.nclass++
				a.class[b] = uint8(a.nclass)
			}
		}
		if t.depth <= denseDepth {
			a.nDense = max(a.nDense, n+1)
		}
	}
	a.nclass++ // class 0 too
	// Fail and dictionary links, breadth-first (ids are BFS order).
	hasOut := make([]bool, len(trie))
	for s := uint32(0); s < uint32(len(trie)); s++ {
		a.states[s].dict = -1
		if s != 0 {
			f := a.states[s].fail
			if len(a.out[f]) > 0 {
				a.states[s].dict = int32(f)
			} else {
				a.states[s].dict = a.states[f].dict
			}
		}
		hasOut[s] = len(a.out[s]) > 0 || a.states[s].dict >= 0
		for b, k := range child[s] {
			if s == 0 {
				a.states[k].fail = 0
				continue
			}
			f := a.states[s].fail
			for {
				if n, ok := child[f][b]; ok {
					a.states[k].fail = n
					break
				}
				if f == 0 {
					a.states[k].fail = 0
					break
				}
				f = a.states[f].fail
			}
		}
	}
	enc := func(s uint32) uint32 {
		e := s << 1
		if hasOut[s] {
			e |= 1
		}
		return e
	}
	// Sparse edges for every state (deep states use them).
	for s := range child {
		a.states[s].eStart = uint32(len(a.edges))
		bs := make([]int, 0, len(child[s]))
		for b := range child[s] {
			bs = append(bs, int(b))
		}
		sort.Ints(bs)
		for _, b := range bs {
			a.edges = append(a.edges, acEdge{byte(b), enc(child[s][byte(b)])})
		}
		a.states[s].nEdges = uint16(len(bs))
		if len(bs) > 0 {
			a.states[s].b0, a.states[s].to0 = a.edges[a.states[s].eStart].b, a.edges[a.states[s].eStart].to
		}
	}
	// Dense rows: a missing edge takes the fail state's resolved
	// transition; fail states are shallower, so they are filled first.
	a.dense = make([]uint32, a.nDense*a.nclass)
	rows := a.nDense
	for s := uint32(0); s < uint32(len(trie)); s++ {
		a.states[s].row = -1
		if s >= a.nDense {
			if len(child[s]) < denseFanout {
				continue
			}
			a.states[s].row = int32(rows)
			rows++
			a.dense = append(a.dense, make([]uint32, a.nclass)...)
		}
		r := s
		if s >= a.nDense {
			r = uint32(a.states[s].row)
		}
		row := a.dense[r*a.nclass : (r+1)*a.nclass]
		if s != 0 {
			f := a.states[s].fail
			for c := uint32(0); c < a.nclass; c++ {
				row[c] = a.nextClass(f, c)
			}
		}
		for b, k := range child[s] {
			row[a.class[b]] = enc(k)
		}
	}
	return a
}

// nextClass is next for a byte class (used while building dense rows).
func (a *acAutomaton) nextClass(s, c uint32) uint32 {
	for {
		if s < a.nDense {
			return a.dense[s*a.nclass+c]
		}
		st := &a.states[s]
		if st.row >= 0 {
			return a.dense[uint32(st.row)*a.nclass+c]
		}
		for i := st.eStart; i < st.eStart+uint32(st.nEdges); i++ {
			if uint32(a.class[a.edges[i].b]) == c {
				return a.edges[i].to
			}
		}
		s = st.fail
	}
}

// containsAny reports whether any literal occurs in s.
func (a *acAutomaton) containsAny(s string) bool {
	st := uint32(0)
	for i := 0; i < len(s); i++ {
		enc := a.next(st, s[i])
		if enc&1 != 0 {
			return true
		}
		st = enc >> 1
	}
	return false
}
