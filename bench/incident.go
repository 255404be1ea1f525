package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
	Phase        time.Duration // the replay's running time at most, and about as long without it
	// Window is how long each stretch without and with the replay lasts;
	// they alternate until the replay ends or has run for Phase.
	Window       time.Duration
	MemoryBudget int64 // peak RSS allowed for the broker's process (the clients run in others)
	// ReaderNice is the forensic reader's nice value (0 to 19). A reader
	// is an analyst's process, usually on another machine; on one
	// machine a positive value lets it use only the CPU the broker and
	// the pipeline leave, which is what another machine's CPU would be.
	ReaderNice int
	// Unpaced turns the broker's catch-up pacing off (--catchup-pacing
	// false), to see what it buys.
	Unpaced bool
	// CatchupCommitLimit and CatchupSchedLimit set the broker's flags of
	// those names when not zero: how sick the tail path must look before
	// pacing halves the replay's rate.
	CatchupCommitLimit, CatchupSchedLimit time.Duration
	// CatchupNice is the broker's --catchup-nice (0: off).
	CatchupNice int
	Logger      *slog.Logger
	Out         io.Writer
}

// guard is the start of each window that counts in neither, while the
// reader's last fetch drains or its first one starts.
func (o IncidentOptions) guard() time.Duration { return min(250*time.Millisecond, o.Window/4) }

// IncidentResult holds the figures of one run.
type IncidentResult struct {
	CeilingMBps    float64
	ProduceBase    Latencies // live produce latency without the replay
	ProduceReplay  Latencies // and with it
	TailBase       Latencies // detection group end-to-end latency without the replay
	TailReplay     Latencies // and with it
	Windows        int       // windows without the replay (those with it lie between them)
	ReplayMBps     float64
	ReplayBytes    int64
	PeakRSSBytes   int64 // of the broker's process, this one
	TailRatio      float64
	ReplayRatio    float64
	RSSWithinLimit bool // PeakRSSBytes within the memory budget

	// Of the child processes: the live producer and detection group, and
	// the forensic reader.
	PipelinePeakRSSBytes int64
	ReplayPeakRSSBytes   int64
}

