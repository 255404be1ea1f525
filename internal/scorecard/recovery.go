package scorecard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// stallMin is the least time to recover that shows the fault stalled
// writes: at faultRate over faultPartitions, a healthy partition
// acknowledges a record sent after any moment within milliseconds. A
// killed broker that is restarted at once may not stall writes that
// long; its connections, dropped, show the fault instead.
const stallMin = 500 * time.Millisecond

// connHook counts the producer's connections that were lost or could not
// be made, and when: evidence the fault reached a broker the producer
// writes to. franz-go calls hooks from its own goroutines.
type connHook struct {
	mu   sync.Mutex
	lost []time.Time
}

func (h *connHook) OnBrokerDisconnect(kgo.BrokerMetadata, net.Conn) { h.note() }

func (h *connHook) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		h.note()
	}
}

func (h *connHook) note() {
	h.mu.Lock()
	h.lost = append(h.lost, time.Now())
	h.mu.Unlock()
}

// since counts the connections lost at or after t.
func (h *connHook) since(t time.Time) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, at := range h.lost {
		if !at.Before(t) {
			n++
		}
	}
	return n
}

// faultProbes are the failure recovery probes of c: one per broker
// process given, or one line, not run, saying how to enable them.
func faultProbes(c Config) []namedProbe {
	if !c.AllowFaults {
		return []namedProbe{{name: "broker fault", skip: "not run: it signals broker processes, so it runs only with --allow-faults --fault-pids PID[,PID] " +
			"(each broker is paused in turn; --fault-signal kill only for brokers something restarts)"}}
	}
	c = c.withDefaults()
	var out []namedProbe
	for i, pid := range c.FaultPIDs {
		name := fmt.Sprintf("pause pid %d for %s", pid, c.FaultPause)
		if c.FaultSignal == FaultKill {
			name = fmt.Sprintf("kill pid %d", pid)
		}
		out = append(out, namedProbe{name: name, needs: []int16{0, 1, 2, 3, 19, 22},
			fn:    func(ctx context.Context, r *run) (Status, string, error) { return probeFault(ctx, r, i, pid) },
			limit: Config.faultLimit})
	}
	return out
}

// faultWriter is the probe's idempotent acks=all producer: records paced
// at faultRate round-robin over the partitions, each with an id, and
// when each was sent and acknowledged.
type faultWriter struct {
	mu    sync.Mutex
	sent  []time.Time // by id
	acked map[int]time.Time
	// failed counts records whose produce failed: not acknowledged.
	failed  int
	lastErr error
}

func (w *faultWriter) ack(id int, err error) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.failed++
		w.lastErr = err
		return
	}
	w.acked[id] = now
}

// err is the last produce error.
func (w *faultWriter) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// recoveredAt is when every partition had acknowledged a record sent at
// or after t; zero while one has not.
func (w *faultWriter) recoveredAt(t time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	first := make([]time.Time, faultPartitions)
	for id, at := range w.acked {
		if w.sent[id].Before(t) {
			continue
		}
		p := id % faultPartitions
		if first[p].IsZero() || at.Before(first[p]) {
			first[p] = at
		}
	}
	var last time.Time
	for _, f := range first {
		if f.IsZero() {
			return time.Time{}
		}
		if f.After(last) {
			last = f
		}
	}
	return last
}

