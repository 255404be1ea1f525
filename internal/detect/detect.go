// Package detect is the streaming mode of `vigil detect`: a consumer group
// over telemetry topics whose records (JSON events) are evaluated by the
// Sigma engine, with every match written to an alerts topic as an OCSF
// Detection Finding.
//
// Delivery is at least once. Auto-commit is off: the offsets of a polled
// batch are committed only after every alert of the batch has been
// acknowledged by the broker (acks=all, idempotent producer). A crash
// between the two re-evaluates the uncommitted records on restart, which
// can write an alert twice (with the same finding_info.uid) but never
// loses one.
//
// Rules are reloaded on Reload (SIGHUP in the binary) and when a poll of
// the rule directories sees a file added, removed or changed; the new
// Engine replaces the old one between batches, and a set that fails to
// load leaves the old one in place.
package detect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/ocsf"
	"github.com/vigilhq/vigil/sigma"
)

// Config configures a Detector.
type Config struct {
	Brokers []string
	// Group is the consumer group (default "vigil-detect").
	Group string
	// Topics are the telemetry topics (default DefaultTopics), or regular
	// expressions when TopicRegex is set.
	Topics     []string
	TopicRegex bool
	// AlertsTopic receives the findings (default "alerts"); it is never
	// consumed, even if a regex matches it.
	AlertsTopic string
	// RuleDirs are Sigma rule files or directories; ConfigPath is an
	// optional sigma YAML config (field mapping, placeholders).
	RuleDirs   []string
	ConfigPath string
	// FromLatest starts a group without committed offsets at the end of
	// each partition instead of its start.
	FromLatest bool
	// SessionTimeout of the group member (default 45s): how long a dead
	// member's partitions wait before another member takes them.
	SessionTimeout time.Duration
	// WatchInterval is how often the rule directories are polled for
	// changes (default 3s; negative disables polling).
	WatchInterval time.Duration
	// MaxPollRecords bounds one batch (default 1000).
	MaxPollRecords int
	// ShutdownGrace is how long the batch in flight may take to finish
	// once Run's context is cancelled (default 15s).
	ShutdownGrace time.Duration
	// ClientOpts are extra franz-go client options (TLS, SASL), given to
	// both the consumer and the alert producer.
	ClientOpts []kgo.Opt
	// Now is the clock of finding times (default time.Now).
	Now func() time.Time
	// StateTopic holds the correlation state (default "detect.state"),
	// one record per snapshot keyed by the group; MaxGroups caps the
	// groups per correlation rule (default sigma.DefaultMaxGroups).
	StateTopic string
	MaxGroups  int
}

// DefaultTopics are the OCSF topics `vigil ingest` writes.
func DefaultTopics() []string {
	var out []string
	for _, c := range ocsf.Classes() {
		out = append(out, c.Topic)
	}
	return out
}

