package sigma

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestAppendLower checks the 8-byte ASCII path against a rune-wise
// reference at every alignment, with non-ASCII text after it.
func TestAppendLower(t *testing.T) {
	ref := func(s string) string {
		var b []byte
		for len(s) > 0 {
			r, n := utf8.DecodeRuneInString(s)
			if r == utf8.RuneError && n == 1 {
				b = append(b, s[0]) // invalid bytes stay as they are
			} else {
				b = utf8.AppendRune(b, lowerRune(r))
			}
			s = s[n:]
		}
		return string(b)
	}
	all := make([]byte, 0, 128)
	for c := 0; c < 128; c++ {
		all = append(all, byte(c))
	}
	for _, s := range []string{string(all), "C:\\Windows\\System32\\CMD.EXE /C Whoami", "ABCDEFGHÉCOLE ſTRASSE KELVIN \u212a", "@[`{ AZaz"} {
		for i := 0; i < len(s); i++ {
			if got, want := lower(s[i:]), ref(s[i:]); got != want {
				t.Errorf("lower(%q) = %q, want %q", s[i:], got, want)
			}
		}
	}
	if lower("ſ\u212a") != "sk" {
		t.Errorf(`lower("ſK") = %q, want "sk" (runes that case-fold to ASCII lower to it)`, lower("ſ\u212a"))
	}
}

// TestPlainRun checks the 8-byte scan for a quote or backslash against a
// byte loop, with the stop byte at every offset.
func TestPlainRun(t *testing.T) {
	for n := 0; n < 40; n++ {
		for _, stop := range []byte{'"', '\\', 0} {
			b := []byte(strings.Repeat("aé\x00\x7f", 10)[:n])
			want := len(b)
			if stop != 0 && n > 0 {
				b[n-1] = stop
				want = n - 1
			}
			for i, c := range b {
				if c == '"' || c == '\\' {
					want = min(want, i)
				}
			}
			if got := plainRun(b); got != want {
				t.Errorf("plainRun(%q) = %d, want %d", b, got, want)
			}
		}
	}
}

// TestDecodeStrings decodes strings with escapes placed at every offset
// of an 8-byte block and checks the unescaped values.
func TestDecodeStrings(t *testing.T) {
	eng, err := compileOne(t, "sel:\n  A|contains: x\ncondition: sel", DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	m := eng.NewMatcher()
	rng := rand.New(rand.NewPCG(5, 6))
	escapes := []struct{ json, text string }{
		{`\"`, `"`}, {`\\`, `\`}, {`\/`, `/`}, {`\n`, "\n"}, {`\t`, "\t"}, {`\u00e9`, "é"}, {`\ud83d\ude00`, "😀"}, {"é", "é"},
	}
	for round := 0; round < 300; round++ {
		var js, text strings.Builder
		for k := rng.IntN(30); k > 0; k-- {
			if rng.IntN(4) == 0 {
				e := escapes[rng.IntN(len(escapes))]
				js.WriteString(e.json)
				text.WriteString(e.text)
			} else {
				c := "abcXYZ019 :."[rng.IntN(12)]
				js.WriteByte(c)
				text.WriteByte(c)
			}
		}
		doc := `{"A":"` + js.String() + `","B":{"C":"` + js.String() + `x"}}`
		if _, err := m.Match([]byte(doc)); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if got, _ := m.FieldValue("A"); got != text.String() {
			t.Fatalf("%s: A = %q, want %q", doc, got, text.String())
		}
		var c string
		for _, v := range m.ev.vals {
			if v.fid < 0 && v.primary {
				c = v.raw
			}
		}
		if c != text.String()+"x" {
			t.Fatalf("%s: B.C = %q, want %q", doc, c, text.String()+"x")
		}
	}
}
