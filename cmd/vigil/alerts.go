package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/alerts"
	"github.com/vigilhq/vigil/internal/clientsec"
	"github.com/vigilhq/vigil/internal/cliflag"
)

const alertsUsage = `Usage:
  vigil alerts list [--since TIME|DURATION] [--limit N] [--severity S] [--rule TEXT] [--host H] [--user U] [--json]
  vigil alerts tail [--since TIME|DURATION] [--severity S] [--rule TEXT] [--host H] [--user U] [--json]

list prints the findings of the alerts topic up to now (the last --limit,
default 50), tail prints new findings as they arrive until interrupted
(with --since, from then on first). Columns: TIME (the event's), SEVERITY,
RULE, HOST, USER, COUNT (a suppressed finding's count, once its update is
written). --json prints the finding records as NDJSON instead.
`

// alertsMain is `vigil alerts list|tail`.
func alertsMain(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if ok, code := cliflag.SubcommandHelp(args, alertsUsage, stdout, stderr); !ok {
		return code
	}
	sub := args[0]
	if sub != "list" && sub != "tail" {
		cliflag.Errorf(stderr, "vigil alerts", "unknown subcommand %q: want list or tail", sub)
		return cliflag.ExitUsage
	}
	fs := flag.NewFlagSet("vigil alerts "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", envOr(getenv, "VIGIL_BROKERS", "127.0.0.1:9092"), "comma-separated seed brokers (VIGIL_BROKERS)")
	topic := fs.String("topic", "alerts", "the alerts topic")
	since := fs.String("since", "", "start at this time: RFC 3339, or a duration back from now (1h, 24h)")
	limit := fs.Int("limit", 50, "list: the last N findings (0: all)")
	sev := fs.String("severity", "", "only findings of at least this severity (informational, low, medium, high, critical)")
	rule := fs.String("rule", "", "only findings whose rule title contains this")
	host := fs.String("host", "", "only findings of this host")
	user := fs.String("user", "", "only findings of this user")
	asJSON := fs.Bool("json", false, "print the finding records (NDJSON) instead of a table")
	utc := fs.Bool("utc", false, "print times in UTC")
	sec := clientsec.Register(fs, getenv)
	if ok, code := cliflag.Parse(fs, args[1:], stderr); !ok {
		return code
	}
	minSev, err := alerts.SeverityID(*sev)
	if err != nil {
		cliflag.Errorf(stderr, fs.Name(), "--severity: %v", err)
		return cliflag.ExitUsage
	}
	var from time.Time
	if *since != "" {
		if d, err := time.ParseDuration(*since); err == nil {
			from = time.Now().Add(-d)
		} else if from, err = time.Parse(time.RFC3339Nano, *since); err != nil {
			cliflag.Errorf(stderr, fs.Name(), "--since %q: want RFC 3339 or a duration", *since)
			return cliflag.ExitUsage
		}
	}
	opts, code := clientOptions(stderr, fs.Name(), sec)
	if code != 0 {
		return code
	}
	filter := alerts.Filter{MinSeverity: minSev, Rule: *rule, Host: *host, User: *user}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	base := append([]kgo.Opt{kgo.SeedBrokers(splitList(*brokers)...), kgo.ClientID("vigil-alerts")}, opts...)
	adm, err := kgo.NewClient(base...)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return 1
	}
	defer adm.Close()
	ka := kadm.NewClient(adm)
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ends, err := ka.ListEndOffsets(lctx, *topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s: %v\n", fs.Name(), *topic, err)
		return 1
	}
	var starts kadm.ListedOffsets
	switch {
	case !from.IsZero():
		starts, err = ka.ListOffsetsAfterMilli(lctx, from.UnixMilli(), *topic)
	case sub == "tail":
		starts = ends
	default:
		starts, err = ka.ListStartOffsets(lctx, *topic)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return 1
	}
	want := map[int32]kgo.Offset{}
	left := map[int32]int64{}
	starts.Each(func(o kadm.ListedOffset) {
		want[o.Partition] = kgo.NewOffset().At(o.Offset)
		if e, ok := ends.Lookup(*topic, o.Partition); ok && e.Offset > o.Offset {
			left[o.Partition] = e.Offset
		}
	})
	rd, err := kgo.NewClient(append(base, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{*topic: want}))...)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return 1
	}
	defer rd.Close()
	table := alerts.NewTable(stdout)
	table.UTC = *utc
	view := alerts.NewView()
	show := func(r *kgo.Record) {
		row := view.Add(r.Value)
		if row == nil || !filter.Keep(row) {
			return
		}
		if *asJSON {
			fmt.Fprintf(stdout, "%s\n", r.Value)
			return
		}
		if sub == "tail" {
			if alerts.IsUpdate(r.Value) {
				row = &alerts.Row{Time: row.Time, Severity: row.Severity, Rule: row.Rule + " (update)", Host: row.Host, User: row.User, Count: row.Count}
			}
			table.Write(row)
			table.Flush()
		}
	}
	// Up to the end offsets seen at start: history (list, or tail --since).
	for len(left) > 0 {
		f := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			return 0
		}
		for _, e := range f.Errors() {
			fmt.Fprintf(stderr, "%s: %s[%d]: %v\n", fs.Name(), e.Topic, e.Partition, e.Err)
			return 1
		}
		f.EachRecord(func(r *kgo.Record) {
			if end, ok := left[r.Partition]; ok {
				if r.Offset >= end {
					return
				}
				if r.Offset >= end-1 {
					delete(left, r.Partition)
				}
			}
			show(r)
		})
	}
	if sub == "list" {
		if *asJSON {
			return 0
		}
		var rows []*alerts.Row
		for _, r := range view.Rows() {
			if filter.Keep(r) {
				rows = append(rows, r)
			}
		}
		if *limit > 0 && len(rows) > *limit {
			rows = rows[len(rows)-*limit:]
		}
		for _, r := range rows {
			table.Write(r)
		}
		if err := table.Flush(); err != nil {
			return 1
		}
		if len(rows) == 0 {
			fmt.Fprintf(stderr, "%s: no findings%s\n", fs.Name(), strings.TrimSuffix(" on "+*topic, ""))
		}
		return 0
	}
	for {
		f := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			return 0
		}
		f.EachRecord(show)
	}
}
