package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The incident benchmark re-executes its own binary for the forensic reader
// and for the live pipeline (producer and detection group): they are other
// processes in a real deployment, and in the broker's process their garbage
// would make its collector run, and stall it, far more often.
//
// Protocol: the parent writes one command a line on the child's stdin (the
// replay role: "start"; the pipeline role: "baseline", "replay", "cut"); the
// end of stdin stops a child. The child writes childMsg JSON lines on its
// stdout: "ready" first, then progress and results, then a final line.
const (
	childRoleEnv   = "VIGIL_BENCH_CHILD"        // roleReplay or rolePipeline
	childParamsEnv = "VIGIL_BENCH_CHILD_PARAMS" // childParams as JSON

	roleReplay   = "replay"
	rolePipeline = "pipeline"
)

// childParams configures a child; the replay role uses Brokers, Topic and
// End, the pipeline role the others.
type childParams struct {
	Brokers     []string        `json:"brokers"`
	Topic       string          `json:"topic"`
	End         map[int32]int64 `json:"end,omitempty"` // the history's end offsets
	RecordBytes int             `json:"record_bytes,omitempty"`
	Rate        float64         `json:"rate,omitempty"`
	Phase       time.Duration   `json:"phase,omitempty"`
	Nice        int             `json:"nice,omitempty"` // replay: the reader's nice value
}

// childMsg is one line of a child's stdout.
type childMsg struct {
	Ready    bool       `json:"ready,omitempty"`    // first line: the parameters are read
	Replayed int64      `json:"replayed,omitempty"` // replay: history bytes read so far
	Done     bool       `json:"done,omitempty"`     // pipeline: the with-replay phase's producer finished
	Phase    string     `json:"phase,omitempty"`    // pipeline: the phase Produce and Tail are of
	Produce  *Latencies `json:"produce,omitempty"`
	Tail     *Latencies `json:"tail,omitempty"`
	Final    bool       `json:"final,omitempty"` // the last line
	PeakRSS  int64      `json:"peak_rss,omitempty"`
	Error    string     `json:"error,omitempty"`
}

// RunChild runs this process as a child of the incident benchmark, and
// exits, when VIGIL_BENCH_CHILD names a role; otherwise it returns at once.
// Call it first in main, and in TestMain of a package whose tests run the
// benchmark: the children are the same binary.
func RunChild() {
	role, ok := os.LookupEnv(childRoleEnv)
	if !ok {
		return
	}
	// Ctrl-C reaches the whole process group; the parent stops its
	// children itself and reports why.
	signal.Ignore(os.Interrupt)
	os.Exit(runChild(role, os.Getenv(childParamsEnv), os.Stdin, os.Stdout))
}

func runChild(role, params string, stdin io.Reader, stdout io.Writer) int {
	enc := json.NewEncoder(stdout)
	send := func(m childMsg) error { return enc.Encode(m) }
	err := func() error {
		var p childParams
		if err := json.Unmarshal([]byte(params), &p); err != nil {
			return fmt.Errorf("%s: %w", childParamsEnv, err)
		}
		run := map[string]func(context.Context, childParams, <-chan string, func(childMsg) error) error{
			roleReplay:   replayChild,
			rolePipeline: pipelineChild,
		}[role]
		if run == nil {
			return fmt.Errorf("unknown %s role %q", childRoleEnv, role)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cmds := readCommands(stdin, cancel)
		if err := send(childMsg{Ready: true}); err != nil {
			return err
		}
		return run(ctx, p, cmds, send)
	}()
	if err != nil {
		send(childMsg{Error: err.Error(), Final: true})
		return 1
	}
	return 0
}

// readCommands passes on stdin's lines. Its end means the parent stopped
// the child, or died: that cancels the child's work.
func readCommands(r io.Reader, cancel context.CancelFunc) <-chan string {
	cmds := make(chan string, 8) // more than the parent ever sends
	go func() {
		defer close(cmds)
		defer cancel()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			cmds <- sc.Text()
		}
	}()
	return cmds
}

