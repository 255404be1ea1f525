package sigma

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is what an Engine needs besides rules.
type Config struct {
	// Mapping maps Sigma field names onto event keys.
	Mapping FieldMapping `yaml:"mapping"`
	// Placeholders holds the values of %name% placeholders for |expand.
	// A rule naming a placeholder missing here is reported unsupported.
	Placeholders map[string][]string `yaml:"placeholders"`
	// Logsources routes rules by logsource; nil means DefaultLogsources.
	Logsources *LogsourceTable `yaml:"-"`
	// Suppression folds identical findings (see Suppression); the engine
	// resolves which entry holds for each rule (Engine.Suppression) and
	// makes its group-by fields known to every event.
	Suppression []Suppression `yaml:"suppression"`
}

// Suppression is one alert-hygiene entry of the config: the findings of
// the rules it names that have the same values of GroupBy (Sigma field
// names, through the one mapping) within Window of the first are one
// finding with a count. Rules holds rule ids, names or titles, "*" for
// every rule (also when empty); the first entry naming a rule is its.
type Suppression struct {
	Rules   []string      `yaml:"rules"`
	Window  time.Duration `yaml:"window"`
	GroupBy []string      `yaml:"group_by"`
}

// applies reports whether s names r.
func (s *Suppression) applies(r *Rule) bool {
	if len(s.Rules) == 0 {
		return true
	}
	for _, n := range s.Rules {
		if n == "*" || n == r.ID || (r.Name != "" && n == r.Name) || n == r.Title {
			return true
		}
	}
	return false
}

// DefaultConfig is the mapping and routing offline and streaming
// detection share (DefaultMapping, DefaultLogsources).
func DefaultConfig() Config {
	return Config{Mapping: DefaultMapping(), Logsources: DefaultLogsources()}
}

// LoadConfig reads a YAML config over DefaultConfig:
//
//   - mapping: (aliases, strip_prefixes, remove_spaces,
//     dots_as_underscores, logsources) replaces the default mapping as a
//     whole;
//   - sources: adds sources to the routing table, each replacing the
//     default source of the same name;
//   - placeholders: (name: [values]) for |expand;
//   - suppression: ([{rules, window, group_by}]) alert hygiene.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("sigma config: %w", err)
	}
	var raw struct {
		Mapping      *FieldMapping       `yaml:"mapping"`
		Sources      []Source            `yaml:"sources"`
		Placeholders map[string][]string `yaml:"placeholders"`
		Suppression  []Suppression       `yaml:"suppression"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a misspelt key must not silently change nothing
	if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("sigma config %s: %w", path, err)
	}
	if raw.Mapping != nil {
		cfg.Mapping = *raw.Mapping
	}
	for _, s := range raw.Sources {
		if s.Name == "" {
			return cfg, fmt.Errorf("sigma config %s: a source without a name", path)
		}
		if len(s.Match) == 0 {
			return cfg, fmt.Errorf("sigma config %s: source %q has no match", path, s.Name)
		}
	}
	for i, s := range raw.Suppression {
		if s.Window <= 0 {
			return cfg, fmt.Errorf("sigma config %s: suppression entry %d: window must be positive (10m, 1h)", path, i+1)
		}
	}
	cfg.Suppression = raw.Suppression
	cfg.Logsources = cfg.Logsources.With(raw.Sources...)
	cfg.Placeholders = raw.Placeholders
	return cfg, nil
}
