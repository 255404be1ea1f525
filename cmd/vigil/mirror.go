package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/clientsec"
	"github.com/vigilhq/vigil/internal/cliflag"
	"github.com/vigilhq/vigil/internal/config"
	detectpkg "github.com/vigilhq/vigil/internal/detect"
	"github.com/vigilhq/vigil/internal/mirror"
)

// mirrorSubcommands are the `vigil mirror` subcommands, besides the
// mirror itself (`vigil mirror --source-brokers ...`).
const mirrorSubcommands = "promote, verify, compare-detections"

const mirrorUsage = `Usage: vigil mirror --source-brokers S --topics REGEX [--brokers D] [flags]
       vigil mirror SUBCOMMAND [flags]

The mirror: copies the topics REGEX matches from a source cluster (any
Kafka-compatible cluster) onto Vigil, continuously, with the same offsets,
and the source's committed group offsets with them (its flags: vigil mirror
--help-flags).

Subcommands:
  promote TOPIC...     make mirror topics ordinary topics on Vigil: the
                       cutover step (vigil mirror promote -h)
  verify               compare topics on a source cluster and on Vigil,
                       partition by partition, record by record
                       (vigil mirror verify -h)
  compare-detections   run the same Sigma rules over the same range of
                       both clusters and report the findings one side
                       lacks (vigil mirror compare-detections -h)
`

// mirrorMain is `vigil mirror [SUBCOMMAND]`.
func mirrorMain(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, mirrorUsage)
		return cliflag.ExitUsage
	}
	switch args[0] {
	case "verify":
		return mirrorVerify(args[1:], stdout, stderr, getenv)
	case "compare-detections":
		return mirrorCompareDetections(args[1:], stdout, stderr, getenv)
	case "promote":
		return mirrorPromote(args[1:], stdout, stderr, getenv)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, mirrorUsage)
		return 0
	case "--help-flags":
		return mirrorRun([]string{"-h"}, stdout, stderr, getenv)
	}
	if strings.HasPrefix(args[0], "-") {
		return mirrorRun(args, stdout, stderr, getenv)
	}
	fmt.Fprintf(stderr, "vigil mirror: unknown subcommand %q; the subcommands: %s, or flags for the mirror itself (run 'vigil mirror -h')\n", args[0], mirrorSubcommands)
	return cliflag.ExitUsage
}

