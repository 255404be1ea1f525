package sigma

import (
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"
)

// Config is what an Engine needs besides rules.
type Config struct {
	// Mapping maps Sigma field names onto event keys.
	Mapping FieldMapping `yaml:"mapping"`
	// Placeholders holds the values of %name% placeholders for |expand.
	// A rule naming a placeholder missing here is reported unsupported.
	Placeholders map[string][]string `yaml:"placeholders"`
	// Logsources routes rules by logsource; nil means WindowsLogsources.
	Logsources *LogsourceTable `yaml:"-"`
}

// DefaultConfig maps Windows event JSON (evtx_dump shape) and flat events.
func DefaultConfig() Config {
	return Config{Mapping: WindowsEvtxMapping()}
}

// LoadConfig reads a YAML config: `mapping:` (aliases, strip_prefixes) and
// `placeholders:` (name: [values]). A `mapping:` section replaces the
// default Windows mapping as a whole; without one the default stays.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("sigma config: %w", err)
	}
	var raw struct {
		Mapping      *FieldMapping       `yaml:"mapping"`
		Placeholders map[string][]string `yaml:"placeholders"`
	}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return cfg, fmt.Errorf("sigma config %s: %w", path, err)
	}
	if raw.Mapping != nil {
		cfg.Mapping = *raw.Mapping
	}
	cfg.Placeholders = raw.Placeholders
	return cfg, nil
}