var errStopped = errors.New("stopped by the parent")

// command waits for the parent's next command, which must be want.
func command(cmds <-chan string, want string) error {
	cmd, ok := <-cmds
	if !ok {
		return errStopped
	}
	if cmd != want {
		return fmt.Errorf("command %q, want %q", cmd, want)
	}
	return nil
}

// replayChild is the forensic reader. It waits for "start", so that
// starting the process is no part of the replay, then reads the history,
// reporting progress every 250 ms, until it has all of it or stdin ends.
func replayChild(ctx context.Context, p childParams, cmds <-chan string, send func(childMsg) error) error {
	if p.Nice != 0 {
		if err := setNice(p.Nice); err != nil {
			return err
		}
	}
	if err := command(cmds, "start"); err != nil {
		return err
	}
	var n atomic.Int64
	done := make(chan error, 1)
	go func() { done <- replay(ctx, p.Brokers, p.Topic, p.End, &n) }()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("replay: %w", err)
			}
			return send(childMsg{Replayed: n.Load(), Final: true, PeakRSS: peakRSS()})
		case <-tick.C:
			if err := send(childMsg{Replayed: n.Load()}); err != nil {
				return err
			}
		}
	}
}

// pipelineChild is the live pipeline: a paced producer and the detection
// group reading the tail. It runs the phases the parent names and reports
// each one's produce and tail end-to-end latencies. The with-replay tail
// samples end at "cut" (the replay finished) or when the producer does,
// whichever comes first; the produce samples cover the whole phase (they
// carry no send time to cut by).
func pipelineChild(ctx context.Context, p childParams, cmds <-chan string, send func(childMsg) error) error {
	// The clients start with the baseline, as they did in one process.
	if err := command(cmds, "baseline"); err != nil {
		return err
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(p.Brokers...), kgo.DefaultProduceTopic(p.Topic),
		kgo.ProducerLinger(time.Millisecond), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return err
	}
	defer prod.Close()
	tail, err := startE2E(ctx, p.Brokers, p.Topic, p.RecordBytes,
		kgo.ConsumerGroup("detection"), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	if err != nil {
		return err
	}
	defer tail.stop()
	// Let the detection group join before measuring.
	if _, _, _, err := producePaced(ctx, prod, 5*time.Second, p.RecordBytes, p.Rate); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}

	n0 := tail.count()
	rec, _, _, err := producePaced(ctx, prod, p.Phase, p.RecordBytes, p.Rate)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	n1 := tail.count()
	produce, tailLat := summarize(rec.samples), summarize(tail.between(n0, n1))
	if err := send(childMsg{Phase: "baseline", Produce: &produce, Tail: &tailLat}); err != nil {
		return err
	}

	if err := command(cmds, "replay"); err != nil {
		return err
	}
	type paced struct {
		rec *recorder
		err error
	}
	pacedDone := make(chan paced, 1)
	go func() {
		rec, _, _, err := producePaced(ctx, prod, p.Phase, p.RecordBytes, p.Rate)
		pacedDone <- paced{rec, err}
	}()
	n2 := -1
	var pc paced
	for waiting := true; waiting; {
		select {
		case cmd, ok := <-cmds:
			if !ok {
				cmds = nil // stdin ended: ctx is cancelled, so the producer returns soon
			} else if cmd == "cut" && n2 < 0 {
				n2 = tail.count()
			}
		case pc = <-pacedDone:
			waiting = false
		}
	}
	if n2 < 0 {
		n2 = tail.count()
	}
	if pc.err != nil {
		return fmt.Errorf("with replay: %w", pc.err)
	}
	// The parent's "with replay" window ends here unless the replay ended first.
	if err := send(childMsg{Done: true}); err != nil {
		return err
	}
	produce, tailLat = summarize(pc.rec.samples), summarize(tail.between(n1, n2))
	return send(childMsg{Phase: "replay", Produce: &produce, Tail: &tailLat, Final: true, PeakRSS: peakRSS()})
}
