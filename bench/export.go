package bench

// The export comparison (`vigil bench export`, issue 23): what delivering
// a topic into an Elasticsearch `_bulk` endpoint costs per record, as
// records per CPU-second of the exporting process relative to a plain
// franz-go consumer reading the same topic, in the same minutes.
//
//   - One topic of Records OCSF events (about 650 B each, three classes
//     over many days, so the index names vary as in life) is written
//     once; every run reads all of it from the start as a new consumer
//     group.
//   - The baseline is a plain consumer: franz-go in a group, autocommit,
//     counting records and bytes. The candidate is an export.Job with the
//     elastic sink at its defaults (500 records per request, 2000 per
//     committed batch, 4 requests in flight unless MaxInFlight says
//     otherwise, create actions with ids), delivering into
//     VictoriaLogs' `_bulk` endpoint: every record parsed for its class
//     and time, rendered into a bulk line, sent, its item in the answer
//     read, and each batch's offsets committed.
//   - Each run is a child process (this binary again, as the incident
//     benchmark runs its clients), so its CPU time is its own, apart from
//     the broker's and the receiver's: records/s per core is the records
//     over the child's CPU-seconds, from its start (joining the group
//     included) to its last record. Throughput (records/s of wall time,
//     from the first record polled, or the first request sent, to the
//     last record counted or acknowledged) and the receiver's CPU are
//     printed beside it; a topic that a consumer gets in one fetch makes
//     its throughput meaningless, not its CPU.
//   - The paired method of paired.go: Rounds pairs, the first of each
//     alternating (the consumer first in odd rounds), medians, per-pair
//     ratios. Each run starts once the broker has settled and the
//     receiver is idle (it merges what it was sent in the background).
//     Judged: export / consumer records per core of the medians >=
//     TargetExportRatio.
//   - At the end VictoriaLogs must hold Records documents per export run:
//     what was acknowledged was stored.
//
// VictoriaLogs rather than ZincSearch: the benchmark measures Vigil's
// side of the export, so the receiver should be the fastest one at hand
// and leave the two cores to the exporter and the broker. ZincSearch
// indexes every document into a full-text index as it takes it and on
// two cores limits the run to its own pace; VictoriaLogs takes the same
// `_bulk` requests (create actions, an item per document in the answer)
// into a columnar store at several times the rate. It keeps every copy
// it is sent, ids or not, which is what lets the end check count the
// documents of each run.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/export"
	"github.com/vigilhq/vigil/internal/export/elastic"
	"github.com/vigilhq/vigil/internal/export/receiver"
)

// Defaults and the target of the export comparison.
const (
	DefaultExportRecords    = 200_000
	DefaultExportPartitions = 6

	// TargetExportRatio: median export records per core >=
	// TargetExportRatio x the median plain consumer's. The issue names no
	// number. Per record a consumer only decodes its batch (about 1.3 us
	// of CPU here); the export also reads the event's class and time,
	// renders the index name and the bulk action, copies the document
	// into the request, sends it and reads its item of the answer. A CPU
	// profile of the export (200,000 records) puts the rendering, the
	// HTTP exchange and the answer at under a fifth of its CPU, while more
	// than half goes to reading class_uid, class_name and time by
	// decoding each whole document with encoding/json (export.NewDoc).
	// 0.20, five consumers' worth of CPU per record, is about what the
	// export would cost with those three fields read without decoding
	// the rest; today it does not reach it.
	TargetExportRatio = 0.20

	roleExport  = "export"
	roleConsume = "consume"
)

// ExportOptions configures the export comparison.
type ExportOptions struct {
	Brokers    []string // empty: start an in-process broker on a temp dir
	Records    int      // in the topic (0: DefaultExportRecords)
	Partitions int      // of the topic (0: DefaultExportPartitions)
	Rounds     int      // pairs of runs (0: DefaultRounds)
	// MaxInFlight is the export job's max_in_flight (0: the job's
	// default, export.DefaultMaxInFlight).
	MaxInFlight int
	Logger      *slog.Logger
	Out         io.Writer // progress and results; nil discards
}

// ExportRun is one run: the whole topic read (consumer) or delivered
// (export) by a child process.
type ExportRun struct {
	Records, Bytes int64
	Elapsed        time.Duration // first record polled or sent to the last counted or acknowledged
	Total          time.Duration // from the child's start (joining the group) to the last record
	CPU            time.Duration // the child's, over Total
	ReceiverCPU    time.Duration // VictoriaLogs' during the run (export runs; 0 where unknown)
	RecsPerSec     float64
	PerCore        float64 // Records / CPU seconds
}