// RunIncident reproduces an incident on one in-process broker: steady
// ingest into a telemetry topic with a detection group reading the tail;
// then a forensic reader replays the retained history from the start as
// fast as it can while ingest and detection go on. It reports the tail's
// end-to-end latency without and with the replay, the replay's MB/s against
// the cold sequential read of the same objects, and the peak RSS of each
// process. The clients run in two child processes (see RunChild), as they
// would in a deployment: the live pipeline, and the forensic reader.
func RunIncident(ctx context.Context, o IncidentOptions) (*IncidentResult, error) {
	if o.HistoryBytes <= 0 || o.Rate <= 0 || o.RecordBytes < 8 || o.Partitions < 1 || o.Phase <= 0 || o.Window < 100*time.Millisecond {
		return nil, errors.New("need positive history, rate, phase and partitions, windows of at least 100ms, and records of at least 8 bytes")
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
	cfg.CatchupPacing = !o.Unpaced
	cfg.CatchupCommitLimit = o.CatchupCommitLimit
	cfg.CatchupNice = int32(o.CatchupNice)
	if o.CatchupSchedLimit > 0 {
		cfg.CatchupSchedLimit = o.CatchupSchedLimit
	}
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
	fmt.Fprintf(out, "settings:      %d MiB history, live %.0f records/s of %d B (%.1f MB/s), %d partitions, replay for at most %s in windows of %s, memory budget %d MiB\n",
		o.HistoryBytes>>20, o.Rate, o.RecordBytes, o.Rate*float64(o.RecordBytes)/1e6, o.Partitions, o.Phase, o.Window, o.MemoryBudget>>20)
	commitLimit := "5ms"
	if cfg.CatchupCommitLimit > 0 {
		commitLimit = cfg.CatchupCommitLimit.String()
	}
	pacing := fmt.Sprintf("on (from %d MiB/s, halved after a WAL commit over %s or a CPU wait p99 over %s; answers of at most %d KiB of objects)",
		cfg.CatchupMinRate>>20, commitLimit, cfg.CatchupSchedLimit, cfg.CatchupChunkBytes>>10)
	if !cfg.CatchupPacing {
		pacing = "off (the replay is served as fast as it asks)"
	}
	fmt.Fprintf(out, "broker:        catch-up pacing %s; replay answers at nice %d; fetch responses of at most %d MiB; forensic reader at nice %d\n",
		pacing, cfg.CatchupNice, cfg.FetchMaxBytes>>20, o.ReaderNice)

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

	// The clients run in processes of their own; both wait for the
	// parent's word before they load the broker.
	reader, err := startChild(ctx, roleReplay, childParams{Brokers: brokers, Topic: topic, End: historyEnd, Nice: o.ReaderNice}, log)
	if err != nil {
		return nil, err
	}
	defer reader.stop()
	pipe, err := startChild(ctx, rolePipeline, childParams{Brokers: brokers, Topic: topic,
		RecordBytes: o.RecordBytes, Rate: o.Rate}, log)
	if err != nil {
		return nil, err
	}
	defer pipe.stop()
	fmt.Fprintf(out, "processes:     broker (this process, pid %d); pipeline: producer + detection group (pid %d); forensic reader (pid %d)\n",
		os.Getpid(), pipe.pid, reader.pid)

	res := &IncidentResult{}
	if res.CeilingMBps, err = readFilesMBps(cfg.ObjectStore); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "\n[a] ceiling: sequential read of the segment objects from a cold page cache\n")
	fmt.Fprintf(out, "    throughput:            %.1f MB/s\n", res.CeilingMBps)

	// (b) and (c): windows without and with the replay, alternating, so
	// that both see the same machine: on a shared two-core VM the tail's
	// p99 drifts by more from one minute to the next than a replay changes
	// it. The first guard of each window, while the switch settles, counts
	// in neither.
	if err := pipe.send("start"); err != nil {
		return nil, err
	}
	if m, err := pipe.next(ctx); err != nil {
		return nil, err
	} else if !m.Warm {
		return nil, fmt.Errorf("pipeline child: want warm, got %+v", m)
	}
	if err := coldFiles(cfg.ObjectStore); err != nil {
		return nil, err
	}
	var (
		active     time.Duration // the reader's time between resume and pause
		last       childMsg      // the reader's final line
		replayDone bool
		started    bool
	)
	// wait lets d pass, reading the reader's lines; with untilDone it
	// returns early when the replay ends.
	wait := func(d time.Duration, untilDone bool) error {
		t := time.NewTimer(d)
		defer t.Stop()
		for {
			var msgs <-chan childMsg
			if !replayDone {
				msgs = reader.msgs
			}
			select {
			case m, ok := <-msgs:
				m, err := reader.got(m, ok)
				if err != nil {
					return err
				}
				if !m.Final {
					log.Debug("replay progress", "bytes", m.Replayed)
					continue
				}
				last, replayDone = m, true
				if untilDone {
					return nil
				}
			case <-t.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	// baseWindow runs one window without the replay.
	baseWindow := func() error {
		if err := pipe.send("gap"); err != nil {
			return err
		}
		if started && !replayDone {
			if err := reader.send("pause"); err != nil {
				return err
			}
		}
		if err := wait(o.guard(), false); err != nil {
			return err
		}
		if err := pipe.send("base"); err != nil {
			return err
		}
		return wait(o.Window-o.guard(), false)
	}
	for !replayDone && active < o.Phase {
		if err := baseWindow(); err != nil {
			return nil, err
		}
		if replayDone {
			break // its last fetch, in flight at the pause, finished it
		}
		// A window with the replay, cut short if the replay ends.
		if err := pipe.send("gap"); err != nil {
			return nil, err
		}
		cmd := "resume"
		if !started {
			cmd, started = "start", true
		}
		if err := reader.send(cmd); err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := wait(o.guard(), true); err != nil {
			return nil, err
		}
		if !replayDone {
			if err := pipe.send("replay"); err != nil {
				return nil, err
			}
			if err := wait(min(o.Window, o.Phase-active+o.guard())-o.guard(), true); err != nil {
				return nil, err
			}
		}
		active += time.Since(t0)
	}
	// The last replay window gets a baseline after it too.
	if err := baseWindow(); err != nil {
		return nil, err
	}
	if err := pipe.send("end"); err != nil {
		return nil, err
	}
	m, err := pipe.next(ctx)
	if err != nil {
		return nil, err
	}
	if res.ProduceBase, res.TailBase, err = pipe.phase(m, "base"); err != nil {
		return nil, err
	}
	res.Windows = m.Windows
	if m, err = pipe.final(ctx); err != nil {
		return nil, err
	}
	if res.ProduceReplay, res.TailReplay, err = pipe.phase(m, "replay"); err != nil {
		return nil, err
	}
	if res.TailReplay.N == 0 {
		return nil, fmt.Errorf("the replay ended within the first %s of its first window, before anything was measured with it: give it more history", o.guard())
	}
	if !replayDone {
		reader.stdin.Close() // stops the reader; its final line follows
		if last, err = reader.final(ctx); err != nil {
			return nil, err
		}
	}
	for _, c := range []*child{reader, pipe} {
		if err := c.stop(); err != nil {
			return nil, err
		}
	}
	res.ReplayBytes = last.Replayed
	res.ReplayMBps = float64(res.ReplayBytes) / active.Seconds() / 1e6
	res.PeakRSSBytes = peakRSS()
	res.ReplayPeakRSSBytes, res.PipelinePeakRSSBytes = last.PeakRSS, m.PeakRSS

	if res.TailBase.P99 > 0 {
		res.TailRatio = float64(res.TailReplay.P99) / float64(res.TailBase.P99)
	}
	res.ReplayRatio = res.ReplayMBps / res.CeilingMBps
	res.RSSWithinLimit = res.PeakRSSBytes > 0 && res.PeakRSSBytes <= o.MemoryBudget

	fmt.Fprintf(out, "\n[b] without the replay: live ingest and the detection group (%d windows of %s, the first %s of each not counted)\n",
		res.Windows, o.Window, o.guard())
	fmt.Fprintf(out, "    produce latency:       %s\n", res.ProduceBase)
	fmt.Fprintf(out, "    tail end-to-end:       %s\n", res.TailBase)
	fmt.Fprintf(out, "\n[c] with a forensic reader replaying the history from the start (the windows between those of [b]; it pauses in theirs)\n")
	fmt.Fprintf(out, "    produce latency:       %s\n", res.ProduceReplay)
	fmt.Fprintf(out, "    tail end-to-end:       %s\n", res.TailReplay)
	fmt.Fprintf(out, "    replay:                %.1f MB/s (%d MiB in %s)\n", res.ReplayMBps, res.ReplayBytes>>20, active.Round(time.Millisecond))
	fmt.Fprintf(out, "    peak RSS:              %d MiB (the broker's process)\n", res.PeakRSSBytes>>20)
	fmt.Fprintf(out, "    pipeline peak RSS:     %d MiB (producer and detection group)\n", res.PipelinePeakRSSBytes>>20)
	fmt.Fprintf(out, "    reader peak RSS:       %d MiB (forensic reader)\n", res.ReplayPeakRSSBytes>>20)
	fmt.Fprintf(out, "\ntargets\n")
	fmt.Fprintf(out, "    %-34s %s  (%.2f x: p99 %s vs %s)\n", fmt.Sprintf("tail p99 with replay <= %.1f x:", TargetTailP99Ratio),
		passFail(res.TailRatio > 0 && res.TailRatio <= TargetTailP99Ratio), res.TailRatio, fmtDur(res.TailReplay.P99), fmtDur(res.TailBase.P99))
	fmt.Fprintf(out, "    %-34s %s  (%.2f x: %.1f of %.1f MB/s)\n", fmt.Sprintf("replay >= %.1f x ceiling:", TargetReplayRatio),
		passFail(res.ReplayRatio >= TargetReplayRatio), res.ReplayRatio, res.ReplayMBps, res.CeilingMBps)
	fmt.Fprintf(out, "    %-34s %s  (%d of %d MiB)\n", "broker peak RSS within the budget:", passFail(res.RSSWithinLimit), res.PeakRSSBytes>>20, o.MemoryBudget>>20)
	return res, nil
}

// childGrace is how long a child has to exit once its stdin is closed
// before it is killed.
const childGrace = 3 * time.Second

// child is a running child process of the incident benchmark.
type child struct {
	role  string
	pid   int
	cmd   *exec.Cmd
	stdin io.WriteCloser
	msgs  chan childMsg // its stdout's lines; closed at the end of them
	quit  chan struct{} // closed when the parent stops listening
	read  sync.WaitGroup
	head  []string // the first lines of its stderr (a panic's say why)
	once  sync.Once
	err   error // how it exited, once stopped
}

// startChild starts this binary as a child in role and waits for its
// ready line. Its stderr goes to log.
func startChild(ctx context.Context, role string, p childParams, log *slog.Logger) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("%s child: %w", role, err)
	}
	params, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("%s child: %w", role, err)
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), childRoleEnv+"="+role, childParamsEnv+"="+string(params))
	setChildAttrs(cmd)
	c := &child{role: role, cmd: cmd, msgs: make(chan childMsg), quit: make(chan struct{})}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("%s child: %w", role, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%s child: %w", role, err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("%s child: %w", role, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s child: %w", role, err)
	}
	c.pid = cmd.Process.Pid
	c.read.Add(2)
	go c.readStdout(stdout)
	go c.readStderr(stderr, log)
	m, err := c.next(ctx)
	if err == nil && !m.Ready {
		err = fmt.Errorf("%s child: first line is not ready: %+v", role, m)
	}
	if err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// readStdout decodes the child's lines. It reads to the end even when no