func (c *Config) defaults() {
	if c.Group == "" {
		c.Group = "vigil-detect"
	}
	if len(c.Topics) == 0 {
		c.Topics = DefaultTopics()
	}
	if c.AlertsTopic == "" {
		c.AlertsTopic = ocsf.DetectionFinding.Topic
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 45 * time.Second
	}
	if c.WatchInterval == 0 {
		c.WatchInterval = 3 * time.Second
	}
	if c.MaxPollRecords <= 0 {
		c.MaxPollRecords = 1000
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 15 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.StateTopic == "" {
		c.StateTopic = "detect.state"
	}
}

// Stats are a Detector's counters since it started.
type Stats struct {
	Records        int64 // records evaluated
	Invalid        int64 // records that are not a JSON object
	Alerts         int64 // alerts acknowledged by the broker
	Batches        int64 // batches committed
	Reloads        int64 // successful reloads (not counting the first load)
	ReloadFailures int64 // reloads that kept the previous rules
	Rules          int64 // rules in the current engine
	Correlations   int64 // correlation rules in the current engine
	// CorrelationAlerts are correlation findings acknowledged (also
	// counted in Alerts); StateWrites are correlation snapshots written;
	// Restored is set when the state was read back at start.
	CorrelationAlerts int64
	StateWrites       int64
	Restored          bool
	// Suppressed are matches folded into an earlier finding.
	Suppressed int64
}

// Detector is the consumer loop: poll a batch, evaluate it with one
// Matcher, produce its alerts, commit its offsets.
type Detector struct {
	cfg   Config
	log   *slog.Logger
	cl    *kgo.Client // group consumer
	pcl   *kgo.Client // alert producer (idempotent, acks=all)
	rules atomic.Pointer[ruleSet]

	reload chan struct{}
	// fp is the rule files' fingerprint at the last load (watcher only).
	fp uint64

	records, invalid, alerts, batches, reloads, reloadFailures atomic.Int64
	corrAlerts, stateWrites, suppressed                        atomic.Int64
	restored                                                   atomic.Bool

	// Correlation state (consumer goroutine only): corr follows the
	// current rule set; statePart/stateOff locate the last snapshot
	// written (stateOff < 0: none), which every offset commit names in its
	// metadata; pending is a snapshot read at start, restored into the
	// first correlator.
	corr      *sigma.Correlator
	statePart int32
	stateOff  int64
	pending   []byte

	// Suppression windows (consumer goroutine only), per rule set.
	sup    *Suppressor
	supEng *sigma.Engine

	closeOnce sync.Once
}

// New loads the rules and creates the group client; it does not consume
// until Run.
func New(cfg Config, log *slog.Logger) (*Detector, error) {
	cfg.defaults()
	if len(cfg.RuleDirs) == 0 {
		return nil, errors.New("detect: no rule directory")
	}
	if cfg.TopicRegex {
		for _, t := range cfg.Topics {
			if _, err := regexp.Compile(t); err != nil {
				return nil, fmt.Errorf("detect: topic regex %q: %w", t, err)
			}
		}
	}
	d := &Detector{cfg: cfg, log: log, reload: make(chan struct{}, 1), stateOff: -1}
	fp, fpErr := fingerprint(cfg.RuleDirs, cfg.ConfigPath)
	eng, problems, err := LoadEngine(cfg.RuleDirs, cfg.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("detect: load rules: %w", err)
	}
	if fpErr == nil {
		d.fp = fp
	}
	d.install(&ruleSet{eng: eng, gen: 1, problems: problems}, "start")

	reset := kgo.NewOffset().AtStart()
	if cfg.FromLatest {
		reset = kgo.NewOffset().AtEnd()
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID("vigil-detect"),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics...),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, cfg.SessionTimeout/3)),
		kgo.ConsumeResetOffset(reset),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			log.Info("partitions assigned", "partitions", m)
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			log.Info("partitions revoked", "partitions", m)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			log.Warn("partitions lost", "partitions", m)
		}),
	}
	if cfg.TopicRegex {
		opts = append(opts, kgo.ConsumeRegex(), kgo.ConsumeExcludeTopics("^"+regexp.QuoteMeta(cfg.AlertsTopic)+"$"))
	}
	cl, err := kgo.NewClient(append(opts, cfg.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("detect: client: %w", err)
	}
	// Alerts go through their own client: it may auto-create the alerts
	// topic, which the consumer must not do to the telemetry topics.
	pcl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID("vigil-detect"),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.AllowAutoTopicCreation(),
	}, cfg.ClientOpts...)...)
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("detect: producer client: %w", err)
	}
	d.cl, d.pcl = cl, pcl
	return d, nil
}

// install makes rs the current rule set and logs what it holds.
func (d *Detector) install(rs *ruleSet, why string) {
	d.rules.Store(rs)
	notLoaded, noSource := SplitProblems(rs.problems)
	unsupported := 0
	for _, p := range notLoaded {
		if errors.Is(p.Err, sigma.ErrUnsupported) {
			unsupported++
		}
		d.log.Debug("rule not loaded", "path", p.Path, "id", p.ID, "err", p.Err)
	}
	// A rule no source serves would stay silent: say so, by name, at
	// every load (the first ones as warnings, the rest at debug).
	for i, p := range noSource {
		level := slog.LevelWarn
		if i >= maxNoSourceWarnings {
			level = slog.LevelDebug
		}
		d.log.Log(context.Background(), level, NoSourceLine(p))
	}
	if len(noSource) > maxNoSourceWarnings {
		d.log.Warn(fmt.Sprintf("... and %d more rules match no configured source (--log-level debug lists them)", len(noSource)-maxNoSourceWarnings))
	}
	d.log.Info("rules loaded", "why", why, "generation", rs.gen, "rules", rs.eng.Stats().Rules, "correlations", rs.eng.Stats().Correlations,
		"no_source", len(noSource), "not_loaded", len(notLoaded), "unsupported", unsupported, "reasons", Summary(notLoaded))
}

// maxNoSourceWarnings bounds the rules named one by one at warn level.
const maxNoSourceWarnings = 20

// Reload asks for the rules to be reloaded (SIGHUP); it does not wait.
func (d *Detector) Reload() {
	select {
	case d.reload <- struct{}{}:
	default:
	}
}

