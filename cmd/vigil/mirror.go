package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/clientsec"
	"github.com/vigilhq/vigil/internal/cliflag"
	"github.com/vigilhq/vigil/internal/mirror"
)

// mirrorSubcommands are the `vigil mirror` subcommands that exist; the
// mirror itself, promote and compare-detections (issue 24) do not yet.
const mirrorSubcommands = "verify"

const mirrorUsage = `Usage: vigil mirror SUBCOMMAND [flags]

Subcommands:
  verify   compare topics on a source cluster and on Vigil, partition by
           partition, record by record (vigil mirror verify -h)

Copying topics from another cluster (vigil mirror --source-brokers ...) and
promote are not built yet.
`

// mirrorMain is `vigil mirror SUBCOMMAND`.
func mirrorMain(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, mirrorUsage)
		return cliflag.ExitUsage
	}
	switch args[0] {
	case "verify":
		return mirrorVerify(args[1:], stdout, stderr, getenv)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, mirrorUsage)
		return 0
	}
	what := fmt.Sprintf("unknown subcommand %q", args[0])
	if strings.HasPrefix(args[0], "-") {
		what = "copying topics (the mirror itself) is not built yet"
	}
	fmt.Fprintf(stderr, "vigil mirror: %s; the subcommands that exist: %s (run 'vigil mirror -h')\n", what, mirrorSubcommands)
	return cliflag.ExitUsage
}

// mirrorVerify is `vigil mirror verify`: exit 0 when everything matches,
// 1 when something differs, 2 for a bad command line or a cluster that
// cannot be read.
func mirrorVerify(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("vigil mirror verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	srcBrokers := fs.String("source-brokers", getenv("VIGIL_SOURCE_BROKERS"), "comma-separated seed brokers of the source cluster (env VIGIL_SOURCE_BROKERS); required")
	brokers := fs.String("brokers", envOr(getenv, "VIGIL_BROKERS", "127.0.0.1:9092"), "comma-separated seed brokers of the destination, Vigil (env VIGIL_BROKERS)")
	topics := fs.String("topics", "", "regular expression a topic's whole name must match (Go syntax: 'auth|dns', 'telemetry\\..*'); required")
	fromOffset := fs.Int64("from-offset", 0, "compare each partition from this offset (default: the later log start)")
	toOffset := fs.Int64("to-offset", 0, "compare each partition up to this offset, exclusive (default 0: the earlier high watermark)")
	from := fs.String("from", "", "compare from the source's first record at or after this time, RFC 3339 (instead of --from-offset)")
	to := fs.String("to", "", "compare up to the source's first record at or after this time, RFC 3339, exclusive (instead of --to-offset)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up on a cluster that has not answered for this long")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	every := fs.Duration("progress-interval", 5*time.Second, "how often the progress line is written")
	srcSec := clientsec.RegisterPrefixed(fs, getenv, "source-", "VIGIL_SOURCE_")
	dstSec := clientsec.Register(fs, getenv)
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
	case *timeout <= 0:
		return usage("--timeout must be positive")
	}
	re, err := mirror.TopicPattern(*topics)
	if err != nil {
		return usage("%v", err)
	}
	cfg := mirror.Config{Topics: re, FromOffset: *fromOffset, ToOffset: *toOffset, Timeout: *timeout, Out: stdout, ProgressEvery: *every}
	if cfg.From, err = parseTime("--from", *from); err != nil {
		return usage("%v", err)
	}
	if cfg.To, err = parseTime("--to", *to); err != nil {
		return usage("%v", err)
	}
	switch {
	case *fromOffset < 0 || *toOffset < 0:
		return usage("--from-offset and --to-offset are offsets (0 or more)")
	case *fromOffset > 0 && *from != "":
		return usage("--from-offset and --from both bound the start: give one")
	case *toOffset > 0 && *to != "":
		return usage("--to-offset and --to both bound the end: give one")
	case *toOffset > 0 && *fromOffset >= *toOffset:
		return usage("--from-offset %d is not below --to-offset %d", *fromOffset, *toOffset)
	case !cfg.From.IsZero() && !cfg.To.IsZero() && !cfg.From.Before(cfg.To):
		return usage("--from %s is not before --to %s", *from, *to)
	}
	if err := srcSec.Validate(); err != nil {
		return usage("%v", err)
	}
	if err := dstSec.Validate(); err != nil {
		return usage("%v", err)
	}
	// Files (passwords, tokens, certificates) are read here.
	srcOpts, err := srcSec.Opts()
	if err != nil {
		fmt.Fprintf(stderr, "vigil mirror verify: source: %v\n", err)
		return cliflag.ExitUsage
	}
	dstOpts, err := dstSec.Opts()
	if err != nil {
		fmt.Fprintf(stderr, "vigil mirror verify: destination: %v\n", err)
		return cliflag.ExitUsage
	}
	cfg.Source = append([]kgo.Opt{kgo.SeedBrokers(srcSeeds...)}, srcOpts...)
	cfg.Destination = append([]kgo.Opt{kgo.SeedBrokers(dstSeeds...)}, dstOpts...)
	if !*quiet {
		cfg.Progress = stderr
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	sum, err := mirror.Verify(ctx, cfg)
	if err != nil {
		if errors.Is(err, mirror.ErrNoTopics) {
			err = fmt.Errorf("%w (%q)", err, *topics)
		}
		fmt.Fprintf(stderr, "vigil mirror verify: %v\n", err)
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
