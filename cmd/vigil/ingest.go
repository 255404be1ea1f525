package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vigilhq/vigil/internal/clientsec"
	"github.com/vigilhq/vigil/internal/cliflag"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/ingest"
	"github.com/vigilhq/vigil/internal/ocsf"
)

// ingestMain is `vigil ingest`: syslog and HTTP in, OCSF topics out.
func ingestMain(args []string, stderr io.Writer, getenv func(string) string) int {
	hup := catchHUP() // see serve
	defer signal.Stop(hup)
	cfg := ingest.DefaultConfig()
	fs := flag.NewFlagSet("vigil ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", envOr(getenv, "VIGIL_BROKERS", "127.0.0.1:9092"), "comma-separated seed brokers (VIGIL_BROKERS)")
	fs.StringVar(&cfg.SyslogTCP, "syslog-tcp", "127.0.0.1:5514", "syslog over TCP (see --syslog-framing); empty disables")
	framing := fs.String("syslog-framing", string(ingest.FramingAuto), "TCP syslog framing: octet-counted (RFC 6587 LEN SP MSG), newline, or auto (per frame: digits, a space and '<' is octet-counted, anything else a line)")
	var files multiFlag
	fs.Var(&files, "file", "read a log file's lines (syslog without PRI, audit.log, access logs; repeatable); with --file the network listeners are off unless their flags are given")
	follow := fs.Bool("follow", false, "with --file: keep reading lines appended to the files, across rotation, until stopped (without it ingest exits once the files are read)")
	fs.StringVar(&cfg.SyslogUDP, "syslog-udp", "127.0.0.1:5514", "syslog over UDP; empty disables")
	fs.StringVar(&cfg.HTTP, "http", "127.0.0.1:8088", "HTTP: POST /v1/events, Splunk HEC /services/collector/event; empty disables")
	fs.StringVar(&cfg.SyslogTLSCert, "syslog-tls-cert", "", "PEM certificate: serve TCP syslog over TLS (with --syslog-tls-key)")
	fs.StringVar(&cfg.SyslogTLSKey, "syslog-tls-key", "", "PEM private key for --syslog-tls-cert")
	fs.StringVar(&cfg.HECToken, "hec-token", getenv("VIGIL_HEC_TOKEN"), "token for the HEC endpoint (VIGIL_HEC_TOKEN); empty disables HEC")
	httpTokenFile := fs.String("http-token-file", getenv("VIGIL_HTTP_TOKEN_FILE"), "file whose first line is the bearer token POST /v1/events, /v1/stats and /metrics require (VIGIL_HTTP_TOKEN_FILE)")
	fs.StringVar(&cfg.HTTPTLSCert, "http-tls-cert", "", "PEM certificate: serve the HTTP listener over TLS (with --http-tls-key)")
	fs.StringVar(&cfg.HTTPTLSKey, "http-tls-key", "", "PEM private key for --http-tls-cert")
	fs.StringVar(&cfg.HTTPClientCA, "http-client-ca", "", "PEM CA bundle: the HTTP listener requires client certificates signed by it (mTLS)")
	fs.BoolVar(&cfg.HTTPInsecure, "http-insecure", false, "let anyone who reaches a non-loopback --http address post events (without it such a listener needs --http-token-file or --http-client-ca)")
	sec := clientsec.Register(fs, getenv)
	fs.Int64Var(&cfg.MemoryBudget, "memory-budget", cfg.MemoryBudget, "bytes of accepted input held until the broker acknowledges it; past it TCP stops reading, HTTP answers 503, UDP counts drops")
	fs.IntVar(&cfg.MaxMessageBytes, "max-message-bytes", cfg.MaxMessageBytes, "largest syslog message; longer ones are dead-lettered")
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body-bytes", cfg.MaxBodyBytes, "largest HTTP body (413 beyond)")
	fs.StringVar(&cfg.DeadLetter, "topic-deadletter", cfg.DeadLetter, "topic for input that does not parse")
	fs.DurationVar(&cfg.RetryAfter, "retry-after", cfg.RetryAfter, "Retry-After of 503 answers")
	logLevel := fs.String("log-level", "info", "debug, info, warn, error")
	cfg.Topics = map[int]string{}
	topicFlags := map[int]*string{}
	for _, c := range ocsf.Classes() {
		name := strings.TrimPrefix(c.Topic, "ocsf.")
		topicFlags[c.UID] = fs.String("topic-"+strings.ReplaceAll(name, "_", "-"), c.Topic, fmt.Sprintf("topic for OCSF %s (%d) events", c.Name, c.UID))
	}
	if ok, code := cliflag.Parse(fs, args, stderr); !ok {
		return code
	}
	var err error
	if fs.NArg() > 0 {
		cliflag.Errorf(stderr, fs.Name(), "unexpected arguments %q", fs.Args())
		return cliflag.ExitUsage
	}
	if *follow && len(files) == 0 {
		cliflag.Errorf(stderr, fs.Name(), "--follow goes with --file")
		return cliflag.ExitUsage
	}
	if cfg.SyslogFraming, err = ingest.ParseFraming(*framing); err != nil {
		cliflag.Errorf(stderr, fs.Name(), "--syslog-framing: %v", err)
		return cliflag.ExitUsage
	}
	if len(files) > 0 {
		// Reading files needs no listener: the defaults stay off unless
		// asked for.
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, addr := range map[string]*string{"syslog-tcp": &cfg.SyslogTCP, "syslog-udp": &cfg.SyslogUDP, "http": &cfg.HTTP} {
			if !set[name] {
				*addr = ""
			}
		}
		cfg.Files, cfg.Follow = files, *follow
	}
	if (cfg.SyslogTLSCert == "") != (cfg.SyslogTLSKey == "") {
		cliflag.Errorf(stderr, fs.Name(), "--syslog-tls-cert and --syslog-tls-key go together")
		return cliflag.ExitUsage
	}
	if cfg.HTTPToken, err = readTokenFile(*httpTokenFile); err != nil {
		cliflag.Errorf(stderr, fs.Name(), "--http-token-file: %v", err)
		return cliflag.ExitUsage
	}
	var code int
	if cfg.ClientOpts, code = clientOptions(stderr, fs.Name(), sec); code != 0 {
		return code
	}
	for uid, p := range topicFlags {
		cfg.Topics[uid] = *p
	}
	cfg.Brokers = strings.Split(*brokers, ",")
	level, err := config.ParseLevel(*logLevel)
	if err != nil {
		cliflag.Errorf(stderr, fs.Name(), "%v", err)
		return cliflag.ExitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	svc, err := ingest.Start(ctx, cfg, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	log.Info("vigil ingest listening", "syslog_tcp", svc.SyslogTCPAddr(), "syslog_udp", svc.SyslogUDPAddr(), "http", svc.HTTPAddr(), "files", cfg.Files, "brokers", cfg.Brokers)
	// Files read once, with no listener: done when they are read.
	filesOnly := len(cfg.Files) > 0 && !cfg.Follow && cfg.SyslogTCP == "" && cfg.SyslogUDP == "" && cfg.HTTP == ""
	fileDone := svc.FileDone()
	if !filesOnly {
		fileDone = nil
	}
	for run := true; run && ctx.Err() == nil; {
		select {
		case <-hup:
			log.Info("SIGHUP: vigil ingest keeps running")
			svc.Reload()
		case <-fileDone:
			log.Info("files read", "files", cfg.Files)
			run = false
		case <-ctx.Done():
		}
	}
	log.Info("shutting down: flushing accepted input to the broker")
	if err := svc.Close(); err != nil {
		log.Error("shutdown incomplete", "err", err)
		return 1
	}
	return 0
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// readTokenFile reads the first line of a token file ("" for no file); a
// token shorter than 16 characters is refused as guessable.
func readTokenFile(file string) (string, error) {
	if file == "" {
		return "", nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	line = strings.TrimSpace(line)
	if len(line) < 16 {
		return "", fmt.Errorf("%s: the token must be at least 16 characters", file)
	}
	return line, nil
}
