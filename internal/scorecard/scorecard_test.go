package scorecard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/vigilhq/vigil/internal/certs/certstest"
	"github.com/vigilhq/vigil/internal/clientsec"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/cost"
	"github.com/vigilhq/vigil/internal/export/exporttest"
	"github.com/vigilhq/vigil/internal/server"
)

// The clusters here are real: a Vigil broker in the test process and
// franz-go's kfake (a separate Kafka implementation), both over TCP.

func startKfake(t *testing.T, opts ...kfake.Opt) string {
	t.Helper()
	return strings.Join(startKfakeCluster(t, opts...).ListenAddrs(), ",")
}

func startKfakeCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3)}, opts...)...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func plainConfig(brokers string) Config {
	return Config{Brokers: strings.Split(brokers, ","), Protocol: "PLAINTEXT", Principal: anonymousPrincipal,
		Timeout: DefaultTimeout, ProbeTimeout: DefaultProbeTimeout}
}

func scorecard(t *testing.T, cfg Config) *Report {
	t.Helper()
	var progress bytes.Buffer
	cfg.Progress = &progress
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, progress.String())
	}
	t.Logf("progress:\n%s", progress.String())
	if lines := strings.Count(progress.String(), "\n"); lines != 1+len(compatibilityProbes)+len(securityProbes)+len(migrationProbes)+len(burstProbes)+len(faultProbes(cfg)) {
		t.Errorf("%d progress lines, want one per probe", lines)
	}
	return rep
}

