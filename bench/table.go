package bench

// The table comparison (`vigil bench table`, issue 23): what keeping a
// topic's Iceberg table costs per record, as records per CPU-second of
// the process writing the table relative to a plain franz-go consumer
// reading the same topic, in the same minutes.
//
//   - The topic is the export comparison's (export.go): Records OCSF
//     events of three classes over days, written once.
//   - The baseline is the export comparison's plain consumer. The
//     candidate is a table.Maintainer, as the broker runs one for a topic
//     with vigil.table.enabled=true, writing a new table into a fresh
//     object store directory: each record read read_committed, its OCSF
//     base attributes and its class's typed columns parsed, Zstd Parquet
//     files written per event day and class through iceberg-go and
//     arrow-go, and each
//     commit's manifests and metadata. Commits of CommitRecords records
//     (the broker's default size); the run ends when the commits hold
//     every record.
//   - Each run is a child process, so its CPU time is its own; per core
//     is records over the child's CPU-seconds from its start; the paired
//     method of paired.go judges the medians' ratio.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/table"
)

// Defaults and the target of the table comparison.
const (
	DefaultTableRecords = 200_000
	// TableCommitRecords is the candidate's commit size: the maintainer's
	// default (table.Config.CommitRecords).
	TableCommitRecords = 100_000

	// TargetTableRatio: median table records per core >= TargetTableRatio
	// x the median plain consumer's. The issue names no number. Per
	// record the consumer only decodes its batch; the table writer also
	// walks the event's attributes for its columns, appends them to
	// Arrow builders, and then encodes every column into Parquet pages
	// compressed with Zstd. Its cost goes with the number of Parquet
	// columns a row fills, nulls included: with the base columns alone
	// (15) it measured 0.12 to 0.19; with the typed columns of the three
	// classes of the topic (49 top-level columns, 183 fields) in every
	// file 0.055 to 0.07, the price of typed class columns
	// (docs/tables.md). Built as a batch per partition, each file with
	// its class's columns alone, 0.086 to 0.11. 0.07 is the bar below
	// which a change has made the writer markedly worse: back to every
	// class's columns in every file, say.
	TargetTableRatio = 0.07

	roleTable = "table"
)

// TableOptions configures the table comparison.
type TableOptions struct {
	Brokers    []string // empty: start an in-process broker on a temp dir
	Records    int      // in the topic (0: DefaultTableRecords)
	Partitions int      // of the topic (0: DefaultExportPartitions)
	Rounds     int      // pairs of runs (0: DefaultRounds)
	Logger     *slog.Logger
	Out        io.Writer // progress and results; nil discards
}

// TableResult holds the figures of the table comparison; its runs are
// ExportRounds with the table in the Export field.
type TableResult struct {
	Records                       int
	Rounds                        []ExportRound
	ConsumerPerCore, TablePerCore float64 // medians
	Ratio                         float64 // TablePerCore / ConsumerPerCore
	FileBytes                     int64   // data files of the last table written
}

// Pass reports whether the target holds.
func (r *TableResult) Pass() bool { return r.Ratio >= TargetTableRatio }