// Stats returns the counters.
func (d *Detector) Stats() Stats {
	return Stats{
		Records: d.records.Load(), Invalid: d.invalid.Load(), Alerts: d.alerts.Load(), Batches: d.batches.Load(),
		Reloads: d.reloads.Load(), ReloadFailures: d.reloadFailures.Load(), Rules: int64(d.rules.Load().eng.Stats().Rules),
		Correlations: int64(d.rules.Load().eng.Stats().Correlations), CorrelationAlerts: d.corrAlerts.Load(),
		StateWrites: d.stateWrites.Load(), Restored: d.restored.Load(), Suppressed: d.suppressed.Load(),
	}
}

// Close leaves the group and closes the clients (nothing is committed).
func (d *Detector) Close() {
	d.closeOnce.Do(func() {
		d.cl.Close()
		d.pcl.Close()
	})
}

// Run consumes until ctx is cancelled, then finishes the batch in flight
// (within ShutdownGrace) and closes the client. It returns an error when
// alerts cannot be produced (the batch's offsets stay uncommitted).
func (d *Detector) Run(ctx context.Context) error {
	defer d.Close()
	// The batch in flight outlives ctx by up to ShutdownGrace, so a
	// shutdown does not abandon produced-but-uncommitted work needlessly.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(d.cfg.ShutdownGrace, cancelWork) })
	defer stop()

	var wg sync.WaitGroup
	defer wg.Wait()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch() // before wg.Wait: Run may return with ctx still live
	wg.Go(func() { d.watch(wctx) })

	if d.rules.Load().eng.Stats().Correlations > 0 {
		if err := d.loadState(work); err != nil {
			return err
		}
	}
	d.log.Info("detect consuming", "group", d.cfg.Group, "topics", d.cfg.Topics, "regex", d.cfg.TopicRegex, "alerts_topic", d.cfg.AlertsTopic)
	var cur *ruleSet
	var m *sigma.Matcher
	var out []*kgo.Record
	for {
		// With suppression windows open, a poll returns after a while
		// without records, so an idle partition's windows close.
		pctx, pcancel := ctx, context.CancelFunc(func() {})
		if d.sup != nil && d.sup.Open() > 0 {
			pctx, pcancel = context.WithTimeout(ctx, 5*time.Second)
		}
		fetches := d.cl.PollRecords(pctx, d.cfg.MaxPollRecords)
		pcancel()
		if fetches.IsClientClosed() || ctx.Err() != nil {
			d.cl.AllowRebalance()
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				d.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		recs := fetches.Records()
		if len(recs) == 0 {
			if d.sup != nil && d.rules.Load() == cur {
				if out = d.sup.Expire(time.Now(), true, out[:0], d.cfg.AlertsTopic); len(out) > 0 {
					err := d.commitBatch(work, nil, out, cur.gen)
					clear(out)
					if err != nil && ctx.Err() == nil {
						d.cl.AllowRebalance()
						return err
					}
				}
			}
			d.cl.AllowRebalance()
			continue
		}
		// Rules are swapped only here, between batches.
		if rs := d.rules.Load(); rs != cur {
			cur, m = rs, rs.eng.NewMatcher()
			d.swapCorrelator(rs.eng)
		}
		out = d.evaluate(cur.eng, m, recs, out[:0])
		err := d.commitBatch(work, recs, out, cur.gen)
		clear(out) // drop references to the alert values
		d.cl.AllowRebalance()
		if err != nil {
			if ctx.Err() != nil {
				d.log.Warn("shutdown: batch not committed; its records are evaluated again on restart", "records", len(recs), "err", err)
				return nil
			}
			return err
		}
	}
}

// evaluate appends the alerts of recs to out (Evaluator.Record, the code
// retro-hunts share) and the correlation state snapshot last if it
// changed.
func (d *Detector) evaluate(eng *sigma.Engine, m *sigma.Matcher, recs []*kgo.Record, out []*kgo.Record) []*kgo.Record {
	if d.supEng != eng {
		// A new rule set: the open windows close (their updates are
		// written) and the new set starts its own.
		if d.sup != nil {
			out = d.sup.Flush(time.Now(), out, d.cfg.AlertsTopic)
		}
		d.sup, d.supEng = NewSuppressor(eng), eng
	}
	ev := Evaluator{Engine: eng, Matcher: m, Corr: d.corr, Suppress: d.sup, AlertsTopic: d.cfg.AlertsTopic, Now: d.cfg.Now(), Log: d.log}
	for _, r := range recs {
		if r.Topic == d.cfg.AlertsTopic {
			continue
		}
		d.records.Add(1)
		var ok bool
		out, ok = ev.Record(r, out)
		if !ok {
			if n := d.invalid.Add(1); n <= 10 || n%1000 == 0 {
				d.log.Warn("record is not a JSON event; skipped", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", ev.Err, "invalid_total", n)
			}
		}
	}
	if d.sup != nil {
		out = d.sup.Expire(time.Now(), true, out, d.cfg.AlertsTopic)
	}
	d.suppressed.Add(ev.Suppressed)
	if d.corr != nil && d.corr.Changed() {
		if snap := d.corr.Snapshot(); len(snap) <= maxStateBytes {
			out = append(out, &kgo.Record{Topic: d.cfg.StateTopic, Key: []byte(d.cfg.Group), Value: snap})
		} else {
			d.log.Error("correlation state too large to write; a restart loses the windows since the last snapshot",
				"bytes", len(snap), "max", maxStateBytes, "groups", d.corr.Groups())
		}
	}
	return out
}

// Evaluator turns telemetry records into finding records: the code the
// streaming detector and `vigil hunt` share, so the same rules over the
// same records give the same findings, byte for byte (Alert is a
// function of the rule and the record).
type Evaluator struct {
	Engine  *sigma.Engine
	Matcher *sigma.Matcher
	// Corr, if set, is fed every match (event time: the record timestamp).
	Corr *sigma.Correlator
	// Suppress, if set, folds the identical findings of rules with a
	// suppression entry (suppress.go).
	Suppress    *Suppressor
	AlertsTopic string
	// Now stands in for a record without a timestamp.
	Now time.Time
	Log *slog.Logger
	// Err is why the last record that returned false is not an event.
	Err error
	// Suppressed counts the matches folded into an earlier finding.
	Suppressed int64

	cms []sigma.CorrelationMatch
}

// Expire closes the suppression windows whose partition's records are
// past their end (event time) and appends their updates to out.
func (ev *Evaluator) Expire(out []*kgo.Record) []*kgo.Record {
	if ev.Suppress == nil {
		return out
	}
	return ev.Suppress.Expire(time.Now(), false, out, ev.AlertsTopic)
}

// Flush closes every suppression window (the end of a hunt) and appends
// their updates to out.
func (ev *Evaluator) Flush(out []*kgo.Record) []*kgo.Record {
	if ev.Suppress == nil {
		return out
	}
	return ev.Suppress.Flush(time.Now(), out, ev.AlertsTopic)
}

// Record appends the finding records of r to out: one per match of a rule
// that generates alerts, one per correlation that fires. It returns false
// when r's value is not a JSON event (nothing is appended).
func (ev *Evaluator) Record(r *kgo.Record, out []*kgo.Record) ([]*kgo.Record, bool) {
	matches, err := ev.Matcher.Match(r.Value)
	if err != nil {
		ev.Err = err
		return out, false
	}
	if ev.Suppress != nil {
		ev.Suppress.seen(r)
	}
	// matches is reused by the next Match: build every alert now.
	if ev.Corr != nil && len(matches) > 0 {
		at := r.Timestamp
		if at.IsZero() {
			at = ev.Now
		}
		ev.cms = ev.cms[:0]
		for _, rule := range matches {
			ev.cms = ev.Corr.Observe(rule, at, ev.Matcher, ev.cms)
		}
		for _, cm := range ev.cms {
			v, err := CorrelationAlert(cm, r, ev.Now).Marshal()
			if err != nil {
				ev.Log.Error("encode correlation alert", "rule", cm.Rule.ID, "err", err)
				continue
			}
			out = append(out, &kgo.Record{
				Topic: ev.AlertsTopic,
				Key:   r.Key,
				Value: v,
				Headers: []kgo.RecordHeader{
					{Key: "rule_id", Value: []byte(cm.Rule.ID)},
					{Key: "class_uid", Value: []byte(strconv.Itoa(ocsf.DetectionFinding.UID))},
					{Key: "correlation", Value: []byte(cm.Rule.Correlation.Type)},
				},
			})
		}
	}
	for _, rule := range matches {
		if !ev.Engine.Generates(rule) {
			continue // referenced by correlations with generate: false
		}
		var sup map[string]any
		if s := ev.Engine.Suppression(rule); s != nil && ev.Suppress != nil {
			var emit bool
			var vals []string
			emit, vals, out = ev.Suppress.observe(rule, s, r, ev.Matcher, time.Now(), out, ev.AlertsTopic)
			if !emit {
				ev.Suppressed++
				continue
			}
			sup = suppressionInfo(s, vals)
		}
		a := Alert(rule, r, ev.Now)
		if sup != nil {
			a["unmapped"].(map[string]any)["suppression"] = sup
		}
		v, err := a.Marshal()
		if err != nil { // only JSON values and strings: not expected
			ev.Log.Error("encode alert", "rule", rule.ID, "err", err)
			continue
		}
		out = append(out, &kgo.Record{
			Topic: ev.AlertsTopic,
			Key:   r.Key,
			Value: v,
			Headers: []kgo.RecordHeader{
				{Key: "rule_id", Value: []byte(rule.ID)},
				{Key: "class_uid", Value: []byte(strconv.Itoa(ocsf.DetectionFinding.UID))},
			},
		})
	}
	return out, true
}

// commitBatch produces a batch's alerts, waits for every acknowledgement,
// and only then commits the batch's offsets.
func (d *Detector) commitBatch(ctx context.Context, recs, alerts []*kgo.Record, gen int) error {
	if len(alerts) > 0 {
		res := d.pcl.ProduceSync(ctx, alerts...)
		if err := res.FirstErr(); err != nil {
			return fmt.Errorf("detect: produce alerts (batch offsets not committed): %w", err)
		}
		n, corrs := 0, 0
		for _, r := range res {
			switch {
			case r.Record.Topic == d.cfg.StateTopic:
				d.statePart, d.stateOff = r.Record.Partition, r.Record.Offset
				d.stateWrites.Add(1)
			default:
				n++
				if slices.ContainsFunc(r.Record.Headers, func(h kgo.RecordHeader) bool { return h.Key == "correlation" }) {
					corrs++
				}
			}
		}
		d.alerts.Add(int64(n))
		d.corrAlerts.Add(int64(corrs))
		if n > 0 {
			d.log.Info("alerts written", "alerts", n, "correlation_alerts", corrs, "records", len(recs), "topic", d.cfg.AlertsTopic, "generation", gen)
		}
	}
	if len(recs) == 0 {
		return nil // suppression updates of an idle poll: nothing to commit
	}
	if d.stateOff >= 0 {
		// The commit names the snapshot that includes this batch, so the
		// committed offsets and the state read back at start agree.
		md := stateMetadata(d.statePart, d.stateOff)
		ctx = kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
			for i := range req.Topics {
				for j := range req.Topics[i].Partitions {
					req.Topics[i].Partitions[j].Metadata = &md
				}
			}
			return nil
		})
	}
	if err := d.cl.CommitRecords(ctx, recs...); err != nil {
		// The alerts are durable; an uncommitted offset only means the
		// records are evaluated again after a restart or rebalance.
		d.log.Warn("commit offsets failed; records may be evaluated again", "records", len(recs), "err", err)
		return nil
	}
	d.batches.Add(1)
	return nil
}

