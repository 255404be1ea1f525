package bench

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	s := make([]time.Duration, 1000)
	for i := range s {
		s[i] = time.Duration(i + 1)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}} {
		if got := percentile(s, c.p); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile(empty) = %v", got)
	}
}

// TestP99Parts: each part is its own stretch of the samples, in order, so
// a slow stretch shows in its part only.
func TestP99Parts(t *testing.T) {
	s := make([]time.Duration, 400)
	for i := range s {
		s[i] = time.Millisecond
	}
	s[250] = 40 * time.Millisecond // in the third part of four, its p99 (nearest rank 99 of 100)
	s[260] = 50 * time.Millisecond
	got := p99Parts(s, 4)
	want := []time.Duration{time.Millisecond, time.Millisecond, 40 * time.Millisecond, time.Millisecond}
	if !slices.Equal(got, want) {
		t.Errorf("p99Parts = %v, want %v", got, want)
	}
	if got := p99Parts(s[:3], 4); got != nil {
		t.Errorf("p99Parts of fewer samples than parts = %v, want none", got)
	}
}

// TestRunTiny runs the whole benchmark briefly against an in-process broker
// and checks that every figure is present and plausible (not that targets pass).
func TestRunTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker for a few seconds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	res, err := Run(ctx, Options{Duration: time.Second, RecordBytes: 512, Partitions: 3, Acks: "all", Out: &out})
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.CeilingMBps <= 0 || res.MaxMBps <= 0 || res.MaxRecsPerSec <= 0 || res.Ratio <= 0 {
		t.Errorf("throughput figures not positive: %+v", res)
	}
	if res.MaxLatency.N == 0 || res.MaxLatency.P50 <= 0 || res.MaxLatency.P50 > res.MaxLatency.P99 || res.MaxLatency.P99 > res.MaxLatency.P999 {
		t.Errorf("max-rate latencies implausible: %+v", res.MaxLatency)
	}
	if res.PacedLatency.N == 0 || res.PacedLatency.P50 <= 0 || res.PacedLatency.P50 > res.PacedLatency.P99 {
		t.Errorf("paced latencies implausible: %+v", res.PacedLatency)
	}
	if res.PacedCeiling.N == 0 || res.PacedCeiling.P50 <= 0 || res.PacedCeiling.P50 > res.PacedCeiling.P99 {
		t.Errorf("paced ceiling latencies implausible: %+v", res.PacedCeiling)
	}
	if res.EndToEnd.N == 0 || res.EndToEnd.P50 <= 0 || res.EndToEnd.P50 > res.EndToEnd.P99 {
		t.Errorf("end-to-end latencies implausible: %+v", res.EndToEnd)
	}
	if res.EndToEndMissing != 0 {
		t.Errorf("%d records of the run with a consumer were not consumed", res.EndToEndMissing)
	}
	if res.ReadLoadLatency.N == 0 || res.ReadLoadLatency.P50 <= 0 || res.ReadLoadLatency.P50 > res.ReadLoadLatency.P99 {
		t.Errorf("produce latencies under read load implausible: %+v", res.ReadLoadLatency)
	}
	if res.MaxErrors != 0 || res.PacedErrors != 0 || res.ReadLoadErrors != 0 {
		t.Errorf("produce errors: max %d, paced %d, paced with a consumer %d", res.MaxErrors, res.PacedErrors, res.ReadLoadErrors)
	}
	// Paced run should come close to its target rate.
	if res.PacedRecsPerSec < 0.8*res.PacedTargetRecsPerSec {
		t.Errorf("paced run achieved %.0f of %.0f records/s", res.PacedRecsPerSec, res.PacedTargetRecsPerSec)
	}
	if len(res.PacedP99Parts) != 4 {
		t.Errorf("%d parts of the paced p99, want 4 (the minimum)", len(res.PacedP99Parts))
	}
	for i, p := range res.PacedP99Parts {
		if p <= 0 || p > res.PacedLatency.Max {
			t.Errorf("part %d's p99 %s is outside (0, the run's max %s]", i, p, res.PacedLatency.Max)
		}
	}
	if res.PacedRequests.N == 0 || res.PacedRequests.P50 <= 0 || res.PacedRequests.P50 > res.PacedLatency.P99 {
		t.Errorf("paced request latencies implausible: %+v (records: %+v)", res.PacedRequests, res.PacedLatency)
	}
	for _, label := range []string{"[a] ceiling", "[b] max rate", "[c] paced", "p99 along the run:", "produce requests", "collections:", "ceiling, same rate", "settled in", "[d] the paced run again, with a consumer", "end-to-end latency:", "under the read load", "throughput >= 0.5 x ceiling", "p99 at 25%"} {
		if !strings.Contains(out.String(), label) {
			t.Errorf("output lacks %q", label)
		}
	}
	if !strings.Contains(out.String(), "PASS") && !strings.Contains(out.String(), "FAIL") {
		t.Error("output has no PASS/FAIL")
	}
	if said := strings.Contains(out.String(), "this machine was over the target too"); said != res.CeilingOverTarget() {
		t.Errorf("output says the ceiling was over the target: %v; the ceiling's paced p99 is %s", said, res.PacedCeiling.P99)
	}
}

func TestCeilingOverTarget(t *testing.T) {
	for _, c := range []struct {
		ceiling Latencies
		want    bool
	}{
		{Latencies{}, false}, // not measured
		{Latencies{N: 10, P99: TargetPacedP99}, false},
		{Latencies{N: 10, P99: TargetPacedP99 + time.Microsecond}, true},
	} {
		r := &Result{PacedCeiling: c.ceiling}
		if got := r.CeilingOverTarget(); got != c.want {
			t.Errorf("ceiling %+v: CeilingOverTarget %v, want %v", c.ceiling, got, c.want)
		}
	}
}

// TestRunPacedRate: a fixed paced rate replaces 25% of the maximum, and the
// latency target is reported as not judged rather than passed or failed.
// It also runs the round-robin partitioner.
func TestRunPacedRate(t *testing.T) {
	if _, err := Run(context.Background(), Options{Duration: time.Second, RecordBytes: 512, Partitions: 1, Acks: "all", PacedRate: -1}); err == nil {
		t.Error("a negative paced rate was accepted")
	}
	if _, err := Run(context.Background(), Options{Duration: time.Second, RecordBytes: 512, Partitions: 1, Acks: "all", Partitioner: "hash"}); err == nil {
		t.Error("an unknown partitioner was accepted")
	}
	if testing.Short() {
		t.Skip("runs a broker for a few seconds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	res, err := Run(ctx, Options{Duration: time.Second, RecordBytes: 512, Partitions: 3, Acks: "all", PacedRate: 2000, Partitioner: PartitionerRoundRobin, Out: &out})
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.PacedTargetRecsPerSec != 2000 {
		t.Errorf("paced target %.0f records/s, want the given 2000", res.PacedTargetRecsPerSec)
	}
	if res.PacedRecsPerSec < 1600 || res.PacedRecsPerSec > 2400 {
		t.Errorf("paced run achieved %.0f records/s, want about 2000", res.PacedRecsPerSec)
	}
	for _, label := range []string{"paced run at a fixed rate", "not judged", "round-robin partitioner"} {
		if !strings.Contains(out.String(), label) {
			t.Errorf("output lacks %q", label)
		}
	}
}

// TestRunNoWALSync: --wal-sync=false runs the in-process file WAL without
// fsync and judges neither target; it is refused where it cannot apply.
func TestRunNoWALSync(t *testing.T) {
	for _, o := range []Options{
		{Duration: time.Second, RecordBytes: 512, Partitions: 1, Acks: "all", NoWALSync: true, WAL: "object"},
		{Duration: time.Second, RecordBytes: 512, Partitions: 1, Acks: "all", NoWALSync: true, Brokers: []string{"127.0.0.1:1"}},
	} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("NoWALSync accepted with WAL %q and brokers %v", o.WAL, o.Brokers)
		}
	}
	if testing.Short() {
		t.Skip("runs a broker for a few seconds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	res, err := Run(ctx, Options{Duration: 500 * time.Millisecond, RecordBytes: 512, Partitions: 2, Acks: "all", NoWALSync: true, Out: &out})
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.PacedLatency.N == 0 || res.PacedErrors != 0 {
		t.Errorf("paced run without fsync: %d records acknowledged, %d errors", res.PacedLatency.N, res.PacedErrors)
	}
	if !strings.Contains(out.String(), "NO fsync") {
		t.Error("output does not say the WAL ran without fsync")
	}
	if n := strings.Count(out.String(), "not judged  (WAL without fsync"); n != 2 {
		t.Errorf("%d targets not judged for the missing fsync, want both", n)
	}
	if strings.Contains(out.String(), "PASS") || strings.Contains(out.String(), "FAIL") {
		t.Error("a target was judged without fsync")
	}
}

// TestRunGroupsTiny runs the group benchmark briefly against an in-process
// broker and checks that every figure is present and plausible.
func TestRunGroupsTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker and a consumer group for a few seconds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	res, err := RunGroups(ctx, GroupOptions{Members: 3, Partitions: 6, Committers: 2, Duration: 500 * time.Millisecond, Out: &out})
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("RunGroups: %v", err)
	}
	if res.SingleJoin <= 0 || res.GroupJoin <= 0 || res.OneMoreJoin <= 0 || res.CommitsPerSec <= 0 || res.ProducesPerSec <= 0 {
		t.Errorf("figures not positive: %+v", res)
	}
	for _, label := range []string{"[a] rebalance", "[b] offset commits", "commits/s"} {
		if !strings.Contains(out.String(), label) {
			t.Errorf("output lacks %q", label)
		}
	}
}

