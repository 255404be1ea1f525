package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigilhq/vigil/internal/clientsec"
	"github.com/vigilhq/vigil/internal/cliflag"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/export"
	"github.com/vigilhq/vigil/internal/export/exportconfig"
)

// exportMain is `vigil export`: the sinks of a config file, each a
// consumer group job, or with --from a one-off backfill of a time range.
func exportMain(args []string, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("vigil export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", getenv("VIGIL_EXPORT_CONFIG"), "YAML file of the sinks (VIGIL_EXPORT_CONFIG); required")
	brokers := fs.String("brokers", getenv("VIGIL_BROKERS"), "comma-separated seed brokers (VIGIL_BROKERS; default: the file's brokers:, else 127.0.0.1:9092)")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics at http://ADDR/metrics (and /healthz); empty: none")
	var sinks multiFlag
	fs.Var(&sinks, "sink", "run only this sink of the file (repeatable)")
	from := fs.String("from", "", "backfill: deliver the records with timestamps from this time (RFC 3339) once and exit, as a plain reader (group offsets untouched)")
	to := fs.String("to", "", "backfill: end of the range, exclusive (RFC 3339; default now)")
	quiet := fs.Bool("quiet", false, "backfill: no progress lines on stderr")
	every := fs.Duration("progress-interval", time.Second, "backfill: how often the progress line is written")
	logLevel := fs.String("log-level", "info", "debug, info, warn, error")
	sec := clientsec.Register(fs, getenv)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: vigil export --config FILE [--metrics ADDR] [--sink NAME]...
       vigil export --config FILE --from TIME [--to TIME] [--sink NAME]...

Delivers the records of topics to Elasticsearch/OpenSearch (_bulk),
Splunk (HEC) and webhooks (raw JSON, Slack, Teams), one consumer group
per sink, at least once and with document ids derived from each record's
position, so that a restart or a rebalance never duplicates a document
in Elasticsearch. Offsets are committed only once the sink acknowledged
the batch (or the refused records are in the dead-letter topic). With
--from it delivers a time range once and exits, with a progress line on
stderr. The file's format and each sink's options: docs/export.md.`)
		fs.PrintDefaults()
	}
	if ok, code := cliflag.Parse(fs, args, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		cliflag.Errorf(stderr, fs.Name(), "unexpected argument %q", fs.Arg(0))
		return cliflag.ExitUsage
	}
	if *cfgPath == "" {
		cliflag.Errorf(stderr, fs.Name(), "--config FILE is required")
		return cliflag.ExitUsage
	}
	var fromT, toT time.Time
	if *to != "" && *from == "" {
		cliflag.Errorf(stderr, fs.Name(), "--to goes with --from")
		return cliflag.ExitUsage
	}
	if *from != "" {
		var err error
		if fromT, err = time.Parse(time.RFC3339Nano, *from); err != nil {
			cliflag.Errorf(stderr, fs.Name(), "--from %q: not an RFC 3339 time: %v", *from, err)
			return cliflag.ExitUsage
		}
		toT = time.Now()
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
	}
	level, err := config.ParseLevel(*logLevel)
	if err != nil {
		cliflag.Errorf(stderr, fs.Name(), "%v", err)
		return cliflag.ExitUsage
	}
	if err := sec.Validate(); err != nil {
		cliflag.Errorf(stderr, fs.Name(), "%v", err)
		return cliflag.ExitUsage
	}
	file, err := exportconfig.Load(*cfgPath)
	if err != nil {
		cliflag.Errorf(stderr, fs.Name(), "%v", err)
		return cliflag.ExitUsage
	}
	if len(sinks) > 0 {
		var keep []exportconfig.Sink
		for _, s := range file.Sinks {
			if slices.Contains(sinks, s.Name) {
				keep = append(keep, s)
			}
		}
		if len(keep) != len(sinks) {
			cliflag.Errorf(stderr, fs.Name(), "--sink %s: the file has no such sink", strings.Join(sinks, ","))
			return cliflag.ExitUsage
		}
		file.Sinks = keep
	}
	seeds := splitList(*brokers)
	if len(seeds) == 0 && len(file.Brokers) == 0 {
		seeds = []string{"127.0.0.1:9092"}
	}
	clientOpts, err := sec.Opts()
	if err != nil {
		fmt.Fprintf(stderr, "vigil export: %v\n", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	reg := prometheus.NewRegistry()
	m, err := export.NewMetrics(reg)
	if err != nil {
		fmt.Fprintf(stderr, "vigil export: %v\n", err)
		return 1
	}
	jobs, err := file.Jobs(seeds, clientOpts, m, log)
	if err != nil {
		cliflag.Errorf(stderr, fs.Name(), "%v", err)
		return cliflag.ExitUsage
	}
	defer func() {
		for _, j := range jobs {
			j.Close()
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *metricsAddr != "" {
		srv, addr, err := serveMetrics(*metricsAddr, reg)
		if err != nil {
			fmt.Fprintf(stderr, "vigil export: --metrics: %v\n", err)
			return 1
		}
		defer srv.Close()
		log.Info("export metrics listening", "addr", addr)
	}
	// The jobs run side by side; one that cannot run stops the others.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(jobs))
	var progress io.Writer
	if !*quiet {
		progress = stderr
	}
	for i, j := range jobs {
		wg.Go(func() {
			if *from != "" {
				errs[i] = j.Backfill(ctx, fromT, toT, progress, *every)
			} else {
				errs[i] = j.Run(ctx)
			}
			if errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	code := 0
	for i, j := range jobs {
		st := j.Stats()
		if errs[i] != nil && !errors.Is(errs[i], context.Canceled) {
			log.Error("vigil export: sink stopped", "sink", j.Name(), "err", errs[i])
			code = 1
		} else if errs[i] != nil && *from != "" {
			code = 1 // a backfill interrupted did not deliver its range
		}
		log.Info("vigil export: stopped", "sink", j.Name(), "records", st.Records, "delivered", st.Delivered,
			"dead_lettered", st.DeadLettered, "retried", st.Retried, "throttled", st.Throttled)
	}
	return code
}

// serveMetrics serves the registry at /metrics on addr, as ingest serves
// its own, and /healthz.
func serveMetrics(addr string, reg *prometheus.Registry) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return srv, ln.Addr().String(), nil
}
