package sigma

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestAutomatonAgreesWithContains checks the prefilter automaton (dense
// rows, inline edges, fail and dictionary links) against strings.Contains
// on random literals over a small alphabet, where overlaps are frequent.
func TestAutomatonAgreesWithContains(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	word := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteByte("abcd\\."[rng.IntN(6)])
		}
		return b.String()
	}
	for round := 0; round < 200; round++ {
		lits := make([]string, 1+rng.IntN(40))
		for i := range lits {
			lits[i] = word(1 + rng.IntN(7))
		}
		a := buildAC(lits)
		f := &fieldAC{ac: a, rules: make([][]int32, len(lits))}
		for i := range lits {
			f.rules[i] = []int32{int32(i)}
		}
		m := &Matcher{mark: make([]uint32, len(lits)), litMark: make([]uint32, len(lits))}
		for k := 0; k < 20; k++ {
			text := word(rng.IntN(30))
			m.epoch++
			m.cands = m.cands[:0]
			m.scan(f, text)
			got := map[int32]bool{}
			for _, c := range m.cands {
				got[c] = true
			}
			any := false
			for i, l := range lits {
				want := strings.Contains(text, l)
				any = any || want
				if got[int32(i)] != want {
					t.Fatalf("literal %q in %q: automaton %v, Contains %v", l, text, got[int32(i)], want)
				}
			}
			if a.containsAny(text) != any {
				t.Fatalf("containsAny(%q) = %v, want %v (lits %q)", text, !any, any, lits)
			}
		}
	}
}
