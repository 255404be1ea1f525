package main

import (
	"context"

	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"strings"
	"syscall"
	"time"

	vbench "github.com/vigilhq/vigil/bench"
	"github.com/vigilhq/vigil/internal/cliflag"
)

const benchUsage = `Usage:
  vigil bench produce [flags]   measure produce throughput and latency against a ceiling
  vigil bench groups [flags]    measure consumer-group rebalance time and offset commits per second
  vigil bench replay [flags]    measure a replay of retained data from segment objects against the disk's read ceiling
  vigil bench incident [flags]  measure tail latency while a forensic reader replays retained history
  vigil bench detect [flags]    measure Sigma detection events/s per core over SigmaHQ's rules and regression events
  vigil bench ingest [flags]    measure vigil ingest's syslog lines/s and HTTP events/s per core through to the broker
  vigil bench enrich [flags]    measure enrichment events/s per core with a million indicators loaded, and its memory
  vigil bench txn [flags]       measure produce in 100 ms transactions against idempotent produce, interleaved: the ratio of their throughputs
  vigil bench export [flags]    measure vigil export's records/s per core into _bulk (VictoriaLogs) against a plain consumer, interleaved
  vigil bench table [flags]     measure a topic's Iceberg table (vigil.table.enabled) records/s per core into Zstd Parquet against a plain consumer, interleaved
  vigil bench compression [flags]  measure produce records/s per core to a compression.type=zstd topic (uncompressed batches recompressed) against compression.type=producer, interleaved
`

// benchRun runs one benchmark once its flags are parsed; log is the
// in-process broker's logger.
type benchRun func(ctx context.Context, log *slog.Logger, stdout io.Writer) error

// benchCommands maps each subcommand to the function that defines its
// flags on fs and returns how to run it.
func benchCommands() map[string]func(fs *flag.FlagSet) benchRun {
	return map[string]func(fs *flag.FlagSet) benchRun{
		"produce":     benchProduce,
		"groups":      benchGroups,
		"replay":      benchReplay,
		"incident":    benchIncident,
		"detect":      benchDetect,
		"ingest":      benchIngest,
		"enrich":      benchEnrich,
		"txn":         benchTxn,
		"export":      benchExport,
		"compression": benchCompression,
		"table":       benchTable,
	}
}

func bench(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprint(stdout, benchUsage)
		return 0
	}
	cmds := benchCommands()
	if len(args) == 0 || cmds[args[0]] == nil {
		fmt.Fprint(stderr, benchUsage)
		return 2
	}
	name := "vigil bench " + args[0]
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	logLevel := fs.String("log-level", "warn", "log level of the in-process broker (and services)")
	run := cmds[args[0]](fs)
	if ok, code := cliflag.Parse(fs, args[1:], stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		cliflag.Errorf(stderr, name, "unexpected argument %q", fs.Arg(0))
		return cliflag.ExitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		cliflag.Errorf(stderr, name, "%v", err)
		return cliflag.ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// Targets are reported as PASS/FAIL lines; the exit status covers errors.
	if err := run(ctx, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})), stdout); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

func splitBrokers(s string) []string {
	var seeds []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			seeds = append(seeds, b)
		}
	}
	return seeds
}

func brokersFlag(fs *flag.FlagSet) *string {
	return fs.String("brokers", "", "comma-separated seed brokers (empty: start an in-process broker on a temp dir)")
}

func benchProduce(fs *flag.FlagSet) benchRun {
	brokers := brokersFlag(fs)
	duration := fs.Duration("duration", 10*time.Second, "length of each phase (ceiling, max rate, paced)")
	recordBytes := fs.Int("record-bytes", 1024, "record value size in bytes")
	partitions := fs.Int("partitions", 12, "partitions of the benchmark topics")
	acks := fs.String("acks", "all", "required acks: all, 1 or 0")
	walKind := fs.String("wal", "", "the in-process broker's write-ahead log: file or object (default: the broker's, file)")
	flushInterval := fs.Duration("wal-flush-interval", 0, "the in-process broker's --wal-flush-interval (object WAL; default: the broker's)")
	flushBytes := fs.Int64("wal-flush-bytes", 0, "the in-process broker's --wal-flush-bytes (object WAL; default: the broker's)")
	walSync := fs.Bool("wal-sync", true, "the in-process file WAL fsyncs each group commit; false measures everything but the disk (a diagnostic: targets not judged)")
	pacedRate := fs.Float64("paced-rate", 0, "records/s of the paced run (default: 25% of the measured maximum; a fixed rate is not judged against the latency target)")
	partitioner := fs.String("partitioner", vbench.PartitionerDefault, "how the producer spreads its keyless records: default (the client's, KIP-794's uniform sticky partitioner) or round-robin (a record per partition in turn)")
	protocol := fs.String("security-protocol", "PLAINTEXT", "PLAINTEXT: the ceiling, max-rate and paced phases; SSL, SASL_PLAINTEXT or SASL_SSL: instead, the max-rate phase over a PLAINTEXT and a listener of this protocol of the in-process broker, interleaved, and the ratio of their throughputs (target >= 0.85)")
	mechanism := fs.String("sasl-mechanism", vbench.DefaultSASLMechanism, "with a SASL --security-protocol: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	rounds := fs.Int("rounds", vbench.DefaultRounds, "with --security-protocol other than PLAINTEXT: runs over each listener")
	return func(ctx context.Context, log *slog.Logger, out io.Writer) error {
		// --sasl-mechanism and --rounds are passed only when given, so
		// that one given where it does not apply is refused, not ignored.
		var mech string
		var nRounds int
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "sasl-mechanism":
				mech = *mechanism
			case "rounds":
				nRounds = *rounds
				if nRounds == 0 {
					nRounds = -1 // refused: 0 means the default in Options
				}
			}
		})
		_, err := vbench.Run(ctx, vbench.Options{Brokers: splitBrokers(*brokers), Duration: *duration,
			RecordBytes: *recordBytes, Partitions: *partitions, Acks: *acks,
			WAL: *walKind, WALFlushInterval: *flushInterval, WALFlushBytes: *flushBytes, NoWALSync: !*walSync, PacedRate: *pacedRate, Partitioner: *partitioner,
			SecurityProtocol: *protocol, SASLMechanism: mech, Rounds: nRounds, Logger: log, Out: out})
		return err
	}
}

