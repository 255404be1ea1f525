package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigilhq/vigil/internal/clientsec"
	"github.com/vigilhq/vigil/internal/cliflag"
	"github.com/vigilhq/vigil/internal/config"
	detectpkg "github.com/vigilhq/vigil/internal/detect"
	"github.com/vigilhq/vigil/internal/eventfile"
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

// detect runs Sigma rules over JSON event files offline
// (vigil detect --rules DIR [--config FILE] PATH...), or, with --brokers and
// no PATH, over telemetry topics as a consumer group writing OCSF Detection
// Findings to an alerts topic (internal/detect).
func detect(args []string, stdout, stderr io.Writer) int {
	return detectMain(args, stdout, stderr, os.Getenv)
}

func detectMain(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("vigil detect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ruleDirs multiFlag
	fs.Var(&ruleDirs, "rules", "Sigma rule file or directory (repeatable; default "+defaultRules+")")
	configPath := fs.String("config", "", "YAML config: field mapping and |expand placeholders")
	quiet := fs.Bool("quiet", false, "offline: do not list unsupported rules on stderr")
	brokers := fs.String("brokers", getenv("VIGIL_BROKERS"), "streaming: comma-separated seed brokers (VIGIL_BROKERS); with no PATH, consume topics instead of files")
	group := fs.String("group", "vigil-detect", "streaming: consumer group")
	topics := fs.String("topics", strings.Join(detectpkg.DefaultTopics(), ","), "streaming: comma-separated telemetry topics")
	topicRegex := fs.String("topic-regex", "", "streaming: consume every topic matching this regular expression instead of --topics")
	alerts := fs.String("alerts-topic", "alerts", "streaming: topic for OCSF Detection Findings")
	stateTopic := fs.String("state-topic", "detect.state", "streaming: topic for the correlation rules' window state")
	maxGroups := fs.Int("max-groups", sigma.DefaultMaxGroups, "streaming: groups kept per correlation rule (the least recently updated is evicted)")
	start := fs.String("start", "earliest", "streaming: where a group without committed offsets starts: earliest or latest")
	session := fs.Duration("session-timeout", 45*time.Second, "streaming: group session timeout (how long a dead detector's partitions wait)")
	watch := fs.Duration("watch-interval", 3*time.Second, "streaming: how often the rule directories are checked for changes (0 disables; SIGHUP always reloads)")
	logLevel := fs.String("log-level", "info", "streaming: debug, info, warn, error")
	sec := clientsec.Register(fs, getenv)
	pidFile := fs.String("pid-file", "", "streaming: write this process's id to FILE (for kill -HUP \"$(cat FILE)\"); removed on exit")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: vigil detect [--rules DIR] [--config FILE] PATH...
       vigil detect --brokers HOST:PORT [--rules DIR] [--group G] [--topics T1,T2 | --topic-regex RE] [--alerts-topic T]

With PATHs (files, directories, or - for stdin), evaluates Sigma rules over
the JSON events of every file (one document, NDJSON or concatenated
documents, plain or gzip, any file name; binary files are skipped with a
warning, lines that are not JSON are counted and skipped) and prints one
NDJSON line per match, then a summary line on stderr.

With --brokers and no PATH, consumes the telemetry topics as a consumer
group and writes every match to the alerts topic as an OCSF Detection
Finding (class 2004), at least once: offsets are committed only after the
batch's alerts are acknowledged. Sigma correlation rules keep their windows
in the state topic, so a restart continues them. Rules reload on SIGHUP and
when the rule files change.`)
		fs.PrintDefaults()
	}
	if ok, code := cliflag.Parse(fs, args, stderr); !ok {
		return code
	}
	if fs.NArg() == 0 && *brokers == "" {
		cliflag.Errorf(stderr, fs.Name(), "name event files (or - for stdin), or --brokers to consume topics")
		return cliflag.ExitUsage
	}
	if len(ruleDirs) == 0 {
		if _, err := os.Stat(defaultRules); err != nil {
			cliflag.Errorf(stderr, fs.Name(), "no --rules given and %s: copy the SigmaHQ rule folders you want (github.com/SigmaHQ/sigma, rules/...) into %s/", err, defaultRules)
			return cliflag.ExitUsage
		}
		ruleDirs = multiFlag{defaultRules}
	}
	if fs.NArg() == 0 {
		level, err := config.ParseLevel(*logLevel)
		if err != nil {
			cliflag.Errorf(stderr, fs.Name(), "%v", err)
			return cliflag.ExitUsage
		}
		clientOpts, code := clientOptions(stderr, fs.Name(), sec)
		if code != 0 {
			return code
		}
		cfg := detectpkg.Config{ClientOpts: clientOpts,
			Brokers: strings.Split(*brokers, ","), Group: *group, AlertsTopic: *alerts, StateTopic: *stateTopic, MaxGroups: *maxGroups,
			RuleDirs: ruleDirs, ConfigPath: *configPath, SessionTimeout: *session, WatchInterval: *watch,
		}
		if *watch == 0 {
			cfg.WatchInterval = -1
		}
		switch *start {
		case "earliest":
		case "latest":
			cfg.FromLatest = true
		default:
			cliflag.Errorf(stderr, fs.Name(), "--start %q: want earliest or latest", *start)
			return cliflag.ExitUsage
		}
		setTopics := false
		fs.Visit(func(f *flag.Flag) { setTopics = setTopics || f.Name == "topics" })
		if *topicRegex != "" && setTopics {
			cliflag.Errorf(stderr, fs.Name(), "--topics and --topic-regex are exclusive")
			return cliflag.ExitUsage
		}
		if *topicRegex != "" {
			cfg.Topics, cfg.TopicRegex = []string{*topicRegex}, true
		} else {
			cfg.Topics = splitList(*topics)
		}
		log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
		if *pidFile != "" {
			if err := os.WriteFile(*pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
				log.Error("vigil detect: write pid file", "err", err)
				return 1
			}
			defer os.Remove(*pidFile)
		}
		return detectStream(cfg, log)
	}
	cfg := sigma.DefaultConfig()
	if *configPath != "" {
		var err error
		if cfg, err = sigma.LoadConfig(*configPath); err != nil {
			cliflag.Errorf(stderr, fs.Name(), "%v", err)
			return cliflag.ExitUsage
		}
	}
	rules, problems, err := sigma.LoadRules(ruleDirs...)
	if err != nil {
		fmt.Fprintf(stderr, "vigil detect: %v\n", err)
		return 1
	}
	eng, more := sigma.NewEngine(rules, cfg)
	notLoaded, noSource := detectpkg.SplitProblems(append(problems, more...))
	if !*quiet {
		for _, p := range notLoaded {
			fmt.Fprintf(stderr, "vigil detect: rule not loaded: %v\n", p)
		}
		for _, p := range noSource {
			fmt.Fprintf(stderr, "vigil detect: %s\n", detectpkg.NoSourceLine(p))
		}
	}
	fmt.Fprintf(stderr, "vigil detect: %d rules loaded (%d match no configured source), %d not loaded\n", eng.Stats().Rules, len(noSource), len(notLoaded))
	if n := eng.Stats().Correlations; n > 0 {
		fmt.Fprintf(stderr, "vigil detect: %d correlation rules are evaluated only when streaming (--brokers); their rules' matches are printed\n", n)
	}

	files, err := eventFiles(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "vigil detect: %v\n", err)
		return 1
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	o := offline{m: eng.NewMatcher(), out: out, stderr: stderr}
	status := 0
	for _, f := range files {
		if err := o.file(f); err != nil {
			fmt.Fprintf(stderr, "vigil detect: %v\n", err)
			status = 1
		}
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(stderr, "vigil detect: write matches: %v\n", err)
		status = 1
	}
	if o.undecodable > maxReported {
		fmt.Fprintf(stderr, "vigil detect: ... and %d more undecodable stretches\n", o.undecodable-maxReported)
	}
	fmt.Fprintf(stderr, "vigil detect: %s (%d skipped as binary), %s, %s, %s\n", plural(len(files), "file"), o.binary,
		plural(o.events, "event"), plural(o.undecodable, "undecodable line"), plural(o.alerts, "alert"))
	return status
}

// maxReported is how many undecodable stretches are named one by one.
const maxReported = 10

// defaultRules is where --rules points unless given: the folder the
// README's walkthrough fills from a SigmaHQ checkout.
const defaultRules = "rules"

// offline evaluates event files one after another and counts what it saw.
type offline struct {
	m      *sigma.Matcher
	out    *bufio.Writer
	stderr io.Writer

	binary, events, undecodable, alerts int
}

// file evaluates one file ("-": standard input).
func (o *offline) file(path string) error {
	var r io.Reader = os.Stdin
	if path != "-" {
		fh, err := os.Open(path)
		if err != nil {
			return err
		}
		defer fh.Close()
		r = fh
	}
	enc := json.NewEncoder(o.out)
	var compact bytes.Buffer
	err := eventfile.Scan(r, func(i int, doc []byte) error {
		o.events++
		matches, err := o.m.Match(doc)
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
			o.alerts++
			line := detectMatch{RuleID: r.ID, RuleTitle: r.Title, Level: r.Level, File: path, Index: i, Event: compact.Bytes()}
			if err := enc.Encode(line); err != nil {
				return err
			}
		}
		return nil
	}, func(b eventfile.Bad) {
		o.undecodable++
		if o.undecodable <= maxReported {
			fmt.Fprintf(o.stderr, "vigil detect: %s:%d: %s (skipped)\n", path, b.Line, b.Reason)
		}
	})
	if errors.Is(err, eventfile.ErrBinary) {
		o.binary++
		fmt.Fprintf(o.stderr, "vigil detect: %s: skipped: %v\n", path, err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// eventFiles expands directories into every regular file under them
// (sorted); "-" stays for standard input. A path that cannot be read is an
// error before any output.
func eventFiles(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		if p == "-" {
			files = append(files, p)
			continue
		}
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
			if d.Type().IsRegular() {
				under = append(under, q)
			} else if d.Type()&fs.ModeSymlink != 0 {
				if st, err := os.Stat(q); err == nil && st.Mode().IsRegular() {
					under = append(under, q)
				}
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

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// detectStream runs the streaming detector until SIGTERM or SIGINT;
// SIGHUP reloads the rules.
func detectStream(cfg detectpkg.Config, log *slog.Logger) int {
	// SIGHUP is caught before the first (possibly long) rule load, so an
	// early reload request does not kill the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d, err := detectpkg.New(cfg, log)
	if err != nil {
		log.Error("vigil detect: start failed", "err", err)
		return 1
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading rules")
				d.Reload()
			}
		}
	}()
	if err := d.Run(ctx); err != nil {
		log.Error("vigil detect: stopped", "err", err)
		return 1
	}
	st := d.Stats()
	log.Info("vigil detect: stopped", "records", st.Records, "alerts", st.Alerts, "invalid", st.Invalid, "reloads", st.Reloads)
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }
