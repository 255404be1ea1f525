package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/export"
	"github.com/vigilhq/vigil/internal/export/exporttest"
)

// exporter is one `vigil export` process.
type exporter struct {
	t       *testing.T
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
}

func startExporter(t *testing.T, args ...string) *exporter {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), "export-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(vigilBin, append([]string{"export"}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start vigil export: %v", err)
	}
	logf.Close()
	e := &exporter{t: t, cmd: cmd, logPath: logf.Name(), exited: make(chan struct{})}
	go func() {
		e.waitErr = cmd.Wait()
		close(e.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-e.exited:
		default:
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-e.exited
		}
		log := e.log()
		if t.Failed() {
			t.Logf("vigil export log (pid %d):\n%s", cmd.Process.Pid, truncate(log, 20000))
		}
		for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
			if strings.Contains(log, bad) {
				t.Errorf("vigil export log contains %q", bad)
			}
		}
	})
	return e
}

func (e *exporter) log() string {
	raw, _ := os.ReadFile(e.logPath)
	return string(raw)
}

func (e *exporter) kill() {
	e.t.Helper()
	select {
	case <-e.exited:
		e.t.Fatalf("vigil export exited before SIGKILL: %v\n%s", e.waitErr, truncate(e.log(), 4000))
	default:
	}
	_ = e.cmd.Process.Signal(syscall.SIGKILL)
	<-e.exited
}

// wait waits for the process to exit on its own and returns its error.
func (e *exporter) wait(within time.Duration) error {
	e.t.Helper()
	select {
	case <-e.exited:
		return e.waitErr
	case <-time.After(within):
		e.t.Fatalf("vigil export did not exit within %s", within)
		return nil
	}
}

