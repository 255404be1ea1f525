package bench

// Paired max-rate runs: the method the comparisons of one produce path
// with another share (security.go: a secure listener against PLAINTEXT;
// txn.go: transactions against idempotent produce).
//
//   - Rounds pairs of runs, a baseline and a candidate, the first of each
//     pair alternating (the baseline first in odd rounds, the candidate in
//     even ones), so that a drift of the shared machine during the
//     invocation falls on both sides alike.
//   - Every run gets a fresh topic, created before it and deleted after it,
//     and starts once the broker's upload backlog has drained and its files
//     are fsynced: each run starts from the same state (empty partitions,
//     nothing of the previous run left to upload or to write back from the
//     page cache) and the disk does not fill up over the rounds. Reusing
//     one topic would make later runs append to a longer log than earlier
//     ones, a difference the interleaving would mostly, but not exactly,
//     cancel.
//   - Judged on the ratio of the medians (candidate / baseline MB/s); each
//     pair's ratio is printed too, for the spread.
//   - CPU: the process's CPU time per MB produced, per run. With the
//     in-process broker the broker and the client share the process, so it
//     is their sum; a CPU profile of a run (the admin listener's
//     /debug/pprof/profile) splits it.

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// DefaultRounds is how many pairs of runs a comparison makes by default.
const DefaultRounds = 5

// MaxRateRun holds the figures of one max-rate run.
type MaxRateRun struct {
	MBps       float64
	RecsPerSec float64
	Acked      int // records counted (acknowledged; in transactions, also committed)
	Errors     int64
	FirstError error
	Latency    Latencies     // of the records counted: sent to acknowledged
	Elapsed    time.Duration // first record sent to the end of the run (the last acknowledgement or commit)
	CPU        time.Duration // the process's during the run
}

// CPUPerMB is the process's CPU milliseconds per MB produced (0: unknown).
func (r MaxRateRun) CPUPerMB() float64 {
	if r.CPU <= 0 || r.MBps <= 0 {
		return 0
	}
	return r.CPU.Seconds() * 1000 / (r.MBps * r.Elapsed.Seconds())
}

// Cores is the CPU the process used during the run, in cores.
func (r MaxRateRun) Cores() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return r.CPU.Seconds() / r.Elapsed.Seconds()
}

// timedRun runs produce, which returns the records it counts and the
// run's elapsed time, and returns their figures with the process CPU the
// run took. A run that counted no record is an error: a ratio to it would
// say nothing.
func timedRun(produce func() (*recorder, time.Duration, error)) (MaxRateRun, error) {
	var r MaxRateRun
	cpu0 := cpuTime()
	rec, elapsed, err := produce()
	if cpu1 := cpuTime(); cpu0 > 0 {
		r.CPU = cpu1 - cpu0
	}
	if err != nil {
		return r, err
	}
	r.Acked, r.Errors, r.FirstError = len(rec.samples), rec.errs, rec.firstEr
	if r.Acked == 0 {
		return r, fmt.Errorf("no record counted (first error: %v)", rec.firstEr)
	}
	r.Latency = summarize(rec.samples)
	r.Elapsed = elapsed
	r.MBps = float64(rec.bytes) / elapsed.Seconds() / 1e6
	r.RecsPerSec = float64(r.Acked) / elapsed.Seconds()
	return r, nil
}

// freshTopic prepares a run: it waits for the broker to settle, fsyncs an
// in-process broker's files, and creates topic. drop deletes the topic.
func freshTopic(ctx context.Context, bb *benchBroker, adm *kadm.Client, topic string, partitions int) (drop func(), err error) {
	if _, err := bb.settle(ctx); err != nil {
		return nil, err
	}
	if bb.dataDir != "" {
		if err := syncTree(bb.dataDir); err != nil {
			return nil, err
		}
	}
	resp, err := adm.CreateTopic(ctx, int32(partitions), 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return nil, fmt.Errorf("create topic %s: %w", topic, err)
	}
	return func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		adm.DeleteTopics(dctx, topic)
	}, nil
}

