package sigma

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// corrRules is one multi-document file: three detection rules and
// correlations over them.
const corrRules = `title: Failed logon
id: 11111111-0000-0000-0000-000000000001
name: failed_logon
logsource: {product: windows, service: security}
detection:
  sel: {EventID: 4625}
  condition: sel
---
title: Recon A
id: 11111111-0000-0000-0000-00000000000a
name: recon_a
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: '\whoami.exe'}
  condition: sel
---
title: Recon B
id: 11111111-0000-0000-0000-00000000000b
name: recon_b
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: '\net.exe'}
  condition: sel
---
title: Brute force
id: 22222222-0000-0000-0000-000000000001
level: high
correlation:
  type: event_count
  rules: [failed_logon]
  group-by: [TargetUserName]
  timespan: 5m
  condition: {gte: 3}
---
title: Spray
id: 22222222-0000-0000-0000-000000000002
correlation:
  type: value_count
  rules: 11111111-0000-0000-0000-000000000001
  group-by: [IpAddress]
  timespan: 10m
  condition: {field: TargetUserName, gte: 3}
---
title: Recon sequence
id: 22222222-0000-0000-0000-000000000003
correlation:
  type: temporal_ordered
  rules: [recon_a, recon_b]
  group-by: [Computer]
  timespan: 1m
---
title: Recon any order
id: 22222222-0000-0000-0000-000000000004
correlation:
  type: temporal
  rules: [recon_a, recon_b]
  group-by: [Computer]
  timespan: 1m
  generate: true
`

func corrEngine(t *testing.T, text string) (*Engine, []LoadProblem) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "c.yml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	rules, problems, err := LoadRules(dir)
	if err != nil {
		t.Fatal(err)
	}
	eng, more := NewEngine(rules, DefaultConfig())
	return eng, append(problems, more...)
}

type fields map[string]string

func (f fields) FieldValue(name string) (string, bool) {
	v, ok := f[name]
	return v, ok
}

func ruleByName(t *testing.T, e *Engine, name string) *Rule {
	t.Helper()
	for _, r := range e.Rules() {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("rule %s not loaded", name)
	return nil
}

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// titles lists the correlation titles of ms.
func titles(ms []CorrelationMatch) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Rule.Title)
	}
	return out
}

func TestCorrelationLoad(t *testing.T) {
	eng, problems := corrEngine(t, corrRules)
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	if s := eng.Stats(); s.Rules != 3 || s.Correlations != 4 {
		t.Fatalf("stats %+v, want 3 rules and 4 correlations", s)
	}
	// failed_logon is referenced only with generate: false; the recon
	// rules also by a generate: true correlation.
	if eng.Generates(ruleByName(t, eng, "failed_logon")) {
		t.Error("failed_logon generates alerts of its own")
	}
	if !eng.Generates(ruleByName(t, eng, "recon_a")) {
		t.Error("recon_a (generate: true) does not generate")
	}
	// The Matcher still reports the silent rule, for the correlator.
	m := eng.NewMatcher()
	got, err := m.Match([]byte(`{"Channel":"Security","EventID":4625,"TargetUserName":"bob"}`))
	if err != nil || len(got) != 1 || got[0].Name != "failed_logon" {
		t.Fatalf("match = %v, %v", got, err)
	}
	if v, ok := m.FieldValue("TargetUserName"); !ok || v != "bob" {
		t.Errorf("FieldValue = %q %v", v, ok)
	}
}

func TestCorrelationUnknownReference(t *testing.T) {
	text := corrRules + `---
title: Dangling
id: 22222222-0000-0000-0000-000000000009
correlation:
  type: event_count
  rules: [failed_logon, no_such_rule]
  timespan: 5m
  condition: {gte: 2}
---
title: Chained
id: 22222222-0000-0000-0000-00000000000c
correlation:
  type: event_count
  rules: [22222222-0000-0000-0000-000000000001]
  timespan: 1h
  condition: {gte: 2}
`
	eng, problems := corrEngine(t, text)
	if len(problems) != 2 {
		t.Fatalf("problems = %v, want the two correlations", problems)
	}
	if p := problems[0]; p.ID != "22222222-0000-0000-0000-000000000009" || !strings.Contains(p.Err.Error(), `unknown referenced rule "no_such_rule"`) || p.Path == "" {
		t.Errorf("dangling reference: %+v", p)
	}
	if p := problems[1]; !errors.Is(p.Err, ErrUnsupported) {
		t.Errorf("correlation of a correlation: %+v", p)
	}
	if eng.Stats().Correlations != 4 {
		t.Errorf("correlations = %d", eng.Stats().Correlations)
	}
}

