// Package scorecard probes a Kafka-compatible cluster (Vigil or any
// other) for what a security pipeline needs of it, and reports what it
// saw: `vigil scorecard`.
//
// A scorecard is a list of probes, each of which really talks to the
// cluster over the Kafka protocol (franz-go) and reports pass, fail,
// unsupported (the API is not offered), missing (the API answers that the
// feature is turned off), undetermined (the answer does not settle the
// question, and why) or not run (the time limit came first), with how
// long it took and what it saw. No line of the report is written without
// a probe behind it; failure recovery, which signals broker processes,
// runs only when the user allows it and names them, and is otherwise
// listed as not run with how to enable it.
//
// Limits: every probe runs under its own deadline, all of them under an
// overall one, and the load is a fixed plan of a few thousand small
// records (PlanFor) that a counter refuses to exceed. What the probes
// create (topics and consumer groups named vigil-scorecard-KIND-SUFFIX)
// is deleted at the end, inside the overall limit; a transactional id
// cannot be deleted over the protocol and is listed as left behind.
// Probes run one after another, so the cluster sees one client's load at
// a time and the counters need no locking.
package scorecard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/cost"
)

// Status is a probe's outcome.
type Status string

// The outcomes a probe can have.
const (
	Pass         Status = "pass"
	Fail         Status = "fail"
	Unsupported  Status = "unsupported"  // an API the probe needs is not offered, or too old
	Missing      Status = "missing"      // the API answers that the feature is off (SECURITY_DISABLED)
	Undetermined Status = "undetermined" // the cluster's answers do not settle the question
	NotRun       Status = "not run"      // the overall time limit came first
)

// Defaults of the limits.
const (
	DefaultTimeout      = 60 * time.Second
	DefaultProbeTimeout = 15 * time.Second
	// DefaultFaultPause is how long a paused broker stays stopped, and
	// DefaultRecoveryTimeout how long after the fault the failure
	// recovery probe waits for every partition to accept writes again.
	DefaultFaultPause      = 5 * time.Second
	DefaultRecoveryTimeout = 30 * time.Second
)

// The fault signals the failure recovery probe knows.
const (
	FaultStop = "stop" // SIGSTOP for FaultPause, then SIGCONT
	FaultKill = "kill" // SIGKILL: only for a broker something restarts
)

// Config is what Run needs.
type Config struct {
	Brokers []string
	// Protocol is the listener's security protocol as the user gave it
	// (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), Principal how the
	// credentials will be named in the report ("User:alice").
	Protocol  string
	Principal string
	// ClientOpts carry the TLS dialer and SASL mechanism of the given
	// credentials; AnonymousOpts the same TLS without SASL or a client
	// certificate: the anonymous client of the security probes.
	ClientOpts    []kgo.Opt
	AnonymousOpts []kgo.Opt
	// Timeout bounds the whole run, cleanup included; ProbeTimeout each
	// probe.
	Timeout, ProbeTimeout time.Duration
	// Cost, when set, is priced with the cost model and its totals
	// reported; nil reports how to get them.
	Cost *cost.Inputs
	// Progress gets one line per probe; nil for none.
	Progress io.Writer

	// AllowFaults with FaultPIDs lets the failure recovery probe signal
	// those processes (the brokers of the cluster), one after another:
	// FaultSignal FaultStop (the default) pauses each for FaultPause,
	// FaultKill kills it. The probe never starts a process: after a kill,
	// something else (systemd, Kubernetes) must restart the broker.
	// RecoveryTimeout bounds the wait for the cluster to take writes on
	// every partition again.
	AllowFaults     bool
	FaultPIDs       []int
	FaultSignal     string
	FaultPause      time.Duration
	RecoveryTimeout time.Duration

	// tailRatio overrides DefaultTailRatio, the burst and replay
	// probe's pass threshold (tests set it impossibly low); noBurst
	// leaves that probe out (tests about other areas spare its 7 s).
	tailRatio float64
	noBurst   bool
}

// ErrUnreachable is Run's error when no broker answered ApiVersions with
// the given settings: there is no cluster to score.
var ErrUnreachable = errors.New("cluster unreachable")

// Validate checks the settings Run relies on.
func (c Config) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("no brokers given")
	case c.Timeout <= 0:
		return fmt.Errorf("time limit %s: must be positive", c.Timeout)
	case c.ProbeTimeout <= 0:
		return fmt.Errorf("probe time limit %s: must be positive", c.ProbeTimeout)
	case c.ProbeTimeout > c.Timeout:
		return fmt.Errorf("probe time limit %s is above the overall limit %s", c.ProbeTimeout, c.Timeout)
	case len(c.FaultPIDs) > 0 && !c.AllowFaults:
		return errors.New("broker processes to signal were given without allowing faults")
	case c.AllowFaults && len(c.FaultPIDs) == 0:
		return errors.New("faults are allowed but no broker process to signal was given")
	case c.FaultSignal != "" && c.FaultSignal != FaultStop && c.FaultSignal != FaultKill:
		return fmt.Errorf("fault signal %q: want %s or %s", c.FaultSignal, FaultStop, FaultKill)
	case c.FaultPause < 0 || (c.FaultPause > 0 && c.FaultPause < minFaultPause):
		return fmt.Errorf("fault pause %s: must be at least %s (a shorter one may not stall any write)", c.FaultPause, minFaultPause)
	case c.RecoveryTimeout < 0:
		return fmt.Errorf("recovery time limit %s: must be positive", c.RecoveryTimeout)
	}
	for _, pid := range c.FaultPIDs {
		if pid <= 1 {
			return fmt.Errorf("process id %d: not a broker's", pid)
		}
	}
	return nil
}

// faultLimit is a fault probe's own deadline: the writes before the
// fault, the pause, the wait for recovery and the writes after it, and a
// probe's time for the set-up and the read back.
func (c Config) faultLimit() time.Duration {
	c = c.withDefaults()
	return c.ProbeTimeout + faultLead + c.pause() + c.RecoveryTimeout + faultSettle
}

// pause is how long a fault keeps a broker stopped: none for a kill.
func (c Config) pause() time.Duration {
	if c.FaultSignal == FaultKill {
		return 0
	}
	return c.FaultPause
}

// TimeoutFor is the overall limit a run with c's faults needs at most:
// DefaultTimeout for the probes without faults, and each fault probe's
// own limit. vigil scorecard uses it when --timeout is not given.
func TimeoutFor(c Config) time.Duration {
	if !c.AllowFaults {
		return DefaultTimeout
	}
	return DefaultTimeout + time.Duration(len(c.FaultPIDs))*c.faultLimit()
}

// withDefaults fills in the fault settings left zero.
func (c Config) withDefaults() Config {
	if c.FaultSignal == "" {
		c.FaultSignal = FaultStop
	}
	if c.FaultPause == 0 {
		c.FaultPause = DefaultFaultPause
	}
	if c.RecoveryTimeout == 0 {
		c.RecoveryTimeout = DefaultRecoveryTimeout
	}
	if c.tailRatio == 0 {
		c.tailRatio = DefaultTailRatio
	}
	return c
}

// Probe is one probe's line of the report.
type Probe struct {
	Name     string        `json:"name"`
	Status   Status        `json:"status"`
	Detail   string        `json:"detail"`          // what was seen
	Error    string        `json:"error,omitempty"` // the error, for fail and undetermined
	Duration time.Duration `json:"duration_ns"`
}

// Area is a scored group of probes.
type Area struct {
	Name   string  `json:"name"`
	Probes []Probe `json:"probes"`
	Passed int     `json:"passed"`
	Scored int     `json:"scored"` // probes that ran or were found unsupported or missing
}

// Limits are what the run promised before it started.
type Limits struct {
	Timeout      time.Duration `json:"timeout_ns"`
	ProbeTimeout time.Duration `json:"probe_timeout_ns"`
	Plan         Plan          `json:"plan"`
}

// Load is what the run actually wrote.
type Load struct {
	Records int `json:"records"`
	Bytes   int `json:"bytes"`
	Topics  int `json:"topics"`
	Groups  int `json:"groups"`
}

// CostSummary is the cost model's answer for the given workload.
type CostSummary struct {
	Inputs     cost.Workload `json:"workload"`
	VigilTotal float64       `json:"vigil_total_usd"`
	KafkaTotal float64       `json:"kafka_total_usd"`
	VigilTerms []cost.Term   `json:"vigil_terms"`
	KafkaTerms []cost.Term   `json:"kafka_terms"`
}

// Report is a scorecard.
type Report struct {
	Brokers   []string      `json:"brokers"`
	Protocol  string        `json:"protocol"`
	Principal string        `json:"principal"`
	Started   time.Time     `json:"started"`
	Duration  time.Duration `json:"duration_ns"`
	Limits    Limits        `json:"limits"`
	Load      Load          `json:"load"`
	// Guess is franz-go's guess of the Kafka version the ApiVersions
	// answer looks like.
	Guess         string       `json:"kafka_version_guess"`
	Answering     int          `json:"brokers_answering"`
	APIs          []API        `json:"apis"`
	OtherAPIs     []string     `json:"other_apis"` // offered, not in the needs table
	Compatibility Area         `json:"api_compatibility"`
	Security      Area         `json:"security_boundary"`
	Migration     Area         `json:"migration_path"`
	Burst         Area         `json:"burst_replay"`
	BurstFigures  *Burst       `json:"burst_figures,omitempty"`
	Recovery      Area         `json:"failure_recovery"`
	Cost          *CostSummary `json:"cost,omitempty"`
	CostNote      string       `json:"cost_note"`
	Cleanup       []Probe      `json:"cleanup"`
}

// run is one scorecard run's state, passed to every probe.
type run struct {
	cfg      Config
	suffix   string
	versions versions
	budget   *budget
	topics   []string // created, or whose create may have happened: deleted at cleanup
	groups   []string
	txnIDs   []string
	mirror   *mirrorSetup // what the migration path's checks read
	burst    *Burst       // the burst and replay probe's figures
}

// name is the name of a throwaway resource of this run.
func (r *run) name(kind string) string { return "vigil-scorecard-" + kind + "-" + r.suffix }

// client is a franz-go client with the given credentials.
func (r *run) client(extra ...kgo.Opt) (*kgo.Client, error) {
	return r.clientWith(r.cfg.ClientOpts, extra...)
}

func (r *run) clientWith(sec []kgo.Opt, extra ...kgo.Opt) (*kgo.Client, error) {
	// No RecordDeliveryTimeout: franz-go measures it from the record's
	// timestamp, which some probes set in the past; the probe's context
	// bounds a produce instead.
	opts := []kgo.Opt{kgo.SeedBrokers(r.cfg.Brokers...), kgo.ClientID("vigil-scorecard")}
	opts = append(opts, sec...)
	opts = append(opts, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("new client: %w", err)
	}
	return cl, nil
}

// Run probes the cluster and returns the report. Its error is a bad
// Config, or ErrUnreachable (wrapped with the cause) when no broker
// answered ApiVersions; every other failure is a line of the report, and
// a ctx that ends early leaves the probes it did not reach as not run.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	start := time.Now()
	plan := PlanFor(cfg)
	rep := &Report{Brokers: cfg.Brokers, Protocol: cfg.Protocol, Principal: cfg.Principal, Started: start.UTC(),
		Limits: Limits{Timeout: cfg.Timeout, ProbeTimeout: cfg.ProbeTimeout, Plan: plan}}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	// Cleanup keeps a share of the overall limit, so what the probes
	// created is deleted even when they ran long.
	reserve := min(5*time.Second, cfg.Timeout/6)
	probeCtx, cancelProbes := context.WithDeadline(ctx, start.Add(cfg.Timeout-reserve))
	defer cancelProbes()

	suffix, err := randomSuffix()
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, suffix: suffix, budget: newBudget(plan)}
	faults := faultProbes(cfg)
	p := &progress{w: cfg.Progress, total: 1 + len(compatibilityProbes) + len(securityProbes) + len(migrationProbes) + len(burstProbes) + len(faults)}

	apis, av, err := r.apiVersions(probeCtx, rep)
	if err != nil {
		return nil, err
	}
	p.line(av)
	rep.APIs = apis
	rep.Compatibility = r.area(probeCtx, "API compatibility", compatibilityProbes, p)
	rep.Compatibility.Probes = append([]Probe{av}, rep.Compatibility.Probes...)
	rep.Compatibility.Scored++
	if av.Status == Pass {
		rep.Compatibility.Passed++
	}
	rep.Security = r.area(probeCtx, "Security boundary", securityProbes, p)
	rep.Migration = r.area(probeCtx, "Migration path", migrationProbes, p)
	burst := burstProbes
	if cfg.noBurst {
		burst = []namedProbe{{name: burstProbes[0].name, skip: "left out by the test"}}
	}
	rep.Burst = r.area(probeCtx, "Burst and replay", burst, p)
	rep.BurstFigures = r.burst
	// Faults last: a broker that comes back slowly, or not at all, then
	// disturbs no other probe.
	rep.Recovery = r.area(probeCtx, "Failure recovery", faults, p)
	rep.Cleanup = r.cleanup(ctx)
	rep.Cost, rep.CostNote = costOf(cfg.Cost)
	rep.Load = Load{Records: r.budget.records, Bytes: r.budget.bytes, Topics: len(r.topics), Groups: len(r.groups)}
	rep.Duration = time.Since(start)
	return rep, nil
}