func probe(t *testing.T, a Area, name string) Probe {
	t.Helper()
	for _, p := range a.Probes {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no probe %q in %s", name, a.Name)
	return Probe{}
}

func wantStatus(t *testing.T, a Area, name string, want Status, detail ...string) Probe {
	t.Helper()
	p := probe(t, a, name)
	if p.Status != want {
		t.Errorf("%s: %s (%s / %s), want %s", name, p.Status, p.Detail, p.Error, want)
	}
	for _, d := range detail {
		if !strings.Contains(seen(p), d) {
			t.Errorf("%s: %q lacks %q", name, seen(p), d)
		}
	}
	return p
}

// leftovers are the scorecard's topics still on the cluster.
func leftovers(t *testing.T, brokers string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tds, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range tds.Names() {
		if strings.HasPrefix(n, "vigil-scorecard-") {
			out = append(out, n)
		}
	}
	return out
}

// TestScorecardVigil scores a Vigil broker without an authorizer: every
// feature probe passes but ACLs, which are scored as missing, and the
// security boundary is open (plaintext, anonymous, no ACLs).
func TestScorecardVigil(t *testing.T) {
	addr := exporttest.StartBroker(t)
	rep := scorecard(t, plainConfig(addr))
	c := rep.Compatibility
	wantStatus(t, c, "ApiVersions", Pass, "1 of 1 brokers answered")
	wantStatus(t, c, "produce/fetch round trip", Pass, "100 records written")
	wantStatus(t, c, "consumer group join/commit/resume", Pass, "resumed at offset 20")
	wantStatus(t, c, "idempotent produce", Pass, "OUT_OF_ORDER_SEQUENCE_NUMBER", "end offset 5")
	wantStatus(t, c, "transactions", Pass, "10 of 10 committed records and 0 of 10 aborted")
	wantStatus(t, c, "compaction", Pass, "cleanup.policy=compact")
	wantStatus(t, c, "time lookups", Pass)
	wantStatus(t, c, "quotas", Pass, "DescribeClientQuotas answered")
	// The disabled feature: Vigil without --authorizer acl.
	wantStatus(t, c, "ACLs", Missing, "SECURITY_DISABLED")
	if c.Passed != len(c.Probes)-1 || c.Scored != len(c.Probes) {
		t.Errorf("compatibility score %d of %d over %d probes, want all but ACLs", c.Passed, c.Scored, len(c.Probes))
	}

	s := rep.Security
	wantStatus(t, s, "plaintext listener", Fail, addr)
	wantStatus(t, s, "anonymous read/write", Fail, "an anonymous client", "wrote a record")
	wantStatus(t, s, "ACLs enforced", Fail, "no authorizer", "accepted")
	if s.Passed != 0 {
		t.Errorf("security score %d, want 0", s.Passed)
	}

	for _, name := range []string{"mirror: Metadata partition counts", "mirror: DescribeConfigs of a topic", "mirror: ListOffsets earliest/latest",
		"mirror: Fetch v12 read_uncommitted", "mirror: OffsetFetch of committed offsets"} {
		wantStatus(t, rep.Migration, name, Pass)
	}
	wantStatus(t, rep.Migration, "mirror: transaction control batches", Pass, "a commit marker at 15 and an abort marker at 21")
	wantBurst(t, rep)
	wantStatus(t, rep.Recovery, "broker fault", NotRun, "--allow-faults --fault-pids")
	if rep.Recovery.Scored != 0 {
		t.Errorf("failure recovery scored %d probes without --allow-faults", rep.Recovery.Scored)
	}

	if rep.Load.Records > rep.Limits.Plan.Records || rep.Load.Records == 0 {
		t.Errorf("wrote %d records, plan %d", rep.Load.Records, rep.Limits.Plan.Records)
	}
	if rep.Duration > rep.Limits.Timeout {
		t.Errorf("took %s, limit %s", rep.Duration, rep.Limits.Timeout)
	}
	for _, p := range rep.Cleanup {
		if strings.HasPrefix(p.Name, "delete") && p.Status != Pass {
			t.Errorf("cleanup %s: %s %s", p.Name, p.Status, p.Error)
		}
	}
	if left := leftovers(t, addr); len(left) > 0 {
		t.Errorf("topics left behind: %v", left)
	}

	var md bytes.Buffer
	if err := Write(&md, rep, Markdown); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## API compatibility: 8 of 9 probes passed", "| ACLs | missing |", "## Security boundary: 0 of 3",
		"## Migration path: 6 of 6 probes passed", "## Failure recovery: 0 of 0 probes passed",
		"| broker fault | not run | - | not run: it signals broker processes, so it runs only with --allow-faults",
		"| side | records | p50 | p99 | max |",
		"not estimated: give the workload"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	var back Report
	var js bytes.Buffer
	if err := Write(&js, rep, JSON); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Compatibility.Passed != c.Passed {
		t.Errorf("JSON round trip: %v, %+v", err, back.Compatibility)
	}
	var html bytes.Buffer
	if err := Write(&html, rep, HTML); err != nil || !strings.Contains(html.String(), `<td class="missing">missing</td>`) ||
		!strings.Contains(html.String(), "<h2>Migration path: 6 of 6 probes passed</h2>") {
		t.Errorf("HTML: %v\n%s", err, html.String())
	}
}

// TestScorecardKfake scores kfake. Without ACLs enabled it answers
// DescribeAcls with an empty list where Vigil says SECURITY_DISABLED, so
// the ACL feature passes and enforcement cannot be determined.
func TestScorecardKfake(t *testing.T) {
	addr := startKfake(t)
	cfg := plainConfig(addr)
	in := cost.Default()
	in.Workload.IngestGBPerDay = 100
	cfg.Cost = &in
	rep := scorecard(t, cfg)
	c := rep.Compatibility
	wantStatus(t, c, "ApiVersions", Pass, "3 of 3 brokers answered")
	for _, name := range []string{"produce/fetch round trip", "consumer group join/commit/resume", "idempotent produce", "transactions", "compaction", "time lookups", "quotas"} {
		wantStatus(t, c, name, Pass)
	}
	wantStatus(t, c, "ACLs", Pass, "DescribeAcls answered: 0 bindings")
	wantStatus(t, rep.Security, "ACLs enforced", Undetermined, "was accepted", "super user")
	for _, p := range rep.Migration.Probes {
		wantStatus(t, rep.Migration, p.Name, Pass)
	}
	wantBurst(t, rep)
	if rep.Cost == nil || rep.Cost.VigilTotal <= 0 || rep.Cost.KafkaTotal <= 0 {
		t.Errorf("cost: %+v (%s)", rep.Cost, rep.CostNote)
	}
	want, _ := cost.Estimate(in)
	if rep.Cost.VigilTotal != want.Vigil.Total || rep.Cost.KafkaTotal != want.Kafka.Total {
		t.Errorf("cost totals %v/%v, the model gives %v/%v", rep.Cost.VigilTotal, rep.Cost.KafkaTotal, want.Vigil.Total, want.Kafka.Total)
	}
	if left := leftovers(t, addr); len(left) > 0 {
		t.Errorf("topics left behind: %v", left)
	}
}

// TestScorecardWithoutTransactions scores a kfake that does not offer the
// transaction APIs (as a Kafka older than 0.11 would): the transactions
// probe is unsupported, not run, and the ApiVersions comparison fails.
func TestScorecardWithoutTransactions(t *testing.T) {
	v := kversion.Stable()
	for _, k := range []int16{24, 25, 26, 28} {
		v.SetMaxKeyVersion(k, -1)
	}
	addr := startKfake(t, kfake.MaxVersions(v))
	cfg := plainConfig(addr)
	cfg.noBurst = true
	rep := scorecard(t, cfg)
	p := wantStatus(t, rep.Compatibility, "transactions", Unsupported, "AddPartitionsToTxn is not offered", "EndTxn is not offered")
	if p.Duration != 0 {
		t.Errorf("an unsupported probe ran for %s", p.Duration)
	}
	wantStatus(t, rep.Compatibility, "ApiVersions", Fail, "17 of 21 needed APIs")
	wantStatus(t, rep.Compatibility, "idempotent produce", Pass)
	// Nothing to mirror but the transactions' control records.
	wantStatus(t, rep.Migration, "mirror: transaction control batches", Unsupported, "EndTxn is not offered")
	wantStatus(t, rep.Migration, "mirror: Fetch v12 read_uncommitted", Pass, "30 records")
	for _, a := range rep.APIs {
		if (a.Key == 26) != (a.Verdict == Unsupported) && a.Key != 24 && a.Key != 25 && a.Key != 28 {
			t.Errorf("%s: %s", a.Name, a.Verdict)
		}
	}
}

// TestScorecardACLsEnforced scores kfake with SASL and ACLs as a user
// allowed everything on the round trip's and the anonymous probe's topics
// (by prefix) and nothing else: its write to the ACL probe's topic is
// refused, which settles enforcement; an anonymous client gets nothing;
// the plaintext transport is still open.
func TestScorecardACLsEnforced(t *testing.T) {
	prefixed := func(kind string) kfake.ACL {
		return kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: "vigil-scorecard-" + kind + "-", Pattern: kmsg.ACLResourcePatternTypePrefixed,
			Operation: kmsg.ACLOperationAll, Allow: true}
	}
	addr := startKfake(t, kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("SCRAM-SHA-256", "admin", "admin-pw"),
		kfake.User("SCRAM-SHA-256", "alice", "alice-pw", prefixed("roundtrip"), prefixed("anonymous")))
	cfg := plainConfig(addr)
	cfg.Protocol, cfg.Principal = "SASL_PLAINTEXT", "User:alice"
	cfg.ClientOpts = []kgo.Opt{kgo.SASL(scram.Auth{User: "alice", Pass: "alice-pw"}.AsSha256Mechanism())}
	cfg.ProbeTimeout = 6 * time.Second
	cfg.noBurst = true
	rep := scorecard(t, cfg)
	s := rep.Security
	wantStatus(t, s, "ACLs enforced", Pass, "refused", "TOPIC_AUTHORIZATION_FAILED")
	anon := wantStatus(t, s, "anonymous read/write", Pass, "an anonymous write", "was refused or unanswered")
	t.Logf("anonymous: %s", seen(anon))
	wantStatus(t, s, "plaintext listener", Fail)
	wantStatus(t, rep.Compatibility, "ACLs", Pass, "CLUSTER_AUTHORIZATION_FAILED")
	wantStatus(t, rep.Compatibility, "produce/fetch round trip", Pass)
	// Elsewhere alice may do nothing: those probes fail with the refusal.
	wantStatus(t, rep.Compatibility, "time lookups", Fail, "TOPIC_AUTHORIZATION_FAILED")
	if rep.Duration > cfg.Timeout {
		t.Errorf("took %s, limit %s", rep.Duration, cfg.Timeout)
	}
}

