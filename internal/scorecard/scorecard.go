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
// a probe behind it; the areas this version does not probe are listed as
// such and never scored.
//
// Limits: every probe runs under its own deadline, all of them under an
// overall one, and the load is a fixed plan of a few hundred small
// records (Plan) that a counter refuses to exceed. What the probes
// create (topics and a consumer group named vigil-scorecard-KIND-SUFFIX)
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
	}
	return nil
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

// NotProbed is an area of the issue this version does not probe.
type NotProbed struct {
	Name string `json:"name"`
	Why  string `json:"why"`
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
	Cost          *CostSummary `json:"cost,omitempty"`
	CostNote      string       `json:"cost_note"`
	NotProbed     []NotProbed  `json:"not_probed"`
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
	start := time.Now()
	plan := DefaultPlan()
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
	p := &progress{w: cfg.Progress, total: len(compatibilityProbes) + len(securityProbes) + 1}

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
	rep.Cleanup = r.cleanup(ctx)
	rep.Cost, rep.CostNote = costOf(cfg.Cost)
	rep.NotProbed = notProbed
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
	if ctx.Err() != nil {
		pr.Status, pr.Detail = NotRun, "the overall time limit was reached before this probe"
		return pr
	}
	if missing := r.versions.lacking(np.needs); missing != "" {
		pr.Status, pr.Detail = Unsupported, missing
		return pr
	}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.ProbeTimeout)
	defer cancel()
	start := time.Now()
	status, detail, err := np.fn(pctx, r)
	pr.Duration = time.Since(start)
	pr.Status, pr.Detail = status, detail
	if err != nil {
		pr.Error = err.Error()
		if pctx.Err() != nil && ctx.Err() == nil {
			pr.Error += fmt.Sprintf(" (the probe's %s limit)", r.cfg.ProbeTimeout)
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

// notProbed are the areas this version leaves out.
var notProbed = []NotProbed{
	{"Burst and replay", "not probed by this version: a bounded, rate-limited burst with a replay running, and the tail latency ratio"},
	{"Failure recovery", "not probed by this version: needs --allow-faults and the broker processes it may signal"},
	{"Migration path", "not probed by this version: whether vigil mirror can read the cluster"},
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
