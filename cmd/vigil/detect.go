package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vigilhq/vigil/sigma"
)

// detectMatch is one NDJSON output line of `vigil detect`.
type detectMatch struct {
	RuleID    string          `json:"rule_id"`
	RuleTitle string          `json:"rule_title"`
	Level     string          `json:"level,omitempty"`
	File      string          `json:"file"`
	Index     int             `json:"index"`
	Event     json.RawMessage `json:"event"`
}

// detect runs Sigma rules over JSON event files offline:
// vigil detect --rules DIR [--config FILE] PATH...
func detect(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil detect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ruleDirs multiFlag
	fs.Var(&ruleDirs, "rules", "Sigma rule file or directory (repeatable)")
	configPath := fs.String("config", "", "YAML config: field mapping and |expand placeholders")
	quiet := fs.Bool("quiet", false, "do not list unsupported rules on stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: vigil detect --rules DIR [--config FILE] PATH...\n\nEvaluates Sigma rules over JSON events in files or directories (one\ndocument, NDJSON or concatenated documents per file) and prints one NDJSON\nline per match.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(ruleDirs) == 0 || fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	cfg := sigma.DefaultConfig()
	if *configPath != "" {
		var err error
		if cfg, err = sigma.LoadConfig(*configPath); err != nil {
			fmt.Fprintf(stderr, "vigil detect: %v\n", err)
			return 2
		}
	}
	rules, problems, err := sigma.LoadRules(ruleDirs...)
	if err != nil {
		fmt.Fprintf(stderr, "vigil detect: %v\n", err)
		return 1
	}
	eng, more := sigma.NewEngine(rules, cfg)
	problems = append(problems, more...)
	if !*quiet {
		for _, p := range problems {
			fmt.Fprintf(stderr, "vigil detect: rule not loaded: %v\n", p)
		}
	}
	fmt.Fprintf(stderr, "vigil detect: %d rules loaded, %d not loaded\n", eng.Stats().Rules, len(problems))

	files, err := eventFiles(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "vigil detect: %v\n", err)
		return 1
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	m := eng.NewMatcher()
	status := 0
	for _, f := range files {
		if err := detectFile(m, f, out); err != nil {
			fmt.Fprintf(stderr, "vigil detect: %v\n", err)
			status = 1
		}
	}
	return status
}

func detectFile(m *sigma.Matcher, path string, out *bufio.Writer) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	enc := json.NewEncoder(out)
	var compact bytes.Buffer
	err = sigma.EachDocument(bufio.NewReader(fh), func(i int, doc []byte) error {
		matches, err := m.Match(doc)
		if err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		if len(matches) == 0 {
			return nil
		}
		compact.Reset()
		if err := json.Compact(&compact, doc); err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		for _, r := range matches {
			line := detectMatch{RuleID: r.ID, RuleTitle: r.Title, Level: r.Level, File: path, Index: i, Event: compact.Bytes()}
			if err := enc.Encode(line); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// eventFiles expands directories into the files under them (sorted);
// a path that cannot be read is an error before any output.
func eventFiles(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		var under []string
		err = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(q, ".json") || strings.HasSuffix(q, ".ndjson") || strings.HasSuffix(q, ".jsonl")) {
				under = append(under, q)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		sort.Strings(under)
		files = append(files, under...)
	}
	return files, nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }
