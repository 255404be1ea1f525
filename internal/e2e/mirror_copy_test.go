package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// lockedBuffer collects a subprocess's stderr while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestMirrorCLI runs the built `vigil mirror` from kfake (franz-go's own
// Kafka, in the test process, three brokers) into a vigil process:
// 100,000 records with headers over four partitions, a committed and an
// aborted transaction, a compacted topic with gaps. It checks that `vigil
// mirror verify` exits 0 once the mirror caught up, that the lag reaches
// 0 on the metrics endpoint, that a consumer group committed on the
// source resumes on Vigil at exactly the next record, that the mirror
// stopped (SIGTERM, exit 0) and run again continues from Vigil's end, and
// that `vigil mirror promote` opens the topic to produces.
func TestMirrorCLI(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("100k records through two processes; internal/mirror's TestMirror covers the copy at -short")
	}
	src, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	srcAddr := strings.Join(src.ListenAddrs(), ",")
	dst := startBroker(t, "", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const parts, total = 4, 100_000
	createTopic(t, src.ListenAddrs()[0], "events", parts)
	cl, err := kgo.NewClient(kgo.SeedBrokers(src.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	at := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	rec := func(i int) *kgo.Record {
		return &kgo.Record{Topic: "events", Partition: int32(i % parts), Key: fmt.Appendf(nil, "ws-%02d", i%17),
			Value: fmt.Appendf(nil, `{"class_uid":1007,"seq":%d}`, i), Timestamp: at.Add(time.Duration(i) * time.Millisecond),
			Headers: []kgo.RecordHeader{{Key: "source", Value: []byte("edr")}, {Key: "seq", Value: fmt.Appendf(nil, "%d", i)}}}
	}
	produce := func(c *kgo.Client, from, to int) {
		t.Helper()
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			recs = append(recs, rec(i))
		}
		if err := c.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(cl, 0, total)
	txn, err := kgo.NewClient(kgo.SeedBrokers(src.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionalID("e2e-mirror"))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	for _, end := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort} {
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		produce(txn, total, total+parts*3)
		if err := txn.EndTransaction(ctx, end); err != nil {
			t.Fatal(err)
		}
	}
	// A compacted topic: ten batches of keys k0-k4, compacted into gaps.
	createTopicWith(t, src.ListenAddrs()[0], "assets", 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact"), "retention.ms": kadm.StringPtr("-1")})
	for b := range 10 {
		var recs []*kgo.Record
		for i := range 10 {
			recs = append(recs, &kgo.Record{Topic: "assets", Key: fmt.Appendf(nil, "k%d", i%5), Value: fmt.Appendf(nil, "v%d", 10*b+i)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	src.Compact()

	metricsAddr := freeAddr(t)
	startMirror := func() (*exec.Cmd, *lockedBuffer, chan error) {
		return startMirrorCmd(t, srcAddr, dst.addr, "events|assets", "--metrics", metricsAddr)
	}
	waitMatch := func(what string) string {
		t.Helper()
		return waitMirrorMatch(t, ctx, srcAddr, dst.addr, "events|assets", what)
	}

	mirror, errOut, done := startMirror()
	out := waitMatch("first copy")
	t.Logf("verify:\n%s", out)
	for _, want := range []string{
		"assets/0: match: offsets [80, 100), 15 records (5 offsets without a record on either side)",
		fmt.Sprintf("events/0: match: offsets [0, %d), %d records", total/parts+3+1+3+1, total/parts+3+1+3+1),
		"all match",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify's output lacks %q", want)
		}
	}
	waitUntil(t, 30*time.Second, "lag 0 in the metrics", func() bool {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), `vigil_mirror_lag_offsets{partition="3",topic="events"} 0`) &&
			strings.Contains(string(body), `vigil_mirror_records_total{topic="events"}`)
	})

	// A group reads part of events on the source, commits and leaves.
	group, err := kgo.NewClient(kgo.SeedBrokers(src.ListenAddrs()...), kgo.ConsumerGroup("soc"), kgo.ConsumeTopics("events"),
		kgo.DisableAutoCommit(), kgo.FetchMaxPartitionBytes(32<<10))
	if err != nil {
		t.Fatal(err)
	}
	committed := map[int32]int64{}
	for n := 0; n < 5000; {
		group.PollRecords(ctx, 5000-n).EachRecord(func(r *kgo.Record) {
			committed[r.Partition] = r.Offset + 1
			n++
		})
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
	}
	if err := group.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	group.Close()

	// Stopped and run again, the mirror continues where Vigil ends.
	mirror.Process.Signal(syscall.SIGTERM)
	if err := <-done; err != nil {
		t.Fatalf("vigil mirror after SIGTERM: %v, want exit 0\n%s", err, errOut.String())
	}
	produce(cl, total+parts*3, total+parts*3+1000)
	_, _, _ = startMirror()
	waitMatch("after a restart")
	dadm := kadm.NewClient(mustClient(t, dst.addr))
	waitUntil(t, 30*time.Second, "the group's offsets on Vigil", func() bool {
		offs, err := dadm.FetchOffsets(ctx, "soc")
		if err != nil {
			return false
		}
		for p, at := range committed {
			if o, ok := offs.Lookup("events", p); !ok || o.At != at {
				return false
			}
		}
		return true
	})
	// The group moves to Vigil: its first record on each partition is the
	// one after its last commit.
	moved, err := kgo.NewClient(kgo.SeedBrokers(dst.addr), kgo.ConsumerGroup("soc"), kgo.ConsumeTopics("events"), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer moved.Close()
	first := map[int32]*kgo.Record{}
	for len(first) < len(committed) {
		moved.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if _, ok := first[r.Partition]; !ok {
				first[r.Partition] = r
			}
		})
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
	}
	for p, at := range committed {
		r := first[p]
		if r.Offset != at || !strings.Contains(string(r.Value), fmt.Sprintf(`"seq":%d}`, int(at)*parts+int(p))) {
			t.Errorf("events/%d: the group resumed on Vigil at offset %d (%s), want %d, record %d", p, r.Offset, r.Value, at, int(at)*parts+int(p))
		}
	}

	// Promote: the topic takes produces at its end.
	c := exec.CommandContext(ctx, vigilBin, "mirror", "promote", "assets", "--brokers", dst.addr)
	if b, err := c.CombinedOutput(); err != nil || !strings.Contains(string(b), "assets: promoted") {
		t.Fatalf("vigil mirror promote assets: %v\n%s", err, b)
	}
	r := &kgo.Record{Topic: "assets", Key: []byte("k9"), Value: []byte("on vigil")}
	if err := mustClient(t, dst.addr).ProduceSync(ctx, r).FirstErr(); err != nil || r.Offset != 100 {
		t.Fatalf("produce to assets after promote: offset %d, %v; want 100", r.Offset, err)
	}
	c = exec.CommandContext(ctx, vigilBin, "mirror", "promote", "assets", "--brokers", dst.addr)
	if b, err := c.CombinedOutput(); err == nil || !strings.Contains(string(b), "assets is not a mirror topic") {
		t.Errorf("promoting assets again: %v\n%s; want exit 1, not a mirror topic", err, b)
	}
}

func mustClient(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// waitUntil polls cond until it holds, or fails the test after d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// startMirrorCmd runs the built vigil mirror until the test ends.
func startMirrorCmd(t *testing.T, src, dst, topics string, extra ...string) (*exec.Cmd, *lockedBuffer, chan error) {
	t.Helper()
	args := append([]string{"mirror", "--source-brokers", src, "--brokers", dst, "--topics", topics,
		"--sync-interval", "200ms", "--progress-interval", "500ms"}, extra...)
	cmd := exec.Command(vigilBin, args...)
	var errOut lockedBuffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		t.Logf("vigil mirror stderr (tail):\n%s", tail(errOut.String(), 15))
	})
	return cmd, &errOut, done
}

// waitMirrorMatch runs vigil mirror verify until it exits 0 (a minute at
// most) and returns its output.
func waitMirrorMatch(t *testing.T, ctx context.Context, src, dst, topics, what string) string {
	t.Helper()
	verify := func() (string, int) {
		c := exec.CommandContext(ctx, vigilBin, "mirror", "verify", "--source-brokers", src, "--brokers", dst, "--topics", topics, "--quiet")
		var out bytes.Buffer
		c.Stdout = &out
		err := c.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return out.String(), 0
		case errors.As(err, &exit):
			return out.String(), exit.ExitCode()
		}
		t.Fatal(err)
		return "", -1
	}
	var out string
	var code int
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if out, code = verify(); code == 0 {
			return out
		}
	}
	t.Fatalf("%s: vigil mirror verify still exits %d:\n%s", what, code, out)
	return ""
}