// RunTable runs the table comparison.
func RunTable(ctx context.Context, o TableOptions) (*TableResult, error) {
	o.Records = cmp.Or(o.Records, DefaultTableRecords)
	o.Partitions = cmp.Or(o.Partitions, DefaultExportPartitions)
	o.Rounds = cmp.Or(o.Rounds, DefaultRounds)
	if o.Records < 1 || o.Partitions < 1 || o.Rounds < 1 {
		return nil, errors.New("records, partitions and rounds must be at least 1")
	}
	out, log := outputs(o.Out, o.Logger)
	// The consumer joins a new group: 50 ms of initial rebalance delay
	// instead of 3 s, as in the export comparison.
	bb, err := useBroker(ctx, o.Brokers, log, out, func(c *config.Broker) { c.GroupInitialRebalance = 50 * time.Millisecond })
	if err != nil {
		return nil, err
	}
	defer bb.stop()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(bb.seeds...))
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	suffix := time.Now().Format("20060102-150405.000")
	topic := "vigil-bench-table-" + suffix
	drop, err := freshTopic(ctx, bb, kadm.NewClient(admCl), topic, o.Partitions)
	if err != nil {
		return nil, err
	}
	defer drop()
	t0 := time.Now()
	bytes, err := fillExportTopic(ctx, bb.seeds, topic, o.Records)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "topic:         %s: %d OCSF events of %.0f B on average, %d partitions, written in %s\n",
		topic, o.Records, float64(bytes)/float64(o.Records), o.Partitions, time.Since(t0).Round(time.Millisecond))
	fmt.Fprintf(out, "method:        each run a child process reading the whole topic from the start, %s, interleaved\n", plural(o.Rounds, "round"))
	fmt.Fprintf(out, "               consumer: franz-go in a group, autocommit, counting; table: table.Maintainer writing a new Iceberg table (Zstd Parquet) in commits of %d records\n", TableCommitRecords)
	fmt.Fprintf(out, "               per core: records over the child's CPU-seconds from its start\n")

	res := &TableResult{Records: o.Records}
	run := func(round int, tbl bool, label string) (ExportRun, error) {
		var r ExportRun
		role := roleConsume
		if tbl {
			role = roleTable
		}
		if _, err := bb.settle(ctx); err != nil {
			return r, err
		}
		p := childParams{Brokers: bb.seeds, Topic: topic, Records: int64(o.Records), Partitions: int32(o.Partitions),
			Group: fmt.Sprintf("vigil-bench-table-%s-%d-%s", suffix, round, role)}
		if tbl {
			dir, err := os.MkdirTemp("", "vigil-bench-table-")
			if err != nil {
				return r, err
			}
			defer os.RemoveAll(dir)
			p.TableDir = dir
		}
		c, err := startChild(ctx, role, p, log)
		if err != nil {
			return r, err
		}
		defer c.stop()
		if err := c.send("start"); err != nil {
			return r, err
		}
		m, err := c.final(ctx)
		if err != nil {
			return r, err
		}
		if err := c.stop(); err != nil {
			return r, err
		}
		r.Records, r.Bytes, r.Elapsed, r.Total, r.CPU = m.Records, m.Bytes, m.Elapsed, m.Total, m.CPU
		if r.Records != int64(o.Records) || r.CPU <= 0 || r.Total <= 0 {
			return r, fmt.Errorf("%s run: %d of %d records, CPU %s", role, r.Records, o.Records, r.CPU)
		}
		if tbl {
			res.FileBytes = m.Bytes
		}
		r.RecsPerSec = float64(r.Records) / r.Total.Seconds()
		r.PerCore = float64(r.Records) / r.CPU.Seconds()
		fmt.Fprintf(out, "    %s  %-9s %8.0f records/s  %8.0f records/s per core  (CPU %s, %.2f cores)\n", label, role,
			r.RecsPerSec, r.PerCore, r.CPU.Round(time.Millisecond), r.CPU.Seconds()/r.Total.Seconds())
		return r, nil
	}
	fmt.Fprintf(out, "\n[a] the whole topic read by a plain consumer and written into an Iceberg table, interleaved\n")
	var rd ExportRound
	err = interleave(o.Rounds, func(round int, tbl bool, label string) error {
		r, err := run(round, tbl, label)
		if tbl {
			rd.Export = r
		} else {
			rd.Consumer = r
		}
		return err
	}, func(round int) {
		rd.ExportFirst = round%2 == 0
		rd.Ratio = rd.Export.PerCore / rd.Consumer.PerCore
		fmt.Fprintf(out, "    %8s  ratio table / consumer: %.3f per core\n", "", rd.Ratio)
		res.Rounds = append(res.Rounds, rd)
		rd = ExportRound{}
	})
	if err != nil {
		return nil, err
	}
	var cCore, tCore, ratios []float64
	for _, rd := range res.Rounds {
		cCore, tCore, ratios = append(cCore, rd.Consumer.PerCore), append(tCore, rd.Export.PerCore), append(ratios, rd.Ratio)
	}
	res.ConsumerPerCore, res.TablePerCore = median(cCore), median(tCore)
	res.Ratio = res.TablePerCore / res.ConsumerPerCore
	slices.Sort(ratios)
	fmt.Fprintf(out, "\n[b] medians of %s each\n", plural(o.Rounds, "run"))
	fmt.Fprintf(out, "    consumer:          %8.0f records/s per core  (runs %s)\n", res.ConsumerPerCore, fmtRates(cCore))
	fmt.Fprintf(out, "    table:             %8.0f records/s per core  (runs %s); %.1f MB of Parquet (%.0f B per record)\n",
		res.TablePerCore, fmtRates(tCore), float64(res.FileBytes)/1e6, float64(res.FileBytes)/float64(o.Records))
	fmt.Fprintf(out, "    ratio of medians:  %.3f per core (pairs %.3f to %.3f)\n", res.Ratio, ratios[0], ratios[len(ratios)-1])
	fmt.Fprintf(out, "\ntargets\n")
	label := fmt.Sprintf("table >= %.2f x consumer per core:", TargetTableRatio)
	fmt.Fprintf(out, "    %-38s %s: ratio %.3f, target >= %.2f\n", label, passFail(res.Pass()), res.Ratio, TargetTableRatio)
	return res, nil
}

// tableChild keeps a new table of the topic in p.TableDir after "start"
// until its commits hold p.Records records; it reports them, the bytes
// of the data files, and its CPU time since "start".
func tableChild(ctx context.Context, p childParams, cmds <-chan string, send func(childMsg) error) error {
	if err := command(cmds, "start"); err != nil {
		return err
	}
	start, cpu0 := time.Now(), cpuTime()
	store, err := objstore.OpenDir(p.TableDir)
	if err != nil {
		return err
	}
	defer store.Close()
	var committed atomic.Int64
	all := make(chan struct{})
	mctx, stop := context.WithCancel(ctx)
	defer stop()
	m := table.NewMaintainer(table.Config{Topic: p.Topic, Partitions: p.Partitions, Catalog: table.NewCatalog(mctx, store, "file://"+p.TableDir),
		ClientOpts: []kgo.Opt{kgo.SeedBrokers(p.Brokers...)}, CommitRecords: TableCommitRecords, CommitInterval: time.Second,
		OnCommit: func(n int) {
			if committed.Add(int64(n)) == p.Records {
				close(all)
			}
		}})
	done := make(chan error, 1)
	go func() { done <- m.Run(mctx) }()
	select {
	case <-all:
	case err := <-done:
		return fmt.Errorf("table maintainer stopped after %d of %d records: %v", committed.Load(), p.Records, err)
	case <-ctx.Done():
		return ctx.Err()
	}
	cpu, end := cpuTime()-cpu0, time.Now()
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		return err
	}
	objs, err := store.List(ctx, table.Warehouse+"/")
	if err != nil {
		return err
	}
	var bytes int64
	for _, o := range objs {
		if strings.HasSuffix(o.Key, ".parquet") {
			bytes += o.Size
		}
	}
	return send(childMsg{Final: true, Records: committed.Load(), Bytes: bytes, Elapsed: end.Sub(start), Total: end.Sub(start), CPU: cpu})
}