// TestScorecardLimits runs with limits too short for every probe: the
// run ends within its overall limit, the probes it had no time for are
// reported as not run, and what was created is deleted.
func TestScorecardLimits(t *testing.T) {
	c := startKfakeCluster(t)
	// Every CreateTopics takes 700ms, so a 1s probe has little to spare.
	c.ControlKey(19, func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { time.Sleep(700 * time.Millisecond) })
		return nil, nil, false
	})
	addr := strings.Join(c.ListenAddrs(), ",")
	cfg := plainConfig(addr)
	cfg.Timeout, cfg.ProbeTimeout = 3*time.Second, time.Second
	start := time.Now()
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The slack is the clients' Close after the deadline.
	if took := time.Since(start); took > cfg.Timeout+time.Second {
		t.Errorf("took %s, limit %s", took, cfg.Timeout)
	}
	notRun := 0
	for _, a := range []Area{rep.Compatibility, rep.Security, rep.Migration, rep.Burst} {
		for _, p := range a.Probes {
			limit := cfg.ProbeTimeout
			if a.Name == "Burst and replay" {
				limit += burstWindows * burstWindow
			}
			if p.Duration > limit+500*time.Millisecond {
				t.Errorf("%s ran %s, limit %s", p.Name, p.Duration, cfg.ProbeTimeout)
			}
			if p.Status == NotRun {
				notRun++
			}
		}
	}
	if notRun == 0 {
		t.Errorf("every probe ran within 3s; the test needs a shorter limit")
	}
	if left := leftovers(t, addr); len(left) > 0 {
		t.Errorf("topics left behind: %v", left)
	}
}

