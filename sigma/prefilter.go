package sigma

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"strings"
	"unsafe"
)

// litIndex finds which of a set of lower-cased literals occur in a string.
//
// It replaces an Aho-Corasick automaton: an automaton step is a dependent
// load from a large, randomly visited state table (the SigmaHQ
// process_creation CommandLine literals make ~57,000 states), so scans were
// bound by cache misses at ~18 ns per byte. Here every literal of four bytes
// or more is filed under one 4-byte gram of it (the gram rarest among the
// index's literals), and a scan tests, at each position, the gram there
// against a small bitmap (32 KiB at most, so it stays in L1/L2): loads that
// do not depend on each other. Only a set bit costs a probe of the gram
// table and a comparison of the literals filed under that gram. Literals of
// one to three bytes are looked up by their first byte or two.
//
// Results are exact (a literal is reported iff it occurs), which the
// tests check against strings.Contains.
type litIndex struct {
	lits  []string
	bits  []uint64 // 4-byte gram filter, indexed by gram*gramMul >> shift
	shift uint32
	grams gramTable // 4-byte gram -> entries
	ents  []litEntry
	// Short literals: short1[b] lists one-byte literals by byte (nil
	// without any); two- and three-byte ones are filed by their first two
	// bytes in pairs, with pairBits as the filter.
	short1   [][]int32
	pairBits []uint64 // 65536 bits, nil without 2/3-byte literals
	pairs    gramTable
	pairEnts []litEntry
}

// litEntry is one literal filed under a gram: the gram starts off bytes
// into the literal s (kept here, not only in lits, to save a cache miss).
type litEntry struct {
	s   string
	lit int32
	off int32
}

// gramTable is an open-addressing map from a gram to a run of entries.
type gramTable struct {
	slots []gramSlot
	mask  uint32
}

type gramSlot struct {
	gram   uint32
	lo, hi uint32 // entries [lo, hi); hi == 0 marks an empty slot
}

func (t *gramTable) find(g uint32) (lo, hi uint32) {
	for i := gramHash(g) & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.hi == 0 {
			return 0, 0
		}
		if s.gram == g {
			return s.lo, s.hi
		}
	}
}

func newGramTable(runs map[uint32][2]uint32) gramTable {
	n := uint32(1) << bits.Len32(uint32(2*len(runs)+1))
	t := gramTable{slots: make([]gramSlot, n), mask: n - 1}
	for g, r := range runs {
		i := gramHash(g) & t.mask
		for t.slots[i].hi != 0 {
			i = (i + 1) & t.mask
		}
		t.slots[i] = gramSlot{gram: g, lo: r[0], hi: r[1]}
	}
	return t
}

// gramMul is the filter's hash: the top bits of gram * gramMul
// (Fibonacci hashing).
const gramMul = 0x9E3779B1

// gramHash mixes a gram for the gram table.
func gramHash(g uint32) uint32 {
	h := g * 0x9E3779B1
	return h ^ h>>15
}

// load4 reads the 4-byte gram at s[i:] (little-endian).
func load4(s string, i int) uint32 {
	return binary.LittleEndian.Uint32(unsafe.Slice(unsafe.StringData(s[i:]), 4))
}

// commonGramPenalty makes a gram that occurs in commonText (found in most
// Windows events) the last choice to file a literal under: its filter bit
// would be set by nearly every event.
const commonGramPenalty = 1 << 20

