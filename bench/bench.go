// Package bench measures Vigil's produce path: the throughput and latency of
// a franz-go producer against a broker, compared with a ceiling made of the
// same bytes sent over loopback TCP into a group-committed file.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/metrics"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/config"
)

// Targets.
const (
	TargetRatio    = 0.5                  // max-rate throughput >= TargetRatio x ceiling
	TargetPacedP99 = 5 * time.Millisecond // produce p99 at PacedFraction of max rate
	PacedFraction  = 0.25
)

// ceilingRuns is how many runs the ceiling phase is split into.
const ceilingRuns = 3

func fmtMBps(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(parts, ", ")
}

// Producer tuning used for both runs. No linger (the Java client's
// default before Kafka 4.0): a record leaves with the next request, and
// the requests in flight do the batching. A 1 ms linger added up to 1 ms
// to every record of the paced run (p50 1.7 ms against 0.9 ms without)
// and did not raise the maximum rate.
const (
	linger           = time.Duration(0)
	maxInflight      = 5
	maxBufferedBytes = 32 << 20
)

// Options configures a produce benchmark.
type Options struct {
	Brokers     []string      // empty: start an in-process broker on a temp dir
	Duration    time.Duration // of each phase: ceiling, max rate, paced
	RecordBytes int
	Partitions  int
	Acks        string // "all" (or "-1"), "1", "0"
	Logger      *slog.Logger
	Out         io.Writer // progress and results; nil discards

	// WAL is the in-process broker's --wal ("" or "file", or "object"),
	// with the object WAL's group commit settings (zero: the broker's
	// defaults). They do not apply to Brokers.
	WAL              string
	WALFlushInterval time.Duration
	WALFlushBytes    int64
	// NoWALSync runs the in-process file WAL without its fsync: a
	// diagnostic that separates the disk's share of the paced latency
	// from everything else (CPU, clients, loopback). Neither target is
	// judged then: the ceiling fsyncs.
	NoWALSync bool

	// PacedRate, if positive, is the paced run's rate in records/s instead
	// of 25% of the measured maximum: latency at a fixed load, comparable
	// across runs whose maximum differs. The latency target is then not
	// judged (it is defined at 25% of the maximum).
	PacedRate float64

	// Partitioner spreads the keyless records: "" or PartitionerDefault
	// (the client's own, KIP-794's uniform sticky partitioner, as in the
	// Java client since Kafka 3.3), or PartitionerRoundRobin (one record
	// per partition in turn, so every request carries a tiny batch for
	// every partition: more work per record on both sides).
	Partitioner string

	// SecurityProtocol SSL, SASL_PLAINTEXT or SASL_SSL replaces the phases
	// above with the security comparison (security.go): the max-rate phase
	// over a PLAINTEXT listener and over one of this protocol, interleaved,
	// Rounds times each. "" or PLAINTEXT: the phases above. It needs the
	// in-process broker.
	SecurityProtocol string
	SASLMechanism    string // of a SASL protocol: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 ("": DefaultSASLMechanism)
	Rounds           int    // runs over each listener (0: DefaultRounds)
}

// Partitioners of Options.Partitioner.
const (
	PartitionerDefault    = "default"
	PartitionerRoundRobin = "round-robin"
)

// Result holds the figures of one benchmark.
type Result struct {
	CeilingMBps float64

	MaxMBps       float64
	MaxRecsPerSec float64
	MaxLatency    Latencies
	MaxErrors     int64
	Ratio         float64 // MaxMBps / CeilingMBps

	PacedTargetRecsPerSec float64
	PacedRecsPerSec       float64
	PacedLatency          Latencies
	PacedCeiling          Latencies // the ceiling path at the paced rate: the machine's own latency
	PacedRequests         Latencies // produce requests of the paced run, built to response read
	PacedErrors           int64
	PacedCollections      uint64          // garbage collections of this process during the paced run
	PacedP99Parts         []time.Duration // the paced run's p99 in equal parts of it, in order

	// The same rate again with a consumer reading the topic as it fills:
	// the produce latency under that read load (not judged) and the
	// end-to-end latency.
	ReadLoadLatency Latencies
	ReadLoadErrors  int64
	EndToEnd        Latencies
	EndToEndMissing int64 // produced during that run but not consumed in time

	// Security holds the security comparison's figures when
	// Options.SecurityProtocol asked for it; the fields above are then zero.
	Security *SecurityResult
}

