// Command vigil is Vigil's single binary: the broker and its tools.
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
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	vbench "github.com/vigilhq/vigil/bench"
	"github.com/vigilhq/vigil/internal/admincli"
	"github.com/vigilhq/vigil/internal/clientsec"
	"github.com/vigilhq/vigil/internal/cliflag"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/ingest"
	"github.com/vigilhq/vigil/internal/server"
)

const usage = `vigil: a Kafka-compatible streaming platform on object storage

Usage:
  vigil serve [flags]        run a broker (vigil serve -h for flags)
  vigil bench KIND [flags]   benchmarks: produce, groups, replay, incident, detect, ingest, enrich, txn, export (vigil bench -h)
  vigil topics SUBCOMMAND    list, describe, create, delete, alter-config topics (vigil topics -h)
  vigil groups SUBCOMMAND    list, describe, reset offsets of, delete consumer groups (vigil groups -h)
  vigil cluster SUBCOMMAND   status of the brokers; drain a broker before stopping it (vigil cluster -h)
  vigil users SUBCOMMAND     add, delete, list SCRAM users, through a broker or into its metadata store (vigil users -h)
  vigil acls SUBCOMMAND      add, list, delete ACLs with kafka-acls.sh's options (vigil acls -h)
  vigil ingest [flags]       syslog and HTTP telemetry in, OCSF events out (vigil ingest -h)
  vigil detect --rules DIR PATH... evaluate Sigma rules over JSON event files, print matches as NDJSON
  vigil detect --brokers H:P --rules DIR  consume telemetry topics, write OCSF Detection Findings to alerts (vigil detect -h)
  vigil hunt --rules DIR --topics T --from TIME [--to TIME]  run rules over retained history, findings as NDJSON (vigil hunt -h)
  vigil alerts list|tail     findings of the alerts topic at a terminal: time, severity, rule, host, user, count (vigil alerts -h)
  vigil enrich [flags]       GeoIP, threat intel (intel.*), assets and identities into enriched.* topics; vigil enrich load (vigil enrich -h)
  vigil export --config FILE deliver topics to Elasticsearch/OpenSearch, Splunk HEC and webhooks (vigil export -h)
  vigil mirror --source-brokers S --topics REGEX  copy topics from another Kafka cluster onto Vigil with their offsets, groups' offsets too (vigil mirror -h)
  vigil mirror promote TOPIC...  make a mirror topic an ordinary topic: the cutover (vigil mirror -h)
  vigil mirror verify --source-brokers S --topics REGEX  compare topics on another Kafka cluster and on Vigil, record by record (vigil mirror -h)
  vigil mirror compare-detections --source-brokers S --topics REGEX --rules DIR  the same rules over both clusters, findings on one side only (vigil mirror -h)
  vigil audit verify         check the audit trail's hash chain, partition by partition (vigil audit -h)
  vigil cost --ingest-gb-per-day N  monthly cost of a workload on Vigil and on 3-replica Kafka, term by term (vigil cost -h)
  vigil scorecard --brokers B  probe a Kafka-compatible cluster for a security pipeline's needs; report as markdown, JSON or HTML (vigil scorecard -h)
  vigil version              the module version, commit and Go version of this binary (also --version)

`

func main() {
	// vigil bench incident runs its clients as children of this binary.
	vbench.RunChild()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "bench":
		return bench(args[1:], stdout, stderr)
	case "topics", "groups", "cluster", "users", "acls":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		return admincli.Main(ctx, args, admincli.Env{Stdout: stdout, Stderr: stderr, Getenv: os.Getenv})
	case "ingest":
		return ingestMain(args[1:], stderr, os.Getenv)
	case "detect":
		return detect(args[1:], stdout, stderr)
	case "enrich":
		return enrichMain(args[1:], stdout, stderr, os.Getenv)
	case "hunt":
		return huntMain(args[1:], stdout, stderr, os.Getenv)
	case "alerts":
		return alertsMain(args[1:], stdout, stderr, os.Getenv)
	case "export":
		return exportMain(args[1:], stderr, os.Getenv)
	case "mirror":
		return mirrorMain(args[1:], stdout, stderr, os.Getenv)
	case "audit":
		return auditMain(args[1:], stdout, stderr, os.Getenv)
	case "cost":
		return costMain(args[1:], stdout, stderr)
	case "scorecard":
		return scorecardMain(args[1:], stdout, stderr, os.Getenv)
	case "version", "--version", "-version":
		return version(stdout)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "vigil: unknown command %q (run 'vigil -h' for the commands)\n", args[0])
		return 2
	}
}

