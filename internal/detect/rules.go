package detect

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vigilhq/vigil/sigma"
)

// ruleSet is one loaded generation of rules.
type ruleSet struct {
	eng      *sigma.Engine
	gen      int
	problems []sigma.LoadProblem
}

// DefaultSigmaConfig is the streaming mode's config without --config:
// sigma.DefaultConfig (evtx_dump and flat Windows events) plus the shape of
// the OCSF events `vigil ingest` writes, which keep the source's own fields
// in unmapped (unmapped.Image is the Sigma field Image) and its channel,
// event id and provider in metadata (log_name, event_code, log_provider),
// so SigmaHQ's Windows rules route and match on them.
func DefaultSigmaConfig() sigma.Config {
	cfg := sigma.DefaultConfig()
	m := &cfg.Mapping
	m.StripPrefixes = append(m.StripPrefixes, "unmapped.")
	m.Aliases["Channel"] = append(m.Aliases["Channel"], "metadata.log_name")
	m.Aliases["EventID"] = append(m.Aliases["EventID"], "metadata.event_code")
	m.Aliases["Provider_Name"] = append(m.Aliases["Provider_Name"], "metadata.log_provider")
	m.Aliases["Computer"] = append(m.Aliases["Computer"], "device.hostname")
	return cfg
}

// LoadEngine reads the Sigma config (configPath, or DefaultSigmaConfig
// when empty) and the rules under dirs, and compiles them. Rules that do
// not parse or compile are returned as problems; an unreadable path, a
// bad config or a set with no usable rule is an error.
func LoadEngine(dirs []string, configPath string) (*sigma.Engine, []sigma.LoadProblem, error) {
	cfg := DefaultSigmaConfig()
	if configPath != "" {
		loaded, err := sigma.LoadConfig(configPath)
		if err != nil {
			return nil, nil, err
		}
		// A config without a mapping section keeps the streaming mapping
		// (sigma.LoadConfig would fall back to the offline one).
		var keys map[string]any
		raw, _ := os.ReadFile(configPath) // read and parsed by LoadConfig already
		_ = yaml.Unmarshal(raw, &keys)
		if _, ok := keys["mapping"]; !ok {
			loaded.Mapping = cfg.Mapping
		}
		cfg = loaded
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