// ThroughputPass reports whether the throughput target holds.
func (r *Result) ThroughputPass() bool { return r.Ratio >= TargetRatio }

// LatencyPass reports whether the paced-latency target holds.
func (r *Result) LatencyPass() bool {
	return r.PacedLatency.N > 0 && r.PacedLatency.P99 <= TargetPacedP99
}

// CeilingOverTarget reports whether the ceiling path itself, at the paced
// rate, missed the latency target: the machine (its disk's fsyncs, the
// neighbours sharing it) did not allow the target during this run, so a
// failed latency verdict says nothing about the broker alone.
func (r *Result) CeilingOverTarget() bool {
	return r.PacedCeiling.N > 0 && r.PacedCeiling.P99 > TargetPacedP99
}

// Run executes the benchmark: ceiling, max-rate run, paced run (judged),
// and the paced run again with an end-to-end consumer. Progress and results
// are written to o.Out.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Duration <= 0 {
		return nil, errors.New("duration must be positive")
	}
	if o.RecordBytes < 8 {
		return nil, errors.New("record-bytes must be at least 8 (the value carries a timestamp)")
	}
	if o.Partitions < 1 {
		return nil, errors.New("partitions must be at least 1")
	}
	if o.PacedRate < 0 {
		return nil, errors.New("paced-rate must not be negative")
	}
	acks, err := parseAcks(o.Acks)
	if err != nil {
		return nil, err
	}
	partitioner, err := parsePartitioner(o.Partitioner)
	if err != nil {
		return nil, err
	}
	switch {
	case o.WAL != "" && o.WAL != "file" && o.WAL != "object":
		return nil, fmt.Errorf("wal must be file or object, not %q", o.WAL)
	case o.NoWALSync && o.WAL == "object":
		return nil, errors.New("turning the WAL fsync off applies to the file WAL only")
	case len(o.Brokers) > 0 && (o.WAL != "" || o.WALFlushInterval != 0 || o.WALFlushBytes != 0 || o.NoWALSync):
		return nil, errors.New("the WAL settings apply to the in-process broker only, not to --brokers")
	}
	if secure, err := checkSecurity(o); err != nil {
		return nil, err
	} else if secure {
		return runSecurity(ctx, o, acks, partitioner)
	}
	out, log := outputs(o.Out, o.Logger)

	bb, err := useBroker(ctx, o.Brokers, log, out, o.walConfig)
	if err != nil {
		return nil, err
	}
	defer bb.stop()
	brokers, dataDir := bb.seeds, bb.dataDir
	fmt.Fprintf(out, "settings:      duration %s per phase, record %d B, %d partitions, acks=%s, linger %s, %d in flight/broker, no compression, %s partitioner\n",
		o.Duration, o.RecordBytes, o.Partitions, o.Acks, linger, maxInflight, partitionerName(o.Partitioner))
	if bb.srv != nil {
		fmt.Fprintf(out, "broker WAL:    %s\n", bb.walDesc)
	}

	res := &Result{}

	// (a) Ceiling.
	// The ceiling is an upper bound, and one run of it on a shared machine
	// is easily disturbed (page-cache writeback, neighbours): take the best
	// of three runs sharing the phase's time.
	var ceilings []float64
	for range ceilingRuns {
		c, err := Ceiling(ctx, ceilingDir(dataDir), o.Duration/ceilingRuns, o.RecordBytes)
		if err != nil {
			return nil, err
		}
		ceilings = append(ceilings, c)
		res.CeilingMBps = max(res.CeilingMBps, c)
	}
	fmt.Fprintf(out, "\n[a] ceiling (loopback TCP -> file, group-commit fsync, ack after fsync)\n")
	fmt.Fprintf(out, "    throughput:            %.1f MB/s (%.0f records/s; best of %d runs: %s MB/s)\n",
		res.CeilingMBps, res.CeilingMBps*1e6/float64(o.RecordBytes), ceilingRuns, fmtMBps(ceilings))

	// Topics: one for the max-rate run, one for the paced run, and a fresh
	// one for the run with a consumer, which reads it from the start and so
	// sees exactly that run's records.
	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	suffix := time.Now().Format("20060102-150405.000")
	maxTopic := "vigil-bench-max-" + suffix
	pacedTopic := "vigil-bench-paced-" + suffix
	e2eTopic := "vigil-bench-e2e-" + suffix
	for _, t := range []string{maxTopic, pacedTopic, e2eTopic} {
		resp, err := adm.CreateTopic(ctx, int32(o.Partitions), 1, nil, t)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			return nil, fmt.Errorf("create topic %s: %w", t, err)
		}
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		adm.DeleteTopics(dctx, maxTopic, pacedTopic, e2eTopic)
	}()

	newProducer := func(topic string, extra ...kgo.Opt) (*kgo.Client, error) {
		return newBenchProducer(ctx, o, brokers, topic, acks, atLeastOnce, append(partitioner, extra...)...)
	}

	// (b) Max rate.
	cl, err := newProducer(maxTopic)
	if err != nil {
		return nil, err
	}
	maxRec, elapsed, err := produceMax(ctx, cl, o.Duration, o.RecordBytes)
	cl.Close()
	if err != nil {
		return nil, err
	}
	res.MaxLatency = summarize(maxRec.samples)
	res.MaxErrors = maxRec.errs
	res.MaxMBps = float64(maxRec.bytes) / elapsed.Seconds() / 1e6
	res.MaxRecsPerSec = float64(len(maxRec.samples)) / elapsed.Seconds()
	res.Ratio = res.MaxMBps / res.CeilingMBps
	fmt.Fprintf(out, "\n[b] max rate (franz-go, acks=%s, produce as fast as possible)\n", o.Acks)
	fmt.Fprintf(out, "    throughput:            %.1f MB/s (%.0f records/s)\n", res.MaxMBps, res.MaxRecsPerSec)
	fmt.Fprintf(out, "    produce latency:       %s\n", res.MaxLatency)
	fmt.Fprintf(out, "    ratio to ceiling:      %.2f\n", res.Ratio)
	if maxRec.errs > 0 {
		fmt.Fprintf(out, "    errors:                %d (first: %v)\n", maxRec.errs, maxRec.firstEr)
	}
	if len(maxRec.samples) == 0 {
		return nil, fmt.Errorf("max-rate run: no record acknowledged (first error: %v)", maxRec.firstEr)
	}

	// The max-rate run leaves an upload backlog (ingest outruns segment
	// uploads); the paced run must measure its own load, not that tail.
	settled, err := bb.settle(ctx)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "    settled in:            %s (upload backlog drained before the next phase)\n", settled.Round(time.Millisecond))

	// (c) Paced run at a fraction of the max rate, after the ceiling path at
	// the same rate as its baseline. Like the ceiling, it has no reader: the
	// target is the produce path's.
	res.PacedTargetRecsPerSec = res.MaxRecsPerSec * PacedFraction
	if o.PacedRate > 0 {
		res.PacedTargetRecsPerSec = o.PacedRate
	}
	if res.PacedCeiling, err = CeilingPaced(ctx, ceilingDir(dataDir), o.Duration, o.RecordBytes, res.PacedTargetRecsPerSec); err != nil {
		return nil, err
	}
	reqs := &requestTimes{}
	cl, err = newProducer(pacedTopic, kgo.WithHooks(reqs))
	if err != nil {
		return nil, err
	}
	reqs.reset() // not the warm-up
	gcBefore := gcCycles()
	pacedRec, _, pacedElapsed, err := producePaced(ctx, cl, o.Duration, o.RecordBytes, res.PacedTargetRecsPerSec)
	res.PacedCollections = gcCycles() - gcBefore
	cl.Close()
	if err != nil {
		return nil, err
	}
	res.PacedLatency = summarize(pacedRec.samples)
	res.PacedErrors = pacedRec.errs
	res.PacedRecsPerSec = float64(len(pacedRec.samples)) / pacedElapsed.Seconds()
	pacedAs := fmt.Sprintf("%.0f%% of max", PacedFraction*100)
	if o.PacedRate > 0 {
		pacedAs = fmt.Sprintf("a fixed rate, %.0f%% of max", 100*o.PacedRate/res.MaxRecsPerSec)
	}
	fmt.Fprintf(out, "\n[c] paced run at %s (target %.0f records/s, achieved %.0f records/s, %.1f MB/s)\n",
		pacedAs, res.PacedTargetRecsPerSec, res.PacedRecsPerSec, res.PacedRecsPerSec*float64(o.RecordBytes)/1e6)
	fmt.Fprintf(out, "    produce latency:       %s\n", res.PacedLatency)
	// One part per second (4 to 20): a failed target reads differently when
	// one part holds the whole tail than when every part is slow.
	res.PacedP99Parts = p99Parts(pacedRec.samples, max(4, min(20, int(o.Duration.Seconds()))))
	if len(res.PacedP99Parts) > 0 {
		fmt.Fprintf(out, "    p99 along the run:     %s  (%d equal parts, in order)\n", fmtParts(res.PacedP99Parts), len(res.PacedP99Parts))
	}
	res.PacedRequests = reqs.summary()
	// The rest of a record's latency is the client's: linger, batching and
	// waiting for one of the requests in flight.
	fmt.Fprintf(out, "    produce requests:      %s  (built -> response read)\n", res.PacedRequests)
	// Collections of this process (broker and clients) held produces
	// back by milliseconds on two cores: a figure to read the p99 by.
	fmt.Fprintf(out, "    collections:           %d in this process during the paced run\n", res.PacedCollections)
	fmt.Fprintf(out, "    ceiling, same rate:    %s\n", res.PacedCeiling)
	if res.PacedCeiling.P99 > 0 {
		fmt.Fprintf(out, "    p99 ratio to ceiling:  %.1f x\n", float64(res.PacedLatency.P99)/float64(res.PacedCeiling.P99))
	}
	if pacedRec.errs > 0 {
		fmt.Fprintf(out, "    errors:                %d (first: %v)\n", pacedRec.errs, pacedRec.firstEr)
	}

	// (d) The same rate with a consumer reading as the topic fills: the
	// end-to-end latency, and what the read load (the broker's fetches and,
	// on a small machine, the consumer's own CPU) does to the produce latency.
	if _, err := bb.settle(ctx); err != nil {
		return nil, err
	}
	cl, err = newProducer(e2eTopic)
	if err != nil {
		return nil, err
	}
	e2e, err := startE2E(ctx, brokers, e2eTopic, o.RecordBytes)
	if err != nil {
		cl.Close()
		return nil, err
	}
	readRec, sent, _, err := producePaced(ctx, cl, o.Duration, o.RecordBytes, res.PacedTargetRecsPerSec)
	cl.Close()
	if err != nil {
		e2e.stop()
		return nil, err
	}
	e2eSamples := e2e.wait(ctx, sent, 10*time.Second)
	res.ReadLoadLatency = summarize(readRec.samples)
	res.ReadLoadErrors = readRec.errs
	res.EndToEnd = summarize(e2eSamples)
	res.EndToEndMissing = max(0, sent-int64(len(e2eSamples)))
	fmt.Fprintf(out, "\n[d] the paced run again, with a consumer reading as it goes (end-to-end: timestamp in record -> consumer receive)\n")
	fmt.Fprintf(out, "    end-to-end latency:    p50 %s  p99 %s  (n=%d", fmtDur(res.EndToEnd.P50), fmtDur(res.EndToEnd.P99), res.EndToEnd.N)
	if res.EndToEndMissing > 0 {
		fmt.Fprintf(out, ", %d not received", res.EndToEndMissing)
	}
	fmt.Fprintf(out, ")\n")
	fmt.Fprintf(out, "    produce latency:       %s  (under the read load; not judged)\n", res.ReadLoadLatency)
	if readRec.errs > 0 {
		fmt.Fprintf(out, "    errors:                %d (first: %v)\n", readRec.errs, readRec.firstEr)
	}

	fmt.Fprintf(out, "\ntargets\n")
	throughputLabel := fmt.Sprintf("throughput >= %.1f x ceiling:", TargetRatio)
	latencyLabel := fmt.Sprintf("p99 at %.0f%% <= %s:", PacedFraction*100, TargetPacedP99)
	if o.NoWALSync {
		fmt.Fprintf(out, "    %-30s not judged  (WAL without fsync; %.2f x: %.1f of %.1f MB/s)\n", throughputLabel, res.Ratio, res.MaxMBps, res.CeilingMBps)
		fmt.Fprintf(out, "    %-30s not judged  (WAL without fsync; p99 %s)\n", latencyLabel, fmtDur(res.PacedLatency.P99))
		return res, nil
	}
	fmt.Fprintf(out, "    %-30s %s  (%.2f x: %.1f of %.1f MB/s)\n",
		throughputLabel, passFail(res.ThroughputPass()), res.Ratio, res.MaxMBps, res.CeilingMBps)
	if o.PacedRate > 0 {
		fmt.Fprintf(out, "    %-30s not judged  (paced at --paced-rate, not at %.0f%% of max; p99 %s)\n",
			latencyLabel, PacedFraction*100, fmtDur(res.PacedLatency.P99))
	} else {
		verdict := fmt.Sprintf("p99 %s", fmtDur(res.PacedLatency.P99))
		if res.CeilingOverTarget() {
			verdict += fmt.Sprintf("; the ceiling at the same rate, without Kafka, had p99 %s: this machine was over the target too", fmtDur(res.PacedCeiling.P99))
		}
		fmt.Fprintf(out, "    %-30s %s  (%s)\n", latencyLabel, passFail(res.LatencyPass()), verdict)
	}
	return res, nil
}