// TestExportKilled runs `vigil export --config FILE` as a process, feeding
// a real ZincSearch, while records are produced, and SIGKILLs it mid-stream
// again and again: each incarnation starts with a backlog and is killed
// once it has sent a few hundred documents of it, so the kill lands
// between a delivery and its offset commit, and the next incarnation
// (half of them static members that take the partitions straight back,
// half new members that wait for a rebalance) sends the uncommitted
// documents again. At the end ZincSearch holds every record of the topic
// exactly once, under its id, in the index of its class and month, and
// no other document; and a backfill of the topic's time range through
// the same binary adds nothing.
//
// It fails if a kill did not land mid-stream (ZincSearch held every
// record produced so far) or if no document was ever sent twice: then
// the test would not have exercised what the ids are for. A proxy in
// front of ZincSearch counts the sends of each id. The job has three
// requests in flight (max_in_flight), so the kills land with several
// out; the proxy must have seen them overlap.
func TestExportKilled(t *testing.T) {
	t.Parallel()
	const (
		topic = "ocsf.exportkill"
		kills = 6
		index = "vigil-kill-{class}-{yyyy.MM}"
	)
	// Each incarnation gets a backlog of records and is killed after a
	// number of sends that varies, so that kills land in the first batch
	// (poll_records: 1000) and after one or two were committed.
	backlog, sentBeforeKill, liveRate := 2500, []int{300, 1300, 2100}, 100 // records/s meanwhile
	if testing.Short() {
		backlog, sentBeforeKill, liveRate = 1500, []int{200, 1200, 1400}, 50
	}
	z := exporttest.StartZinc(t)
	b := startBroker(t, "", t.TempDir(), "--group-initial-rebalance-delay", "100ms", "--group-min-session-timeout", "1s")
	createTopic(t, b.addr, topic, 4)
	proxy := &exporttest.BulkProxy{Upstream: z.ESURL(), User: z.User, Password: z.Password}
	proxy.Start(t)

	dir := t.TempDir()
	config := func(name, instance string) string {
		var inst string
		if instance != "" {
			inst = "\n    instance_id: " + instance
		}
		path := filepath.Join(dir, name+".yaml")
		yaml := fmt.Sprintf(`brokers: [%s]
sinks:
  - name: zinc
    type: elasticsearch
    topics: [%s]%s
    session_timeout: 2s
    batch: {records: 100, poll_records: 1000}
    max_in_flight: 3
    retry: {initial: 50ms, max: 1s}
    elasticsearch: {url: %s, index: '%s'}
`, b.addr, topic, inst, proxy.URL(), index)
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	static, dynamic := config("static", "exportkill-1"), config("dynamic", "")

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var produced atomic.Int64
	produce := func(n int) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		recs := make([]*kgo.Record, n)
		for k := range recs {
			i := int(produced.Add(1)) - 1
			recs[k] = &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "ws-%03d", i%17), Value: exporttest.Event(i)}
		}
		return cl.ProduceSync(ctx, recs...).FirstErr()
	}
	sends := func() (total, unique int) {
		for _, n := range proxy.Sends() {
			total += n
			unique++
		}
		return total, unique
	}
	docs := func() int {
		t.Helper()
		ids, err := z.IDs("vigil-kill-*")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ix := range ids {
			n += len(ix)
		}
		return n
	}

	const group = "vigil-export-zinc"
	var committed []int64 // at each kill
	start := time.Now().Add(-time.Minute)
	// Live records all along, a few at a time, besides each incarnation's
	// backlog.
	liveDone, stopLive := make(chan error, 1), make(chan struct{})
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopLive:
				liveDone <- nil
				return
			case <-tick.C:
				if err := produce(max(1, liveRate/10)); err != nil {
					liveDone <- err
					return
				}
			}
		}
	}()

	for k := 1; k <= kills; k++ {
		if err := produce(backlog); err != nil {
			t.Fatalf("produce: %v", err)
		}
		cfg := static
		if k%2 == 0 {
			cfg = dynamic
		}
		before, _ := sends()
		e := startExporter(t, "--config", cfg)
		deadline := time.Now().Add(90 * time.Second)
		for {
			if n, _ := sends(); n-before >= sentBeforeKill[(k-1)%len(sentBeforeKill)] {
				break
			}
			select {
			case <-e.exited:
				t.Fatalf("kill %d: vigil export exited: %v\n%s", k, e.waitErr, truncate(e.log(), 4000))
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: vigil export sent %d documents within 90s, want %d before the kill", k, func() int { n, _ := sends(); return n - before }(), sentBeforeKill[(k-1)%len(sentBeforeKill)])
			}
			time.Sleep(5 * time.Millisecond)
		}
		e.kill()
		total := produced.Load()
		// What the killed process sent is in ZincSearch once its
		// write-ahead log is read: give it that long.
		time.Sleep(1500 * time.Millisecond)
		held := docs()
		_, unique := sends()
		c, _ := exporttest.Committed(t, b.addr, group, topic)
		committed = append(committed, c)
		t.Logf("kill %d (%s member, after %d sends): %d documents in ZincSearch, %d ids sent, %d offsets committed, of %d records produced",
			k, strings.TrimSuffix(filepath.Base(cfg), ".yaml"), sentBeforeKill[(k-1)%len(sentBeforeKill)], held, unique, c, total)
		if int64(held) >= total || int64(unique) >= total {
			t.Fatalf("kill %d did not land mid-stream: ZincSearch holds %d documents (%d ids sent) of %d records", k, held, unique, total)
		}
	}
	close(stopLive)
	if err := <-liveDone; err != nil {
		t.Fatalf("live produce: %v", err)
	}

	// A last incarnation delivers the rest and commits it; SIGTERM then
	// stops it cleanly.
	if committed[0] != 0 || committed[len(committed)-1] == 0 {
		t.Fatalf("offsets committed at the kills: %v; want none at the first (killed in its first batch) and some by the last", committed)
	}
	e := startExporter(t, "--config", dynamic)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		c, end := exporttest.Committed(t, b.addr, group, topic)
		if end == produced.Load() && c == end {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group committed %d of %d records within 2 minutes", c, end)
		}
		time.Sleep(200 * time.Millisecond)
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	if err := e.wait(30 * time.Second); err != nil {
		t.Fatalf("vigil export after SIGTERM: %v", err)
	}

	recs := exporttest.ReadTopic(t, b.addr, topic)
	if int64(len(recs)) != produced.Load() {
		t.Fatalf("the topic holds %d records, %d were produced", len(recs), produced.Load())
	}
	check := func(when string) {
		t.Helper()
		ids, err := z.WaitIDs("vigil-kill-*", len(recs), time.Minute, 1500*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		bad := 0
		for _, r := range recs {
			id := export.RecordID(r.Topic, r.Partition, r.Offset)
			want := wantIndex(t, r.Value)
			ix := ids[id]
			if len(ix) != 1 || ix[0] != want {
				if bad++; bad <= 10 {
					t.Errorf("%s: record %s is in %v, want once in %s", when, id, ix, want)
				}
			}
			delete(ids, id)
		}
		for id, ix := range ids {
			if bad++; bad <= 20 {
				t.Errorf("%s: document %s (in %v) is no record of the topic", when, id, ix)
			}
		}
		if bad > 0 {
			t.Fatalf("%s: %d documents wrong, missing or extra, of %d records", when, bad, len(recs))
		}
	}
	check("after the kills")
	total, unique := sends()
	if total == unique {
		t.Fatalf("no document was sent twice (%d sends of %d ids): the kills never landed between a delivery and its commit", total, unique)
	}
	t.Logf("%d records; %d sends of %d ids: %d sent again after a kill, each still once in ZincSearch; up to %d requests at once",
		len(recs), total, unique, total-unique, proxy.MaxInFlight())
	if m := proxy.MaxInFlight(); m < 2 || m > 3 {
		t.Errorf("the proxy served up to %d requests at once; want the job's 3 in flight to overlap, and no more", m)
	}

	// A backfill of the whole range through the same binary: every
	// record sent once more, nothing added.
	bf := startExporter(t, "--config", dynamic, "--from", start.UTC().Format(time.RFC3339), "--to", time.Now().Add(time.Minute).UTC().Format(time.RFC3339))
	if err := bf.wait(2 * time.Minute); err != nil {
		t.Fatalf("backfill: %v\n%s", err, truncate(bf.log(), 4000))
	}
	done := fmt.Sprintf("export zinc: done: %d events (0 outside the range's times)", len(recs))
	if log := bf.log(); !strings.Contains(log, done) || !strings.Contains(log, fmt.Sprintf("%d delivered, 0 dead-lettered", len(recs))) {
		t.Fatalf("backfill's last progress line is not %q... %d delivered:\n%s", done, len(recs), truncate(log, 4000))
	}
	if after, _ := sends(); after != total+len(recs) {
		t.Errorf("the backfill sent %d documents, want %d", after-total, len(recs))
	}
	check("after the backfill")
}

// wantIndex is the index the template vigil-kill-{class}-{yyyy.MM} names
// for an exporttest.Event.
func wantIndex(t *testing.T, value []byte) string {
	t.Helper()
	var ev struct {
		ClassName string `json:"class_name"`
		Time      int64  `json:"time"`
	}
	if err := json.Unmarshal(value, &ev); err != nil {
		t.Fatalf("record %s: %v", value, err)
	}
	class := strings.ReplaceAll(strings.ToLower(ev.ClassName), " ", "_")
	return "vigil-kill-" + class + "-" + time.UnixMilli(ev.Time).UTC().Format("2006.01")
}
