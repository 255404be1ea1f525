package sigma

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Logsource is a rule's logsource section (Sigma spec 2.x).
type Logsource struct {
	Product  string `yaml:"product"`
	Category string `yaml:"category"`
	Service  string `yaml:"service"`
}

// Rule is a parsed Sigma detection rule, before compilation.
type Rule struct {
	ID          string    `yaml:"id"`
	Title       string    `yaml:"title"`
	Status      string    `yaml:"status"`
	Level       string    `yaml:"level"`
	Description string    `yaml:"description"`
	Author      string    `yaml:"author"`
	Tags        []string  `yaml:"tags"`
	Logsource   Logsource `yaml:"logsource"`
	// Name is the optional name correlation rules reference a rule by
	// (besides its id).
	Name string `yaml:"name"`
	// Path is the file the rule came from, if any.
	Path string `yaml:"-"`

	// Detection holds the search identifiers; each is a map (field
	// matches), a list of maps (OR of maps) or a list of keywords.
	Detection  map[string]any `yaml:"-"`
	Conditions []string       `yaml:"-"`

	// Correlation is set for correlation rules (which have no detection).
	Correlation *Correlation `yaml:"-"`
}

type rawRule struct {
	Rule        `yaml:",inline"`
	Detection   map[string]any  `yaml:"detection"`
	Correlation *rawCorrelation `yaml:"correlation"`
	Generate    *bool           `yaml:"generate"`
	Filter      any             `yaml:"filter"`
	Action      string          `yaml:"action"`
}

// ParseRule parses one Sigma rule document. Documents that parse but use
// features the engine does not evaluate (filter rules, rule collection
// actions) come back with an error wrapping ErrUnsupported, so callers can
// report them. A file of several documents is read with ParseRules.
func ParseRule(data []byte) (*Rule, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var raw rawRule
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("parse rule: %w", err)
	}
	var extra rawRule
	if err := dec.Decode(&extra); err == nil {
		r := raw.Rule
		return &r, errors.New("parse rule: several YAML documents (use ParseRules)")
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse rule: %w", err)
	}
	return fromRaw(&raw)
}

// ParseRules parses a file of one or more YAML documents (separated by
// ---), each a Sigma rule: a correlation rule and the rules it references
// may live in one file. Each document that cannot be used is a problem
// (Path left empty); the others are returned.
func ParseRules(data []byte) ([]*Rule, []LoadProblem) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var rules []*Rule
	var problems []LoadProblem
	for i := 0; ; i++ {
		var raw rawRule
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// The decoder cannot resynchronise after a syntax error.
			problems = append(problems, LoadProblem{Err: fmt.Errorf("parse rule (document %d): %w", i+1, err)})
			break
		}
		if raw.Title == "" && raw.ID == "" && raw.Detection == nil && raw.Correlation == nil && raw.Filter == nil && raw.Action == "" {
			continue // empty document (a trailing ---)
		}
		r, err := fromRaw(&raw)
		if err != nil {
			p := LoadProblem{Err: err}
			if r != nil {
				p.ID, p.Title = r.ID, r.Title
			}
			problems = append(problems, p)
			continue
		}
		rules = append(rules, r)
	}
	return rules, problems
}

func fromRaw(raw *rawRule) (*Rule, error) {
	r := raw.Rule
	switch {
	case raw.Correlation != nil:
		c, err := raw.Correlation.parse(raw.Generate)
		if err != nil {
			return &r, err
		}
		r.Correlation = c
		return &r, nil
	case raw.Filter != nil:
		return &r, unsupported("filter rule")
	case raw.Action != "":
		return &r, unsupported("rule collection action " + raw.Action)
	case raw.Detection == nil:
		return &r, errors.New("parse rule: no detection section")
	}
	r.Detection = map[string]any{}
	for k, v := range raw.Detection {
		if k == "condition" {
			switch c := v.(type) {
			case string:
				r.Conditions = []string{c}
			case []any:
				for _, x := range c {
					s, ok := x.(string)
					if !ok {
						return &r, fmt.Errorf("parse rule: condition list holds %T", x)
					}
					r.Conditions = append(r.Conditions, s)
				}
			default:
				return &r, fmt.Errorf("parse rule: condition is %T", v)
			}
			continue
		}
		if k == "timeframe" {
			return &r, unsupported("timeframe (aggregation)")
		}
		r.Detection[k] = v
	}
	if len(r.Conditions) == 0 {
		return &r, errors.New("parse rule: no condition")
	}
	return &r, nil
}

// ErrUnsupported marks rules that are valid Sigma but use a feature this
// engine does not evaluate; they are reported, never skipped silently.
var ErrUnsupported = errors.New("unsupported")

func unsupported(reason string) error { return fmt.Errorf("%w: %s", ErrUnsupported, reason) }

// LoadProblem is a rule file that could not be parsed or compiled.
type LoadProblem struct {
	Path  string
	ID    string
	Title string
	Err   error
}

func (p LoadProblem) Error() string { return fmt.Sprintf("%s: %v", p.Path, p.Err) }

// LoadRules reads every *.yml / *.yaml file under the given files or
// directories. Files that fail to parse are returned as problems with the
// reason; an unreadable path is an error.
func LoadRules(paths ...string) ([]*Rule, []LoadProblem, error) {
	var files []string
	for _, root := range paths {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".yaml")) {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("load rules from %s: %w", root, err)
		}
	}
	sort.Strings(files)
	var rules []*Rule
	var problems []LoadProblem
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("load rules: %w", err)
		}
		rs, ps := ParseRules(data)
		for _, p := range ps {
			p.Path = f
			problems = append(problems, p)
		}
		for _, r := range rs {
			r.Path = f
			rules = append(rules, r)
		}
	}
	return rules, problems, nil
}