// TestUnreachable: no cluster, no report.
func TestUnreachable(t *testing.T) {
	cfg := plainConfig("127.0.0.1:1")
	cfg.Timeout, cfg.ProbeTimeout = 2*time.Second, time.Second
	_, err := Run(context.Background(), cfg)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Run against nothing: %v, want ErrUnreachable", err)
	}
}

// TestScorecardTLS scores a Vigil broker whose only listener is SSL: the
// plaintext probe gets no answer, so that part of the boundary holds,
// while a client without a certificate is still anonymous.
func TestScorecardTLS(t *testing.T) {
	ca := certstest.NewCA(t, "scorecard-ca")
	pair := ca.Server("broker")
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Listen, cfg.Advertised, cfg.AdminListen = "SSL://127.0.0.1:0", "", "127.0.0.1:0"
	cfg.DataDir, cfg.ObjectStore = dir, filepath.Join(dir, "objects")
	cfg.WAL, cfg.WALSync = "file", false
	cfg.GroupInitialRebalance = 50 * time.Millisecond
	cfg.Security.TLSCert, cfg.Security.TLSKey = pair.Cert, pair.Key
	srv, err := server.Start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		srv.Close()
		<-served
	})
	sec := clientsec.Config{Protocol: "SSL", CA: ca.File}
	opts, err := sec.Opts()
	if err != nil {
		t.Fatal(err)
	}
	sc := plainConfig(srv.ListenerAddr("SSL").String())
	sc.Protocol, sc.ClientOpts, sc.AnonymousOpts = "SSL", opts, opts
	sc.ProbeTimeout = 6 * time.Second
	sc.noBurst = true
	rep := scorecard(t, sc)
	wantStatus(t, rep.Security, "plaintext listener", Pass, "without TLS was not answered", "last error")
	wantStatus(t, rep.Security, "anonymous read/write", Fail, "wrote a record")
	wantStatus(t, rep.Compatibility, "transactions", Pass)
}