// watch reloads rules on Reload and when the rule files change.
func (d *Detector) watch(ctx context.Context) {
	var tick <-chan time.Time
	if d.cfg.WatchInterval > 0 {
		t := time.NewTicker(d.cfg.WatchInterval)
		defer t.Stop()
		tick = t.C
	}
	warned := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.reload:
			d.doReload("reload requested")
		case <-tick:
			fp, err := fingerprint(d.cfg.RuleDirs, d.cfg.ConfigPath)
			if err != nil {
				if !warned {
					d.log.Warn("cannot scan the rule directories; keeping the current rules", "err", err)
					warned = true
				}
				continue
			}
			warned = false
			if fp != d.fp {
				d.doReload("rule files changed")
			}
		}
	}
}

func (d *Detector) doReload(why string) {
	start := time.Now()
	if fp, err := fingerprint(d.cfg.RuleDirs, d.cfg.ConfigPath); err == nil {
		// Taken before loading: a change made during the load is seen by
		// the next poll. A failed load is retried on the next change.
		d.fp = fp
	}
	eng, problems, err := LoadEngine(d.cfg.RuleDirs, d.cfg.ConfigPath)
	if err != nil {
		d.reloadFailures.Add(1)
		d.log.Error("rules reload failed; keeping the previous rules", "why", why, "err", err, "generation", d.rules.Load().gen)
		return
	}
	d.install(&ruleSet{eng: eng, gen: d.rules.Load().gen + 1, problems: problems}, why)
	d.reloads.Add(1)
	d.log.Info("rules reloaded", "why", why, "took", time.Since(start).Round(time.Millisecond))
}