func TestCorrelationEventCount(t *testing.T) {
	eng, _ := corrEngine(t, corrRules)
	c := eng.NewCorrelator(0)
	r := ruleByName(t, eng, "failed_logon")
	bob := fields{"TargetUserName": "bob", "IpAddress": "10.0.0.1"}
	var out []CorrelationMatch
	// Three failures spread over 12 minutes: never 3 within 5m.
	for i := range 3 {
		out = c.Observe(r, t0.Add(time.Duration(i)*6*time.Minute), bob, out)
	}
	if len(out) != 0 {
		t.Fatalf("spread events fired: %v", titles(out))
	}
	// Two more within 5 minutes of the last: the 3rd in the window fires.
	base := t0.Add(12 * time.Minute)
	if out = c.Observe(r, base.Add(time.Minute), bob, out); len(out) != 0 {
		t.Fatalf("fired on the 2nd: %v", titles(out))
	}
	out = c.Observe(r, base.Add(2*time.Minute), bob, out)
	if len(out) != 1 || out[0].Rule.Title != "Brute force" {
		t.Fatalf("3rd in window: %v", titles(out))
	}
	m := out[0]
	if m.Count != 3 || !slices.Equal(m.GroupBy, []string{"bob"}) || !slices.Equal(m.Rules, []string{r.ID}) ||
		!m.First.Equal(base) || !m.Last.Equal(base.Add(2*time.Minute)) {
		t.Errorf("match %+v", m)
	}
	// Still above the threshold: no second alert for the same crossing.
	if out = c.Observe(r, base.Add(3*time.Minute), bob, out[:0]); len(out) != 0 {
		t.Errorf("fired again while above the threshold: %v", titles(out))
	}
	// A lone failure long after: below, re-armed; then a new burst fires.
	c.Observe(r, base.Add(time.Hour), bob, nil)
	c.Observe(r, base.Add(time.Hour+time.Second), bob, nil)
	if out = c.Observe(r, base.Add(time.Hour+2*time.Second), bob, out[:0]); len(out) != 1 {
		t.Errorf("new crossing did not fire: %v", titles(out))
	}
}

func TestCorrelationGroupIsolation(t *testing.T) {
	eng, _ := corrEngine(t, corrRules)
	c := eng.NewCorrelator(0)
	r := ruleByName(t, eng, "failed_logon")
	var out []CorrelationMatch
	for i, u := range []string{"bob", "alice", "bob", "alice", "carol"} {
		out = c.Observe(r, t0.Add(time.Duration(i)*time.Second), fields{"TargetUserName": u, "IpAddress": "10.0.0." + u}, out)
	}
	if len(out) != 0 {
		t.Fatalf("fired across groups: %v", titles(out))
	}
	out = c.Observe(r, t0.Add(10*time.Second), fields{"TargetUserName": "alice", "IpAddress": "10.0.0.9"}, out)
	if len(out) != 1 || out[0].GroupBy[0] != "alice" {
		t.Fatalf("alice's 3rd: %+v", out)
	}
}

func TestCorrelationValueCount(t *testing.T) {
	eng, _ := corrEngine(t, corrRules)
	c := eng.NewCorrelator(0)
	r := ruleByName(t, eng, "failed_logon")
	var out []CorrelationMatch
	ip := "10.9.9.9"
	for i, u := range []string{"bob", "bob", "alice", "alice", "bob"} {
		out = c.Observe(r, t0.Add(time.Duration(i)*time.Second), fields{"TargetUserName": u, "IpAddress": ip}, out)
	}
	for _, m := range out {
		if m.Rule.Title == "Spray" {
			t.Fatalf("2 distinct users fired: %+v", m)
		}
	}
	// A match without the counted field is not a value.
	c.Observe(r, t0.Add(6*time.Second), fields{"IpAddress": ip}, nil)
	out = c.Observe(r, t0.Add(7*time.Second), fields{"TargetUserName": "carol", "IpAddress": ip}, out[:0])
	var spray []CorrelationMatch
	for _, m := range out {
		if m.Rule.Title == "Spray" {
			spray = append(spray, m)
		}
	}
	if len(spray) != 1 || spray[0].Count != 3 || spray[0].GroupBy[0] != ip {
		t.Fatalf("3rd distinct user: %+v", out)
	}
}

func TestCorrelationTemporal(t *testing.T) {
	eng, _ := corrEngine(t, corrRules)
	a, b := ruleByName(t, eng, "recon_a"), ruleByName(t, eng, "recon_b")
	h1, h2 := fields{"Computer": "ws-1"}, fields{"Computer": "ws-2"}

	c := eng.NewCorrelator(0)
	var out []CorrelationMatch
	out = c.Observe(a, t0, h1, out)
	out = c.Observe(b, t0.Add(10*time.Second), h2, out) // other host
	if len(out) != 0 {
		t.Fatalf("fired across hosts: %v", titles(out))
	}
	out = c.Observe(b, t0.Add(20*time.Second), h1, out)
	slices.Sort(titles(out))
	if got := titles(out); len(got) != 2 || !slices.Contains(got, "Recon sequence") || !slices.Contains(got, "Recon any order") {
		t.Fatalf("A then B on ws-1: %v", got)
	}
	for _, m := range out {
		if !slices.Equal(m.Rules, []string{a.ID, b.ID}) || m.GroupBy[0] != "ws-1" {
			t.Errorf("%s: %+v", m.Rule.Title, m)
		}
	}

	// B then A: temporal fires, temporal_ordered does not.
	c = eng.NewCorrelator(0)
	out = c.Observe(b, t0, h1, out[:0])
	out = c.Observe(a, t0.Add(time.Second), h1, out)
	if got := titles(out); len(got) != 1 || got[0] != "Recon any order" {
		t.Fatalf("B then A: %v", got)
	}

	// Beyond the window: nothing.
	c = eng.NewCorrelator(0)
	out = c.Observe(a, t0, h1, out[:0])
	out = c.Observe(b, t0.Add(2*time.Minute), h1, out)
	if len(out) != 0 {
		t.Fatalf("A and B 2m apart (window 1m): %v", titles(out))
	}
}