// one listens any more, so the child never blocks on a full pipe.
func (c *child) readStdout(r io.Reader) {
	defer c.read.Done()
	defer close(c.msgs)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var m childMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			m = childMsg{Error: fmt.Sprintf("bad line %q: %v", sc.Text(), err)}
		}
		select {
		case c.msgs <- m:
		case <-c.quit:
		}
	}
	io.Copy(io.Discard, r)
}

func (c *child) readStderr(r io.Reader, log *slog.Logger) {
	defer c.read.Done()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		log.Warn("bench child stderr", "role", c.role, "pid", c.pid, "line", sc.Text())
		if len(c.head) < 4 {
			c.head = append(c.head, sc.Text())
		}
	}
	io.Copy(io.Discard, r)
}

// send writes one command to the child.
func (c *child) send(cmd string) error {
	if _, err := io.WriteString(c.stdin, cmd+"\n"); err != nil {
		if serr := c.stop(); serr != nil {
			return serr
		}
		return fmt.Errorf("%s child: send %s: %w", c.role, cmd, err)
	}
	return nil
}

// next returns the child's next line.
func (c *child) next(ctx context.Context) (childMsg, error) {
	select {
	case m, ok := <-c.msgs:
		return c.got(m, ok)
	case <-ctx.Done():
		return childMsg{}, ctx.Err()
	}
}