// walConfig applies the in-process broker's WAL settings of o.
func (o Options) walConfig(c *config.Broker) {
	if o.WAL != "" {
		c.WAL = o.WAL
	}
	if o.WALFlushInterval > 0 {
		c.WALFlushInterval = o.WALFlushInterval
	}
	if o.WALFlushBytes > 0 {
		c.WALFlushBytes = o.WALFlushBytes
	}
	if o.NoWALSync {
		c.WALSync = false
	}
}

// delivery is the guarantee a benchmark producer asks for.
type delivery int

const (
	// atLeastOnce: idempotence off, so maxInflight requests per broker
	// with any acks: the produce phases (and the Java client's default
	// before Kafka 3.0).
	atLeastOnce delivery = iota
	// idempotent: a producer id and sequence numbers, acks=all. franz-go
	// then allows 5 requests in flight per broker (Kafka 1.0+), the same
	// as maxInflight.
	idempotent
	// transactional: idempotent with a transactional id (the topic's name
	// with a "-txn" suffix, unique per producer); records must be produced
	// inside transactions.
	transactional
)

// newBenchProducer starts the benchmark's producer on topic: the settings
// of every phase that produces (extra adds the partitioner, hooks, or a
// listener's TLS and SASL), warmed up with one acknowledged record per
// partition (metadata, connections, every partition's leader and, for a
// transactional producer, its producer id, in a committed transaction).
func newBenchProducer(ctx context.Context, o Options, seeds []string, topic string, acks kgo.Acks, d delivery, extra ...kgo.Opt) (*kgo.Client, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(acks),
		kgo.ProducerLinger(linger),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedBytes(maxBufferedBytes),
		kgo.MaxBufferedRecords(1 << 20),
	}
	switch d {
	case atLeastOnce:
		// franz-go refuses a requests-in-flight setting with idempotence
		// (it sets its own), so it goes with turning idempotence off.
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(maxInflight))
	case transactional:
		opts = append(opts, kgo.TransactionalID(topic+"-txn"))
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, err
	}
	if err := warmUp(ctx, cl, o, d == transactional); err != nil {
		cl.Close()
		return nil, fmt.Errorf("warm-up produce to %s: %w", topic, err)
	}
	return cl, nil
}

