package sigma

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/vigilhq/vigil/sigma/sigmatest"
)

// ruleDirs are the SigmaHQ rule sets the regression cases come from.
var ruleDirs = []string{"rules", "rules-emerging-threats", "rules-threat-hunting", "rules-placeholder"}

func loadSigmaHQ(t testing.TB, data string) (*Engine, int, []LoadProblem) {
	t.Helper()
	var dirs []string
	for _, d := range ruleDirs {
		dirs = append(dirs, filepath.Join(data, d))
	}
	rules, problems, err := LoadRules(dirs...)
	if err != nil {
		t.Fatal(err)
	}
	eng, more := NewEngine(rules, DefaultConfig())
	return eng, len(rules) + len(problems), append(problems, more...)
}

type regressionCase struct {
	dir    string
	ruleID string
	title  string
	files  []string
}

func regressionCases(t testing.TB, data string) []regressionCase {
	t.Helper()
	var cases []regressionCase
	err := filepath.WalkDir(filepath.Join(data, "regression_data"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.Name() != "info.yml" {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var info struct {
			RuleMetadata []struct {
				ID    string `yaml:"id"`
				Title string `yaml:"title"`
			} `yaml:"rule_metadata"`
			Tests []struct {
				Type string `yaml:"type"`
			} `yaml:"regression_tests_info"`
		}
		if err := yaml.Unmarshal(raw, &info); err != nil {
			return err
		}
		if len(info.RuleMetadata) == 0 || len(info.Tests) == 0 {
			return nil // no active test (e.g. a commented-out raw case)
		}
		files, _ := filepath.Glob(filepath.Join(filepath.Dir(p), "*.json"))
		if len(files) == 0 {
			return nil
		}
		cases = append(cases, regressionCase{dir: filepath.Dir(p), ruleID: info.RuleMetadata[0].ID, title: info.RuleMetadata[0].Title, files: files})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cases
}

var detail = regexp.MustCompile(`([%"])[^%"]*[%"]`)

// regressionFloor is the number of cases that must pass.
const regressionFloor = 202

func TestRegression(t *testing.T) {
	data := sigmatest.Data(t)
	eng, total, problems := loadSigmaHQ(t, data)
	reasons := map[string]int{}
	for _, p := range problems {
		r := p.Err.Error()
		if errors.Is(p.Err, ErrUnsupported) {
			// Group by reason, not by the placeholder or regex named.
			r = detail.ReplaceAllString(r[strings.Index(r, "unsupported"):], "$1…$1")
		}
		reasons[r]++
	}
	st := eng.Stats()
	t.Logf("rules: %d files, %d compiled, %d reported (%d literals, %d anchorless rules)", total, st.Rules, len(problems), st.Literals, st.AnchorlessRules)
	keys := make([]string, 0, len(reasons))
	for k := range reasons {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("  %4d x %s", reasons[k], k)
	}
	byID := map[string]bool{}
	for _, r := range eng.Rules() {
		byID[r.ID] = true
	}
	cases := regressionCases(t, data)
	m := eng.NewMatcher()
	passed := 0
	var failed []string
	for _, c := range cases {
		name, _ := filepath.Rel(filepath.Join(data, "regression_data"), c.dir)
		if !byID[c.ruleID] {
			failed = append(failed, name+": rule "+c.ruleID+" not loaded")
			continue
		}
		fired := false
		for _, f := range c.files {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			err = EachDocument(fh, func(i int, doc []byte) error {
				ms, err := m.Match(doc)
				if err != nil {
					return err
				}
				var extras []string
				for _, r := range ms {
					if r.ID == c.ruleID {
						fired = true
					} else {
						extras = append(extras, r.Title)
					}
				}
				if len(extras) > 0 {
					t.Logf("%s event %d: also fired: %s", name, i, strings.Join(extras, "; "))
				}
				return nil
			})
			fh.Close()
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		}
		if fired {
			passed++
		} else {
			failed = append(failed, name+": "+c.title+" did not fire")
		}
	}
	for _, f := range failed {
		t.Logf("FAIL %s", f)
	}
	t.Logf("regression: %d/%d cases", passed, len(cases))
	if passed < regressionFloor {
		t.Errorf("regression: %d/%d cases pass, want at least %d", passed, len(cases), regressionFloor)
	}
}