// got turns a line that reports an error, or the end of the lines before
// the final one, into an error.
func (c *child) got(m childMsg, ok bool) (childMsg, error) {
	if !ok {
		err := c.stop()
		if err == nil {
			err = fmt.Errorf("%s child (pid %d) exited without a result", c.role, c.pid)
		}
		return m, err
	}
	if m.Error != "" {
		return m, fmt.Errorf("%s child: %s", c.role, m.Error)
	}
	return m, nil
}

// final skips progress lines up to the child's final line.
func (c *child) final(ctx context.Context) (childMsg, error) {
	for {
		m, err := c.next(ctx)
		if err != nil || m.Final {
			return m, err
		}
	}
}

// phase returns the produce and tail latencies of a pipeline phase's line.
func (c *child) phase(m childMsg, name string) (produce, tail Latencies, err error) {
	if m.Phase != name || m.Produce == nil || m.Tail == nil {
		return produce, tail, fmt.Errorf("%s child: want the %s phase's latencies, got %+v", c.role, name, m)
	}
	return *m.Produce, *m.Tail, nil
}

// stop closes the child's stdin, which asks it to exit, kills it if it has
// not within childGrace, and returns how it exited. It is safe to call
// again, and on every return path.
func (c *child) stop() error {
	c.once.Do(func() {
		close(c.quit)
		c.stdin.Close()
		kill := time.AfterFunc(childGrace, func() { c.cmd.Process.Kill() })
		defer kill.Stop()
		c.read.Wait() // the pipes end when the child exits
		if err := c.cmd.Wait(); err != nil {
			if len(c.head) > 0 {
				err = fmt.Errorf("%w; stderr: %s", err, strings.Join(c.head, " | "))
			}
			c.err = fmt.Errorf("%s child (pid %d): %w", c.role, c.pid, err)
		}
	})
	return c.err
}

// replay reads the history (offsets below end, per partition) from the
// start, as fast as it can, and returns when it has all of it (or ctx
// ends, which is not an error). It assigns itself every partition: a
// consumer group would add Kafka's initial rebalance delay (3 s) to what
// is meant to measure reading.
//
// While paused is set it polls nothing, so after at most one fetch in
// flight per broker the client asks for nothing either.
func replay(ctx context.Context, brokers []string, topic string, end map[int32]int64, n *atomic.Int64, paused *atomic.Bool) error {
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
		for paused.Load() && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
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
