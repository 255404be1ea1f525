// Command chaos is Vigil's fault campaign: it builds a cluster of three
// brokers, three etcd members and an S3-compatible store (versitygw
// behind a fault proxy), each in its own network namespace, runs a
// Jepsen-style queue workload against it while a nemesis injects faults
// on a seeded schedule, then checks the recorded history (package
// checker) and prints a summary table.
//
//	go run ./test/chaos --seed 1 --duration 30m --out /tmp/chaos   # as root
//	go run ./test/chaos --faults kill,pause --duration 2m          # some faults only
//	go run ./test/chaos --broken --expect-lost --faults kill --s3-flaky 0.3   # must report lost writes
//	go run ./test/chaos check /tmp/chaos/run-001/history.jsonl.gz  # check a history again
//
// A campaign is a sequence of runs, each on a fresh cluster with its own
// seed (the campaign's seed plus the run's number), so any run can be
// replayed alone with --seed and --duration of one run. docs/reliability.md
// has the fault list, how each fault is shown to have happened, and
// results.
//
// It is a program in the repository, not a `vigil` subcommand: it needs
// root, network namespaces, nftables and the etcd and versitygw
// binaries, and it builds the brokers itself (with the clock hook, and
// the deliberately broken variant), none of which belongs in the binary
// operators deploy.
package main

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vigilhq/vigil/test/chaos/checker"
	"github.com/vigilhq/vigil/test/chaos/netns"
	"github.com/vigilhq/vigil/test/chaos/s3proxy"
)

// current is the running run's cluster, stopped on SIGINT or SIGTERM.
var current atomic.Pointer[Cluster]

// Config is one campaign.
type Config struct {
	Seed      uint64
	Duration  time.Duration // the whole campaign (runs start until it has passed)
	RunLength time.Duration // faults phase of one run
	Faults    []string
	Out       string // runs' directories, histories and the summary
	BinDir    string // built binaries (reused across campaigns)
	Broken    bool   // run the chaosbroken brokers
	S3Latency time.Duration
	S3Flaky   float64 // share of store requests answered 503 SlowDown throughout
	Workload  WorkloadConfig
	HoldMin   time.Duration
	HoldMax   time.Duration
	GapMin    time.Duration
	GapMax    time.Duration
	// EveryKind keeps a run injecting past RunLength until every fault
	// kind has come up once (the CI campaign's guarantee of coverage).
	EveryKind bool
	Logf      func(string, ...any)
}

// RunResult is one run's outcome.
type RunResult struct {
	Run         int             `json:"run"`
	Seed        uint64          `json:"seed"`
	Seconds     float64         `json:"seconds"`
	Faults      map[string]int  `json:"faults"` // demonstrated, by kind
	FaultErrors []string        `json:"fault_errors,omitempty"`
	Check       *checker.Result `json:"check,omitempty"`
	Err         string          `json:"error,omitempty"`
	Dir         string          `json:"dir"`
}