// TestMirrorCluster mirrors into a three-broker Vigil cluster (etcd, the
// object WAL) and SIGKILLs a broker in the middle: the mirror's appends
// reach each partition's leader by metadata, a partition whose leader
// died resumes from the high watermark its new leader recovered (batches
// sent again are recognised, not appended twice), and `vigil mirror
// verify` matches at the end, transactions and all.
func TestMirrorCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster and a broker killed; the full pass runs it")
	}
	src, err := kfake.NewCluster(kfake.NumBrokers(2))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	srcAddr := strings.Join(src.ListenAddrs(), ",")
	c := newTestCluster(t, false)
	for id := int32(1); id <= 3; id++ {
		c.start(id, "")
	}
	dst := strings.Join(c.seeds(), ",")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	const parts = 6
	createTopic(t, src.ListenAddrs()[0], "telemetry", parts)
	cl, err := kgo.NewClient(kgo.SeedBrokers(src.ListenAddrs()...), kgo.DefaultProduceTopic("telemetry"), kgo.TransactionalID("cluster-mirror"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	batchNo := 0
	produce := func(n int, end kgo.TransactionEndTry) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var recs []*kgo.Record
		for i := range n {
			recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "h%d", i%29), Value: fmt.Appendf(nil, "txn %d record %d", batchNo, i),
				Headers: []kgo.RecordHeader{{Key: "txn", Value: fmt.Appendf(nil, "%d", batchNo)}}})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, end); err != nil {
			t.Fatal(err)
		}
		batchNo++
	}
	for i := range 20 {
		end := kgo.TryCommit
		if i%5 == 4 {
			end = kgo.TryAbort
		}
		produce(500, end)
	}
	_, _, _ = startMirrorCmd(t, srcAddr, dst, "telemetry")
	waitMirrorMatch(t, ctx, srcAddr, dst, "telemetry", "before the kill")

	// More while a broker dies.
	go func() {
		time.Sleep(200 * time.Millisecond)
		c.brokers[2].kill()
	}()
	for i := range 20 {
		end := kgo.TryCommit
		if i%5 == 4 {
			end = kgo.TryAbort
		}
		produce(500, end)
	}
	out := waitMirrorMatch(t, ctx, srcAddr, strings.Join([]string{c.brokers[1].addr, c.brokers[3].addr}, ","), "telemetry", "after broker 2 was killed")
	t.Logf("verify:\n%s", out)
	if !strings.Contains(out, fmt.Sprintf("1 topic, %d partitions", parts)) || !strings.Contains(out, "all match") {
		t.Errorf("verify's summary: %s", out)
	}
}
