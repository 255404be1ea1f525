package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/server"
)

// Incident targets.
const (
	TargetTailP99Ratio = 1.1 // tail end-to-end p99 with the replay <= this x without
	TargetReplayRatio  = 0.8 // replay MB/s >= this x the cold read ceiling
)

// IncidentOptions configures the incident benchmark.
type IncidentOptions struct {
	HistoryBytes int64         // retained history written first, then replayed
	Rate         float64       // live ingest, records/s
	RecordBytes  int           // record value size
	Partitions   int           // of the telemetry topic
	Phase        time.Duration // length of the baseline and of the replay phase
	MemoryBudget int64         // peak RSS allowed for the whole process
	Logger       *slog.Logger
	Out          io.Writer
}

// IncidentResult holds the figures of one run.
type IncidentResult struct {
	CeilingMBps    float64
	ProduceBase    Latencies // live produce latency without the replay
	ProduceReplay  Latencies // and with it
	TailBase       Latencies // detection group end-to-end latency without the replay
	TailReplay     Latencies // and with it
	ReplayMBps     float64
	ReplayBytes    int64
	PeakRSSBytes   int64
	TailRatio      float64
	ReplayRatio    float64
	RSSWithinLimit bool
}

// RunIncident reproduces an incident on one in-process broker: steady
// ingest into a telemetry topic with a detection group reading the tail;
// then a forensic reader replays the retained history from the start as
// fast as it can while ingest and detection go on. It reports the tail's
// end-to-end latency without and with the replay, the replay's MB/s against
// the cold sequential read of the same objects, and the peak RSS.
func RunIncident(ctx context.Context, o IncidentOptions) (*IncidentResult, error) {
	if o.HistoryBytes <= 0 || o.Rate <= 0 || o.RecordBytes < 8 || o.Partitions < 1 || o.Phase <= 0 {
		return nil, errors.New("need positive history, rate, phase and partitions, and records of at least 8 bytes")
	}
	out, log := outputs(o.Out, o.Logger)
	dir, err := os.MkdirTemp("", "vigil-bench-incident-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg := config.Default()
	cfg.Listen, cfg.Advertised, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.DataDir, cfg.ObjectStore = dir, filepath.Join(dir, "objects")
	cfg.RetentionMs = -1
	srv, err := server.Start(ctx, cfg, log)
	if err != nil {
		return nil, fmt.Errorf("start broker: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	defer func() {
		srv.Close()
		<-served
	}()
	brokers := []string{srv.Advertised()}
	fmt.Fprintf(out, "settings:      %d MiB history, live %.0f records/s of %d B (%.1f MB/s), %d partitions, %s per phase, memory budget %d MiB\n",
		o.HistoryBytes>>20, o.Rate, o.RecordBytes, o.Rate*float64(o.RecordBytes)/1e6, o.Partitions, o.Phase, o.MemoryBudget>>20)

	const topic = "telemetry"
	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	// History (writeReplayData creates the topic): its values carry no
	// send time, and the tail group starts at the end anyway.
	start := time.Now()
	if err := writeReplayData(ctx, brokers[0], topic, ReplayOptions{Bytes: o.HistoryBytes, Partitions: o.Partitions, RecordBytes: o.RecordBytes}); err != nil {
		return nil, err
	}
	for srv.UploadBacklog() > 0 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Fprintf(out, "history:       written and uploaded in %s\n", time.Since(start).Round(time.Millisecond))
	ends, err := kadm.NewClient(admCl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("history end offsets: %w", err)
	}
	historyEnd := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { historyEnd[o.Partition] = o.Offset })

	res := &IncidentResult{}
	if res.CeilingMBps, err = readFilesMBps(cfg.ObjectStore); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "\n[a] ceiling: sequential read of the segment objects from a cold page cache\n")
	fmt.Fprintf(out, "    throughput:            %.1f MB/s\n", res.CeilingMBps)

	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(time.Millisecond), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return nil, err
	}
	defer prod.Close()
	tail, err := startE2E(ctx, brokers, topic, o.RecordBytes,
		kgo.ConsumerGroup("detection"), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	if err != nil {
		return nil, err
	}
	defer tail.stop()
	// Let the detection group join before measuring.
	if _, _, _, err := producePaced(ctx, prod, 5*time.Second, o.RecordBytes, o.Rate); err != nil {
		return nil, err
	}

	// (b) Baseline: ingest and detection only.
	n0 := tail.count()
	recBase, _, _, err := producePaced(ctx, prod, o.Phase, o.RecordBytes, o.Rate)
	if err != nil {
		return nil, err
	}
	n1 := tail.count()
	res.ProduceBase, res.TailBase = summarize(recBase.samples), summarize(tail.between(n0, n1))

	// (c) The same with a forensic replay of everything, from cold objects.
	if err := coldFiles(cfg.ObjectStore); err != nil {
		return nil, err
	}
	rctx, stopReplay := context.WithCancel(ctx)
	defer stopReplay()
	var replayed atomic.Int64
	replayDone := make(chan error, 1)
	replayStart := time.Now()
	go func() { replayDone <- replay(rctx, brokers, topic, historyEnd, &replayed) }()
	type paced struct {
		rec *recorder
		err error
	}
	pacedDone := make(chan paced, 1)
	go func() {
		rec, _, _, err := producePaced(ctx, prod, o.Phase, o.RecordBytes, o.Rate)
		pacedDone <- paced{rec, err}
	}()
	// The "with replay" window ends when the replay or the phase does.
	// The tail's "with replay" samples stop there too; the produce
	// latencies cover the whole phase (they carry no send time to cut by).
	var replayEl time.Duration
	var p paced
	var n2 int
	select {
	case err := <-replayDone:
		replayEl, n2 = time.Since(replayStart), tail.count()
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		p = <-pacedDone
	case p = <-pacedDone:
		replayEl, n2 = time.Since(replayStart), tail.count()
		stopReplay()
		<-replayDone
	}
	if p.err != nil {
		return nil, p.err
	}
	res.ProduceReplay, res.TailReplay = summarize(p.rec.samples), summarize(tail.between(n1, n2))
	res.ReplayBytes = replayed.Load()
	res.ReplayMBps = float64(res.ReplayBytes) / replayEl.Seconds() / 1e6
	res.PeakRSSBytes = peakRSS()

	if res.TailBase.P99 > 0 {
		res.TailRatio = float64(res.TailReplay.P99) / float64(res.TailBase.P99)
	}
	res.ReplayRatio = res.ReplayMBps / res.CeilingMBps
	res.RSSWithinLimit = res.PeakRSSBytes > 0 && res.PeakRSSBytes <= o.MemoryBudget

	fmt.Fprintf(out, "\n[b] baseline: live ingest and the detection group\n")
	fmt.Fprintf(out, "    produce latency:       %s\n", res.ProduceBase)
	fmt.Fprintf(out, "    tail end-to-end:       %s\n", res.TailBase)
	fmt.Fprintf(out, "\n[c] with a forensic reader replaying the history from the start\n")
	fmt.Fprintf(out, "    produce latency:       %s\n", res.ProduceReplay)
	fmt.Fprintf(out, "    tail end-to-end:       %s\n", res.TailReplay)
	fmt.Fprintf(out, "    replay:                %.1f MB/s (%d MiB in %s)\n", res.ReplayMBps, res.ReplayBytes>>20, replayEl.Round(time.Millisecond))
	fmt.Fprintf(out, "    peak RSS:              %d MiB (whole process: broker and clients)\n", res.PeakRSSBytes>>20)
	fmt.Fprintf(out, "\ntargets\n")
	fmt.Fprintf(out, "    %-34s %s  (%.2f x: p99 %s vs %s)\n", fmt.Sprintf("tail p99 with replay <= %.1f x:", TargetTailP99Ratio),
		passFail(res.TailRatio > 0 && res.TailRatio <= TargetTailP99Ratio), res.TailRatio, fmtDur(res.TailReplay.P99), fmtDur(res.TailBase.P99))
	fmt.Fprintf(out, "    %-34s %s  (%.2f x: %.1f of %.1f MB/s)\n", fmt.Sprintf("replay >= %.1f x ceiling:", TargetReplayRatio),
		passFail(res.ReplayRatio >= TargetReplayRatio), res.ReplayRatio, res.ReplayMBps, res.CeilingMBps)
	fmt.Fprintf(out, "    %-34s %s  (%d of %d MiB)\n", "peak RSS within the memory budget:", passFail(res.RSSWithinLimit), res.PeakRSSBytes>>20, o.MemoryBudget>>20)
	return res, nil
}

// replay reads the history (offsets below end, per partition) from the
// start, as fast as it can, and returns when it has all of it (or ctx
// ends, which is not an error). It assigns itself every partition: a
// consumer group would add Kafka's initial rebalance delay (3 s) to what
// is meant to measure reading.
func replay(ctx context.Context, brokers []string, topic string, end map[int32]int64, n *atomic.Int64) error {
	parts := map[int32]kgo.Offset{}
	for p := range end {
		parts[p] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(4<<20))
	if err != nil {
		return err
	}
	defer cl.Close()
	left := 0
	for _, e := range end {
		if e > 0 {
			left++
		}
	}
	done := map[int32]bool{}
	for left > 0 {
		fs := cl.PollRecords(ctx, 10000)
		if ctx.Err() != nil {
			return nil
		}
		if err := fs.Err0(); err != nil {
			return err
		}
		var got int64
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < end[r.Partition] {
				got += int64(len(r.Value))
			}
			if r.Offset >= end[r.Partition]-1 && !done[r.Partition] && end[r.Partition] > 0 {
				done[r.Partition] = true
				left--
			}
		})
		n.Add(got)
	}
	return nil
}

// peakRSS is the process's resident-set high-water mark (VmHWM), or 0.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