// OK reports whether the run found nothing wrong and every fault was shown.
func (r *RunResult) OK() bool {
	return r.Err == "" && len(r.FaultErrors) == 0 && r.Check != nil && r.Check.Valid()
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "check" {
		os.Exit(checkCmd(os.Args[2:]))
	}
	cfg := Config{Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+f+"\n", a...) }}
	var faultList string
	fs := flag.NewFlagSet("chaos", flag.ExitOnError)
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the fault schedule (run i uses seed+i)")
	fs.DurationVar(&cfg.Duration, "duration", 5*time.Minute, "how long to keep starting runs")
	fs.DurationVar(&cfg.RunLength, "run", 5*time.Minute, "faults phase of each run (setup, recovery and the final read come on top)")
	fs.StringVar(&faultList, "faults", "all", "comma-separated fault kinds, or all: "+strings.Join(faultNames(), ","))
	fs.StringVar(&cfg.Out, "out", "", "directory for runs, histories and summary (default: a new temporary directory)")
	fs.StringVar(&cfg.BinDir, "bin-dir", filepath.Join(os.TempDir(), "vigil-chaos-bin"), "where the brokers and etcd are built")
	fs.BoolVar(&cfg.Broken, "broken", false, "run the deliberately broken brokers (-tags chaosbroken: acknowledge before the WAL commit); the checker must report lost writes")
	fs.DurationVar(&cfg.S3Latency, "s3-latency", 0, "delay every store request by this (±50%), fault or not")
	fs.Float64Var(&cfg.S3Flaky, "s3-flaky", 0, "share of store requests answered 503 SlowDown while no store fault is injected")
	fs.IntVar(&cfg.Workload.Producers, "producers", 3, "idempotent acks=all producers")
	fs.IntVar(&cfg.Workload.Rate, "rate", 150, "records/s per producer")
	fs.IntVar(&cfg.Workload.GroupConsumers, "group-consumers", 3, "consumers in the group (plus one with partitions assigned)")
	fs.DurationVar(&cfg.Workload.KillEvery, "consumer-kill-every", 15*time.Second, "mean time between consumer kills (0: none)")
	fs.IntVar(&cfg.Workload.TxnProducers, "txn-producers", 1, "transactional producers")
	fs.IntVar(&cfg.Workload.TxnRate, "txn-rate", 10, "transactions/s per transactional producer")
	fs.IntVar(&cfg.Workload.TxnSize, "txn-size", 4, "values per transaction")
	fs.Float64Var(&cfg.Workload.AbortRate, "abort-rate", 0.25, "share of transactions aborted on purpose")
	fs.DurationVar(&cfg.HoldMin, "hold-min", 5*time.Second, "shortest fault")
	fs.DurationVar(&cfg.HoldMax, "hold-max", 15*time.Second, "longest fault")
	fs.DurationVar(&cfg.GapMin, "gap-min", 2*time.Second, "shortest calm between faults")
	fs.DurationVar(&cfg.GapMax, "gap-max", 6*time.Second, "longest calm between faults")
	expectLost := fs.Bool("expect-lost", false, "succeed only if the checker reports lost writes (with --broken)")
	fs.Parse(os.Args[1:])
	var err error
	if cfg.Faults, err = parseFaults(faultList); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	if cfg.Out == "" {
		if cfg.Out, err = os.MkdirTemp("", "vigil-chaos-"); err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			os.Exit(1)
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "chaos: %v: stopping the cluster\n", sig)
		if c := current.Load(); c != nil {
			c.Close()
		}
		os.Exit(130)
	}()
	results, err := Campaign(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	fmt.Print(Summary(cfg, results))
	lost := 0
	ok := true
	for _, r := range results {
		ok = ok && r.OK()
		if r.Check != nil && r.Check.FinalComplete {
			// Lost counts only where the final read reached every
			// partition's end: an unreadable cluster proves nothing.
			lost += r.Check.Lost
		}
	}
	switch {
	case *expectLost && lost == 0:
		fmt.Fprintln(os.Stderr, "chaos: FAIL: the broken build lost no acknowledged write the checker could see")
		os.Exit(1)
	case *expectLost:
		fmt.Fprintf(os.Stderr, "chaos: PASS: the checker caught %d lost acknowledged writes\n", lost)
	case !ok:
		fmt.Fprintln(os.Stderr, "chaos: FAIL (see the runs' result.json and history files under "+cfg.Out+")")
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "chaos: PASS")
	}
}

func parseFaults(list string) ([]string, error) {
	if list == "all" || list == "" {
		return faultNames(), nil
	}
	var out []string
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(faultNames(), f) {
			return nil, fmt.Errorf("unknown fault %q (known: %s)", f, strings.Join(faultNames(), ", "))
		}
		out = append(out, f)
	}
	return out, nil
}

// Campaign builds the binaries and runs runs until cfg.Duration passed.
func Campaign(cfg Config) ([]*RunResult, error) {
	if err := netns.Check(); err != nil {
		return nil, err
	}
	// One campaign per host: the network's names are fixed, and a second
	// campaign's setup would tear the first one's network down.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "vigil-chaos.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return nil, fmt.Errorf("another chaos campaign runs on this host (%s is locked)", lock.Name())
	}
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	bins, err := build(root, cfg.BinDir, cfg.Logf)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, err
	}
	start := time.Now()
	var results []*RunResult
	for i := 1; i == 1 || time.Since(start) < cfg.Duration; i++ {
		r := runOnce(cfg, bins, i)
		results = append(results, r)
		raw, _ := json.MarshalIndent(r, "", "  ")
		os.WriteFile(filepath.Join(r.Dir, "result.json"), raw, 0o644)
		cfg.Logf("run %d: %s", i, verdict(r))
	}
	os.WriteFile(filepath.Join(cfg.Out, "summary.md"), []byte(Summary(cfg, results)), 0o644)
	return results, nil
}

func verdict(r *RunResult) string {
	switch {
	case r.Err != "":
		return "ERROR " + r.Err
	case r.OK():
		return "ok"
	}
	var why []string
	if len(r.FaultErrors) > 0 {
		why = append(why, fmt.Sprintf("%d faults not demonstrated", len(r.FaultErrors)))
	}
	if r.Check != nil && !r.Check.Valid() {
		why = append(why, fmt.Sprintf("anomalies: lost %d, duplicated %d, unexpected %d, inconsistent %d, non-monotonic %d, poll skips %d, group skips %d, aborted reads %d, torn transactions %d, final read complete %v",
			r.Check.Lost, r.Check.Duplicated, r.Check.Unexpected, r.Check.Inconsistent, r.Check.NonMonotonic, r.Check.PollSkips, r.Check.GroupSkips,
			r.Check.AbortedReads, r.Check.TornTxns, r.Check.FinalComplete))
	}
	return "INVALID: " + strings.Join(why, "; ")
}