// warmUp produces one record per partition and waits for each, inside a
// committed transaction for a transactional producer.
func warmUp(ctx context.Context, cl *kgo.Client, o Options, inTxn bool) error {
	if inTxn {
		if err := cl.BeginTransaction(); err != nil {
			return err
		}
	}
	for p := 0; p < o.Partitions; p++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: make([]byte, o.RecordBytes)}).FirstErr(); err != nil {
			return err
		}
	}
	if inTxn {
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	return nil
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// parsePartitioner returns the producer option for Options.Partitioner
// (none for the client's default).
func parsePartitioner(s string) ([]kgo.Opt, error) {
	switch s {
	case "", PartitionerDefault:
		return nil, nil
	case PartitionerRoundRobin:
		return []kgo.Opt{kgo.RecordPartitioner(kgo.RoundRobinPartitioner())}, nil
	}
	return nil, fmt.Errorf("partitioner must be %s or %s, not %q", PartitionerDefault, PartitionerRoundRobin, s)
}

func partitionerName(s string) string {
	if s == "" || s == PartitionerDefault {
		return "the client's default (uniform sticky, KIP-794)"
	}
	return s
}

func parseAcks(s string) (kgo.Acks, error) {
	switch strings.ToLower(s) {
	case "", "all", "-1":
		return kgo.AllISRAcks(), nil
	case "1", "leader":
		return kgo.LeaderAck(), nil
	case "0", "none":
		return kgo.NoAck(), nil
	}
	return kgo.Acks{}, fmt.Errorf("acks must be all, 1 or 0, not %q", s)
}

// produceMax produces for d as fast as the client accepts records and
// returns the samples and the time from start to the last acknowledgement.
func produceMax(ctx context.Context, cl *kgo.Client, d time.Duration, recordBytes int) (*recorder, time.Duration, error) {
	value := make([]byte, recordBytes)
	rand.Read(value)
	rec := &recorder{samples: make([]time.Duration, 0, 1<<20)}
	start := time.Now()
	produceUntil(ctx, cl, start.Add(d), value, rec)
	if err := cl.Flush(ctx); err != nil {
		return nil, 0, err
	}
	if ctx.Err() != nil {
		return nil, 0, ctx.Err()
	}
	return rec, rec.last.Sub(start), nil
}

// produceUntil hands records of value to cl as fast as it accepts them
// until deadline, each recorded in rec once acknowledged; it does not wait
// for the acknowledgements.
func produceUntil(ctx context.Context, cl *kgo.Client, deadline time.Time, value []byte, rec *recorder) {
	var produced int64
	for ctx.Err() == nil {
		if produced&63 == 0 && !time.Now().Before(deadline) {
			break
		}
		t0 := time.Now()
		// Records must not be reused until their promise runs; the value is
		// only read, so one slice serves all.
		cl.Produce(ctx, &kgo.Record{Value: value}, rec.promise(t0))
		produced++
	}
}

// producePaced produces rate records/s for d, each value starting with its
// send time in Unix nanoseconds. It returns the samples, the records sent,
// and the elapsed time.
func producePaced(ctx context.Context, cl *kgo.Client, d time.Duration, recordBytes int, rate float64) (*recorder, int64, time.Duration, error) {
	rec := &recorder{samples: make([]time.Duration, 0, int(rate*d.Seconds())+16)}
	sent, elapsed, err := producePacedInto(ctx, cl, d, nil, recordBytes, rate, rec)
	return rec, sent, elapsed, err
}

// producePacedInto is producePaced recording into rec, which the caller may
// read while it runs, and ending early, without error, once stop is closed
// (nil: never).
func producePacedInto(ctx context.Context, cl *kgo.Client, d time.Duration, stop <-chan struct{}, recordBytes int, rate float64, rec *recorder) (int64, time.Duration, error) {
	if rate <= 0 {
		return 0, 0, errors.New("paced rate is zero")
	}
	filler := make([]byte, recordBytes)
	rand.Read(filler)
	// Records and their values are reused once acknowledged, and one
	// callback serves them all (the send time is in the value): a real
	// producer is another process, and its garbage would otherwise make
	// this process's collector run (and stall the broker) far more often.
	var recs sync.Pool
	done := func(r *kgo.Record, err error) {
		now := time.Now()
		if err != nil {
			rec.fail(err)
			return
		}
		rec.ok(now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(r.Value)))), len(r.Value), now)
		*r = kgo.Record{Value: r.Value}
		recs.Put(r)
	}
	start := time.Now()
	var sent int64