// ExportRound is one pair of runs.
type ExportRound struct {
	ExportFirst       bool
	Consumer, Export  ExportRun
	Ratio, WallRatios float64 // export / consumer: per core, and of records/s
}

// ExportResult holds the figures of the export comparison.
type ExportResult struct {
	Records     int
	RecordBytes float64 // mean value size
	Rounds      []ExportRound

	ConsumerPerCore, ExportPerCore float64 // medians
	ConsumerRate, ExportRate       float64 // medians of records/s
	Ratio                          float64 // ExportPerCore / ConsumerPerCore
	WallRatio                      float64 // ExportRate / ConsumerRate
	Stored                         int64   // documents VictoriaLogs holds at the end
}

// Pass reports whether the target holds.
func (r *ExportResult) Pass() bool { return r.Ratio >= TargetExportRatio }

// RunExport runs the export comparison.
func RunExport(ctx context.Context, o ExportOptions) (*ExportResult, error) {
	o.Records = cmp.Or(o.Records, DefaultExportRecords)
	o.Partitions = cmp.Or(o.Partitions, DefaultExportPartitions)
	o.Rounds = cmp.Or(o.Rounds, DefaultRounds)
	switch {
	case o.Records < 1:
		return nil, errors.New("records must be at least 1")
	case o.Partitions < 1:
		return nil, errors.New("partitions must be at least 1")
	case o.Rounds < 1:
		return nil, errors.New("rounds must be at least 1")
	}
	out, log := outputs(o.Out, o.Logger)
	bin := receiver.Binary("victoria-logs")
	if bin == "" {
		return nil, fmt.Errorf("victoria-logs not found on PATH or in $GOPATH/bin: install %s", receiver.VictoriaInstall)
	}

	// A new group joins within the initial rebalance delay; 50 ms
	// instead of 3 s keeps the runs short (the timing starts at the first
	// record either way).
	bb, err := useBroker(ctx, o.Brokers, log, out, func(c *config.Broker) { c.GroupInitialRebalance = 50 * time.Millisecond })
	if err != nil {
		return nil, err
	}
	defer bb.stop()
	vlDir, err := os.MkdirTemp("", "vigil-bench-victorialogs-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(vlDir)
	vl, err := receiver.LaunchVictoriaLogs(bin, vlDir)
	if err != nil {
		return nil, err
	}
	defer vl.Stop()
	fmt.Fprintf(out, "receiver:      VictoriaLogs (%s) at %s\n", bin, vl.ESURL())

	admCl, err := kgo.NewClient(kgo.SeedBrokers(bb.seeds...))
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	suffix := time.Now().Format("20060102-150405.000")
	topic := "vigil-bench-export-" + suffix
	drop, err := freshTopic(ctx, bb, adm, topic, o.Partitions)
	if err != nil {
		return nil, err
	}
	defer drop()
	res := &ExportResult{Records: o.Records}
	t0 := time.Now()
	bytes, err := fillExportTopic(ctx, bb.seeds, topic, o.Records)
	if err != nil {
		return nil, err
	}
	res.RecordBytes = float64(bytes) / float64(o.Records)
	fmt.Fprintf(out, "topic:         %s: %d OCSF events of %.0f B on average, %d partitions, written in %s\n",
		topic, o.Records, res.RecordBytes, o.Partitions, time.Since(t0).Round(time.Millisecond))
	fmt.Fprintf(out, "method:        each run a child process reading the whole topic from the start as a new group, %s, interleaved\n", plural(o.Rounds, "round"))
	inFlight := o.MaxInFlight
	if inFlight == 0 {
		inFlight = export.DefaultMaxInFlight
	}
	fmt.Fprintf(out, "               consumer: franz-go in a group, autocommit, counting; export: export.Job with the elastic sink at its defaults into _bulk, max_in_flight %d\n", inFlight)
	fmt.Fprintf(out, "               per core: records over the child's CPU-seconds; each run starts once the broker has settled and the receiver is idle\n")

	run := func(round int, exp bool, label string) (ExportRun, error) {
		var r ExportRun
		role := roleConsume
		if exp {
			role = roleExport
		}
		if _, err := bb.settle(ctx); err != nil {
			return r, err
		}
		if err := waitIdle(ctx, vl.Pid()); err != nil {
			return r, err
		}
		p := childParams{Brokers: bb.seeds, Topic: topic, Records: int64(o.Records),
			Group: fmt.Sprintf("vigil-bench-export-%s-%d-%s", suffix, round, role)}
		if exp {
			p.BulkURL, p.MaxInFlight = vl.ESURL(), o.MaxInFlight
		}
		c, err := startChild(ctx, role, p, log)
		if err != nil {
			return r, err
		}
		defer c.stop()
		vcpu0, known := procCPU(vl.Pid())
		if err := c.send("start"); err != nil {
			return r, err
		}
		m, err := c.final(ctx)
		if err != nil {
			return r, err
		}
		if vcpu1, _ := procCPU(vl.Pid()); known && exp {
			r.ReceiverCPU = vcpu1 - vcpu0
		}
		if err := c.stop(); err != nil {
			return r, err
		}
		r.Records, r.Bytes, r.Elapsed, r.Total, r.CPU = m.Records, m.Bytes, m.Elapsed, m.Total, m.CPU
		if r.Records != int64(o.Records) || r.Elapsed <= 0 || r.Total < r.Elapsed || r.CPU <= 0 {
			return r, fmt.Errorf("%s run: %d of %d records in %s, CPU %s", role, r.Records, o.Records, r.Elapsed, r.CPU)
		}
		r.RecsPerSec = float64(r.Records) / r.Elapsed.Seconds()
		r.PerCore = float64(r.Records) / r.CPU.Seconds()
		tail := ""
		if exp {
			tail = fmt.Sprintf("  receiver CPU %s (%.2f cores)", r.ReceiverCPU.Round(time.Millisecond), r.ReceiverCPU.Seconds()/r.Total.Seconds())
		}
		fmt.Fprintf(out, "    %s  %-9s %8.0f records/s  %6.1f MB/s  %8.0f records/s per core  (CPU %s, %.2f cores)%s\n", label, role,
			r.RecsPerSec, float64(r.Bytes)/r.Elapsed.Seconds()/1e6, r.PerCore, r.CPU.Round(time.Millisecond), r.CPU.Seconds()/r.Total.Seconds(), tail)
		return r, nil
	}

	fmt.Fprintf(out, "\n[a] the whole topic read by a plain consumer and delivered into _bulk, interleaved\n")
	var rd ExportRound
	err = interleave(o.Rounds, func(round int, exp bool, label string) error {
		r, err := run(round, exp, label)
		if exp {
			rd.Export = r
		} else {
			rd.Consumer = r
		}
		return err
	}, func(round int) {
		rd.ExportFirst = round%2 == 0
		rd.Ratio = rd.Export.PerCore / rd.Consumer.PerCore
		rd.WallRatios = rd.Export.RecsPerSec / rd.Consumer.RecsPerSec
		fmt.Fprintf(out, "    %8s  ratio export / consumer: %.3f per core, %.3f of records/s\n", "", rd.Ratio, rd.WallRatios)
		res.Rounds = append(res.Rounds, rd)
		rd = ExportRound{}
	})
	if err != nil {
		return nil, err
	}

	var cCore, eCore, cRate, eRate, ratios []float64
	for _, rd := range res.Rounds {
		cCore, eCore = append(cCore, rd.Consumer.PerCore), append(eCore, rd.Export.PerCore)
		cRate, eRate = append(cRate, rd.Consumer.RecsPerSec), append(eRate, rd.Export.RecsPerSec)
		ratios = append(ratios, rd.Ratio)
	}
	res.ConsumerPerCore, res.ExportPerCore = median(cCore), median(eCore)
	res.ConsumerRate, res.ExportRate = median(cRate), median(eRate)
	res.Ratio, res.WallRatio = res.ExportPerCore/res.ConsumerPerCore, res.ExportRate/res.ConsumerRate
	slices.Sort(ratios)
	fmt.Fprintf(out, "\n[b] medians of %s each\n", plural(o.Rounds, "run"))
	fmt.Fprintf(out, "    consumer:          %8.0f records/s per core  (runs %s); %8.0f records/s\n", res.ConsumerPerCore, fmtRates(cCore), res.ConsumerRate)
	fmt.Fprintf(out, "    export:            %8.0f records/s per core  (runs %s); %8.0f records/s\n", res.ExportPerCore, fmtRates(eCore), res.ExportRate)
	fmt.Fprintf(out, "    ratio of medians:  %.3f per core (pairs %.3f to %.3f); %.3f of records/s\n", res.Ratio, ratios[0], ratios[len(ratios)-1], res.WallRatio)

	// What the receiver acknowledged it stored: every record once per
	// export run (it keeps every copy it is sent).
	want := int64(o.Records) * int64(o.Rounds)
	res.Stored, err = storedDocs(ctx, vl, want)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "    stored:            %d documents in VictoriaLogs, %d wanted (%d records x %s)\n", res.Stored, want, o.Records, plural(o.Rounds, "export run"))
	if res.Stored != want {
		return nil, fmt.Errorf("VictoriaLogs holds %d documents after %s of %d records, want %d", res.Stored, plural(o.Rounds, "export run"), o.Records, want)
	}

	fmt.Fprintf(out, "\ntargets\n")
	label := fmt.Sprintf("export >= %.2f x consumer per core:", TargetExportRatio)
	fmt.Fprintf(out, "    %-38s %s: ratio %.3f, target >= %.2f\n", label, passFail(res.Pass()), res.Ratio, TargetExportRatio)
	return res, nil
}

