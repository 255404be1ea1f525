package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigilhq/vigil/internal/clientsec"
	"github.com/vigilhq/vigil/internal/cliflag"
	"github.com/vigilhq/vigil/internal/cost"
	"github.com/vigilhq/vigil/internal/scorecard"
)

const scorecardUsage = `Usage: vigil scorecard --brokers B [client security flags] [--output report.md|report.json|report.html]

Probes a Kafka-compatible cluster (Vigil or any other) for what a
security pipeline needs and writes a report of what each probe saw:
which Kafka APIs and versions it offers against those the pipeline uses;
a functional probe of produce/fetch, consumer groups, idempotence,
transactions, compaction, time lookups, quotas and ACLs; the security
boundary of the listener given (plaintext? anonymous reads and writes?
ACLs enforced?); the migration path (whether vigil mirror can read it);
burst and replay (a paced producer's tail latency with and without a
replay running); with --allow-faults --fault-pids, failure recovery
(each broker paused, or killed, in turn: time to recover, records lost);
and, with --ingest-gb-per-day, the cost model's totals. It prints its
limits first and keeps them: --timeout overall, --probe-timeout per
probe, a few thousand small records on topics named vigil-scorecard-*,
deleted at the end. A progress line per probe goes to
stderr. Exit 0 with a report, 2 for bad usage or an unreachable cluster.
What each probe does and how to read the report: docs/scorecard.md.

Flags:
`