loop:
	for ctx.Err() == nil {
		select {
		case <-stop:
			break loop
		default:
		}
		elapsed := time.Since(start)
		if elapsed >= d {
			break
		}
		due := int64(elapsed.Seconds() * rate)
		for ; sent < due; sent++ {
			r, ok := recs.Get().(*kgo.Record)
			if !ok {
				r = &kgo.Record{Value: make([]byte, recordBytes)}
				copy(r.Value[8:], filler[8:])
			}
			binary.BigEndian.PutUint64(r.Value, uint64(time.Now().UnixNano()))
			cl.Produce(ctx, r, done)
		}
		// Sleep until the next record is due (at least a little, at most 1ms).
		next := time.Duration(float64(sent+1) / rate * float64(time.Second))
		time.Sleep(min(max(next-time.Since(start), 50*time.Microsecond), time.Millisecond))
	}
	elapsed := time.Since(start)
	if err := cl.Flush(ctx); err != nil {
		return 0, 0, err
	}
	if ctx.Err() != nil {
		return 0, 0, ctx.Err()
	}
	return sent, elapsed, nil
}

// e2eConsumer reads the paced topic from the start and records, for every
// record, receive time minus the send time carried in its value.
type e2eConsumer struct {
	recorder // its samples: one per record received
	cl       *kgo.Client
	done     chan struct{}
	cancel   context.CancelFunc
}