// probeFunc is one probe: its outcome, what it saw, and its error.
type probeFunc func(ctx context.Context, r *run) (Status, string, error)

// namedProbe is a probe with its name and the APIs it needs.
type namedProbe struct {
	name  string
	needs []int16 // API keys, checked against the needs table's minimum versions
	fn    probeFunc
	// limit is the probe's own deadline when ProbeTimeout is not it (a
	// load that runs for a set time, a fault); nil for ProbeTimeout.
	limit func(Config) time.Duration
	// skip, when it returns a reason, reports the probe as not run
	// with it instead of running it.
	skip string
}

// area runs probes one after another, each under its own deadline.
func (r *run) area(ctx context.Context, name string, probes []namedProbe, p *progress) Area {
	a := Area{Name: name}
	for _, np := range probes {
		pr := r.runProbe(ctx, np)
		p.line(pr)
		a.Probes = append(a.Probes, pr)
		if pr.Status != NotRun {
			a.Scored++
		}
		if pr.Status == Pass {
			a.Passed++
		}
	}
	return a
}

func (r *run) runProbe(ctx context.Context, np namedProbe) Probe {
	pr := Probe{Name: np.name}
	if np.skip != "" {
		pr.Status, pr.Detail = NotRun, np.skip
		return pr
	}
	if ctx.Err() != nil {
		pr.Status, pr.Detail = NotRun, "the overall time limit was reached before this probe"
		return pr
	}
	if missing := r.versions.lacking(np.needs); missing != "" {
		pr.Status, pr.Detail = Unsupported, missing
		return pr
	}
	limit := r.cfg.ProbeTimeout
	if np.limit != nil {
		limit = np.limit(r.cfg)
	}
	pctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	start := time.Now()
	status, detail, err := np.fn(pctx, r)
	pr.Duration = time.Since(start)
	pr.Status, pr.Detail = status, detail
	if err != nil {
		pr.Error = err.Error()
		if pctx.Err() != nil && ctx.Err() == nil {
			pr.Error += fmt.Sprintf(" (the probe's %s limit)", limit)
		}
	}
	return pr
}

// progress writes one line per probe.
type progress struct {
	w     io.Writer
	n     int
	total int
}

func (p *progress) line(pr Probe) {
	p.n++
	if p.w == nil {
		return
	}
	msg := pr.Detail
	if pr.Error != "" {
		msg = pr.Error
	}
	fmt.Fprintf(p.w, "scorecard: [%d/%d] %s: %s (%s) %s\n", p.n, p.total, pr.Name, pr.Status, pr.Duration.Round(time.Millisecond), truncate(msg, 160))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func randomSuffix() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random suffix: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// costOf prices the workload, or says how to.
func costOf(in *cost.Inputs) (*CostSummary, string) {
	if in == nil {
		return nil, "not estimated: give the workload (--ingest-gb-per-day N, and --retention-days, --replay-fraction, --fanout, --zones as needed), or run vigil cost"
	}
	rep, err := cost.Estimate(*in)
	if err != nil {
		return nil, fmt.Sprintf("not estimated: %v", err)
	}
	return &CostSummary{Inputs: in.Workload, VigilTotal: rep.Vigil.Total, KafkaTotal: rep.Kafka.Total,
			VigilTerms: rep.Vigil.Terms, KafkaTerms: rep.Kafka.Terms},
		"from the cost model (docs/cost.md) with the given workload and its default prices: arithmetic, not measured on this cluster"
}

// sleep waits d unless ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