// TestDocsMatchPlan: docs/scorecard.md states the limits the code keeps.
func TestDocsMatchPlan(t *testing.T) {
	raw, err := os.ReadFile("../../docs/scorecard.md")
	if err != nil {
		t.Fatal(err)
	}
	// Lines are wrapped anywhere.
	doc := strings.Join(strings.Fields(string(raw)), " ")
	p := DefaultPlan()
	for _, want := range []string{
		fmt.Sprintf("at most %d records of at most %d bytes each", p.Records, maxValueBytes),
		fmt.Sprintf("%d topics (%d partitions)", p.Topics, p.Partitions),
		fmt.Sprintf("%d records of history", burstHistoryRecords),
		fmt.Sprintf("%d records a second", burstRate),
		fmt.Sprintf("at most %.1f x", DefaultTailRatio),
		fmt.Sprintf("`--fault-pause` (default %.0fs", DefaultFaultPause.Seconds()),
		fmt.Sprintf("`--recovery-timeout` (default %.0fs)", DefaultRecoveryTimeout.Seconds()),
		fmt.Sprintf("%d records a second over %d partitions", faultRate, faultPartitions),
		fmt.Sprintf("`--timeout` (default %.0fs", DefaultTimeout.Seconds()),
		fmt.Sprintf("`--probe-timeout` (default %.0fs)", DefaultProbeTimeout.Seconds()),
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/scorecard.md lacks %q", want)
		}
	}
}

// wantBurst checks the burst and replay probe ran both sides and scored
// its ratio against the threshold: whether this machine's tail held is
// not the test's business.
func wantBurst(t *testing.T, rep *Report) {
	t.Helper()
	p := probe(t, rep.Burst, "tail latency with a replay running")
	b := rep.BurstFigures
	if b == nil {
		t.Fatalf("no burst figures: %s", seen(p))
	}
	t.Logf("burst and replay: %s", seen(p))
	if b.Without.Samples < 50 || b.With.Samples < 50 || b.ReplayPasses == 0 || b.ReplayBytes == 0 || b.ReplayMBps <= 0 {
		t.Errorf("burst figures: %+v", b)
	}
	if max := burstRate * int((burstWindows*burstWindow)/time.Second); b.Without.Samples+b.With.Samples > max {
		t.Errorf("%d live records measured, the rate allows %d", b.Without.Samples+b.With.Samples, max)
	}
	if b.ReplayFor > rep.Limits.Plan.ReplayFor+500*time.Millisecond {
		t.Errorf("the replay read for %s, limit %s", b.ReplayFor, rep.Limits.Plan.ReplayFor)
	}
	want := Pass
	if b.Ratio > b.Threshold {
		want = Fail
	}
	if p.Status != want || b.Threshold != DefaultTailRatio {
		t.Errorf("ratio %.2f against %.2f scored %s, want %s", b.Ratio, b.Threshold, p.Status, want)
	}
}

// runProbes runs the given probes alone against brokers, as Run would,
// with cleanup.
func runProbes(t *testing.T, cfg Config, probes ...namedProbe) []Probe {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg = cfg.withDefaults()
	ctx := context.Background()
	r := &run{cfg: cfg, suffix: "t" + strings.ReplaceAll(t.Name(), "/", "-"), budget: newBudget(PlanFor(cfg))}
	if _, _, err := r.apiVersions(ctx, &Report{}); err != nil {
		t.Fatal(err)
	}
	var out []Probe
	for _, np := range probes {
		p := r.runProbe(ctx, np)
		t.Logf("%s: %s (%s) %s", p.Name, p.Status, p.Duration.Round(time.Millisecond), seen(p))
		out = append(out, p)
	}
	for _, c := range r.cleanup(ctx) {
		if strings.HasPrefix(c.Name, "delete") && c.Status != Pass {
			t.Errorf("cleanup %s: %s", c.Name, seen(c))
		}
	}
	if r.budget.records > r.budget.plan.Records {
		t.Errorf("wrote %d records, plan %d", r.budget.records, r.budget.plan.Records)
	}
	return out
}