// runOnce runs one fresh cluster through the workload and the faults.
func runOnce(cfg Config, bins Binaries, i int) *RunResult {
	seed := cfg.Seed + uint64(i) - 1
	r := &RunResult{Run: i, Seed: seed, Faults: map[string]int{}, Dir: filepath.Join(cfg.Out, fmt.Sprintf("run-%03d", i))}
	start := time.Now()
	defer func() { r.Seconds = time.Since(start).Seconds() }()
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		r.Err = err.Error()
		return r
	}
	logf := func(f string, a ...any) { cfg.Logf(fmt.Sprintf("[run %d] ", i)+f, a...) }
	c, err := startCluster(bins, r.Dir, seed, cfg.Broken, logf)
	if err != nil {
		r.Err = "start cluster: " + err.Error()
		return r
	}
	current.Store(c)
	defer func() {
		current.Store(nil)
		c.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := createTopics(ctx); err != nil {
		r.Err = err.Error()
		return r
	}
	if cfg.S3Latency > 0 {
		c.proxy.SetBase(cfg.S3Latency)
	}
	if cfg.S3Flaky > 0 {
		c.proxy.SetBackground(s3proxy.Fault{Kind: s3proxy.SlowDown, Rate: cfg.S3Flaky})
	}
	h, err := newHistory(filepath.Join(r.Dir, "history.jsonl.gz"))
	if err != nil {
		r.Err = err.Error()
		return r
	}
	w := newWorkload(cfg.Workload, h, seed, logf)
	w.Start()
	rnd := rand.New(rand.NewPCG(seed, 1))
	nem := &Nemesis{c: c, h: h, rnd: rnd, logf: logf}
	between := func(a, b time.Duration) time.Duration { return a + time.Duration(rnd.Int64N(int64(b-a)+1)) }
	time.Sleep(5 * time.Second) // traffic first
	end := time.Now().Add(cfg.RunLength)
	var order []string
	left := map[string]bool{}
	for _, f := range cfg.Faults {
		left[f] = cfg.EveryKind
	}
	pending := func() bool {
		for _, v := range left {
			if v {
				return true
			}
		}
		return false
	}
	for time.Now().Before(end) || pending() {
		time.Sleep(between(cfg.GapMin, cfg.GapMax))
		if len(order) == 0 {
			// A seeded permutation of the kinds, so every kind comes up
			// once per cycle, in a random order.
			order = slices.Clone(cfg.Faults)
			rnd.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		}
		name := order[0]
		order = order[1:]
		left[name] = false
		f := faults[slices.IndexFunc(faults, func(f fault) bool { return f.name == name })]
		if err := nem.Inject(f, between(cfg.HoldMin, cfg.HoldMax)); err != nil {
			r.FaultErrors = append(r.FaultErrors, err.Error())
			logf("fault not demonstrated: %v", err)
		} else {
			r.Faults[name]++
		}
	}
	// Heal everything, and let the cluster settle under load.
	if err := settle(c, logf); err != nil {
		r.FaultErrors = append(r.FaultErrors, "recovery: "+err.Error())
	}
	time.Sleep(5 * time.Second)
	logf("stopping the workload (%d sent, %d acknowledged)", w.sent.Load(), w.acked.Load())
	sctx, scancel := context.WithTimeout(context.Background(), 90*time.Second)
	w.Stop(sctx)
	scancel()
	r.Faults["consumer-kill"] = w.kills
	fctx, fcancel := context.WithTimeout(context.Background(), 3*time.Minute)
	complete, err := finalRead(fctx, h)
	fcancel()
	if err != nil {
		logf("final read: %v", err)
		r.Err = "final read: " + err.Error()
	}
	if err := h.Close(); err != nil {
		r.Err = "history: " + err.Error()
	}
	r.Check = checker.Check(h.Ops(), complete)
	return r
}