// TestRunReplayTiny writes and replays 16 MiB and checks the figures.
func TestRunReplayTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and replays 16 MiB through a broker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	res, err := RunReplay(ctx, ReplayOptions{Bytes: 16 << 20, Partitions: 4, RecordBytes: 1024, Out: &out})
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("RunReplay: %v", err)
	}
	if res.CeilingMBps <= 0 || res.ReplayMBps <= 0 || res.Misses == 0 {
		t.Errorf("figures implausible: %+v (a replay from objects must miss the cache at least once)", res)
	}
	for _, label := range []string{"[a] ceiling", "[b] replay", "block cache"} {
		if !strings.Contains(out.String(), label) {
			t.Errorf("output lacks %q", label)
		}
	}
}

// TestRunIncidentTiny runs the incident benchmark briefly and checks that
// every figure is present, the child processes' too (not that the targets
// pass).
func TestRunIncidentTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ingest, a tail group and a replay for several seconds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	res, err := RunIncident(ctx, IncidentOptions{HistoryBytes: 64 << 20, Rate: 2000, RecordBytes: 512, Partitions: 4,
		Phase: 3 * time.Second, Window: time.Second, CatchupNice: 19, MemoryBudget: 8 << 30, Out: &out})
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("RunIncident: %v", err)
	}
	if res.TailBase.N == 0 || res.TailReplay.N == 0 || res.ProduceBase.N == 0 || res.ProduceReplay.N == 0 || res.ReplayBytes == 0 || res.CeilingMBps <= 0 || res.PeakRSSBytes <= 0 {
		t.Errorf("figures missing: %+v", res)
	}
	if res.Windows < 2 {
		t.Errorf("%d windows without the replay, want at least one before and one after it", res.Windows)
	}
	if res.PipelinePeakRSSBytes <= 0 || res.ReplayPeakRSSBytes <= 0 {
		t.Errorf("the child processes' peak RSS is missing: pipeline %d, reader %d", res.PipelinePeakRSSBytes, res.ReplayPeakRSSBytes)
	}
	for _, label := range []string{"processes:", "[a] ceiling", "[b] without the replay", "[c] with a forensic reader", "pipeline peak RSS", "reader peak RSS",
		"tail p99 with replay", "replay >= 0.8 x ceiling", "peak RSS within"} {
		if !strings.Contains(out.String(), label) {
			t.Errorf("output lacks %q", label)
		}
	}
}

// TestChildError: a child's error reaches the parent with its message.
func TestChildError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err := startChild(ctx, "no-such-role", childParams{}, log)
	if err == nil || !strings.Contains(err.Error(), `unknown VIGIL_BENCH_CHILD role "no-such-role"`) {
		t.Fatalf("startChild with a bad role: %v", err)
	}
	c, err := startChild(ctx, rolePipeline, childParams{}, log)
	if err != nil {
		t.Fatalf("startChild: %v", err)
	}
	defer c.stop()
	if err := c.send("replay"); err != nil {
		t.Fatalf("send: %v", err)
	}
	if _, err := c.final(ctx); err == nil || !strings.Contains(err.Error(), `command "replay", want "start"`) {
		t.Errorf("out-of-order command: %v", err)
	}
	if err := c.stop(); err == nil || !strings.Contains(err.Error(), "exit status 1") {
		t.Errorf("stop after an error: %v", err)
	}
}

// TestReplayChildStopsMidReplay: a forensic reader whose stdin ends before
// it has read the whole history (the incident benchmark's phase ended
// first) sends its final line and exits by itself, within childGrace,
// instead of being killed.
func TestReplayChildStopsMidReplay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := useBroker(ctx, nil, log, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer b.stop()
	// An end far past the log: the replay would never finish by itself.
	c, err := startChild(ctx, roleReplay, childParams{Brokers: b.seeds, Topic: "history", End: map[int32]int64{0: 1 << 40}}, log)
	if err != nil {
		t.Fatalf("startChild: %v", err)
	}
	defer c.stop()
	if err := c.send("start"); err != nil {
		t.Fatalf("send: %v", err)
	}
	time.Sleep(500 * time.Millisecond) // let it poll
	c.stdin.Close()
	if m, err := c.final(ctx); err != nil || !m.Final {
		t.Fatalf("final line: %+v, %v", m, err)
	}
	if err := c.stop(); err != nil {
		t.Fatalf("the reader did not exit by itself: %v", err)
	}
}

