package sigma

import (
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/sigma/sigmatest"
)

// TestLitIndexAgreesWithContains checks the prefilter's literal index
// (gram filter, gram table, one-byte and two-byte tables) against
// strings.Contains on random literals over a small alphabet, where overlaps,
// shared grams and literals at the edges of the text are frequent.
func TestLitIndexAgreesWithContains(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	word := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteByte("abcd\\.é"[rng.IntN(8)])
		}
		return b.String()
	}
	for round := 0; round < 400; round++ {
		lits := make([]string, 1+rng.IntN(60))
		for i := range lits {
			lits[i] = word(1 + rng.IntN(9))
		}
		x := buildLitIndex(lits)
		for k := 0; k < 30; k++ {
			text := word(rng.IntN(40))
			got := map[int32]bool{}
			for _, l := range x.find(text, nil, false) {
				if !strings.Contains(text, lits[l]) {
					t.Fatalf("reported literal %q is not in %q", lits[l], text)
				}
				got[l] = true
			}
			any := false
			for i, l := range lits {
				want := strings.Contains(text, l)
				any = any || want
				if got[int32(i)] != want {
					t.Fatalf("literal %q in %q: index %v, Contains %v (lits %q)", l, text, got[int32(i)], want, lits)
				}
			}
			if x.containsAny(text) != any {
				t.Fatalf("containsAny(%q) = %v, want %v (lits %q)", text, !any, any, lits)
			}
		}
	}
}

// TestLitIndexManyLiterals fills the gram filter and table of a large
// index (hash-like literals sharing a prefix, as SigmaHQ's Hashes lists)
// and checks lookups at every position of a text.
func TestLitIndexManyLiterals(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	hex := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "0123456789abcdef"[rng.IntN(16)]
		}
		return string(b)
	}
	var lits []string
	for i := 0; i < 5000; i++ {
		lits = append(lits, "imphash="+hex(32))
	}
	lits = append(lits, "\\whoami.exe", ".exe", "md5=", "ab", "x")
	x := buildLitIndex(lits)
	text := "sha1=" + hex(40) + ",md5=" + hex(32) + "," + lits[4321] + ",c:\\windows\\system32\\whoami.exe"
	got := map[string]bool{}
	for _, l := range x.find(text, nil, false) {
		got[lits[l]] = true
	}
	for _, l := range lits {
		if got[l] != strings.Contains(text, l) {
			t.Errorf("literal %q: index %v, Contains %v", l, got[l], !got[l])
		}
	}
	if len(got) < 4 {
		t.Errorf("found %d literals, want at least imphash, whoami, .exe and md5=", len(got))
	}
}

// bruteForce evaluates every rule the event's route class allows,
// without the prefilter: what Match must return.
func (m *Matcher) bruteForce(doc []byte) ([]*Rule, error) {
	if _, err := m.Match(doc); err != nil { // decode and classify
		return nil, err
	}
	var out []*Rule
	for i, r := range m.e.rules {
		if m.e.allowed[m.class][i] && r.root.eval(m.ev) {
			out = append(out, r.rule)
		}
	}
	return out, nil
}

// TestPrefilterSoundSigmaHQ checks that the prefilter drops no match: on
// every regression event, Match returns exactly the rules a brute-force
// evaluation of every allowed rule returns.
func TestPrefilterSoundSigmaHQ(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the whole SigmaHQ rule set")
	}
	data := sigmatest.Data(t)
	eng, _, _ := loadSigmaHQ(t, data)
	m, brute := eng.NewMatcher(), eng.NewMatcher()
	matches := 0
	for i, doc := range regressionEvents(t, data) {
		got, err := m.Match(doc)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := brute.bruteForce(doc)
		if !slices.Equal(got, want) {
			t.Errorf("event %d: prefiltered %s, brute force %s", i, ruleTitles(got), ruleTitles(want))
		}
		matches += len(want)
	}
	t.Logf("%d matches, %.1f rules evaluated per event", matches, float64(m.Evaluated)/float64(len(regressionEvents(t, data))))
}

func ruleTitles(rs []*Rule) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Title)
	}
	return out
}

