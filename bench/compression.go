package bench

// The broker-side compression comparison (`vigil bench compression`,
// issue 25): what recompressing on the produce path costs, as the records
// per second per core of a topic with compression.type=zstd (every
// uncompressed batch rebuilt in zstd before it is stored) relative to the
// same topic with compression.type=producer (batches stored as they came,
// Vigil's zero-copy default), against the same broker in the same minutes.
//
//   - The producer is the max-rate phase's (newBenchProducer: acks=all, 0
//     ms linger, five requests in flight, idempotence off), sending
//     uncompressed batches of 1 KiB JSON records as a security appliance
//     or agent that does not compress would: events drawn in turn from
//     jsonEvents distinct ones, each with its own times, addresses, users,
//     command line and hash, so that zstd finds what it finds in real
//     logs rather than one value repeated.
//   - The paired method of paired.go: Rounds pairs, the first of each
//     pair alternating, a fresh topic per run on a settled, fsynced
//     broker. The zstd side's topic is set with AlterConfigs after it is
//     created.
//   - Per core: a run's records/s divided by the cores the process used
//     during it (the broker's and the producer's CPU: they share the
//     process; the producer does the same work on both sides, so the
//     difference is the broker's). Reported: the ratio of the medians of
//     records/s per core, zstd / producer, with every pair's ratio, and,
//     from the in-process broker's counters, the bytes producers sent
//     against the bytes stored.
//
// No target is judged: the issue asks for the cost to be measured. It is
// run in-process only, since the stored bytes come from the broker's own
// counters.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// jsonEvents is how many distinct events the compression comparison's
// producer cycles through: more than a batch holds, so that no batch
// repeats one.
const jsonEvents = 4096

// CompressionOptions configures the compression comparison.
type CompressionOptions struct {
	Duration    time.Duration // of each run (0: DefaultTxnRunTime)
	Rounds      int           // pairs of runs (0: DefaultRounds)
	Codec       string        // compression.type of the candidate topic ("": zstd)
	Level       string        // the candidate topic's compression.<codec>.level ("": the default)
	RecordBytes int           // of each JSON event (0: 1024)
	Partitions  int           // (0: 12)
	Logger      *slog.Logger
	Out         io.Writer // progress and results; nil discards
}

// CompressionResult holds the figures of the compression comparison.
type CompressionResult struct {
	Codec  string
	Rounds []CompressionRound
	// Medians of the runs' records/s per core, and their ratio.
	ProducerPerCore, CodecPerCore float64
	Ratio                         float64 // CodecPerCore / ProducerPerCore
	// Over every candidate run: the bytes producers sent, and stored.
	BytesIn, BytesOut int64
}

// CompressionRound is one pair of runs.
type CompressionRound struct {
	Producer, Codec MaxRateRun
	Ratio           float64 // of their records/s per core
}

// perCore is a run's records per second per core of the process.
func perCore(r MaxRateRun) float64 {
	if c := r.Cores(); c > 0 {
		return r.RecsPerSec / c
	}
	return 0
}