// interleave runs rounds pairs: run(round, candidate, label) for each side,
// the first of each pair alternating, label the column to print the run
// under ("round N" for the first of a pair); after(round) once a pair is
// done.
func interleave(rounds int, run func(round int, candidate bool, label string) error, after func(round int)) error {
	for i := range rounds {
		first := i%2 == 1 // the candidate first in even rounds
		for j, candidate := range []bool{first, !first} {
			label := "        "
			if j == 0 {
				label = fmt.Sprintf("round %-2d", i+1)
			}
			if err := run(i+1, candidate, label); err != nil {
				return err
			}
		}
		after(i + 1)
	}
	return nil
}

// pairedMedians is the summary of paired runs.
type pairedMedians struct {
	BaseMBps, CandMBps         float64 // medians
	BaseCPUPerMB, CandCPUPerMB float64 // medians, in ms/MB; zero where unknown
	Ratio                      float64 // CandMBps / BaseMBps
}

// comparePairs summarizes paired runs (base[i] and cand[i] are round i's)
// and prints the medians with every run, the ratio of the medians with the
// spread of the pairs' ratios, and the difference in CPU per MB; cpuWhose
// says whose CPU that is.
func comparePairs(out io.Writer, baseName, candName, cpuWhose string, base, cand []MaxRateRun) pairedMedians {
	var baseMBps, candMBps, baseCPU, candCPU, pairs []float64
	for i := range base {
		baseMBps = append(baseMBps, base[i].MBps)
		candMBps = append(candMBps, cand[i].MBps)
		baseCPU = append(baseCPU, base[i].CPUPerMB())
		candCPU = append(candCPU, cand[i].CPUPerMB())
		pairs = append(pairs, cand[i].MBps/base[i].MBps)
	}
	m := pairedMedians{
		BaseMBps: median(baseMBps), CandMBps: median(candMBps),
		BaseCPUPerMB: median(baseCPU), CandCPUPerMB: median(candCPU),
	}
	m.Ratio = m.CandMBps / m.BaseMBps
	fmt.Fprintf(out, "    %-16s  %6.1f MB/s  (runs %s; CPU %s)\n", baseName+":", m.BaseMBps, fmtMBps1(baseMBps), fmtCPUPerMB(m.BaseCPUPerMB))
	fmt.Fprintf(out, "    %-16s  %6.1f MB/s  (runs %s; CPU %s)\n", candName+":", m.CandMBps, fmtMBps1(candMBps), fmtCPUPerMB(m.CandCPUPerMB))
	slices.Sort(pairs)
	fmt.Fprintf(out, "    ratio of medians:  %.2f  (pairs %.2f to %.2f, median %.2f)\n", m.Ratio, pairs[0], pairs[len(pairs)-1], median(pairs))
	if m.BaseCPUPerMB > 0 {
		d := m.CandCPUPerMB - m.BaseCPUPerMB
		fmt.Fprintf(out, "    CPU per MB:        %s %+.2f ms/MB (%+.0f%%) over %s, %s\n",
			candName, d, 100*d/m.BaseCPUPerMB, baseName, cpuWhose)
	}
	return m
}

// printRun prints a run's figures on one line under label, tail after
// them.
func printRun(out io.Writer, label, name string, r MaxRateRun, tail string) {
	fmt.Fprintf(out, "    %s  %-14s %6.1f MB/s  %7.0f records/s  p99 %10s  CPU %s  %.2f cores%s",
		label, name, r.MBps, r.RecsPerSec, fmtDur(r.Latency.P99), fmtCPUPerMB(r.CPUPerMB()), r.Cores(), tail)
	if r.Errors > 0 {
		fmt.Fprintf(out, "  errors %d (first: %v)", r.Errors, r.FirstError)
	}
	fmt.Fprintln(out)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func fmtCPUPerMB(v float64) string {
	if v <= 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.2f ms/MB", v)
}

func fmtMBps1(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.1f", x)
	}
	return strings.Join(parts, ", ")
}

// median of v (the mean of the middle two for an even count); 0 if empty.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// syncTree fsyncs every file under dir, so that the next run does not
// share the disk with the write-back of the previous runs' dirty pages.
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil // a file removed meanwhile (an upload's WAL file, a deleted topic's object)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		defer f.Close()
		return f.Sync()
	})
}