func buildLitIndex(lits []string) *litIndex {
	x := &litIndex{lits: lits}
	// How many literals contain each gram: a literal is filed under its
	// rarest gram, so literals sharing a prefix ("imphash=...") spread over
	// their distinct parts.
	freq := map[uint32]int{}
	for _, l := range lits {
		seen := map[uint32]bool{}
		for i := 0; i+4 <= len(l); i++ {
			if g := load4(l, i); !seen[g] {
				seen[g] = true
				freq[g]++
			}
		}
	}
	type filed struct {
		gram uint32
		ent  litEntry
	}
	var long, pair []filed
	for id, l := range lits {
		switch {
		case len(l) == 0:
			// The empty literal is in every string; anchors never are
			// empty (an empty pattern yields no anchor), so it is not indexed.
		case len(l) == 1:
			if x.short1 == nil {
				x.short1 = make([][]int32, 256)
			}
			x.short1[l[0]] = append(x.short1[l[0]], int32(id))
		case len(l) < 4:
			pair = append(pair, filed{uint32(l[0]) | uint32(l[1])<<8, litEntry{l, int32(id), 0}})
		default:
			best, bestScore := 0, -1
			for i := 0; i+4 <= len(l); i++ {
				score := freq[load4(l, i)]
				if strings.Contains(commonText, l[i:i+4]) {
					score += commonGramPenalty
				}
				if bestScore < 0 || score < bestScore {
					best, bestScore = i, score
				}
			}
			long = append(long, filed{load4(l, best), litEntry{l, int32(id), int32(best)}})
		}
	}
	// File entries by gram: sort, then one table run per gram.
	file := func(fs []filed) ([]litEntry, map[uint32][2]uint32) {
		slices.SortStableFunc(fs, func(a, b filed) int {
			switch {
			case a.gram < b.gram:
				return -1
			case a.gram > b.gram:
				return 1
			}
			return 0
		})
		ents := make([]litEntry, len(fs))
		runs := map[uint32][2]uint32{}
		for i, f := range fs {
			ents[i] = f.ent
			r, ok := runs[f.gram]
			if !ok {
				r[0] = uint32(i)
			}
			r[1] = uint32(i + 1)
			runs[f.gram] = r
		}
		return ents, runs
	}
	var runs map[uint32][2]uint32
	x.ents, runs = file(long)
	x.grams = newGramTable(runs)
	// Filter size: ~32 bits per distinct gram (a random gram hits a set
	// bit ~3% of the time), between 4 Kbit and 256 Kbit.
	nbits := uint32(1) << min(18, max(12, bits.Len32(uint32(32*len(runs)))))
	x.shift = 32 - uint32(bits.TrailingZeros32(nbits))
	x.bits = make([]uint64, nbits/64)
	for g := range runs {
		h := g * gramMul >> x.shift
		x.bits[h/64] |= 1 << (h % 64)
	}
	if len(pair) > 0 {
		var pruns map[uint32][2]uint32
		x.pairEnts, pruns = file(pair)
		x.pairs = newGramTable(pruns)
		x.pairBits = make([]uint64, 65536/64)
		for g := range pruns {
			x.pairBits[g/64] |= 1 << (g % 64)
		}
	}
	return x
}

// find appends to out the literal of every occurrence in s (a literal of
// two bytes or more found at several positions is appended each time), or
// only the first occurrence found if first is set.
func (x *litIndex) find(s string, out []int32, first bool) []int32 {
	if len(s) >= 4 {
		b := unsafe.Slice(unsafe.StringData(s), len(s))
		filter, shift := x.bits, x.shift
		for i := 0; i+4 <= len(b); i++ {
			g := binary.LittleEndian.Uint32(b[i:])
			h := g * gramMul >> shift
			if filter[h/64]&(1<<(h%64)) == 0 {
				continue
			}
			lo, hi := x.grams.find(g)
			for _, en := range x.ents[lo:hi] {
				p, l := i-int(en.off), en.s
				if p >= 0 && p+len(l) <= len(s) && s[p:p+len(l)] == l {
					out = append(out, en.lit)
					if first {
						return out
					}
				}
			}
		}
	}
	if x.short1 != nil {
		var seen [256]bool // a byte's literals are reported once
		for i := 0; i < len(s); i++ {
			if seen[s[i]] {
				continue
			}
			seen[s[i]] = true
			for _, l := range x.short1[s[i]] {
				out = append(out, l)
				if first {
					return out
				}
			}
		}
	}
	if x.pairBits != nil {
		for i := 0; i+2 <= len(s); i++ {
			g := uint32(s[i]) | uint32(s[i+1])<<8
			if x.pairBits[g/64]&(1<<(g%64)) == 0 {
				continue
			}
			lo, hi := x.pairs.find(g)
			for _, en := range x.pairEnts[lo:hi] {
				l := en.s
				if i+len(l) <= len(s) && s[i:i+len(l)] == l {
					out = append(out, en.lit)
					if first {
						return out
					}
				}
			}
		}
	}
	return out
}

// containsAny reports whether any literal occurs in s.
func (x *litIndex) containsAny(s string) bool {
	var buf [1]int32
	return len(x.find(s, buf[:0], true)) > 0
}