// scorecardMain is `vigil scorecard`.
func scorecardMain(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	const name = "vigil scorecard"
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stdout, scorecardUsage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	}
	brokers := fs.String("brokers", envOr(getenv, "VIGIL_BROKERS", "127.0.0.1:9092"), "comma-separated seed brokers of the cluster to score (VIGIL_BROKERS)")
	output := fs.String("output", "", "write the report to this file: .md (markdown), .json or .html (default: markdown on stdout)")
	timeout := fs.Duration("timeout", scorecard.DefaultTimeout, "time limit of the whole run, cleanup included (default with --allow-faults: 60s and each fault probe's limit)")
	probeTimeout := fs.Duration("probe-timeout", scorecard.DefaultProbeTimeout, "time limit of each probe")
	in := cost.Default()
	w := &in.Workload
	fs.Float64Var(&w.IngestGBPerDay, "ingest-gb-per-day", 0, "workload for the cost model: GB producers send a day (without it, no cost is estimated)")
	fs.Float64Var(&w.RetentionDays, "retention-days", w.RetentionDays, "workload: days records are kept")
	fs.Float64Var(&w.ReplayFraction, "replay-fraction", w.ReplayFraction, "workload: share of the retained data re-read a month, 0 to 1")
	fs.IntVar(&w.Fanout, "fanout", w.Fanout, "workload: consumer groups reading every record live")
	fs.IntVar(&w.Zones, "zones", w.Zones, "workload: availability zones clients and brokers are spread over")
	fs.Float64Var(&w.CompressionRatio, "compression-ratio", w.CompressionRatio, "workload: uncompressed / compressed bytes of the producers' batches")
	allowFaults := fs.Bool("allow-faults", false, "run the failure recovery probe: signal the broker processes of --fault-pids, one at a time")
	faultPIDs := fs.String("fault-pids", "", "comma-separated process ids of the cluster's brokers the failure recovery probe may signal (with --allow-faults)")
	faultSignal := fs.String("fault-signal", scorecard.FaultStop, "the fault: stop (SIGSTOP for --fault-pause, then SIGCONT) or kill (SIGKILL: only for brokers something restarts; the scorecard never starts a process)")
	faultPause := fs.Duration("fault-pause", scorecard.DefaultFaultPause, "how long --fault-signal stop keeps a broker paused")
	recoveryTimeout := fs.Duration("recovery-timeout", scorecard.DefaultRecoveryTimeout, "how long after the resume (or the kill) every partition must accept writes again")
	sec := clientsec.Register(fs, getenv)
	if ok, code := cliflag.Parse(fs, args, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		cliflag.Errorf(stderr, name, "unexpected argument %q", fs.Arg(0))
		return cliflag.ExitUsage
	}
	switch {
	case *timeout <= 0:
		cliflag.Errorf(stderr, name, "--timeout %s: must be positive", *timeout)
		return cliflag.ExitUsage
	case *probeTimeout <= 0 || *probeTimeout > *timeout:
		cliflag.Errorf(stderr, name, "--probe-timeout %s: must be positive and at most --timeout %s", *probeTimeout, *timeout)
		return cliflag.ExitUsage
	}
	format := scorecard.Markdown
	if *output != "" {
		f, err := scorecard.FormatOf(*output)
		if err != nil {
			cliflag.Errorf(stderr, name, "--output %v", err)
			return cliflag.ExitUsage
		}
		format = f
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cfg := scorecard.Config{Brokers: splitList(*brokers), Timeout: *timeout, ProbeTimeout: *probeTimeout, Progress: stderr,
		AllowFaults: *allowFaults, FaultSignal: *faultSignal, FaultPause: *faultPause, RecoveryTimeout: *recoveryTimeout}
	for _, p := range splitList(*faultPIDs) {
		pid, err := strconv.Atoi(p)
		if err != nil {
			cliflag.Errorf(stderr, name, "--fault-pids: %q is not a process id", p)
			return cliflag.ExitUsage
		}
		cfg.FaultPIDs = append(cfg.FaultPIDs, pid)
	}
	switch {
	case *allowFaults && len(cfg.FaultPIDs) == 0:
		cliflag.Errorf(stderr, name, "--allow-faults needs --fault-pids: the broker processes it may signal")
		return cliflag.ExitUsage
	case !*allowFaults && (len(cfg.FaultPIDs) > 0 || set["fault-signal"] || set["fault-pause"] || set["recovery-timeout"]):
		cliflag.Errorf(stderr, name, "--fault-pids, --fault-signal, --fault-pause and --recovery-timeout need --allow-faults")
		return cliflag.ExitUsage
	}
	if !set["timeout"] {
		// Room for the fault probes besides the others.
		cfg.Timeout = scorecard.TimeoutFor(cfg)
	}
	if set["ingest-gb-per-day"] {
		if err := in.Validate(); err != nil {
			// Validate names each input as vigil cost's flag, without the
			// dashes; the workload flags here have the same names.
			cliflag.Errorf(stderr, name, "--%s", strings.ReplaceAll(err.Error(), "\n", "; --"))
			return cliflag.ExitUsage
		}
		cfg.Cost = &in
	} else {
		for _, f := range []string{"retention-days", "replay-fraction", "fanout", "zones", "compression-ratio"} {
			if set[f] {
				cliflag.Errorf(stderr, name, "--%s is a workload flag of the cost model: give --ingest-gb-per-day too", f)
				return cliflag.ExitUsage
			}
		}
	}
	if err := sec.Validate(); err != nil {
		cliflag.Errorf(stderr, name, "%v", err)
		return cliflag.ExitUsage
	}
	var err error
	if cfg.ClientOpts, err = sec.Opts(); err != nil {
		cliflag.Errorf(stderr, name, "%v", err)
		return cliflag.ExitUsage
	}
	if cfg.AnonymousOpts, err = anonymous(*sec).Opts(); err != nil {
		cliflag.Errorf(stderr, name, "anonymous client: %v", err)
		return cliflag.ExitUsage
	}
	cfg.Protocol, cfg.Principal = sec.Protocol, principal(sec)
	if err := cfg.Validate(); err != nil {
		cliflag.Errorf(stderr, name, "%v", err)
		return cliflag.ExitUsage
	}

	fmt.Fprintf(stderr, "%s: %s\n", name, scorecard.LimitsText(cfg))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	rep, err := scorecard.Run(ctx, cfg)
	if errors.Is(err, scorecard.ErrUnreachable) {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return cliflag.ExitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	if err := writeScorecard(rep, format, *output, stdout); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	fmt.Fprintf(stderr, "%s: API compatibility %d of %d, security boundary %d of %d, migration path %d of %d, burst and replay %d of %d, failure recovery %d of %d, in %s\n", name,
		rep.Compatibility.Passed, rep.Compatibility.Scored, rep.Security.Passed, rep.Security.Scored, rep.Migration.Passed, rep.Migration.Scored,
		rep.Burst.Passed, rep.Burst.Scored, rep.Recovery.Passed, rep.Recovery.Scored, rep.Duration.Round(time.Millisecond))
	return 0
}

// writeScorecard writes the report to path, or to stdout when path is
// empty.
func writeScorecard(rep *scorecard.Report, format scorecard.Format, path string, stdout io.Writer) error {
	if path == "" {
		out := bufio.NewWriter(stdout)
		if err := scorecard.Write(out, rep, format); err != nil {
			return err
		}
		return out.Flush()
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	if err := scorecard.Write(f, rep, format); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--output %s: %w", path, err)
	}
	return nil
}

// anonymous is c without credentials: the same TLS (to reach the same
// listener), no SASL and no client certificate.
func anonymous(c clientsec.Config) *clientsec.Config {
	if c.TLS() {
		c.Protocol = "SSL"
	} else {
		c.Protocol = "PLAINTEXT"
	}
	c.Username, c.PasswordFile, c.Password, c.TokenFile, c.Cert, c.Key = "", "", "", "", "", ""
	return &c
}

// principal names the credentials in the report as Kafka would.
func principal(c *clientsec.Config) string {
	switch {
	case c.SASL() && c.Mechanism == "OAUTHBEARER":
		return "the OAUTHBEARER token's principal"
	case c.SASL():
		return "User:" + c.Username
	case c.Cert != "":
		return "the client certificate's principal"
	}
	return "User:ANONYMOUS"
}