// RunCompression runs the compression comparison.
func RunCompression(ctx context.Context, o CompressionOptions) (*CompressionResult, error) {
	o.Duration = cmp.Or(o.Duration, DefaultTxnRunTime)
	o.Rounds = cmp.Or(o.Rounds, DefaultRounds)
	o.Codec = cmp.Or(o.Codec, "zstd")
	o.RecordBytes = cmp.Or(o.RecordBytes, 1024)
	o.Partitions = cmp.Or(o.Partitions, 12)
	switch {
	case o.Duration < 0:
		return nil, errors.New("duration must be positive")
	case o.Rounds < 0:
		return nil, errors.New("rounds must be at least 1")
	case o.RecordBytes < 512:
		return nil, errors.New("record-bytes must be at least 512 (a JSON event's fields)")
	case o.Partitions < 1:
		return nil, errors.New("partitions must be at least 1")
	case !slices.Contains([]string{"uncompressed", "gzip", "snappy", "lz4", "zstd"}, o.Codec):
		return nil, fmt.Errorf("codec %q: must be one of uncompressed, gzip, snappy, lz4, zstd", o.Codec)
	case o.Level != "" && !slices.Contains([]string{"gzip", "lz4", "zstd"}, o.Codec):
		return nil, fmt.Errorf("a level needs codec gzip, lz4 or zstd, not %s", o.Codec)
	}
	level := "default level"
	if o.Level != "" {
		level = "compression." + o.Codec + ".level=" + o.Level
	}
	out, log := outputs(o.Out, o.Logger)
	bb, err := useBroker(ctx, nil, log, out)
	if err != nil {
		return nil, err
	}
	defer bb.stop()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(bb.seeds...))
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	events := jsonRecords(o.RecordBytes)
	fmt.Fprintf(out, "broker WAL:    %s\n", bb.walDesc)
	fmt.Fprintf(out, "settings:      duration %s per run, %d distinct JSON events of %d B, uncompressed batches, %d partitions, acks=all, linger %s, %d in flight/broker\n",
		o.Duration, len(events), o.RecordBytes, o.Partitions, linger, maxInflight)
	fmt.Fprintf(out, "method:        compression.type=producer against compression.type=%s (%s), %s, interleaved (the first of each pair alternates);\n", o.Codec, level, plural(o.Rounds, "round"))
	fmt.Fprintf(out, "               a fresh topic per run, deleted after it; each run starts once the broker has settled\n")
	fmt.Fprintf(out, "               per core: records/s over the cores the process used (the broker's and the producer's CPU together)\n")

	po := Options{RecordBytes: o.RecordBytes, Partitions: o.Partitions}
	suffix := time.Now().Format("20060102-150405.000")
	stats := bb.srv.Recompression()
	res := &CompressionResult{Codec: o.Codec}
	var rd CompressionRound
	fmt.Fprintf(out, "\n[a] max rate, compression.type producer and %s, interleaved\n", o.Codec)
	err = interleave(o.Rounds, func(round int, recompress bool, label string) error {
		side := "producer"
		if recompress {
			side = o.Codec
		}
		topic := fmt.Sprintf("vigil-bench-compression-%s-%d-%s", suffix, round, side)
		drop, err := freshTopic(ctx, bb, adm, topic, o.Partitions)
		if err != nil {
			return err
		}
		defer drop()
		if recompress {
			set := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "compression.type", Value: &o.Codec}}
			if o.Level != "" {
				set = append(set, kadm.AlterConfig{Op: kadm.SetConfig, Name: "compression." + o.Codec + ".level", Value: &o.Level})
			}
			ar, err := adm.AlterTopicConfigs(ctx, set, topic)
			if err == nil {
				_, err = ar.On(topic, nil)
			}
			if err == nil {
				err = ar[0].Err
			}
			if err != nil {
				return fmt.Errorf("set compression.type=%s on %s: %w", o.Codec, topic, err)
			}
		}
		cl, err := newBenchProducer(ctx, po, bb.seeds, topic, kgo.AllISRAcks(), atLeastOnce)
		if err != nil {
			return fmt.Errorf("%s: %w", side, err)
		}
		defer cl.Close()
		in0, out0 := stats.BytesIn.Load(), stats.BytesOut.Load()
		r, err := timedRun(func() (*recorder, time.Duration, error) { return produceEvents(ctx, cl, o.Duration, events) })
		if err != nil {
			return fmt.Errorf("%s run: %w", side, err)
		}
		tail := fmt.Sprintf("  %7.0f records/s/core", perCore(r))
		if recompress {
			in, stored := stats.BytesIn.Load()-in0, stats.BytesOut.Load()-out0
			res.BytesIn += in
			res.BytesOut += stored
			tail += fmt.Sprintf("  stored %.1f of %.1f MB sent (%.2fx)", float64(stored)/1e6, float64(in)/1e6, float64(in)/float64(max(stored, 1)))
			rd.Codec = r
		} else {
			rd.Producer = r
		}
		printRun(out, label, side, r, tail)
		return nil
	}, func(round int) {
		rd.Ratio = perCore(rd.Codec) / perCore(rd.Producer)
		fmt.Fprintf(out, "    %8s  ratio %s / producer, records/s per core: %.2f\n", "", o.Codec, rd.Ratio)
		res.Rounds = append(res.Rounds, rd)
		rd = CompressionRound{}
	})
	if err != nil {
		return nil, err
	}

	var base, cand, pairs []float64
	for _, rd := range res.Rounds {
		base = append(base, perCore(rd.Producer))
		cand = append(cand, perCore(rd.Codec))
		pairs = append(pairs, rd.Ratio)
	}
	res.ProducerPerCore, res.CodecPerCore = median(base), median(cand)
	res.Ratio = res.CodecPerCore / res.ProducerPerCore
	slices.Sort(pairs)
	fmt.Fprintf(out, "\n[b] medians of %s each, records/s per core\n", plural(o.Rounds, "run"))
	fmt.Fprintf(out, "    %-16s  %8.0f  (runs %s)\n", "producer:", res.ProducerPerCore, fmtCounts(base))
	fmt.Fprintf(out, "    %-16s  %8.0f  (runs %s)\n", o.Codec+":", res.CodecPerCore, fmtCounts(cand))
	fmt.Fprintf(out, "    ratio of medians:  %.2f  (pairs %.2f to %.2f, median %.2f)\n", res.Ratio, pairs[0], pairs[len(pairs)-1], median(pairs))
	fmt.Fprintf(out, "    bytes stored:      %.1f MB of %.1f MB sent to the %s topics (%.2fx smaller)\n",
		float64(res.BytesOut)/1e6, float64(res.BytesIn)/1e6, o.Codec, float64(res.BytesIn)/float64(max(res.BytesOut, 1)))
	fmt.Fprintf(out, "    (not judged: issue 25 asks for the cost to be measured)\n")
	return res, nil
}

