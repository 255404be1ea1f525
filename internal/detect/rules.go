package detect

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/vigilhq/vigil/sigma"
)

// ruleSet is one loaded generation of rules.
type ruleSet struct {
	eng      *sigma.Engine
	gen      int
	problems []sigma.LoadProblem
}

// DefaultSigmaConfig is the config without --config: sigma.DefaultConfig,
// the one mapping and routing table offline detection uses too, so a
// dump of a topic evaluated offline gives the alerts streaming gives.
func DefaultSigmaConfig() sigma.Config { return sigma.DefaultConfig() }

// LoadEngine reads the Sigma config (configPath, or DefaultSigmaConfig
// when empty) and the rules under dirs, and compiles them. Rules that do
// not parse or compile are returned as problems; an unreadable path, a
// bad config or a set with no usable rule is an error.
func LoadEngine(dirs []string, configPath string) (*sigma.Engine, []sigma.LoadProblem, error) {
	cfg := DefaultSigmaConfig()
	if configPath != "" {
		var err error
		if cfg, err = sigma.LoadConfig(configPath); err != nil {
			return nil, nil, err
		}
	}
	rules, problems, err := sigma.LoadRules(dirs...)
	if err != nil {
		return nil, nil, err
	}
	eng, more := sigma.NewEngine(rules, cfg)
	problems = append(problems, more...)
	if eng.Stats().Rules == 0 {
		return nil, problems, fmt.Errorf("no usable rule under %s (%d not loaded)", strings.Join(dirs, ", "), len(problems))
	}
	return eng, problems, nil
}

// SplitProblems separates the rules that did not load from those that
// loaded but whose logsource matches no configured source
// (sigma.ErrNoSource): those run only on events no source claims.
func SplitProblems(ps []sigma.LoadProblem) (notLoaded, noSource []sigma.LoadProblem) {
	for _, p := range ps {
		if errors.Is(p.Err, sigma.ErrNoSource) {
			noSource = append(noSource, p)
		} else {
			notLoaded = append(notLoaded, p)
		}
	}
	return notLoaded, noSource
}

// NoSourceLine is the load-time report of such a rule:
// "rule PATH: logsource product=foo service=bar matches no configured
// source" (the rule's id when it has no file).
func NoSourceLine(p sigma.LoadProblem) string {
	name := p.Path
	if name == "" {
		name = p.ID
	}
	return fmt.Sprintf("rule %s: %v", name, p.Err)
}

var detail = regexp.MustCompile(`([%"])[^%"]*[%"]`)

// reasonOf groups a load problem by its reason, without the placeholder,
// regex or YAML detail that differs between rules.
func reasonOf(p sigma.LoadProblem) string {
	s := p.Err.Error()
	if i := strings.Index(s, "unsupported"); i >= 0 && errors.Is(p.Err, sigma.ErrUnsupported) {
		return detail.ReplaceAllString(s[i:], "$1…$1")
	}
	if i := strings.Index(s, ":"); i > 0 {
		return s[:i] + " error"
	}
	return s
}

// Summary counts load problems per reason, most frequent first:
// "12 x unsupported: ...; 1 x parse rule error".
func Summary(problems []sigma.LoadProblem) string {
	n := map[string]int{}
	for _, p := range problems {
		n[reasonOf(p)]++
	}
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if n[keys[i]] != n[keys[j]] {
			return n[keys[i]] > n[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d x %s", n[k], k)
	}
	return strings.Join(parts, "; ")
}

// fingerprint hashes the name, size and modification time of every rule
// file under dirs and of the config file, so a poll sees any change
// (added, removed, rewritten file) without an fsnotify dependency.
func fingerprint(dirs []string, configPath string) (uint64, error) {
	h := fnv.New64a()
	add := func(p string, info fs.FileInfo) {
		fmt.Fprintf(h, "%s\x00%d\x00%d\n", p, info.Size(), info.ModTime().UnixNano())
	}
	for _, root := range dirs {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !(strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			add(p, info)
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	if configPath != "" {
		if err := walkOne(configPath, add); err != nil {
			return 0, err
		}
	}
	return h.Sum64(), nil
}

func walkOne(p string, add func(string, fs.FileInfo)) error {
	return filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		add(q, info)
		return nil
	})
}
