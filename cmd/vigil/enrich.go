package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/clientsec"
	"github.com/vigilhq/vigil/internal/cliflag"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/enrich"
	"github.com/vigilhq/vigil/internal/intel"
	"github.com/vigilhq/vigil/internal/ocsf"
)

// enrichMain is `vigil enrich` (the stage) and `vigil enrich load`
// (threat intel and inventory into their compacted topics).
func enrichMain(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) > 0 && args[0] == "load" {
		return enrichLoad(args[1:], stdout, stderr, getenv)
	}
	fs := flag.NewFlagSet("vigil enrich", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", envOr(getenv, "VIGIL_BROKERS", "127.0.0.1:9092"), "comma-separated seed brokers (VIGIL_BROKERS)")
	var defTopics []string
	for _, c := range ocsf.Classes() {
		defTopics = append(defTopics, c.Topic)
	}
	topics := fs.String("topics", strings.Join(defTopics, ","), "comma-separated telemetry topics to enrich")
	prefix := fs.String("output-prefix", "enriched.", "each topic's enriched records go to PREFIX+topic (created with the input's partition count)")
	group := fs.String("group", "vigil-enrich", "consumer group")
	alerts := fs.String("alerts-topic", "alerts", "topic for the Detection Findings of indicators of alert sets")
	intelRegex := fs.String("intel-regex", `^intel\.`, "regular expression of the threat-intel topics (read whole, and followed)")
	assets := fs.String("assets-topic", "assets", "compacted topic of asset records")
	identities := fs.String("identities-topic", "identities", "compacted topic of identity records")
	city := fs.String("geoip-city", getenv("VIGIL_GEOIP_CITY"), "MaxMind City or Country database (.mmdb) for locations (VIGIL_GEOIP_CITY)")
	asn := fs.String("geoip-asn", getenv("VIGIL_GEOIP_ASN"), "MaxMind ASN database (.mmdb) for autonomous systems (VIGIL_GEOIP_ASN)")
	workers := fs.Int("workers", 0, "goroutines enriching a batch (0: GOMAXPROCS)")
	start := fs.String("start", "earliest", "where a group without committed offsets starts: earliest or latest")
	logLevel := fs.String("log-level", "info", "debug, info, warn, error")
	sec := clientsec.Register(fs, getenv)
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: vigil enrich [--geoip-city F.mmdb] [--geoip-asn F.mmdb] [--topics T1,T2] [--output-prefix enriched.]
       vigil enrich load --format misp-warninglist|misp-feed|stix|csv [--topic intel.NAME] [--set NAME] [--action alert|context] [--replace] FILE...
       vigil enrich load --inventory assets|identities [--key FIELD] [--replace] FILE...

Consumes the telemetry topics as a consumer group and writes each event,
with GeoIP and ASN for its addresses, the threat-intel indicators it
holds (intel.* topics) and its asset and identity context (the assets and
identities topics) added as OCSF enrichments and observables, to
PREFIX+topic in the same partition; an indicator of an alert set also
becomes a Detection Finding on the alerts topic. Point vigil detect at the
enriched topics: vigil detect --topic-regex '^enriched\.'`)
		fs.PrintDefaults()
	}
	if ok, code := cliflag.Parse(fs, args, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		cliflag.Errorf(stderr, fs.Name(), "unexpected argument %q (vigil enrich load loads intel)", fs.Arg(0))
		return cliflag.ExitUsage
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
	cfg := enrich.Config{Brokers: splitList(*brokers), Group: *group, Topics: splitList(*topics), OutputPrefix: *prefix,
		AlertsTopic: *alerts, IntelRegex: *intelRegex, AssetsTopic: *assets, IdentitiesTopic: *identities,
		GeoCity: *city, GeoASN: *asn, Workers: *workers, ClientOpts: clientOpts}
	switch *start {
	case "earliest":
	case "latest":
		cfg.FromLatest = true
	default:
		cliflag.Errorf(stderr, fs.Name(), "--start %q: want earliest or latest", *start)
		return cliflag.ExitUsage
	}
	for _, t := range cfg.Topics {
		if strings.HasPrefix(t, cfg.OutputPrefix) {
			cliflag.Errorf(stderr, fs.Name(), "topic %q is an output topic (--output-prefix %q)", t, cfg.OutputPrefix)
			return cliflag.ExitUsage
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	s, err := enrich.New(cfg, log)
	if err != nil {
		log.Error("vigil enrich: start failed", "err", err)
		return 1
	}
	if err := s.Run(ctx); err != nil {
		log.Error("vigil enrich: stopped", "err", err)
		return 1
	}
	st := s.Stats()
	log.Info("vigil enrich: stopped", "records", st.Records, "enriched", st.Enriched, "findings", st.Findings, "invalid", st.Invalid)
	return 0
}

// enrichLoad is `vigil enrich load`: threat-intel files into an intel.*
// topic, or an inventory export into assets or identities.
func enrichLoad(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("vigil enrich load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", envOr(getenv, "VIGIL_BROKERS", "127.0.0.1:9092"), "comma-separated seed brokers (VIGIL_BROKERS)")
	format := fs.String("format", "", "threat-intel format: "+strings.Join(intel.Formats(), ", "))
	inventory := fs.String("inventory", "", "instead of intel: assets or identities (CSV with a header row, a JSON array or NDJSON of objects)")
	topic := fs.String("topic", "", "topic to load into (default: intel.<format>, or the inventory's topic)")
	set := fs.String("set", "", "set name (default: the list's, bundle's, event's or file's own)")
	action := fs.String("action", "", "alert (a finding per hit) or context (enrichment only); default: context for warninglists, alert for the rest")
	severity := fs.String("severity", "", "severity of the set's findings: informational, low, medium, high, critical (default: the format's)")
	key := fs.String("key", "", "inventory: the field that keys each record (default hostname for assets, name for identities)")
	replace := fs.Bool("replace", false, "remove the set's (or the inventory's) indicators that the files no longer hold (tombstones)")
	partitions := fs.Int("partitions", 1, "partitions of the topic if it is created")
	sec := clientsec.Register(fs, getenv)
	if ok, code := cliflag.Parse(fs, args, stderr); !ok {
		return code
	}
	if fs.NArg() == 0 {
		cliflag.Errorf(stderr, fs.Name(), "name the files to load")
		return cliflag.ExitUsage
	}
	if (*format == "") == (*inventory == "") {
		cliflag.Errorf(stderr, fs.Name(), "give one of --format (threat intel) or --inventory (assets, identities)")
		return cliflag.ExitUsage
	}
	if *action != "" && *action != intel.ActionAlert && *action != intel.ActionContext {
		cliflag.Errorf(stderr, fs.Name(), "--action %q: want alert or context", *action)
		return cliflag.ExitUsage
	}
	clientOpts, code := clientOptions(stderr, fs.Name(), sec)
	if code != 0 {
		return code
	}
	var recs []enrich.KV
	replacePrefix := ""
	switch {
	case *inventory != "":
		if *inventory != "assets" && *inventory != "identities" {
			cliflag.Errorf(stderr, fs.Name(), "--inventory %q: want assets or identities", *inventory)
			return cliflag.ExitUsage
		}
		if *topic == "" {
			*topic = *inventory
		}
		if *key == "" {
			*key = map[string]string{"assets": "hostname", "identities": "name"}[*inventory]
		}
		for _, f := range fs.Args() {
			data, err := os.ReadFile(f)
			if err != nil {
				fmt.Fprintf(stderr, "vigil enrich load: %v\n", err)
				return 1
			}
			kvs, err := enrich.InventoryRecords(data, *key)
			if err != nil {
				fmt.Fprintf(stderr, "vigil enrich load: %s: %v\n", f, err)
				return 1
			}
			recs = append(recs, kvs...)
		}
		if *replace {
			replacePrefix = "\x00" // every key: see below
		}
	default:
		if *topic == "" {
			*topic = "intel." + *format
		}
		sets := map[string]bool{}
		for _, f := range fs.Args() {
			data, err := os.ReadFile(f)
			if err != nil {
				fmt.Fprintf(stderr, "vigil enrich load: %v\n", err)
				return 1
			}
			name := filepath.Base(f)
			if name == "list.json" { // a warninglist's folder names it
				name = filepath.Base(filepath.Dir(f))
			}
			l, err := intel.Load(*format, name, data, intel.LoadOptions{Set: *set, Action: *action, Severity: *severity})
			if err != nil {
				fmt.Fprintf(stderr, "vigil enrich load: %s: %v\n", f, err)
				return 1
			}
			for i, s := range l.Skipped {
				if i == 10 {
					fmt.Fprintf(stderr, "vigil enrich load: %s: ... and %d more skipped\n", f, len(l.Skipped)-10)
					break
				}
				fmt.Fprintf(stderr, "vigil enrich load: %s: skipped: %s\n", f, s)
			}
			for i := range l.Records {
				r := &l.Records[i]
				sets[r.Set] = true
				recs = append(recs, enrich.KV{Key: []byte(r.Key()), Value: r.Marshal()})
			}
			fmt.Fprintf(stderr, "vigil enrich load: %s: %d indicators, %d skipped\n", f, len(l.Records), len(l.Skipped))
		}
		if *replace {
			if len(sets) != 1 {
				cliflag.Errorf(stderr, fs.Name(), "--replace needs the files to hold one set (they hold %d; name it with --set)", len(sets))
				return cliflag.ExitUsage
			}
			for s := range sets {
				replacePrefix = s + "|"
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	opts := append([]kgo.Opt{kgo.SeedBrokers(splitList(*brokers)...), kgo.ClientID("vigil-enrich-load"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchMaxBytes(1 << 20)}, clientOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		fmt.Fprintf(stderr, "vigil enrich load: %v\n", err)
		return 1
	}
	defer cl.Close()
	if replacePrefix == "\x00" {
		replacePrefix = "" // inventory: every key of the topic is the inventory's
		pub, err := publishAll(ctx, cl, opts, *topic, int32(*partitions), recs)
		return reportPublished(stdout, stderr, *topic, pub, err)
	}
	pub, err := enrich.Publish(ctx, cl, opts, *topic, int32(*partitions), recs, replacePrefix)
	return reportPublished(stdout, stderr, *topic, pub, err)
}

// publishAll is Publish replacing every key of the topic.
func publishAll(ctx context.Context, cl *kgo.Client, opts []kgo.Opt, topic string, partitions int32, recs []enrich.KV) (enrich.Published, error) {
	// The empty prefix means "no replace" to Publish, so read the keys here.
	keys, err := enrich.ReadKeys(ctx, cl, opts, topic, "")
	if err != nil && !strings.Contains(err.Error(), "UNKNOWN_TOPIC") {
		return enrich.Published{}, err
	}
	for _, r := range recs {
		delete(keys, string(r.Key))
	}
	tomb := 0
	for k := range keys {
		recs = append(recs, enrich.KV{Key: []byte(k)})
		tomb++
	}
	pub, err := enrich.Publish(ctx, cl, opts, topic, partitions, recs, "")
	pub.Records -= tomb
	pub.Tombstones = tomb
	return pub, err
}

func reportPublished(stdout, stderr io.Writer, topic string, pub enrich.Published, err error) int {
	if err != nil {
		fmt.Fprintf(stderr, "vigil enrich load: %v\n", err)
		return 1
	}
	created := ""
	if pub.Created {
		created = " (created, compacted)"
	}
	fmt.Fprintf(stdout, "%s%s: %d records, %d tombstones\n", topic, created, pub.Records, pub.Tombstones)
	return 0
}