// fmtCounts lists figures rounded to whole numbers.
func fmtCounts(v []float64) string {
	s := ""
	for i, x := range v {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%.0f", x)
	}
	return s
}

// produceEvents produces events in turn for d as fast as the client
// accepts them, and returns the records acknowledged and the time from
// the start to the last acknowledgement.
func produceEvents(ctx context.Context, cl *kgo.Client, d time.Duration, events [][]byte) (*recorder, time.Duration, error) {
	rec := &recorder{samples: make([]time.Duration, 0, 1<<20)}
	start := time.Now()
	deadline := start.Add(d)
	for i := 0; ctx.Err() == nil; i++ {
		if i&63 == 0 && !time.Now().Before(deadline) {
			break
		}
		t0 := time.Now()
		cl.Produce(ctx, &kgo.Record{Value: events[i%len(events)]}, rec.promise(t0))
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, 0, err
	}
	if ctx.Err() != nil {
		return nil, 0, ctx.Err()
	}
	return rec, rec.last.Sub(start), nil
}

// jsonRecords returns jsonEvents distinct JSON events of exactly size
// bytes, shaped as an endpoint agent's process events: a time, host,
// user, addresses and ports, a process with its command line and SHA-256,
// and a message padded from a small vocabulary to the size. The
// generator is seeded, so every run sends the same events.
func jsonRecords(size int) [][]byte {
	rng := rand.New(rand.NewPCG(25, 2))
	words := []string{"connection", "accepted", "denied", "session", "opened", "closed", "for", "user", "from", "port",
		"ssh2", "sudo", "command", "policy", "rule", "matched", "outbound", "inbound", "tcp", "udp", "dns", "query",
		"response", "NXDOMAIN", "process", "started", "exited", "with", "status", "file", "written", "registry", "key"}
	hosts := []string{"web", "db", "dc", "vpn", "mail", "build", "laptop", "k8s-node", "proxy", "jump"}
	procs := []string{`C:\\Windows\\System32\\cmd.exe /c whoami`, `/usr/bin/curl -s https://updates.example.com/agent`,
		`powershell.exe -NoProfile -Command Get-Process`, `/bin/bash -c 'tar czf /tmp/backup.tgz /var/www'`,
		`/usr/sbin/sshd -D -R`, `C:\\Program Files\\Agent\\agent.exe --scan`, `/usr/bin/python3 /opt/jobs/rotate.py`}
	t0 := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	out := make([][]byte, jsonEvents)
	for i := range out {
		hash := make([]byte, 32)
		for j := range hash {
			hash[j] = byte(rng.Uint32())
		}
		ev := fmt.Sprintf(`{"time":"%s","host":"%s-%02d.corp.example.com","user":"user%04d","src_ip":"10.%d.%d.%d","src_port":%d,`+
			`"dst_ip":"192.0.2.%d","dst_port":%d,"process":{"pid":%d,"cmdline":"%s","sha256":"%x"},"severity":%d,"message":"`,
			t0.Add(time.Duration(i)*37*time.Millisecond).Format(time.RFC3339Nano), hosts[rng.IntN(len(hosts))], rng.IntN(40), rng.IntN(3000),
			rng.IntN(256), rng.IntN(256), rng.IntN(256), 1024+rng.IntN(60000), rng.IntN(256), []int{22, 53, 80, 443, 3389, 8080}[rng.IntN(6)],
			rng.IntN(1<<22), procs[rng.IntN(len(procs))], hash, rng.IntN(8))
		for len(ev) < size-2 {
			ev += words[rng.IntN(len(words))] + " "
		}
		ev = ev[:size-2] + `"}`
		out[i] = []byte(ev)
	}
	return out
}