func startE2E(ctx context.Context, brokers []string, topic string, recordBytes int, extra ...kgo.Opt) (*e2eConsumer, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}, extra...)...)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(ctx)
	c := &e2eConsumer{cl: cl, done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(c.done)
		for {
			fs := cl.PollFetches(cctx)
			now := time.Now()
			if cctx.Err() != nil {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				if len(r.Value) < 8 {
					return
				}
				ts := int64(binary.BigEndian.Uint64(r.Value))
				if ts == 0 { // warm-up record
					return
				}
				c.ok(now.Sub(time.Unix(0, ts)), len(r.Value), now)
			})
		}
	}()
	return c, nil
}

func (c *e2eConsumer) stop() {
	c.cancel()
	<-c.done
	c.cl.Close()
}

// wait waits until want samples arrived (or timeout), stops the consumer and
// returns its samples.
func (c *e2eConsumer) wait(ctx context.Context, want int64, timeout time.Duration) []time.Duration {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if int64(c.count()) >= want {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.stop()
	return c.between(0, c.count())
}

// requestTimes records, through franz-go's hook, how long each produce
// request takes from being built to its response being read, which
// separates the broker's share of a record's latency from the client's
// batching.
type requestTimes struct {
	mu      sync.Mutex
	samples []time.Duration
}

func (r *requestTimes) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e kgo.BrokerE2E) {
	if key != kmsg.Produce.Int16() || e.Err() != nil {
		return
	}
	r.mu.Lock()
	r.samples = append(r.samples, e.WriteWait+e.DurationE2E())
	r.mu.Unlock()
}

func (r *requestTimes) reset() {
	r.mu.Lock()
	r.samples = r.samples[:0]
	r.mu.Unlock()
}

func (r *requestTimes) summary() Latencies {
	r.mu.Lock()
	defer r.mu.Unlock()
	return summarize(r.samples)
}

// gcCycles is how many garbage collections this process has completed.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