// TestRunSecurityTiny runs the security comparison briefly over each
// secure protocol and checks that it runs end to end: both listeners'
// runs acknowledged records without errors, and every figure and the
// verdict are printed (not what the ratio is). Options it cannot honour
// are refused.
func TestRunSecurityTiny(t *testing.T) {
	base := Options{Duration: time.Second, RecordBytes: 512, Partitions: 2, Acks: "all"}
	for name, mod := range map[string]func(*Options){
		"unknown protocol":         func(o *Options) { o.SecurityProtocol = "TLS" },
		"against --brokers":        func(o *Options) { o.SecurityProtocol, o.Brokers = "SASL_SSL", []string{"127.0.0.1:1"} },
		"with a paced rate":        func(o *Options) { o.SecurityProtocol, o.PacedRate = "SASL_SSL", 1000 },
		"negative rounds":          func(o *Options) { o.SecurityProtocol, o.Rounds = "SASL_SSL", -1 },
		"unknown mechanism":        func(o *Options) { o.SecurityProtocol, o.SASLMechanism = "SASL_SSL", "GSSAPI" },
		"a mechanism without SASL": func(o *Options) { o.SecurityProtocol, o.SASLMechanism = "SSL", "PLAIN" },
		"rounds with PLAINTEXT":    func(o *Options) { o.Rounds = 3 },
	} {
		o := base
		mod(&o)
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("%s: accepted", name)
		} else if name == "against --brokers" && !strings.Contains(err.Error(), "in-process broker only") {
			t.Errorf("%s: the error does not say why: %v", name, err)
		}
	}
	if testing.Short() {
		t.Skip("runs a broker for a few seconds")
	}
	for _, c := range []struct {
		protocol, mechanism string
		rounds              int
	}{
		{"SASL_SSL", "", 2}, // the default mechanism, SCRAM-SHA-512
		{"SASL_PLAINTEXT", "SCRAM-SHA-256", 1},
		{"SSL", "", 1},
	} {
		t.Run(c.protocol, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var out bytes.Buffer
			o := base
			o.Duration = 300 * time.Millisecond
			o.SecurityProtocol, o.SASLMechanism, o.Rounds, o.Out = c.protocol, c.mechanism, c.rounds, &out
			res, err := Run(ctx, o)
			t.Logf("output:\n%s", out.String())
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			sr := res.Security
			if sr == nil || len(sr.Rounds) != c.rounds {
				t.Fatalf("security result %+v, want %d rounds", sr, c.rounds)
			}
			for i, rd := range sr.Rounds {
				if rd.SecureFirst != (i%2 == 1) {
					t.Errorf("round %d: secure first %v, want the first of each pair to alternate, plain first", i+1, rd.SecureFirst)
				}
				for _, r := range []SecurityRun{rd.Plain, rd.Secure} {
					if r.Acked == 0 || r.Errors != 0 || r.MBps <= 0 {
						t.Errorf("round %d, %s: %d records acknowledged, %d errors (first: %v), %.1f MB/s", i+1, r.Protocol, r.Acked, r.Errors, r.FirstError, r.MBps)
					}
				}
				if rd.Plain.Protocol != "PLAINTEXT" || rd.Secure.Protocol != c.protocol {
					t.Errorf("round %d ran over %s and %s", i+1, rd.Plain.Protocol, rd.Secure.Protocol)
				}
			}
			if sr.Ratio <= 0 || sr.PlainMedianMBps <= 0 || sr.SecureMedianMBps <= 0 {
				t.Errorf("medians or ratio missing: %+v", sr)
			}
			labels := []string{"round 1", "ratio " + c.protocol + " / PLAINTEXT", "medians of", "ratio of medians:", "CPU per MB:", "ms/MB",
				fmt.Sprintf("%s >= 0.85 x PLAINTEXT:", c.protocol), "target >= 0.85"}
			if c.protocol != "SASL_PLAINTEXT" {
				labels = append(labels, "TLS 1.3")
			}
			if c.protocol != "SSL" {
				labels = append(labels, "SASL "+cmp.Or(c.mechanism, DefaultSASLMechanism))
			}
			for _, label := range labels {
				if !strings.Contains(out.String(), label) {
					t.Errorf("output lacks %q", label)
				}
			}
			if !strings.Contains(out.String(), "PASS: ratio") && !strings.Contains(out.String(), "FAIL: ratio") {
				t.Error("output has no PASS/FAIL verdict")
			}
		})
	}
}