// TestPrefilterCases covers rules that must match events lacking some of
// their literals (not, 1 of, null, regexes without literals), conjunctions
// the prefilter now requires, keyword literals found through a field's
// index, and |all over transformed values.
func TestPrefilterCases(t *testing.T) {
	runCases(t, []modCase{
		{"not without literal", "sel:\n  Image|endswith: '\\evil.exe'\ncondition: not sel",
			[]string{`{"Image":"c:\\good.exe"}`, `{"Other":"x"}`}, []string{`{"Image":"c:\\EVIL.exe"}`}},
		{"1 of: the branch without the literal", "sel_a:\n  CommandLine|contains: 'mimikatz'\nsel_b:\n  ParentImage|endswith: '\\winword.exe'\ncondition: 1 of sel_*",
			[]string{`{"ParentImage":"c:\\office\\WINWORD.EXE","CommandLine":"cmd"}`, `{"CommandLine":"x mimikatz y"}`}, []string{`{"CommandLine":"cmd"}`}},
		{"1 of: a null branch has no literal", "sel_a:\n  CommandLine|contains: 'mimikatz'\nsel_b:\n  Image: null\ncondition: 1 of sel_*",
			[]string{`{"CommandLine":"cmd"}`, `{"Image":null}`}, []string{`{"Image":"x","CommandLine":"cmd"}`}},
		{"and not: the filter's literals are not required", "sel:\n  Image|endswith: '\\reg.exe'\nfilter:\n  CommandLine|contains: 'query'\ncondition: sel and not filter",
			[]string{`{"Image":"c:\\reg.exe","CommandLine":"add"}`, `{"Image":"c:\\reg.exe"}`}, []string{`{"Image":"c:\\reg.exe","CommandLine":"reg query"}`}},
		{"conjunction across fields", "sel:\n  Image|endswith: '\\reg.exe'\n  CommandLine|contains: ' save '\ncondition: sel",
			[]string{`{"Image":"c:\\reg.exe","CommandLine":"reg SAVE hklm\\sam"}`}, []string{`{"Image":"c:\\reg.exe","CommandLine":"reg query"}`, `{"Image":"c:\\x.exe","CommandLine":"reg save x"}`}},
		{"or of ands", "a:\n  A: 'alpha'\n  B: 'beta'\nb:\n  C|contains: 'gamma'\ncondition: a or b",
			[]string{`{"A":"alpha","B":"beta"}`, `{"C":"xgammax"}`}, []string{`{"A":"alpha","C":"gamm"}`}},
		{"regex without literal", "sel:\n  CommandLine|re: '\\s[a-f0-9]{8}\\s'\ncondition: sel",
			[]string{`{"CommandLine":"run 0123abcd now"}`}, []string{`{"CommandLine":"run 0123abcX now"}`}},
		{"keyword literal in a field some rule names", "kw:\n  - 'mimikatz'\nsel:\n  CommandLine|contains: 'sekurlsa'\ncondition: kw or sel",
			[]string{`{"CommandLine":"Invoke-Mimikatz"}`, `{"Other":"mimikatz"}`, `{"CommandLine":"sekurlsa::logonpasswords"}`}, []string{`{"CommandLine":"whoami"}`}},
		{"keyword and field literal both required", "kw:\n  - 'mimikatz'\nsel:\n  Image|endswith: '\\powershell.exe'\ncondition: kw and sel",
			[]string{`{"Image":"c:\\powershell.exe","ScriptBlockText":"mimikatz"}`, `{"Image":"c:\\mimikatz\\powershell.exe"}`}, []string{`{"Image":"c:\\powershell.exe"}`, `{"X":"mimikatz"}`}},
		{"all: each value through any of its windash forms", "sel:\n  CommandLine|windash|contains|all:\n    - '-urlcache'\n    - '-split'\ncondition: sel",
			[]string{`{"CommandLine":"certutil /urlcache -split -f"}`, `{"CommandLine":"certutil \u2013urlcache /split"}`}, []string{`{"CommandLine":"certutil /urlcache -f"}`}},
		{"all: each value through any of its base64 offsets", "sel:\n  CommandLine|base64offset|contains|all:\n    - 'http'\n    - 'iex'\ncondition: sel",
			[]string{`{"CommandLine":"` + base64.StdEncoding.EncodeToString([]byte("xhttp iex")) + `"}`}, []string{`{"CommandLine":"` + base64.StdEncoding.EncodeToString([]byte("xhttp ie")) + `"}`}},
		{"exists has no literal", "sel:\n  Image|exists: false\ncondition: sel",
			[]string{`{"Other":"x"}`}, []string{`{"Image":"x"}`}},
		{"case-insensitive regex with s also matches the long s", "sel:\n  CommandLine|re|i: 'werfaultsecure'\ncondition: sel",
			[]string{`{"CommandLine":"WERFAULTſECURE.exe"}`}, []string{`{"CommandLine":"werfault.exe"}`}},
	}, DefaultConfig())
}