func fmtRates(v []float64) string {
	s := ""
	for i, x := range v {
		if i > 0 {
			s += ", "
		}
		s += strconv.FormatFloat(x, 'f', 0, 64)
	}
	return s
}

// exportEvent is the i-th event of the benchmark's topic: an OCSF event
// of one of three classes, its time i seconds after a base, so that a
// topic of a few hundred thousand spans days.
func exportEvent(b []byte, i int) []byte {
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second).UnixMilli()
	host, user, ip := i%251, i%97, i%65521
	switch i % 3 {
	case 0:
		return fmt.Appendf(b, `{"class_uid":3002,"class_name":"Authentication","category_uid":3,"activity_id":1,"time":%d,"severity_id":1,"severity":"Informational","status":"Failure","status_id":2,`+
			`"user":{"name":"user-%d","uid":"S-1-5-21-%d"},"src_endpoint":{"ip":"10.%d.%d.%d","port":%d},"device":{"hostname":"ws-%03d.corp.example","os":{"name":"Linux","type":"Linux"}},`+
			`"auth_protocol":"password","logon_type":"Network","message":"Failed password for user-%d from 10.%d.%d.%d port %d ssh2",`+
			`"metadata":{"version":"1.3.0","product":{"name":"Linux","vendor_name":"OpenSSH"},"log_name":"auth","log_provider":"sshd","uid":"%016x"}}`,
			at, user, 1000+user, ip>>8, ip&255, i%7, 1024+i%60000, host, user, ip>>8, ip&255, i%7, 1024+i%60000, i)
	case 1:
		return fmt.Appendf(b, `{"class_uid":1007,"class_name":"Process Activity","category_uid":1,"activity_id":1,"time":%d,"severity_id":1,"severity":"Informational",`+
			`"process":{"pid":%d,"name":"curl","cmd_line":"curl -s https://updates.example.com/v%d/manifest.json -o /tmp/m%d.json","file":{"path":"/usr/bin/curl"},`+
			`"parent_process":{"pid":%d,"name":"bash"}},"actor":{"user":{"name":"user-%d"}},"device":{"hostname":"ws-%03d.corp.example","os":{"name":"Linux","type":"Linux"}},`+
			`"metadata":{"version":"1.3.0","product":{"name":"auditd","vendor_name":"Linux"},"log_name":"audit","uid":"%016x"}}`,
			at, 1000+i%30000, i%9, i, 900+i%300, user, host, i)
	default:
		return fmt.Appendf(b, `{"class_uid":4001,"class_name":"Network Activity","category_uid":4,"activity_id":6,"time":%d,"severity_id":1,"severity":"Informational",`+
			`"src_endpoint":{"ip":"10.%d.%d.%d","port":%d,"hostname":"ws-%03d.corp.example"},"dst_endpoint":{"ip":"203.0.113.%d","port":443},`+
			`"connection_info":{"protocol_name":"tcp","direction":"Outbound","direction_id":2},"traffic":{"bytes_in":%d,"bytes_out":%d,"packets_in":%d,"packets_out":%d},`+
			`"metadata":{"version":"1.3.0","product":{"name":"Zeek","vendor_name":"Zeek"},"log_name":"conn","uid":"C%015x"}}`,
			at, ip>>8, ip&255, i%7, 1024+i%60000, host, i%254+1, i%100000, i%7000, i%90, i%40, i)
	}
}