// mirrorRun is the mirror itself: it runs until SIGTERM or SIGINT (exit
// 0), or until something no retry fixes (exit 1).
func mirrorRun(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("vigil mirror", flag.ContinueOnError)
	fs.SetOutput(stderr)
	srcBrokers := fs.String("source-brokers", getenv("VIGIL_SOURCE_BROKERS"), "comma-separated seed brokers of the source cluster (env VIGIL_SOURCE_BROKERS); required")
	brokers := fs.String("brokers", envOr(getenv, "VIGIL_BROKERS", "127.0.0.1:9092"), "comma-separated seed brokers of the destination, Vigil (env VIGIL_BROKERS)")
	topics := fs.String("topics", "", "regular expression a topic's whole name must match (Go syntax: 'auth|dns', 'telemetry\\..*'); required")
	groups := fs.String("groups", ".*", "regular expression of the groups whose committed offsets are copied (whole name)")
	sourceName := fs.String("source-name", "", "the value of vigil.mirror.source on the topics created (default: the source's cluster id)")
	interval := fs.Duration("sync-interval", 5*time.Second, "how often new topics and partitions, log starts, topic configs, ACLs (--acls), quotas (--quotas) and group offsets are synced")
	acls := fs.Bool("acls", false, "copy the source's ACLs of the mirrored topics, the groups --groups matches and transactional ids (not cluster ACLs), and delete those deleted there; needs Describe on the source's cluster and Alter on Vigil's")
	quotas := fs.Bool("quotas", false, "copy the source's byte-rate quotas (producer_byte_rate, consumer_byte_rate) of users and client ids, and remove those removed there; needs DescribeConfigs on the source's cluster and AlterConfigs on Vigil's")
	fetchMax := fs.Int("fetch-max-bytes", 1<<20, "bytes one fetch of a partition asks for (and one append to Vigil carries); memory is about three times this per partition copying at full speed")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics at http://ADDR/metrics (and /healthz); empty: none")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	every := fs.Duration("progress-interval", 5*time.Second, "how often the progress line is written")
	logLevel := fs.String("log-level", "info", "debug, info, warn, error")
	srcSec := clientsec.RegisterPrefixed(fs, getenv, "source-", "VIGIL_SOURCE_")
	dstSec := clientsec.Register(fs, getenv)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: vigil mirror --source-brokers S --topics REGEX [--brokers D] [--groups REGEX] [--acls] [--quotas] [--metrics ADDR]

Copies the topics REGEX matches from the source cluster (any Kafka-compatible
cluster) onto Vigil, continuously, until SIGTERM or SIGINT. Each topic is
created on Vigil with the source's partition count and the configs set on it
(which keep following the source's), marked a mirror topic (vigil.mirror.source); its records keep their offsets,
keys, headers, timestamps and batches, compaction's gaps and transaction
markers included, so consumers move without offset translation. Committed
offsets of the groups --groups matches are copied for the mirrored topics,
each once Vigil holds it, never for a group with members on Vigil. A mirror
topic refuses produces until promoted (vigil mirror promote TOPIC). With
--acls, the source's ACLs of those topics, groups and transactional ids are
copied too; with --quotas, its byte-rate quotas of users and client ids. What
the mirror copied is kept on Vigil (topic _vigil.mirror.state), so that what
is deleted on the source is deleted on Vigil even while the mirror is stopped.

A progress line on stderr gives the lag, in offsets, and the partitions
furthest behind; --metrics serves the lag per partition.

The source's client security flags are the destination's with "source-" in
front, their variables VIGIL_SOURCE_*. On Vigil with ACLs, the principal needs
ClusterAction on the cluster (docs/migration.md lists the rest).

Exit status: 0 stopped by a signal, 1 something no retry fixes (Vigil holds
other records at the offsets copied, a refused authorization), 2 a bad
command line.`)
		fs.PrintDefaults()
	}
	if ok, code := cliflag.Parse(fs, args, stderr); !ok {
		return code
	}
	usage := func(format string, a ...any) int {
		cliflag.Errorf(stderr, fs.Name(), format, a...)
		return cliflag.ExitUsage
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	srcSeeds, dstSeeds := splitList(*srcBrokers), splitList(*brokers)
	switch {
	case len(srcSeeds) == 0:
		return usage("--source-brokers is required")
	case len(dstSeeds) == 0:
		return usage("--brokers is empty")
	case *topics == "":
		return usage("--topics is required (a regular expression; '.*' for every topic)")
	case *interval <= 0:
		return usage("--sync-interval must be positive")
	case *fetchMax < 64<<10 || *fetchMax > 64<<20:
		return usage("--fetch-max-bytes %d: from 65536 to 67108864", *fetchMax)
	}
	re, err := mirror.TopicPattern(*topics)
	if err != nil {
		return usage("%v", err)
	}
	gre, err := mirror.TopicPattern(*groups)
	if err != nil {
		return usage("--groups: %v", err)
	}
	level, err := config.ParseLevel(*logLevel)
	if err != nil {
		return usage("%v", err)
	}
	if err := srcSec.Validate(); err != nil {
		return usage("%v", err)
	}
	if err := dstSec.Validate(); err != nil {
		return usage("%v", err)
	}
	srcOpts, err := srcSec.Opts()
	if err != nil {
		fmt.Fprintf(stderr, "vigil mirror: source: %v\n", err)
		return cliflag.ExitUsage
	}
	dstOpts, err := dstSec.Opts()
	if err != nil {
		fmt.Fprintf(stderr, "vigil mirror: destination: %v\n", err)
		return cliflag.ExitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	reg := prometheus.NewRegistry()
	cfg := mirror.CopyConfig{
		Source:      append([]kgo.Opt{kgo.SeedBrokers(srcSeeds...)}, srcOpts...),
		Destination: append([]kgo.Opt{kgo.SeedBrokers(dstSeeds...)}, dstOpts...),
		Topics:      re, Groups: gre, SourceName: *sourceName, Interval: *interval, MaxBytes: int32(*fetchMax),
		ProgressEvery: *every, Registerer: reg, Log: log, ACLs: *acls, Quotas: *quotas,
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	m, err := mirror.NewMirror(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "vigil mirror: %v\n", err)
		return cliflag.ExitUsage
	}
	defer m.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *metricsAddr != "" {
		srv, addr, err := serveMetrics(*metricsAddr, reg)
		if err != nil {
			fmt.Fprintf(stderr, "vigil mirror: --metrics: %v\n", err)
			return 1
		}
		defer srv.Close()
		log.Info("mirror metrics listening", "addr", addr)
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "vigil mirror: %v\n", err)
		return 1
	}
	return 0
}

// mirrorPromote is `vigil mirror promote TOPIC...`: exit 0 once every
// topic is an ordinary topic, 1 if one is not a mirror topic or the
// change fails, 2 for a bad command line.
func mirrorPromote(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("vigil mirror promote", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", envOr(getenv, "VIGIL_BROKERS", "127.0.0.1:9092"), "comma-separated seed brokers of Vigil (env VIGIL_BROKERS)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	sec := clientsec.Register(fs, getenv)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: vigil mirror promote TOPIC... [--brokers D]

Makes mirror topics ordinary topics on Vigil, the cutover step: their
vigil.mirror.source config is deleted, so they take produces, their retention
and compaction are Vigil's, and the mirror copies no more into them. Stop the
producers on the source and wait for the mirror's lag to reach 0 first
(docs/migration.md). The principal needs AlterConfigs on the topics.

Exit status: 0 promoted, 1 a topic is not a mirror topic or the change failed,
2 a bad command line.`)
		fs.PrintDefaults()
	}
	// Topics and flags in any order.
	var topics []string
	for {
		if ok, code := cliflag.Parse(fs, args, stderr); !ok {
			return code
		}
		if fs.NArg() == 0 {
			break
		}
		topics = append(topics, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(topics) == 0 {
		cliflag.Errorf(stderr, fs.Name(), "name the topics to promote")
		return cliflag.ExitUsage
	}
	if err := sec.Validate(); err != nil {
		cliflag.Errorf(stderr, fs.Name(), "%v", err)
		return cliflag.ExitUsage
	}
	opts, err := sec.Opts()
	if err != nil {
		fmt.Fprintf(stderr, "vigil mirror promote: %v\n", err)
		return cliflag.ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := mirror.Promote(ctx, append([]kgo.Opt{kgo.SeedBrokers(splitList(*brokers)...)}, opts...), topics...); err != nil {
		fmt.Fprintf(stderr, "vigil mirror promote: %v\n", err)
		return 1
	}
	for _, t := range topics {
		fmt.Fprintf(stdout, "%s: promoted: an ordinary topic now\n", t)
	}
	return 0
}

// mirrorFlags are the flags verify and compare-detections share: the
// two clusters with their security, the topics and the range.
type mirrorFlags struct {
	fs                   *flag.FlagSet
	srcBrokers, brokers  *string
	topics, from, to     *string
	fromOffset, toOffset *int64
	timeout, every       *time.Duration
	quiet                *bool
	srcSec, dstSec       *clientsec.Config
}

// registerMirrorFlags defines the shared flags on fs; what is compared
// ("compare", "hunt") words the range flags' help.
func registerMirrorFlags(fs *flag.FlagSet, getenv func(string) string, what string) *mirrorFlags {
	return &mirrorFlags{
		fs:         fs,
		srcBrokers: fs.String("source-brokers", getenv("VIGIL_SOURCE_BROKERS"), "comma-separated seed brokers of the source cluster (env VIGIL_SOURCE_BROKERS); required"),
		brokers:    fs.String("brokers", envOr(getenv, "VIGIL_BROKERS", "127.0.0.1:9092"), "comma-separated seed brokers of the destination, Vigil (env VIGIL_BROKERS)"),
		topics:     fs.String("topics", "", "regular expression a topic's whole name must match (Go syntax: 'auth|dns', 'telemetry\\..*'); required"),
		fromOffset: fs.Int64("from-offset", 0, what+" each partition from this offset (default: the later log start)"),
		toOffset:   fs.Int64("to-offset", 0, what+" each partition up to this offset, exclusive (default 0: the earlier high watermark)"),
		from:       fs.String("from", "", what+" from the source's first record at or after this time, RFC 3339 (instead of --from-offset)"),
		to:         fs.String("to", "", what+" up to the source's first record at or after this time, RFC 3339, exclusive (instead of --to-offset)"),
		timeout:    fs.Duration("timeout", 30*time.Second, "give up on a cluster that has not answered for this long"),
		quiet:      fs.Bool("quiet", false, "no progress lines on stderr"),
		every:      fs.Duration("progress-interval", 5*time.Second, "how often the progress line is written"),
		srcSec:     clientsec.RegisterPrefixed(fs, getenv, "source-", "VIGIL_SOURCE_"),
		dstSec:     clientsec.Register(fs, getenv),
	}
}

// config checks the shared flags after parsing and builds the comparison's
// Config (Out is stdout, Progress stderr unless --quiet). A bad flag is
// written to stderr and returns ok false: exit 2.
func (f *mirrorFlags) config(stdout, stderr io.Writer) (cfg mirror.Config, ok bool) {
	name := f.fs.Name()
	usage := func(format string, a ...any) (mirror.Config, bool) {
		cliflag.Errorf(stderr, name, format, a...)
		return mirror.Config{}, false
	}
	if f.fs.NArg() > 0 {
		return usage("unexpected argument %q", f.fs.Arg(0))
	}
	srcSeeds, dstSeeds := splitList(*f.srcBrokers), splitList(*f.brokers)
	switch {
	case len(srcSeeds) == 0:
		return usage("--source-brokers is required")
	case len(dstSeeds) == 0:
		return usage("--brokers is empty")
	case *f.topics == "":
		return usage("--topics is required (a regular expression; '.*' for every topic)")
	case *f.timeout <= 0:
		return usage("--timeout must be positive")
	}
	re, err := mirror.TopicPattern(*f.topics)
	if err != nil {
		return usage("%v", err)
	}
	cfg = mirror.Config{Topics: re, FromOffset: *f.fromOffset, ToOffset: *f.toOffset, Timeout: *f.timeout, Out: stdout, ProgressEvery: *f.every}
	if cfg.From, err = parseTime("--from", *f.from); err != nil {
		return usage("%v", err)
	}
	if cfg.To, err = parseTime("--to", *f.to); err != nil {
		return usage("%v", err)
	}
	switch {
	case *f.fromOffset < 0 || *f.toOffset < 0:
		return usage("--from-offset and --to-offset are offsets (0 or more)")
	case *f.fromOffset > 0 && *f.from != "":
		return usage("--from-offset and --from both bound the start: give one")
	case *f.toOffset > 0 && *f.to != "":
		return usage("--to-offset and --to both bound the end: give one")
	case *f.toOffset > 0 && *f.fromOffset >= *f.toOffset:
		return usage("--from-offset %d is not below --to-offset %d", *f.fromOffset, *f.toOffset)
	case !cfg.From.IsZero() && !cfg.To.IsZero() && !cfg.From.Before(cfg.To):
		return usage("--from %s is not before --to %s", *f.from, *f.to)
	}
	if err := f.srcSec.Validate(); err != nil {
		return usage("%v", err)
	}
	if err := f.dstSec.Validate(); err != nil {
		return usage("%v", err)
	}
	// Files (passwords, tokens, certificates) are read here.
	srcOpts, err := f.srcSec.Opts()
	if err != nil {
		fmt.Fprintf(stderr, "%s: source: %v\n", name, err)
		return mirror.Config{}, false
	}
	dstOpts, err := f.dstSec.Opts()
	if err != nil {
		fmt.Fprintf(stderr, "%s: destination: %v\n", name, err)
		return mirror.Config{}, false
	}
	cfg.Source = append([]kgo.Opt{kgo.SeedBrokers(srcSeeds...)}, srcOpts...)
	cfg.Destination = append([]kgo.Opt{kgo.SeedBrokers(dstSeeds...)}, dstOpts...)
	if !*f.quiet {
		cfg.Progress = stderr
	}
	return cfg, true
}

// mirrorVerify is `vigil mirror verify`: exit 0 when everything matches,
// 1 when something differs, 2 for a bad command line or a cluster that
// cannot be read.
func mirrorVerify(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("vigil mirror verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mf := registerMirrorFlags(fs, getenv, "compare")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: vigil mirror verify --source-brokers S --topics REGEX [--brokers D] [--from-offset N] [--to-offset N] [--from TIME] [--to TIME]

Compares the topics REGEX matches on the source cluster (any Kafka-compatible
cluster) and on the destination (Vigil): per topic the partition count, per
partition the log start offset, the high watermark and every record of the
range (offset, timestamp, key, value, headers; read at read_uncommitted with
transaction markers kept, so markers and aborted records are compared at
their offsets too). Prints a line per partition, "match" with the digest of
the range or the first difference, and a summary; progress goes to stderr.

The range is, by default, from the later log start to the earlier high
watermark, and the log starts and high watermarks are compared themselves;
--from-offset/--to-offset, or --from/--to (times, looked up on the source),
bound it, and bounds are compared only inside the range.

The source's client security flags are the destination's with "source-" in
front (--source-security-protocol, --source-tls-ca, --source-sasl-username...),
their variables VIGIL_SOURCE_* (VIGIL_SOURCE_SASL_PASSWORD...).

Exit status: 0 everything matches, 1 something differs, 2 a bad command line
or a cluster that cannot be read.`)
		fs.PrintDefaults()
	}
	if ok, code := cliflag.Parse(fs, args, stderr); !ok {
		return code
	}
	cfg, ok := mf.config(stdout, stderr)
	if !ok {
		return cliflag.ExitUsage
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	sum, err := mirror.Verify(ctx, cfg)
	if err != nil {
		if errors.Is(err, mirror.ErrNoTopics) {
			err = fmt.Errorf("%w (%q)", err, *mf.topics)
		}
		fmt.Fprintf(stderr, "vigil mirror verify: %v\n", err)
		return cliflag.ExitUsage
	}
	if !sum.OK() {
		return 1
	}
	return 0
}

// mirrorCompareDetections is `vigil mirror compare-detections`: the same
// rules hunted over the same range of both clusters; exit 0 when the
// findings match, 1 when they differ, 2 for a bad command line, rules that
// cannot be loaded or a cluster that cannot be read.
func mirrorCompareDetections(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("vigil mirror compare-detections", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mf := registerMirrorFlags(fs, getenv, "hunt")
	var ruleDirs multiFlag
	fs.Var(&ruleDirs, "rules", "Sigma rule file or directory (repeatable); required")
	configPath := fs.String("config", "", "detection config: sources, field mapping, placeholders, suppression (as vigil detect --config)")
	maxGroups := fs.Int("max-groups", 0, "groups kept per correlation rule (0: detect's default)")
	logLevel := fs.String("log-level", "warn", "debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: vigil mirror compare-detections --source-brokers S --topics REGEX --rules DIR [--brokers D] [--from TIME --to TIME | --from-offset N --to-offset N]

Runs the same Sigma rules (and correlations) over the same offsets of the
topics REGEX matches on the source cluster and on the destination (Vigil),
as two retro-hunts (vigil hunt's code, so the findings are those vigil detect
gives), and prints every finding one side has and the other lacks (its rule,
the record's topic, partition, offset and time, and its finding uid), every
finding both have with other contents, then the findings per rule on each
side and a summary. Progress goes to stderr.

Findings are matched by finding uid: the rule and the position of the record
(topic, partition, offset), nothing of the cluster, so a mirror that keeps
offsets gives the same uids. The range is vigil mirror verify's, with times
looked up on the source; each side is read up to its own high watermark.
Security flags and variables are verify's (--source-... for the source).

Exit status: 0 the findings match, 1 they differ, 2 a bad command line,
rules that cannot be loaded or a cluster that cannot be read.`)
		fs.PrintDefaults()
	}
	if ok, code := cliflag.Parse(fs, args, stderr); !ok {
		return code
	}
	cfg, ok := mf.config(stdout, stderr)
	if !ok {
		return cliflag.ExitUsage
	}
	if len(ruleDirs) == 0 {
		cliflag.Errorf(stderr, fs.Name(), "--rules is required (a Sigma rule file or directory; repeatable)")
		return cliflag.ExitUsage
	}
	for _, d := range ruleDirs {
		if _, err := os.Stat(d); err != nil {
			cliflag.Errorf(stderr, fs.Name(), "--rules: %v", err)
			return cliflag.ExitUsage
		}
	}
	level, err := config.ParseLevel(*logLevel)
	if err != nil {
		cliflag.Errorf(stderr, fs.Name(), "%v", err)
		return cliflag.ExitUsage
	}
	dcfg := mirror.DetectionsConfig{Config: cfg, RuleDirs: ruleDirs, ConfigPath: *configPath, MaxGroups: *maxGroups,
		Log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	sum, err := mirror.CompareDetections(ctx, dcfg)
	notLoaded, noSource := detectpkg.SplitProblems(sum.Source.Problems)
	if len(notLoaded)+len(noSource) > 0 && !*mf.quiet {
		fmt.Fprintf(stderr, "vigil mirror compare-detections: %d rules not loaded, %d match no configured source (vigil detect lists them)\n", len(notLoaded), len(noSource))
	}
	if err != nil {
		if errors.Is(err, mirror.ErrNoTopics) {
			err = fmt.Errorf("%w (%q)", err, *mf.topics)
		}
		fmt.Fprintf(stderr, "vigil mirror compare-detections: %v\n", err)
		return cliflag.ExitUsage
	}
	if !sum.OK() {
		return 1
	}
	return 0
}

// parseTime reads an RFC 3339 flag value; empty is the zero time.
func parseTime(flagName, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: not an RFC 3339 time: %w", flagName, v, err)
	}
	return t, nil
}