func TestCorrelationMaxGroups(t *testing.T) {
	eng, _ := corrEngine(t, corrRules)
	c := eng.NewCorrelator(2)
	r := ruleByName(t, eng, "failed_logon")
	for i, u := range []string{"a", "b", "c", "d"} {
		c.Observe(r, t0.Add(time.Duration(i)*time.Second), fields{"TargetUserName": u, "IpAddress": "x"}, nil)
	}
	// event_count: a, b evicted; value_count has a single group (one ip).
	if c.Evictions() != 2 || c.Groups() != 3 {
		t.Errorf("evictions %d groups %d, want 2 and 3", c.Evictions(), c.Groups())
	}
	// Groups past their window expire.
	c.Observe(r, t0.Add(time.Hour), fields{"TargetUserName": "e", "IpAddress": "y"}, nil)
	if c.Groups() != 2 {
		t.Errorf("groups after an hour: %d, want 2", c.Groups())
	}
}

func TestCorrelationSnapshotRestore(t *testing.T) {
	eng, _ := corrEngine(t, corrRules)
	c := eng.NewCorrelator(0)
	r, a := ruleByName(t, eng, "failed_logon"), ruleByName(t, eng, "recon_a")
	bob := fields{"TargetUserName": "bob", "IpAddress": "10.0.0.1"}
	c.Observe(r, t0, bob, nil)
	c.Observe(r, t0.Add(time.Minute), bob, nil)
	c.Observe(a, t0.Add(time.Minute), fields{"Computer": "ws-1"}, nil)
	if !c.Changed() {
		t.Fatal("not changed")
	}
	snap := c.Snapshot()
	if c.Changed() {
		t.Fatal("changed after Snapshot")
	}

	// A new engine (a restart) from the same rules continues the windows.
	eng2, _ := corrEngine(t, corrRules)
	c2 := eng2.NewCorrelator(0)
	n, err := c2.Restore(snap)
	if err != nil || n != 4 {
		t.Fatalf("restore: %d %v", n, err)
	}
	out := c2.Observe(ruleByName(t, eng2, "failed_logon"), t0.Add(2*time.Minute), bob, nil)
	if len(out) != 1 || out[0].Rule.Title != "Brute force" || !out[0].First.Equal(t0) {
		t.Fatalf("3rd after restore: %+v", out)
	}
	out = c2.Observe(ruleByName(t, eng2, "recon_b"), t0.Add(90*time.Second), fields{"Computer": "ws-1"}, nil)
	if len(out) != 2 {
		t.Fatalf("recon_b after restore: %v", titles(out))
	}
	if again := c2.Snapshot(); len(again) == 0 {
		t.Fatal("empty snapshot")
	}

	// A changed definition starts empty.
	eng3, _ := corrEngine(t, strings.Replace(corrRules, "condition: {gte: 3}", "condition: {gte: 4}", 1))
	c3 := eng3.NewCorrelator(0)
	if n, err := c3.Restore(snap); err != nil || n != 3 {
		t.Fatalf("restore into a changed rule set: %d %v, want 3", n, err)
	}
	if _, err := c3.Restore([]byte("{")); err == nil {
		t.Error("garbage restored")
	}
}

func TestParseRulesMultiDocument(t *testing.T) {
	rules, problems := ParseRules([]byte(corrRules + "---\ntitle: bad\ncorrelation:\n  type: event_count\n  rules: [x]\n  timespan: 5q\n  condition: {gte: 1}\n---\n"))
	if len(rules) != 7 || len(problems) != 1 || !errors.Is(problems[0].Err, ErrUnsupported) {
		t.Fatalf("rules %d problems %v", len(rules), problems)
	}
	c := rules[3].Correlation
	if c == nil || c.Type != "event_count" || c.Timespan != 5*time.Minute || c.Op != "gte" || c.Value != 3 || c.Generate {
		t.Errorf("brute force: %+v", c)
	}
	if c := rules[5].Correlation; c.Op != "gte" || c.Value != 2 {
		t.Errorf("temporal default condition: %+v", c)
	}
	if _, err := ParseRule([]byte(corrRules)); err == nil {
		t.Error("ParseRule accepted several documents")
	}
}