// TestBurstThresholdFails: with a threshold no tail can meet, the probe
// fails and says by how much.
func TestBurstThresholdFails(t *testing.T) {
	cfg := plainConfig(startKfake(t))
	cfg.tailRatio = 1e-6
	p := runProbes(t, cfg, burstProbes...)[0]
	if p.Status != Fail || !strings.Contains(p.Error, "the replay raised the tail") || !strings.Contains(p.Detail, "pass at most 0.00 x") {
		t.Errorf("%s: %s", p.Status, seen(p))
	}
}

// TestFaultRefusesNonProcess: a pid that is no running process is
// refused before any signal or write.
func TestFaultRefusesNonProcess(t *testing.T) {
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	cfg := plainConfig(startKfake(t))
	cfg.AllowFaults, cfg.FaultPIDs = true, []int{gone.Process.Pid, os.Getpid()}
	ps := runProbes(t, cfg, faultProbes(cfg)...)
	for i, want := range []string{"is not a running process", "is the scorecard itself"} {
		if ps[i].Status != Fail || !strings.Contains(ps[i].Error, want) || ps[i].Detail != "refused: no signal sent" {
			t.Errorf("%s: %s, want a refusal: %s", ps[i].Name, ps[i].Status, seen(ps[i]))
		}
	}
}

// TestFaultNotABroker pauses a process that is not the cluster's
// broker: writes never stall, which the probe reports as undetermined
// rather than as a recovery, and the process is resumed.
func TestFaultNotABroker(t *testing.T) {
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sleeper.Process.Kill()
		sleeper.Wait()
	})
	cfg := plainConfig(startKfake(t))
	cfg.AllowFaults, cfg.FaultPIDs, cfg.FaultPause, cfg.RecoveryTimeout = true, []int{sleeper.Process.Pid}, minFaultPause, 5*time.Second
	p := runProbes(t, cfg, faultProbes(cfg)...)[0]
	if p.Status != Undetermined || !strings.Contains(p.Error, "may not be a broker of this cluster") ||
		!strings.Contains(p.Detail, "SIGSTOP") || !strings.Contains(p.Detail, "0 acknowledged records lost") {
		t.Errorf("%s: %s", p.Status, seen(p))
	}
	if _, err := checkProcess(sleeper.Process.Pid); err != nil {
		t.Errorf("after the probe: %v", err)
	}
}

// TestConfigFaults: faults need both the permission and the processes.
func TestConfigFaults(t *testing.T) {
	base := plainConfig("127.0.0.1:1")
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.FaultPIDs = []int{1234} }, "without allowing faults"},
		{func(c *Config) { c.AllowFaults = true }, "no broker process"},
		{func(c *Config) { c.AllowFaults, c.FaultPIDs = true, []int{1} }, "not a broker's"},
		{func(c *Config) { c.AllowFaults, c.FaultPIDs, c.FaultSignal = true, []int{1234}, "term" }, `fault signal "term"`},
	} {
		c := base
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", c, err, tc.want)
		}
	}
}

// TestMirrorConfigsMissing: a cluster whose DescribeConfigs answers no
// config of a topic fails that check of the migration path (the mirror
// could not copy a compacted topic as compacted), and the others pass.
func TestMirrorConfigsMissing(t *testing.T) {
	c := startKfakeCluster(t)
	c.ControlKey(32, func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.DescribeConfigsRequest)
		resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
		for _, res := range req.Resources {
			rr := kmsg.NewDescribeConfigsResponseResource()
			rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
			resp.Resources = append(resp.Resources, rr)
		}
		return resp, nil, true
	})
	ps := runProbes(t, plainConfig(strings.Join(c.ListenAddrs(), ",")), migrationProbes...)
	for _, p := range ps {
		want := Pass
		if p.Name == "mirror: DescribeConfigs of a topic" {
			want = Fail
			if !strings.Contains(p.Error, "cleanup.policy is not described") || !strings.Contains(p.Detail, "answered 0 configs") {
				t.Errorf("%s: %s", p.Name, seen(p))
			}
		}
		if p.Status != want {
			t.Errorf("%s: %s, want %s: %s", p.Name, p.Status, want, seen(p))
		}
	}
}