// fillExportTopic writes n events to topic and returns their value bytes.
func fillExportTopic(ctx context.Context, seeds []string, topic string, n int) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var bytes int64
	var failed atomic.Pointer[error]
	for i := range n {
		v := exportEvent(nil, i)
		bytes += int64(len(v))
		cl.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "ws-%03d", i%251), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	if err := failed.Load(); err != nil {
		return 0, fmt.Errorf("fill %s: %w", topic, *err)
	}
	return bytes, nil
}

// waitIdle waits until the process pid used less than a tenth of a core
// over 250 ms (for at most 30 s): VictoriaLogs merges what it was sent in
// the background, which would otherwise run into the next run.
func waitIdle(ctx context.Context, pid int) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c0, ok := procCPU(pid)
		if !ok {
			return nil
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		if c1, _ := procCPU(pid); c1-c0 < 25*time.Millisecond {
			return nil
		}
	}
	return nil // busy for good: run anyway; its CPU is printed per run
}

// storedDocs counts VictoriaLogs' documents, waiting up to 30 s for want
// (what it acknowledged becomes searchable within about a second).
func storedDocs(ctx context.Context, vl *receiver.VictoriaLogs, want int64) (int64, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		rows, err := vl.Query("* | stats count() n")
		var n int64
		if err == nil && len(rows) == 1 {
			n, err = strconv.ParseInt(rows[0]["n"], 10, 64)
		}
		if err != nil {
			return 0, fmt.Errorf("count VictoriaLogs documents: %w", err)
		}
		if n >= want || time.Now().After(deadline) {
			return n, nil
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// consumeChild is the plain consumer: after "start", it reads the topic
// from the start as a new group until it has p.Records records, and
// reports them, the time from the first record polled to the last, and
// its CPU time since "start".
func consumeChild(ctx context.Context, p childParams, cmds <-chan string, send func(childMsg) error) error {
	if err := command(cmds, "start"); err != nil {
		return err
	}
	start, cpu0 := time.Now(), cpuTime()
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Brokers...), kgo.ConsumerGroup(p.Group), kgo.ConsumeTopics(p.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	var n, bytes int64
	var first time.Time
	for n < p.Records {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := f.Err0(); err != nil {
			return err
		}
		if first.IsZero() && !f.Empty() {
			first = time.Now()
		}
		f.EachRecord(func(r *kgo.Record) {
			n++
			bytes += int64(len(r.Value))
		})
	}
	last, cpu := time.Now(), cpuTime()-cpu0
	return send(childMsg{Final: true, Records: n, Bytes: bytes, Elapsed: last.Sub(first), Total: last.Sub(start), CPU: cpu})
}

// exportChild is the export: after "start", an export.Job with the
// elastic sink delivers the topic into p.BulkURL as a new group until the
// sink has acknowledged p.Records records; it reports them, the time from
// the first request sent to the last answered, and its CPU time since
// "start".
func exportChild(ctx context.Context, p childParams, cmds <-chan string, send func(childMsg) error) error {
	if err := command(cmds, "start"); err != nil {
		return err
	}
	start, cpu0 := time.Now(), cpuTime()
	es, err := elastic.New(elastic.Config{URL: p.BulkURL})
	if err != nil {
		return err
	}
	sink := &timedSink{Sink: es}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	job, err := export.NewJob(export.JobConfig{Name: "bench", Brokers: p.Brokers, Topics: []string{p.Topic}, Group: p.Group,
		MaxInFlight: p.MaxInFlight}, sink, nil, log)
	if err != nil {
		return err
	}
	defer job.Close()
	jctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- job.Run(jctx) }()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for job.Stats().Delivered < p.Records {
		select {
		case err := <-done:
			stop()
			return fmt.Errorf("export job stopped after %d of %d records: %v", job.Stats().Delivered, p.Records, err)
		case <-ctx.Done():
			stop()
			return ctx.Err()
		case <-tick.C:
		}
	}
	cpu, end := cpuTime()-cpu0, time.Now()
	st := job.Stats()
	stop()
	if err := <-done; err != nil {
		return err
	}
	if st.DeadLettered != 0 || st.Delivered != p.Records {
		return fmt.Errorf("export: %d delivered, %d dead-lettered; want %d delivered", st.Delivered, st.DeadLettered, p.Records)
	}
	return send(childMsg{Final: true, Records: st.Delivered, Bytes: st.Bytes,
		Elapsed: time.Unix(0, sink.last.Load()).Sub(time.Unix(0, sink.first.Load())), Total: end.Sub(start), CPU: cpu})
}

// timedSink notes when the first request went out and the last answer
// came back.
type timedSink struct {
	export.Sink
	first, last atomic.Int64 // Unix nanoseconds
}

func (s *timedSink) Deliver(ctx context.Context, docs []*export.Doc, res []export.Result) error {
	s.first.CompareAndSwap(0, time.Now().UnixNano())
	err := s.Sink.Deliver(ctx, docs, res)
	// Requests run at once (max_in_flight): keep the latest answer.
	for now := time.Now().UnixNano(); ; {
		if l := s.last.Load(); l >= now || s.last.CompareAndSwap(l, now) {
			break
		}
	}
	return err
}
