package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"strings"
	"syscall"
	"time"

	vbench "github.com/vigilhq/vigil/bench"
)

const benchUsage = `Usage:
  vigil bench produce [flags]   measure produce throughput and latency against a ceiling
  vigil bench groups [flags]    measure consumer-group rebalance time and offset commits per second
  vigil bench replay [flags]    measure a replay of retained data from segment objects against the disk's read ceiling
  vigil bench detect [flags]    measure Sigma detection events/s per core over SigmaHQ's rules and regression events
  vigil bench ingest [flags]    measure vigil ingest's syslog lines/s and HTTP events/s per core through to the broker
`

func bench(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "groups" {
		return benchGroups(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "replay" {
		return benchReplay(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "detect" {
		return benchDetect(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "ingest" {
		return benchIngest(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "produce" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, benchUsage)
			return 0
		}
		fmt.Fprint(stderr, benchUsage)
		return 2
	}
	fs := flag.NewFlagSet("vigil bench produce", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "", "comma-separated seed brokers (empty: start an in-process broker on a temp dir)")
	duration := fs.Duration("duration", 10*time.Second, "length of each phase (ceiling, max rate, paced)")
	recordBytes := fs.Int("record-bytes", 1024, "record value size in bytes")
	partitions := fs.Int("partitions", 12, "partitions of the benchmark topics")
	acks := fs.String("acks", "all", "required acks: all, 1 or 0")
	logLevel := fs.String("log-level", "warn", "log level of the in-process broker")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vigil bench produce: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "vigil bench produce: %v\n", err)
		return 2
	}
	seeds := splitBrokers(*brokers)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	res, err := vbench.Run(ctx, vbench.Options{
		Brokers:     seeds,
		Duration:    *duration,
		RecordBytes: *recordBytes,
		Partitions:  *partitions,
		Acks:        *acks,
		Logger:      slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		Out:         stdout,
	})
	if err != nil {
		fmt.Fprintf(stderr, "vigil bench produce: %v\n", err)
		return 1
	}
	_ = res // targets are reported as PASS/FAIL lines; the exit status covers errors only
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

func benchGroups(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil bench groups", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "", "comma-separated seed brokers (empty: start an in-process broker on a temp dir)")
	members := fs.Int("members", 10, "consumers joining one group at once")
	partitions := fs.Int("partitions", 24, "partitions of the consumed topic")
	committers := fs.Int("committers", 4, "concurrent clients committing offsets")
	duration := fs.Duration("duration", 5*time.Second, "length of each throughput phase (produce baseline, commits)")
	logLevel := fs.String("log-level", "warn", "log level of the in-process broker")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vigil bench groups: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "vigil bench groups: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	_, err := vbench.RunGroups(ctx, vbench.GroupOptions{
		Brokers:    splitBrokers(*brokers),
		Members:    *members,
		Partitions: *partitions,
		Committers: *committers,
		Duration:   *duration,
		Logger:     slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		Out:        stdout,
	})
	if err != nil {
		fmt.Fprintf(stderr, "vigil bench groups: %v\n", err)
		return 1
	}
	return 0
}

func benchReplay(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil bench replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mib := fs.Int64("mib", 1024, "MiB of records to write and then replay")
	partitions := fs.Int("partitions", 8, "partitions of the replayed topic")
	recordBytes := fs.Int("record-bytes", 1024, "record value size in bytes")
	logLevel := fs.String("log-level", "warn", "log level of the in-process broker")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vigil bench replay: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "vigil bench replay: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	_, err := vbench.RunReplay(ctx, vbench.ReplayOptions{
		Bytes: *mib << 20, Partitions: *partitions, RecordBytes: *recordBytes,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		Out:    stdout,
	})
	if err != nil {
		fmt.Fprintf(stderr, "vigil bench replay: %v\n", err)
		return 1
	}
	return 0
}

func benchDetect(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil bench detect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "../shared/data/sigma", "SigmaHQ checkout with rules*/ and regression_data/")
	duration := fs.Duration("duration", 5*time.Second, "length of each phase")
	workers := fs.Int("workers", 0, "matching goroutines (0: GOMAXPROCS)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vigil bench detect: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if _, err := vbench.RunDetect(vbench.DetectOptions{Data: *data, Duration: *duration, Workers: *workers, Out: stdout}); err != nil {
		fmt.Fprintf(stderr, "vigil bench detect: %v\n", err)
		return 1
	}
	return 0
}

func benchIngest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil bench ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "", "comma-separated seed brokers (empty: start an in-process broker on a temp dir)")
	duration := fs.Duration("duration", 5*time.Second, "length of each ingest phase (syslog, HTTP)")
	conns := fs.Int("conns", 2, "syslog TCP connections, and concurrent HTTP clients")
	batch := fs.Int("batch", 200, "NDJSON events per HTTP POST")
	logLevel := fs.String("log-level", "warn", "log level of the in-process broker and ingest service")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vigil bench ingest: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "vigil bench ingest: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	_, err := vbench.RunIngest(ctx, vbench.IngestOptions{
		Brokers: splitBrokers(*brokers), Duration: *duration, Conns: *conns, Batch: *batch,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		Out:    stdout,
	})
	if err != nil {
		fmt.Fprintf(stderr, "vigil bench ingest: %v\n", err)
		return 1
	}
	return 0
}