func benchGroups(fs *flag.FlagSet) benchRun {
	brokers := brokersFlag(fs)
	members := fs.Int("members", 10, "consumers joining one group at once")
	partitions := fs.Int("partitions", 24, "partitions of the consumed topic")
	committers := fs.Int("committers", 4, "concurrent clients committing offsets")
	duration := fs.Duration("duration", 5*time.Second, "length of each throughput phase (produce baseline, commits)")
	return func(ctx context.Context, log *slog.Logger, out io.Writer) error {
		_, err := vbench.RunGroups(ctx, vbench.GroupOptions{Brokers: splitBrokers(*brokers), Members: *members,
			Partitions: *partitions, Committers: *committers, Duration: *duration, Logger: log, Out: out})
		return err
	}
}

func benchReplay(fs *flag.FlagSet) benchRun {
	mib := fs.Int64("mib", 1024, "MiB of records to write and then replay")
	partitions := fs.Int("partitions", 8, "partitions of the replayed topic")
	recordBytes := fs.Int("record-bytes", 1024, "record value size in bytes")
	return func(ctx context.Context, log *slog.Logger, out io.Writer) error {
		_, err := vbench.RunReplay(ctx, vbench.ReplayOptions{Bytes: *mib << 20, Partitions: *partitions,
			RecordBytes: *recordBytes, Logger: log, Out: out})
		return err
	}
}

func benchIncident(fs *flag.FlagSet) benchRun {
	history := fs.Int64("history-mib", 5120, "MiB of retained history the forensic reader replays")
	rate := fs.Float64("rate", 20000, "live ingest in records/s")
	recordBytes := fs.Int("record-bytes", 1024, "record value size in bytes")
	partitions := fs.Int("partitions", 64, "partitions of the telemetry topic")
	phase := fs.Duration("phase", 20*time.Second, "longest the replay runs; windows without it alternate with its windows, so the run takes about twice this")
	window := fs.Duration("window", 2*time.Second, "length of each window without and with the replay (they alternate, so both see the same machine)")
	pacing := fs.Bool("catchup-pacing", true, "the in-process broker's --catchup-pacing: false serves the replay as fast as it asks")
	commitLimit := fs.Duration("catchup-commit-limit", 0, "the in-process broker's --catchup-commit-limit (0: its default, 5ms)")
	schedLimit := fs.Duration("catchup-sched-limit", 0, "the in-process broker's --catchup-sched-limit (0: its default, 2ms)")
	catchupNice := fs.Int("catchup-nice", 19, "the in-process broker's --catchup-nice: the nice value of the threads answering the replay (0: off)")
	readerNice := fs.Int("reader-nice", 19, "nice value of the forensic reader's process (0-19): it stands in for a reader on another machine, so by default it only gets CPU the broker and the pipeline leave")
	budget := fs.Int64("memory-budget-mib", 4096, "peak RSS allowed for the broker's process (the producer, detection group and forensic reader run in child processes)")
	return func(ctx context.Context, log *slog.Logger, out io.Writer) error {
		_, err := vbench.RunIncident(ctx, vbench.IncidentOptions{HistoryBytes: *history << 20, Rate: *rate,
			RecordBytes: *recordBytes, Partitions: *partitions, Phase: *phase, Window: *window, MemoryBudget: *budget << 20, ReaderNice: *readerNice, Unpaced: !*pacing,
			CatchupCommitLimit: *commitLimit, CatchupSchedLimit: *schedLimit, CatchupNice: *catchupNice,
			Logger: log, Out: out})
		return err
	}
}

func benchDetect(fs *flag.FlagSet) benchRun {
	data := fs.String("data", "../shared/data/sigma", "SigmaHQ checkout with rules*/ and regression_data/")
	duration := fs.Duration("duration", 5*time.Second, "length of each phase")
	workers := fs.Int("workers", 0, "matching goroutines (0: GOMAXPROCS)")
	return func(_ context.Context, _ *slog.Logger, out io.Writer) error {
		_, err := vbench.RunDetect(vbench.DetectOptions{Data: *data, Duration: *duration, Workers: *workers, Out: out})
		return err
	}
}

func benchIngest(fs *flag.FlagSet) benchRun {
	brokers := brokersFlag(fs)
	duration := fs.Duration("duration", 5*time.Second, "length of each ingest phase (syslog, HTTP)")
	conns := fs.Int("conns", 2, "syslog TCP connections, and concurrent HTTP clients")
	batch := fs.Int("batch", 200, "NDJSON events per HTTP POST")
	return func(ctx context.Context, log *slog.Logger, out io.Writer) error {
		_, err := vbench.RunIngest(ctx, vbench.IngestOptions{Brokers: splitBrokers(*brokers), Duration: *duration,
			Conns: *conns, Batch: *batch, Logger: log, Out: out})
		return err
	}
}
