package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/e2e/txncheck"
)

// TestTxnChain runs three consume-transform-produce stages with
// transactions (franz-go's GroupTransactSession, each stage member a
// process of its own, testdata/txnstage; the second stage two members of
// one group) over ids a loader writes in multi-partition transactions,
// while the harness, round after round, SIGKILLs a stage member, makes
// one a zombie (SIGSTOP, a replacement with the same transactional id,
// SIGCONT), or SIGKILLs the broker and restarts it on the same data dir.
// Every stage and the loader abort every 7th transaction on purpose.
// Readers at read_committed and read_uncommitted follow every topic of
// the chain throughout, and txncheck checks every poll (no aborted reads,
// no duplicates, offsets increasing per partition) and, at the end, that
// no id and no committed transaction was lost and none was torn; then
// once more after a last broker crash. Stage logs: TXNCHAIN_LOGS=dir.
func TestTxnChain(t *testing.T) {
	cfg := chainConfig{ids: 3000, rounds: 10, partitions: 3}
	if testing.Short() {
		cfg.ids, cfg.rounds = 1000, 4
	}
	runTxnChain(t, cfg)
}

type chainConfig struct {
	ids, rounds, partitions int
	// stageArgs are extra flags for every stage (-read-uncommitted breaks
	// exactly-once on purpose, to see the checker catch it).
	stageArgs []string
}

// chainTopics are the chain's topics: stage N reads stage-N-in.
var chainTopics = []txncheck.Topic{
	{Name: "stage-1-in"},
	{Name: "stage-2-in", Path: "|s1"},
	{Name: "stage-3-in", Path: "|s1|s2"},
	{Name: "chain-out", Path: "|s1|s2|s3"},
}

// chainBrokerFlags: uploads often, so reads after a restart come from
// segment objects as well as the WAL; short group timeouts, so a killed
// member's partitions move within seconds; timed-out transactions looked
// for every second; debug logs for the coordinator's "transactions loaded
// ... resumed=" after each restart.
var chainBrokerFlags = []string{
	"--upload-interval", "50ms", "--group-min-session-timeout", "1s", "--group-initial-rebalance-delay", "100ms",
	"--offsets-partitions", "4", "--transaction-state-partitions", "4", "--transaction-abort-check-interval", "1s",
	"--log-level", "debug",
}

// chain is one run of the chain test.
type chain struct {
	t           *testing.T
	cfg         chainConfig
	start       time.Time
	rng         *rand.Rand
	dataDir     string
	b           *broker
	killed      []*broker // brokers killed, for their logs
	chk         *txncheck.Checker
	readers     []chainReader
	stages      []*stageProc
	commits     chan string // the latest commit a stage reported, if not taken yet
	ld          *loader
	faults      []string
	next        int // the stage member hit next, modulo their number; 0 before the first
	brokerKills int
}

func runTxnChain(t *testing.T, cfg chainConfig) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	c := &chain{t: t, cfg: cfg, start: time.Now(), rng: rand.New(rand.NewPCG(uint64(seed), 0)), dataDir: t.TempDir(),
		chk: txncheck.New(cfg.ids), commits: make(chan string, 1)}
	c.b = startBroker(t, "", c.dataDir, chainBrokerFlags...)
	for _, tp := range chainTopics {
		createTopic(t, c.b.addr, tp.Name, int32(cfg.partitions))
	}
	stageBin := buildTxnStage(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var readersDone func()
	c.readers, readersDone = followChain(ctx, c.chk, c.b.addr)

	logDir := os.Getenv("TXNCHAIN_LOGS")
	if logDir == "" {
		logDir = t.TempDir()
	} else {
		defer c.keepBrokerLogs(logDir)
	}
	defer c.stopStages()
	c.startStages(stageBin, logDir)

	// The loader writes the input throughout the rounds, paced to last
	// about as long as they do.
	c.ld = newLoader(t, c.chk, c.b.addr, cfg.partitions)
	defer c.ld.close()
	pace := time.Duration(cfg.rounds) * 3 * time.Second / time.Duration(cfg.ids/7)
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		c.ld.run(ctx, cfg.ids, pace)
	}()

	for round := range cfg.rounds {
		time.Sleep(time.Duration(1000+c.rng.IntN(2000)) * time.Millisecond)
		what := c.fault(round)
		t.Logf("%v round %d: %s", time.Since(c.start).Round(time.Millisecond), round, what)
	}
	select {
	case <-loaded:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the loader did not finish")
	}

	c.finish()
	cancel()
	readersDone()
	t.Logf("faults: %s", strings.Join(c.faults, ", "))
	t.Logf("stage starts: %s\n%s", stageStarts(c.stages), c.chk.Summary())
	report(t, "during the run", c.chk.Final())
	for _, r := range c.readers {
		if !r.committed && c.chk.AbortedRead(r.reader) == 0 {
			t.Errorf("%s read no aborted record: the run aborted nothing, so the check proved nothing", r.name)
		}
	}
	// Nothing may stay open: every partition's last stable offset
	// reaches its high watermark once the markers are written.
	checkStable(t, c.b.addr)

	c.reread()
	t.Logf("total %v; %s", time.Since(c.start).Round(time.Millisecond), resumedTxns(append(c.killed, c.b)))
}

