package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vigilhq/vigil/internal/clientsec"
	"github.com/vigilhq/vigil/internal/cliflag"
	"github.com/vigilhq/vigil/internal/config"
	detectpkg "github.com/vigilhq/vigil/internal/detect"
	"github.com/vigilhq/vigil/internal/hunt"
)

// huntMain is `vigil hunt`: rules over a time range of retained history.
func huntMain(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("vigil hunt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ruleDirs multiFlag
	fs.Var(&ruleDirs, "rules", "Sigma rule file or directory (repeatable; default "+defaultRules+")")
	configPath := fs.String("config", "", "detection config: sources, field mapping, placeholders, suppression (as vigil detect --config)")
	brokers := fs.String("brokers", envOr(getenv, "VIGIL_BROKERS", "127.0.0.1:9092"), "comma-separated seed brokers (VIGIL_BROKERS)")
	topics := fs.String("topics", strings.Join(detectpkg.DefaultTopics(), ","), "comma-separated topics to hunt over (enriched.* for enriched events)")
	from := fs.String("from", "", "start of the range, RFC 3339 (2026-07-01T00:00:00Z); required")
	to := fs.String("to", "", "end of the range (exclusive), RFC 3339; default now")
	outputTopic := fs.String("output-topic", "", "write the findings to this topic instead of NDJSON on stdout")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	every := fs.Duration("progress-interval", time.Second, "how often the progress line is written")
	maxGroups := fs.Int("max-groups", 0, "groups kept per correlation rule (0: detect's default)")
	logLevel := fs.String("log-level", "warn", "debug, info, warn, error")
	sec := clientsec.Register(fs, getenv)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: vigil hunt --rules DIR --topics T[,T] --from TIME [--to TIME] [--brokers B] [--output-topic T]

Runs Sigma rules (and correlations) over the records of the topics whose
timestamps are in [--from, --to), reading them as a catch-up reader (from
segment objects, paced by the broker, so live detection does not wait),
and prints each finding as an NDJSON OCSF Detection Finding on stdout
(or writes it to --output-topic). Progress (events, bytes, % of the
range, ETA) goes to stderr. The same rules over the same records give the
same findings, with the same finding uids, as vigil detect gave live.`)
		fs.PrintDefaults()
	}
	if ok, code := cliflag.Parse(fs, args, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		cliflag.Errorf(stderr, fs.Name(), "unexpected argument %q", fs.Arg(0))
		return cliflag.ExitUsage
	}
	if *from == "" {
		cliflag.Errorf(stderr, fs.Name(), "--from is required (RFC 3339, e.g. %s)", time.Now().UTC().AddDate(0, -1, 0).Truncate(24*time.Hour).Format(time.RFC3339))
		return cliflag.ExitUsage
	}
	fromT, err := time.Parse(time.RFC3339Nano, *from)
	if err != nil {
		cliflag.Errorf(stderr, fs.Name(), "--from %q: not an RFC 3339 time: %v", *from, err)
		return cliflag.ExitUsage
	}
	toT := time.Now()
	if *to != "" {
		if toT, err = time.Parse(time.RFC3339Nano, *to); err != nil {
			cliflag.Errorf(stderr, fs.Name(), "--to %q: not an RFC 3339 time: %v", *to, err)
			return cliflag.ExitUsage
		}
	}
	if !fromT.Before(toT) {
		cliflag.Errorf(stderr, fs.Name(), "--from %s is not before --to %s", fromT.Format(time.RFC3339), toT.Format(time.RFC3339))
		return cliflag.ExitUsage
	}
	if len(ruleDirs) == 0 {
		if _, err := os.Stat(defaultRules); err != nil {
			cliflag.Errorf(stderr, fs.Name(), "no --rules given and %s", err)
			return cliflag.ExitUsage
		}
		ruleDirs = multiFlag{defaultRules}
	}
	level, err := config.ParseLevel(*logLevel)
	if err != nil {
		cliflag.Errorf(stderr, fs.Name(), "%v", err)
		return cliflag.ExitUsage
	}
	clientOpts, code := clientOptions(stderr, fs.Name(), sec)
	if code != 0 {
		return code
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	cfg := hunt.Config{Brokers: splitList(*brokers), Topics: splitList(*topics), From: fromT, To: toT, RuleDirs: ruleDirs,
		ConfigPath: *configPath, Output: out, OutputTopic: *outputTopic, ProgressEvery: *every, MaxGroups: *maxGroups, ClientOpts: clientOpts}
	if !*quiet {
		cfg.Progress = stderr
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	st, err := hunt.Run(ctx, cfg, log)
	notLoaded, noSource := detectpkg.SplitProblems(st.Problems)
	if len(notLoaded)+len(noSource) > 0 && !*quiet {
		fmt.Fprintf(stderr, "vigil hunt: %d rules not loaded, %d match no configured source (vigil detect lists them)\n", len(notLoaded), len(noSource))
	}
	if ferr := out.Flush(); ferr != nil && err == nil {
		err = ferr
	}
	if err != nil {
		fmt.Fprintf(stderr, "vigil hunt: %v\n", err)
		return 1
	}
	return 0
}