// TestPrefilterConjunction checks that a rule whose clauses are not all
// satisfied is not evaluated at all.
func TestPrefilterConjunction(t *testing.T) {
	eng, err := compileOne(t, "sel:\n  Image|endswith: '\\reg.exe'\n  CommandLine|contains: ' save '\ncondition: sel", DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	m := eng.NewMatcher()
	for _, ev := range []string{`{"Image":"c:\\reg.exe","CommandLine":"reg query"}`, `{"Image":"c:\\x.exe","CommandLine":"x save y"}`} {
		if _, err := m.Match([]byte(ev)); err != nil {
			t.Fatal(err)
		}
	}
	if m.Evaluated != 0 {
		t.Errorf("evaluated %d times on events missing one of the rule's two literals, want 0", m.Evaluated)
	}
	if ms, _ := m.Match([]byte(`{"Image":"c:\\reg.exe","CommandLine":"reg save x"}`)); len(ms) != 1 || m.Evaluated != 1 {
		t.Errorf("with both literals: %d matches after %d evaluations, want 1 and 1", len(ms), m.Evaluated)
	}
}

// TestPrefilterRandomRules compares Match with a brute-force evaluation
// on random rules (nested and/or/not, 1 of/all of, keywords, null,
// exists, |all, regexes and wildcards over a small alphabet) and random
// events, where literals overlap and are often missing.
func TestPrefilterRandomRules(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	word := func(min, max int) string {
		var b strings.Builder
		for n := min + rng.IntN(max-min+1); n > 0; n-- {
			b.WriteByte("abcAB-/ "[rng.IntN(8)])
		}
		return b.String()
	}
	fields := []string{"A", "B", "C"}
	value := func() any {
		switch rng.IntN(13) {
		case 0:
			return nil
		case 12: // no literal at all
			return []string{"*", "?", "??"}[rng.IntN(3)]
		case 1:
			return word(1, 3) + "*" + word(1, 3)
		case 2:
			return "?" + word(1, 4)
		default:
			return word(1, 5)
		}
	}
	ident := func() any {
		if rng.IntN(8) == 0 { // keywords
			var kws []any
			for n := 1 + rng.IntN(3); n > 0; n-- {
				kws = append(kws, word(2, 4))
			}
			return kws
		}
		m := map[string]any{}
		for n := 1 + rng.IntN(2); n > 0; n-- {
			f := fields[rng.IntN(len(fields))]
			switch rng.IntN(10) {
			case 0:
				m[f+"|exists"] = rng.IntN(2) == 0
				continue
			case 1:
				m[f+"|re"] = word(1, 2) + "[ab]" + word(1, 2)
				continue
			}
			mod := []string{"", "|contains", "|startswith", "|endswith", "|contains|all", "|windash|contains", "|windash|contains|all"}[rng.IntN(7)]
			var vals []any
			for n := 1 + rng.IntN(3); n > 0; n-- {
				v := value()
				if v == nil && strings.Contains(mod, "all") {
					v = word(1, 3)
				}
				vals = append(vals, v)
			}
			m[f+mod] = vals
		}
		return m
	}
	conds := []string{"a", "a and b", "a or b", "a and not b", "not a", "1 of them", "all of them", "(a or b) and not c", "not (a and b) and c", "1 of x* and not a"}
	var rules []*Rule
	for i := 0; i < 400; i++ {
		r := &Rule{ID: itoa(i), Title: itoa(i), Logsource: Logsource{Product: "windows"}, Detection: map[string]any{}}
		for _, name := range []string{"a", "b", "c", "x1", "x2"} {
			r.Detection[name] = ident()
		}
		r.Conditions = []string{conds[rng.IntN(len(conds))]}
		rules = append(rules, r)
	}
	eng, problems := NewEngine(rules, DefaultConfig())
	for _, p := range problems {
		t.Fatalf("%s: %v", p.ID, p.Err)
	}
	m, brute := eng.NewMatcher(), eng.NewMatcher()
	matches := 0
	for k := 0; k < 3000; k++ {
		ev := map[string]any{}
		for _, f := range append(fields, "D") {
			switch rng.IntN(5) {
			case 0: // absent
			case 1:
				ev[f] = nil
			default:
				ev[f] = word(0, 12)
			}
		}
		doc, _ := json.Marshal(ev)
		got, err := m.Match(doc)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := brute.bruteForce(doc)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: prefiltered %s, brute force %s", doc, ruleTitles(got), ruleTitles(want))
		}
		matches += len(want)
	}
	t.Logf("%d matches, %.1f of %d rules evaluated per event", matches, float64(m.Evaluated)/3000, len(rules))
	if matches == 0 {
		t.Error("no rule matched: the test proves nothing")
	}
}
