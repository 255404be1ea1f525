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
// replay role: "start", then "pause" and "resume"; the pipeline role:
// "start", then "base", "replay" and "gap" marking the windows its samples
// fall in, then "end"); the end of stdin stops a child. The child writes
// childMsg JSON lines on its stdout: "ready" first, then progress and
// results, then a final line.
const (
	childRoleEnv   = "VIGIL_BENCH_CHILD"        // roleReplay, rolePipeline (incident), roleExport, roleConsume (export.go), roleTable (table.go)
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
	Nice        int             `json:"nice,omitempty"` // replay: the reader's nice value
	// The export comparison's roles (export.go): the group, the records
	// to read, and the export's _bulk URL.
	Group       string `json:"group,omitempty"`
	Records     int64  `json:"records,omitempty"`
	BulkURL     string `json:"bulk_url,omitempty"`
	MaxInFlight int    `json:"max_in_flight,omitempty"` // 0: the job's default
	// The table comparison's (table.go): the object store directory the
	// table is written to.
	TableDir   string `json:"table_dir,omitempty"`
	Partitions int32  `json:"partitions,omitempty"`
}

// childMsg is one line of a child's stdout.
type childMsg struct {
	Ready    bool       `json:"ready,omitempty"`    // first line: the parameters are read
	Replayed int64      `json:"replayed,omitempty"` // replay: history bytes read so far
	Warm     bool       `json:"warm,omitempty"`     // pipeline: warmed up, producing and measuring
	Windows  int        `json:"windows,omitempty"`  // pipeline: how many windows Produce and Tail cover
	Phase    string     `json:"phase,omitempty"`    // pipeline: the windows Produce and Tail are of
	Produce  *Latencies `json:"produce,omitempty"`
	Tail     *Latencies `json:"tail,omitempty"`
	Final    bool       `json:"final,omitempty"` // the last line
	PeakRSS  int64      `json:"peak_rss,omitempty"`
	Error    string     `json:"error,omitempty"`
	// The export comparison's final line: records and bytes read or
	// delivered, from the first to the last and from "start" to the
	// last, and the child's CPU time.
	Records int64         `json:"records,omitempty"`
	Bytes   int64         `json:"bytes,omitempty"`
	Elapsed time.Duration `json:"elapsed,omitempty"`
	Total   time.Duration `json:"total,omitempty"`
	CPU     time.Duration `json:"cpu,omitempty"`
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
			roleExport:   exportChild,
			roleConsume:  consumeChild,
			roleTable:    tableChild,
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
// Between "pause" and "resume" it reads nothing.
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
	var paused atomic.Bool
	done := make(chan error, 1)
	go func() { done <- replay(ctx, p.Brokers, p.Topic, p.End, &n, &paused) }()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("replay: %w", err)
			}
			if err := send(childMsg{Replayed: n.Load(), Final: true, PeakRSS: peakRSS()}); err != nil {
				return err
			}
			// The parent may not have read that line yet and still send a
			// pause or resume: stay until it closes stdin, so its write
			// never meets a closed pipe. (cmds is nil once stdin has
			// ended, and ranging over nil would wait forever.)
			if cmds != nil {
				for range cmds {
				}
			}
			return nil
		case cmd, ok := <-cmds:
			switch {
			case !ok:
				cmds = nil // stdin ended: ctx is cancelled, so the replay returns soon
			case cmd == "pause" || cmd == "resume":
				paused.Store(cmd == "pause")
			default:
				return fmt.Errorf("command %q, want pause or resume", cmd)
			}
		case <-tick.C:
			if err := send(childMsg{Replayed: n.Load()}); err != nil {
				return err
			}
		}
	}
}

// window is where the pipeline's samples of one window begin.
type window struct {
	label         string // "base", "replay", or "gap" (counted in neither)
	produce, tail int    // sample counts when it began
}

// pipelineChild is the live pipeline: a paced producer and the detection
// group reading the tail. After "start" and a warm-up it produces until
// "end", while the parent marks windows without the replay ("base"), with
// it ("replay"), and the switches between them ("gap"); then it reports
// the produce and tail end-to-end latencies of all "base" windows and of
// all "replay" windows. A sample belongs to the window in which it was
// taken: a produce when acknowledged, a tail record when received.
func pipelineChild(ctx context.Context, p childParams, cmds <-chan string, send func(childMsg) error) error {
	if err := command(cmds, "start"); err != nil {
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

	rec := &recorder{}
	stop := make(chan struct{})
	produced := make(chan error, 1)
	go func() {
		// Until "end": the parent decides how long the windows run.
		_, _, err := producePacedInto(ctx, prod, 24*time.Hour, stop, p.RecordBytes, p.Rate, rec)
		produced <- err
	}()
	if err := send(childMsg{Warm: true}); err != nil {
		return err
	}
	wins := []window{{label: "gap"}}
	for ended := false; !ended; {
		select {
		case err := <-produced:
			if err == nil {
				err = errors.New("the producer stopped before the end")
			}
			return fmt.Errorf("live producer: %w", err)
		case cmd, ok := <-cmds:
			switch {
			case !ok:
				return errStopped
			case cmd == "base" || cmd == "replay" || cmd == "gap":
				wins = append(wins, window{cmd, rec.count(), tail.count()})
			case cmd == "end":
				wins = append(wins, window{"gap", rec.count(), tail.count()})
				ended = true
			default:
				return fmt.Errorf("command %q, want base, replay, gap or end", cmd)
			}
		}
	}
	close(stop)
	if err := <-produced; err != nil {
		return fmt.Errorf("live producer: %w", err)
	}
	for _, label := range []string{"base", "replay"} {
		var produce, tailLat []time.Duration
		n := 0
		for i, w := range wins[:len(wins)-1] {
			if w.label != label {
				continue
			}
			n++
			produce = append(produce, rec.between(w.produce, wins[i+1].produce)...)
			tailLat = append(tailLat, tail.between(w.tail, wins[i+1].tail)...)
		}
		ps, ts := summarize(produce), summarize(tailLat)
		m := childMsg{Phase: label, Windows: n, Produce: &ps, Tail: &ts}
		if label == "replay" {
			m.Final, m.PeakRSS = true, peakRSS()
		}
		if err := send(m); err != nil {
			return err
		}
	}
	return nil
}