// startStages starts the chain's stage members: one for the first and
// the last stage, two in one group for the second.
func (c *chain) startStages(bin, logDir string) {
	for _, m := range []struct {
		stage             int
		txnID, group, tag string
	}{
		{0, "chain-s1", "chain-s1", "s1"},
		{1, "chain-s2a", "chain-s2", "s2"},
		{1, "chain-s2b", "chain-s2", "s2"},
		{2, "chain-s3", "chain-s3", "s3"},
	} {
		c.stages = append(c.stages, newStage(c.t, c.chk, c.commits, bin, logDir, c.b.addr, m.tag, m.txnID, m.group, m.stage, c.cfg))
	}
	for _, s := range c.stages {
		s.supervise()
	}
}

// stopStages stops every stage member (a no-op for those stopped) and,
// if the test failed, logs the end of each one's log.
func (c *chain) stopStages() {
	for _, s := range c.stages {
		s.stop()
	}
	if c.t.Failed() {
		for _, s := range c.stages {
			c.t.Logf("stage %s log (last lines):\n%s", s.txnID, s.logTail(60))
		}
	}
}

// chainFaults is the faults of ten rounds, repeated: a stage member
// SIGKILLed (k), the broker SIGKILLed (b), a stage member made a zombie
// (z), or frozen (f: SIGSTOP past its transaction timeout, so the
// coordinator aborts its transaction and fences it, then SIGCONT).
const chainFaults = "kbkzbkfbzk"

// fault injects round's fault, aimed at a transaction in flight where
// there is one, and says what it did.
func (c *chain) fault(round int) string {
	kind := chainFaults[round%len(chainFaults)]
	if kind == 'b' {
		c.brokerKills++
		c.faults = append(c.faults, "kill broker")
		return c.killBroker(c.brokerKills - 1)
	}
	// The stage members take turns, from a random one on, so each is
	// hit at least once in a run of ten rounds.
	if c.next == 0 {
		c.next = 1 + c.rng.IntN(len(c.stages))
	}
	s := c.stages[c.next%len(c.stages)]
	c.next++
	s.waitOpen(3 * time.Second)
	switch kind {
	case 'z':
		c.faults = append(c.faults, "zombie "+s.txnID)
		return "zombie " + s.txnID + ": " + s.zombie(4*time.Second)
	case 'f':
		c.faults = append(c.faults, "freeze "+s.txnID)
		return "freeze " + s.txnID + ": " + s.freeze(stageTxnTimeout+3*time.Second)
	default:
		c.faults = append(c.faults, "kill "+s.txnID)
		return "kill " + s.txnID + ": " + s.kill()
	}
}

// killBroker SIGKILLs the broker and restarts it on the same data dir.
// The n'th kill aims in turn at a stage's transaction in flight, at one
// being ended (its offsets, EndTxn), and at one whose EndTxn was just
// answered, whose markers may not all be written yet. The loader's
// transaction in flight ends first and the loader waits until the broker
// is back, so the loader's transactions always end with a known outcome.
func (c *chain) killBroker(n int) string {
	c.ld.mu.Lock()
	defer c.ld.mu.Unlock()
	var open []string
	switch n % 3 {
	case 0:
		open = waitStages(c.stages, false, 3*time.Second)
	case 1:
		open = waitStages(c.stages, true, 3*time.Second)
	case 2:
		drain(c.commits)
		select {
		case txn := <-c.commits:
			open = []string{txn + " committed"}
		case <-time.After(3 * time.Second):
		}
	}
	c.b.kill()
	c.killed = append(c.killed, c.b)
	c.b = startBroker(c.t, c.b.addr, c.dataDir, chainBrokerFlags...)
	return fmt.Sprintf("SIGKILL broker, restarted; transactions: %v", open)
}