// probeFault writes to a topic of several partitions, faults the broker
// process (SIGSTOP for FaultPause then SIGCONT, or SIGKILL), measures how
// long until every partition accepts writes again, and reads the topic
// back for acknowledged records lost and duplicated.
func probeFault(ctx context.Context, r *run, i, pid int) (Status, string, error) {
	name, err := checkProcess(pid)
	if err != nil {
		return Fail, "refused: no signal sent", err
	}
	hook := &connHook{}
	cl, err := r.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.WithHooks(hook))
	if err != nil {
		return Fail, "", err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topic, err := r.createTopicN(ctx, adm, fmt.Sprintf("fault%d", i+1), faultPartitions, nil)
	if err != nil {
		return Fail, "no signal sent", err
	}
	prefix := fmt.Sprintf("fault pid %d id ", pid)

	// The writer runs until stop is closed or its share of the plan is
	// written; it alone books records meanwhile.
	w := &faultWriter{acked: map[int]time.Time{}}
	stop := make(chan struct{})
	writerDone := make(chan error, 1)
	limit := faultRecords(r.cfg)
	go func() {
		tick := time.NewTicker(time.Second / faultRate)
		defer tick.Stop()
		for id := 0; id < limit; id++ {
			select {
			case <-stop:
				writerDone <- nil
				return
			case <-ctx.Done():
				writerDone <- nil
				return
			case <-tick.C:
			}
			rec := &kgo.Record{Topic: topic, Partition: int32(id % faultPartitions), Value: []byte(prefix + strconv.Itoa(id))}
			if err := r.budget.take(1, len(rec.Value)); err != nil {
				writerDone <- err
				return
			}
			w.mu.Lock()
			w.sent = append(w.sent, time.Now())
			w.mu.Unlock()
			cl.Produce(ctx, rec, func(_ *kgo.Record, err error) { w.ack(id, err) })
		}
		writerDone <- nil
	}()
	stopWriter := func() error {
		select {
		case <-stop:
		default:
			close(stop)
		}
		return <-writerDone
	}

	// Writes must flow before the fault, or it measures nothing.
	if !sleep(ctx, faultLead) {
		stopWriter()
		return Fail, "no signal sent", ctx.Err()
	}
	if w.recoveredAt(time.Time{}).IsZero() {
		werr := stopWriter()
		return Fail, "no signal sent", fmt.Errorf("not every partition of %s acknowledged a write within %s before the fault (writer: %v, last produce error: %v)", topic, faultLead, werr, w.err())
	}

	var signals string
	t0 := time.Now()
	resumed := t0
	if r.cfg.FaultSignal == FaultKill {
		if err := sendSignal(pid, sigKill); err != nil {
			stopWriter()
			return Fail, "", err
		}
		signals = fmt.Sprintf("sent SIGKILL to pid %d (%s)", pid, name)
	} else {
		if err := sendSignal(pid, sigStop); err != nil {
			stopWriter()
			return Fail, "", err
		}
		// Whatever happens next, the broker is not left stopped.
		paused := sleep(ctx, r.cfg.FaultPause)
		err := sendSignal(pid, sigCont)
		resumed = time.Now()
		signals = fmt.Sprintf("sent SIGSTOP to pid %d (%s), SIGCONT %s later", pid, name, resumed.Sub(t0).Round(time.Millisecond))
		if err != nil {
			stopWriter()
			return Fail, signals, err
		}
		if !paused {
			stopWriter()
			return Fail, signals + " (cut short)", ctx.Err()
		}
	}

	// Wait for every partition to acknowledge a record sent after the
	// fault.
	var recovered time.Time
	deadline := resumed.Add(r.cfg.RecoveryTimeout)
	for recovered.IsZero() && time.Now().Before(deadline) && sleep(ctx, 20*time.Millisecond) {
		recovered = w.recoveredAt(t0)
	}
	if recovered.IsZero() {
		stopWriter()
		return Fail, signals, fmt.Errorf("not every partition accepted writes again within %s of the %s (last produce error: %v)",
			r.cfg.RecoveryTimeout, map[bool]string{true: "kill", false: "resume"}[r.cfg.FaultSignal == FaultKill], w.err())
	}
	sleep(ctx, faultSettle)
	if err := stopWriter(); err != nil {
		return Fail, signals, err
	}
	if err := cl.Flush(ctx); err != nil {
		return Fail, signals, fmt.Errorf("flush the writes: %w", err)
	}

	w.mu.Lock()
	sent, acked, failed := len(w.sent), len(w.acked), w.failed
	w.mu.Unlock()
	recovery := recovered.Sub(t0)
	when := "after the kill"
	if r.cfg.FaultSignal != FaultKill {
		when = fmt.Sprintf("%s after the SIGCONT", recovered.Sub(resumed).Round(time.Millisecond))
		if recovered.Before(resumed) {
			when = "while the process was still stopped"
		}
	}
	// Counted before the read back, whose own client is not hooked but
	// whose end closes nothing of this one.
	lostConns := hook.since(t0)
	detail := fmt.Sprintf("%s; every one of %d partitions acknowledged a write sent after the fault %s after it (%s); %d records sent, %d acknowledged, %d failed; %d producer connections lost or refused after the fault",
		signals, faultPartitions, recovery.Round(time.Millisecond), when, sent, acked, failed, lostConns)

	lost, dups, unacked, err := r.readFault(ctx, adm, topic, prefix, w)
	if err != nil {
		return Fail, detail, fmt.Errorf("read back: %w", err)
	}
	detail += fmt.Sprintf("; read back: %d acknowledged records lost, %d duplicates, %d stored without an acknowledgement", lost, dups, unacked)
	switch {
	case lost > 0:
		return Fail, detail, fmt.Errorf("%d acknowledged records are missing", lost)
	case dups > 0:
		return Fail, detail, fmt.Errorf("%d records of an idempotent producer are stored twice", dups)
	case recovery < stallMin && lostConns == 0:
		return Undetermined, detail, fmt.Errorf("no partition's writes stalled %s or more and no connection was lost: pid %d may not be a broker of this cluster, or leads none of the probe's partitions", stallMin, pid)
	}
	return Pass, detail, nil
}

// readFault reads the fault topic back to its end offsets and counts the
// acknowledged records missing, the records read twice and those stored
// whose acknowledgement never came.
func (r *run) readFault(ctx context.Context, adm *kadm.Client, topic, prefix string, w *faultWriter) (lost, dups, unacked int, err error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return 0, 0, 0, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { want[o.Partition] = o.Offset })
	cl, err := r.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return 0, 0, 0, err
	}
	defer cl.Close()
	next := map[int32]int64{}
	done := func() bool {
		for p, end := range want {
			if next[p] < end {
				return false
			}
		}
		return true
	}
	seen := map[int]int{}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return 0, 0, 0, fmt.Errorf("read up to the end offsets: %w", ctx.Err())
		}
		if err := fs.Err0(); err != nil && !errors.Is(err, context.Canceled) {
			return 0, 0, 0, fmt.Errorf("fetch %s: %w", topic, err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			next[rec.Partition] = rec.Offset + 1
			if id, err := strconv.Atoi(string(bytes.TrimPrefix(rec.Value, []byte(prefix)))); err == nil && bytes.HasPrefix(rec.Value, []byte(prefix)) {
				seen[id]++
			}
		})
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for id := range w.acked {
		if seen[id] == 0 {
			lost++
		}
	}
	for id, n := range seen {
		dups += n - 1
		if _, ok := w.acked[id]; !ok {
			unacked++
		}
	}
	return lost, dups, unacked, nil
}