func serve(args []string, stdout, stderr io.Writer) int {
	// SIGHUP is caught before anything starts: by default it would kill the
	// process, and an operator reloading detect's rules with a HUP to the
	// wrong process must not stop a broker.
	hup := catchHUP()
	defer signal.Stop(hup)
	cfg, err := config.Load("vigil serve", args, os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		config.PrintUsage("vigil serve", stdout)
		return 0
	}
	if err != nil {
		cliflag.Errorf(stderr, "vigil serve", "%v", err)
		return cliflag.ExitUsage
	}
	level, _ := config.ParseLevel(cfg.LogLevel)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv, err := server.Start(ctx, cfg, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	in, err := startIngest(ctx, cfg, srv.PlaintextAdvertised(), srv.Metrics().Registerer(), log)
	if err != nil {
		log.Error("start failed", "err", err)
		srv.Close()
		return 1
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
wait:
	for {
		select {
		case <-hup:
			log.Info("SIGHUP: vigil serve keeps running; flags and the config file are read only at start")
			if in != nil {
				in.Reload()
			}
		case <-ctx.Done():
			log.Info("shutting down: flushing the WAL and uploading")
			break wait
		case err := <-served:
			log.Error("listener failed", "err", err)
			break wait
		}
	}
	// Ingest first: what it accepted reaches the broker before it stops.
	if in != nil {
		if err := in.Close(); err != nil {
			log.Error("ingest shutdown incomplete", "err", err)
		}
	}
	if err := srv.Close(); err != nil {
		log.Error("shutdown incomplete", "err", err)
		return 1
	}
	log.Info("shut down cleanly")
	return 0
}

// catchHUP delivers SIGHUP to the returned channel instead of letting it
// end the process.
func catchHUP() chan os.Signal {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup
}

// startIngest runs the ingest service in the broker process when an
// --ingest-* listener is set, producing to that broker; nil otherwise.
func startIngest(ctx context.Context, cfg config.Broker, broker string, reg prometheus.Registerer, log *slog.Logger) (*ingest.Service, error) {
	if cfg.IngestSyslogTCP == "" && cfg.IngestSyslogUDP == "" && cfg.IngestHTTP == "" {
		return nil, nil
	}
	if broker == "" {
		return nil, errors.New("the in-process ingest service produces through a PLAINTEXT listener: add one on loopback (--listen 'PLAINTEXT://127.0.0.1:9092,SASL_SSL://...'), or run vigil ingest on its own with the client security flags")
	}
	icfg := ingest.DefaultConfig()
	icfg.Brokers = []string{broker}
	icfg.SyslogTCP, icfg.SyslogUDP, icfg.HTTP, icfg.HECToken = cfg.IngestSyslogTCP, cfg.IngestSyslogUDP, cfg.IngestHTTP, cfg.IngestHECToken
	var err error
	if icfg.SyslogFraming, err = ingest.ParseFraming(cfg.IngestSyslogFraming); err != nil {
		return nil, fmt.Errorf("--ingest-syslog-framing: %w", err)
	}
	if icfg.HTTPToken, err = readTokenFile(cfg.IngestHTTPTokenFile); err != nil {
		return nil, fmt.Errorf("--ingest-http-token-file: %w", err)
	}
	icfg.HTTPInsecure = cfg.IngestHTTPInsecure
	in, err := ingest.Start(ctx, icfg, log.With("component", "ingest"))
	if err != nil {
		return nil, fmt.Errorf("start ingest: %w", err)
	}
	// Its counters join the broker's /metrics.
	if err := in.Register(reg); err != nil {
		in.Close()
		return nil, fmt.Errorf("ingest metrics: %w", err)
	}
	log.Info("ingest listening", "syslog_tcp", in.SyslogTCPAddr(), "syslog_udp", in.SyslogUDPAddr(), "http", in.HTTPAddr())
	return in, nil
}

// clientOptions checks a command's client security flags and builds the
// franz-go options they give: a setting the protocol would ignore is a
// usage error, a certificate or secret that cannot be read fails the
// command (exit 1).
func clientOptions(stderr io.Writer, name string, sec *clientsec.Config) ([]kgo.Opt, int) {
	if err := sec.Validate(); err != nil {
		cliflag.Errorf(stderr, name, "%v", err)
		return nil, cliflag.ExitUsage
	}
	opts, err := sec.Opts()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return nil, 1
	}
	return opts, 0
}
