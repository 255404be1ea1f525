package sigma

import (
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"testing"
)

func parseSimple(t *testing.T, expr string) *syntax.Regexp {
	t.Helper()
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		t.Fatal(err)
	}
	return re.Simplify()
}

func TestRequiredLiterals(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
	}{
		{`abc`, []string{"abc"}},
		{`(?i)ABC`, []string{"abc"}},
		{`a|bc`, []string{"a", "bc"}},
		{`x+yz`, []string{"yz"}},
		// A small class extends the run: any match holds ". ", ".\"" or ".'".
		{`\\[a-zA-Z0-9]{1,32}\.[a-zA-Z0-9]{1,6}\.[ "']{1}`, []string{". ", ".\"", ".'"}},
		// Groups do not end a run.
		{`(?i)abc(def)g`, []string{"abcdefg"}},
		// (?i)s also matches ſ, which lowers to s.
		{`(?i)\.exe\s+werfaultsecure\.exe`, []string{"werfaultsecure.exe"}},
		// (?i)σ also matches ς, which lowers to itself: it ends the run.
		{`(?i)xyσz`, []string{"xy"}},
		{`[a-z]+`, nil},
		{`a?b?`, nil},
	} {
		got := requiredLiterals(parseSimple(t, c.expr))
		if !slices.Equal(got, c.want) {
			t.Errorf("requiredLiterals(%q) = %q, want %q", c.expr, got, c.want)
		}
	}
}

func TestRequiredFactor(t *testing.T) {
	for _, c := range []struct {
		expr string
		n    int // positions, 0: none
	}{
		{`\s[a-fA-F0-9]{64}\s[a-fA-F0-9]{16}`, 64}, // capped at 64
		{`x[0-9]{8}y`, 10},
		{`[0-9]{7}`, 0},        // too short to be worth a scan
		{`(?i)abcdefghij`, 10}, // these folds stay ASCII
		// s and k also match ſ and the Kelvin sign (not one byte): the run breaks.
		{`(?i)abcdefghskxyzw`, 8},
		{`[a-zé]{9}`, 0},       // a non-ASCII class is not one byte
		{`(abcd)(efgh)ij`, 10}, // groups are flattened
		{`abcd|efghijklmn`, 0}, // only top-level concatenations
		{`abcd.efgh`, 0},       // . may match a multi-byte rune
	} {
		f := requiredFactor(parseSimple(t, c.expr))
		n := 0
		if f != nil {
			for b := f.last; b > 0; b >>= 1 {
				n++
			}
		}
		if n != c.n {
			t.Errorf("requiredFactor(%q): %d positions, want %d", c.expr, n, c.n)
		}
	}
}

// TestRegexPrefilterSound checks on random texts that whenever a regex
// matches, the lowered text holds one of its required literals and the
// raw text its factor.
func TestRegexPrefilterSound(t *testing.T) {
	// Each regex with the symbols its random texts are made of.
	cases := []struct{ expr, symbols string }{
		{`ab[cd]e`, "abcdeABE"},
		{`(?i)s[ks]a`, "sSkKaſ\u212a"},
		{`(?i)KS`, "kKsSſ\u212ax"},
		{`a.b[^x]c`, "abcxé\xff"},
		{`[ab]{8,}`, "abc"},
		{`(?i)[a-c]{2}[k-s]{6}`, "abcklsSſ\u212a"},
		{`x(ab|cd)y`, "xyabcd"},
		{`\s[0-9a-f]{8}\s`, " 0123456789abcdef"},
		{`(?i)[0-9a-f]{4}kk[0-9a-f]{4}`, "0123abckK\u212a"},
		{`(?i)σa`, "σςΣaA"},
		{`(?i)xyσz`, "xyσςΣzXY"},
		{`(ab)+c`, "abc"},
		{`a[ "']b`, "ab \"'"},
		{`(?i)secs`, "secSEſ"},
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, c := range cases {
		symbols := []rune(c.symbols)
		re := regexp.MustCompile(c.expr)
		tree := parseSimple(t, c.expr)
		lits, factor := requiredLiterals(tree), requiredFactor(tree)
		hits := 0
		for k := 0; k < 20000; k++ {
			var b strings.Builder
			for n := rng.IntN(20); n > 0; n-- {
				b.WriteRune(symbols[rng.IntN(len(symbols))])
			}
			s := b.String()
			if !re.MatchString(s) {
				continue
			}
			hits++
			if lits != nil && !slices.ContainsFunc(lits, func(l string) bool { return strings.Contains(lower(s), l) }) {
				t.Fatalf("%q matches %q, whose lowered text has none of %q", c.expr, s, lits)
			}
			if factor != nil && !factor.in(s) {
				t.Fatalf("%q matches %q, which lacks its factor", c.expr, s)
			}
		}
		if hits == 0 {
			t.Errorf("%q: no random text matched; the test proves nothing", c.expr)
		}
	}
}