// finish waits until every id came through every stage, then stops the
// stages and lets the readers read a second longer, to see anything that
// comes late (a duplicate, an aborted record).
func (c *chain) finish() {
	deadline := time.Now().Add(90 * time.Second)
	for !allDone(c.chk, c.readers) && !c.t.Failed() && len(c.chk.Violations()) == 0 {
		if time.Now().After(deadline) {
			c.t.Errorf("the chain did not finish within 90s of the last fault:\n%s", c.chk.Summary())
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Logf("chain done after %v", time.Since(c.start).Round(time.Millisecond))
	for _, s := range c.stages {
		s.stop()
	}
	time.Sleep(time.Second)
}

// reread crashes the broker once more and reads every topic again from
// the start: the data, the markers and the aborted transactions as
// recovered.
func (c *chain) reread() {
	c.b.kill()
	c.killed = append(c.killed, c.b)
	c.b = startBroker(c.t, c.b.addr, c.dataDir, chainBrokerFlags...)
	again := c.chk.Reread()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	readers, readersDone := followChain(ctx, again, c.b.addr)
	for deadline := time.Now().Add(60 * time.Second); !allDone(again, readers) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	cancel()
	readersDone()
	c.t.Logf("re-read after a last crash:\n%s", again.Summary())
	report(c.t, "re-read after the last crash", again.Final())
}

// keepBrokerLogs copies the log of every broker of the run to dir, as
// vigil-<n>.log in the order they ran.
func (c *chain) keepBrokerLogs(dir string) {
	for i, b := range append(c.killed, c.b) {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("vigil-%d.log", i)), []byte(b.log()), 0o644); err != nil {
			c.t.Log(err)
		}
	}
}

var txnsLoaded = regexp.MustCompile(`msg="transactions loaded" .*\bresumed=(\d+)`)

// resumedTxns says how many transactions the restarted coordinators found
// prepared (PrepareCommit or PrepareAbort) and finished: the kills that
// landed between an EndTxn and its last marker.
func resumedTxns(brokers []*broker) string {
	resumed, loads := 0, 0
	for _, b := range brokers {
		for _, m := range txnsLoaded.FindAllStringSubmatch(b.log(), -1) {
			n, _ := strconv.Atoi(m[1])
			resumed += n
			loads++
		}
	}
	return fmt.Sprintf("%d coordinator loads resumed %d prepared transactions", loads, resumed)
}

func report(t *testing.T, when string, violations []string) {
	t.Helper()
	if len(violations) > 0 {
		t.Errorf("%d violation(s) %s:\n%s", len(violations), when, strings.Join(violations, "\n"))
	}
}

type chainReader struct {
	name      string
	committed bool
	reader    *txncheck.Reader
}

// followChain starts a read_committed and a read_uncommitted reader of
// every topic of the chain; they poll until ctx ends, and the function
// returned waits for them to be gone.
func followChain(ctx context.Context, chk *txncheck.Checker, addr string) ([]chainReader, func()) {
	var rs []chainReader
	var wg sync.WaitGroup
	for _, tp := range chainTopics {
		for _, committed := range []bool{true, false} {
			name := tp.Name + " read_uncommitted"
			if committed {
				name = tp.Name + " read_committed"
			}
			r := chainReader{name: name, committed: committed, reader: chk.NewReader(name, tp, committed)}
			rs = append(rs, r)
			wg.Go(func() {
				if err := chk.Follow(ctx, addr, r.reader); err != nil {
					chk.Violation("%s: %v", name, err)
				}
			})
		}
	}
	return rs, wg.Wait
}

func allDone(chk *txncheck.Checker, rs []chainReader) bool {
	for _, r := range rs {
		if r.committed && !chk.Done(r.reader) {
			return false
		}
	}
	return true
}

// checkStable waits until no partition of the chain has a transaction
// open: the last stable offset equals the high watermark everywhere.
func checkStable(t *testing.T, addr string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var names []string
	for _, tp := range chainTopics {
		names = append(names, tp.Name)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ends, err1 := adm.ListEndOffsets(ctx, names...)
		stable, err2 := adm.ListCommittedOffsets(ctx, names...)
		cancel()
		var open []string
		if err := errors.Join(err1, err2); err != nil {
			open = append(open, err.Error())
		} else {
			ends.Each(func(o kadm.ListedOffset) {
				if s, ok := stable.Lookup(o.Topic, o.Partition); !ok || s.Offset != o.Offset {
					open = append(open, fmt.Sprintf("%s/%d: last stable offset %d, high watermark %d", o.Topic, o.Partition, s.Offset, o.Offset))
				}
			})
		}
		if len(open) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("transactions still open 20s after the chain stopped:\n%s", strings.Join(open, "\n"))
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// buildTxnStage builds testdata/txnstage into a temporary directory.
func buildTxnStage(t *testing.T) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "txnstage")
	build := exec.Command("go", "build", "-o", bin, "./internal/e2e/testdata/txnstage")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build txnstage: %v\n%s", err, out)
	}
	return bin
}