// settle heals every fault and waits until every process runs, etcd
// answers and every broker is registered.
func settle(c *Cluster, logf func(string, ...any)) error {
	c.net.Heal()
	c.proxy.Set(s3proxy.Fault{})
	for _, b := range brokerNames {
		os.WriteFile(c.clockFile(b), []byte("0\n"), 0o644)
	}
	for _, e := range etcdNames {
		if !c.Etcd(e).running() {
			if err := c.startEtcd(e, false); err != nil {
				return err
			}
		}
	}
	if err := c.waitEtcd(60 * time.Second); err != nil {
		return err
	}
	for _, b := range brokerNames {
		if p := c.Broker(b); !p.running() {
			logf("broker %s was not running at the end (%v); restarting it; its log ended:\n%s", b, p.exitErr(), c.LogTail(b, 20))
			if err := c.StartBroker(b); err != nil {
				return err
			}
		}
	}
	n := &Nemesis{c: c}
	for _, b := range brokerNames {
		if _, err := n.waitRegistered(b, true, 0, 60*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// Summary is the campaign's tables: one row per run, then the faults by
// kind.
func Summary(cfg Config, results []*RunResult) string {
	var b strings.Builder
	build := "release code"
	if cfg.Broken {
		build = "BROKEN build (-tags chaosbroken)"
	}
	fmt.Fprintf(&b, "\n## Chaos campaign: seed %d, %d runs, %s\n\n", cfg.Seed, len(results), build)
	fmt.Fprintln(&b, "| run | seed | minutes | faults | sent | acked | indeterminate (recovered) | transactions (aborted, failed) | polled | final read | lost | duplicated | unexpected | inconsistent | non-monotonic | poll skips | group skips | aborted reads | torn txns | verdict |")
	fmt.Fprintln(&b, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	var tot checker.Result
	totFaults, totMin := 0, 0.0
	kinds := map[string]int{}
	notShown := 0
	for _, r := range results {
		nf := 0
		for k, n := range r.Faults {
			nf += n
			kinds[k] += n
		}
		notShown += len(r.FaultErrors)
		totFaults += nf
		totMin += r.Seconds / 60
		c := r.Check
		if c == nil {
			c = &checker.Result{}
		}
		tot.Sent += c.Sent
		tot.Acked += c.Acked
		tot.Indeterminate += c.Indeterminate
		tot.Recovered += c.Recovered
		tot.Polled += c.Polled
		tot.FinalRecords += c.FinalRecords
		tot.Lost += c.Lost
		tot.Duplicated += c.Duplicated
		tot.Unexpected += c.Unexpected
		tot.Inconsistent += c.Inconsistent
		tot.NonMonotonic += c.NonMonotonic
		tot.PollSkips += c.PollSkips
		tot.GroupSkips += c.GroupSkips
		tot.Txns += c.Txns
		tot.TxnAborted += c.TxnAborted
		tot.TxnFailed += c.TxnFailed
		tot.AbortedReads += c.AbortedReads
		tot.TornTxns += c.TornTxns
		v := "ok"
		if !r.OK() {
			v = "**" + strings.SplitN(verdict(r), ":", 2)[0] + "**"
		}
		fmt.Fprintf(&b, "| %d | %d | %.1f | %d | %d | %d | %d (%d) | %d (%d, %d) | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s |\n",
			r.Run, r.Seed, r.Seconds/60, nf, c.Sent, c.Acked, c.Indeterminate, c.Recovered, c.Txns, c.TxnAborted, c.TxnFailed, c.Polled, c.FinalRecords,
			c.Lost, c.Duplicated, c.Unexpected, c.Inconsistent, c.NonMonotonic, c.PollSkips, c.GroupSkips, c.AbortedReads, c.TornTxns, v)
	}
	fmt.Fprintf(&b, "| **all** | | %.1f | %d | %d | %d | %d (%d) | %d (%d, %d) | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | |\n\n",
		totMin, totFaults, tot.Sent, tot.Acked, tot.Indeterminate, tot.Recovered, tot.Txns, tot.TxnAborted, tot.TxnFailed, tot.Polled, tot.FinalRecords,
		tot.Lost, tot.Duplicated, tot.Unexpected, tot.Inconsistent, tot.NonMonotonic, tot.PollSkips, tot.GroupSkips, tot.AbortedReads, tot.TornTxns)
	fmt.Fprintln(&b, "| fault | injected and shown |")
	fmt.Fprintln(&b, "| --- | --- |")
	var names []string
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "| %s | %d |\n", k, kinds[k])
	}
	if notShown > 0 {
		fmt.Fprintf(&b, "| **not demonstrated** | %d |\n", notShown)
	}
	return b.String()
}

// checkCmd runs the checker over a history file again.
func checkCmd(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: chaos check HISTORY.jsonl[.gz]")
		return 2
	}
	f, err := os.Open(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	defer f.Close()
	var rd io.Reader = f
	if strings.HasSuffix(args[0], ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			return 1
		}
		rd = gz
	}
	ops, err := checker.Read(rd)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	// A history whose final read did not complete says so in its run's
	// result.json; here it is taken as complete.
	res := checker.Check(ops, true)
	raw, _ := json.MarshalIndent(res, "", "  ")
	fmt.Println(string(raw))
	if !res.Valid() {
		return 1
	}
	return 0
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run the harness from inside Vigil's module")
	}
	return filepath.Dir(gomod), nil
}
