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
	if lines := strings.Count(progress.String(), "\n"); lines != 1+len(compatibilityProbes)+len(securityProbes) {
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
		"Burst and replay: not probed by this version", "not estimated: give the workload"} {
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
	if err := Write(&html, rep, HTML); err != nil || !strings.Contains(html.String(), `<td class="missing">missing</td>`) {
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
	rep := scorecard(t, plainConfig(addr))
	p := wantStatus(t, rep.Compatibility, "transactions", Unsupported, "AddPartitionsToTxn is not offered", "EndTxn is not offered")
	if p.Duration != 0 {
		t.Errorf("an unsupported probe ran for %s", p.Duration)
	}
	wantStatus(t, rep.Compatibility, "ApiVersions", Fail, "17 of 21 needed APIs")
	wantStatus(t, rep.Compatibility, "idempotent produce", Pass)
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
	for _, a := range []Area{rep.Compatibility, rep.Security} {
		for _, p := range a.Probes {
			if p.Duration > cfg.ProbeTimeout+500*time.Millisecond {
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
	p := DefaultPlan()
	for _, want := range []string{
		fmt.Sprintf("at most %d records of at most %d bytes each", p.Records, maxValueBytes),
		fmt.Sprintf("%d topics of one partition", p.Topics),
		fmt.Sprintf("`--timeout` (default %.0fs)", DefaultTimeout.Seconds()),
		fmt.Sprintf("`--probe-timeout` (default %.0fs)", DefaultProbeTimeout.Seconds()),
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("docs/scorecard.md lacks %q", want)
		}
	}
}
