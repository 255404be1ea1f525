package enrich

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/detect"
	"github.com/vigilhq/vigil/internal/intel"
	"github.com/vigilhq/vigil/internal/ocsf"
)

// Config configures a Stage.
type Config struct {
	Brokers []string
	// Group is the consumer group (default "vigil-enrich").
	Group string
	// Topics are the telemetry topics (default: the ocsf.* topics ingest
	// writes); each record goes to OutputPrefix+topic (default
	// "enriched."), in the same partition.
	Topics       []string
	OutputPrefix string
	// AlertsTopic receives the findings of alert sets (default "alerts").
	AlertsTopic string
	// IntelRegex matches the intel topics (default `^intel\.`);
	// AssetsTopic and IdentitiesTopic hold the inventory (default
	// "assets", "identities").
	IntelRegex                   string
	AssetsTopic, IdentitiesTopic string
	// GeoCity and GeoASN are MaxMind databases (either may be empty).
	GeoCity, GeoASN string
	// Workers enrich a batch in parallel (default GOMAXPROCS).
	Workers        int
	MaxPollRecords int
	FromLatest     bool
	SessionTimeout time.Duration
	ShutdownGrace  time.Duration
	// IntelWait bounds how long Run waits at start for the intel and
	// inventory topics to be read up to their ends (default 2m).
	IntelWait  time.Duration
	ClientOpts []kgo.Opt
	Now        func() time.Time
}

func (c *Config) defaults() {
	if c.Group == "" {
		c.Group = "vigil-enrich"
	}
	if len(c.Topics) == 0 {
		for _, cl := range ocsf.Classes() {
			c.Topics = append(c.Topics, cl.Topic)
		}
	}
	if c.OutputPrefix == "" {
		c.OutputPrefix = "enriched."
	}
	if c.AlertsTopic == "" {
		c.AlertsTopic = ocsf.DetectionFinding.Topic
	}
	if c.IntelRegex == "" {
		c.IntelRegex = `^intel\.`
	}
	if c.AssetsTopic == "" {
		c.AssetsTopic = "assets"
	}
	if c.IdentitiesTopic == "" {
		c.IdentitiesTopic = "identities"
	}
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.MaxPollRecords <= 0 {
		c.MaxPollRecords = 2000
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 45 * time.Second
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 15 * time.Second
	}
	if c.IntelWait <= 0 {
		c.IntelWait = 2 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Stats are a Stage's counters.
type Stats struct {
	Records      int64 // records read
	Enriched     int64 // records with at least one enrichment
	Invalid      int64 // records that are not JSON objects (passed on unchanged)
	Findings     int64 // indicator findings written
	IntelApplied int64 // intel and inventory records applied
	IntelBad     int64 // intel and inventory records refused
	Batches      int64
}

// Stage is `vigil enrich`: the group consumer, the intel reader and the
// producer of enriched records and findings.
type Stage struct {
	cfg Config
	log *slog.Logger
	e   *Enricher
	cl  *kgo.Client // group consumer
	pcl *kgo.Client // producer of enriched records
	acl *kgo.Client // producer of findings
	icl *kgo.Client // intel and inventory reader
	adm *kadm.Client

	intelRegex *regexp.Regexp
	workers    []*Worker
	outReady   map[string]int // output topics known to exist, with their partitions

	records, enriched, invalid, findings, applied, bad, batches atomic.Int64
	closeOnce                                                   sync.Once
}

// New opens the GeoIP databases and creates the clients.
func New(cfg Config, log *slog.Logger) (*Stage, error) {
	cfg.defaults()
	re, err := regexp.Compile(cfg.IntelRegex)
	if err != nil {
		return nil, fmt.Errorf("enrich: intel regex: %w", err)
	}
	geo, err := OpenGeoIP(cfg.GeoCity, cfg.GeoASN)
	if err != nil {
		return nil, err
	}
	s := &Stage{cfg: cfg, log: log, intelRegex: re, outReady: map[string]int{},
		e: &Enricher{Geo: geo, Intel: intel.NewIndex(), Assets: NewAssets(), Identities: NewIdentities(),
			AssetsTopic: cfg.AssetsTopic, IdentitiesTopic: cfg.IdentitiesTopic}}
	if cfg.GeoCity == "" && cfg.GeoASN == "" {
		s.e.Geo = nil
	}
	for range cfg.Workers {
		s.workers = append(s.workers, s.e.NewWorker())
	}
	reset := kgo.NewOffset().AtStart()
	if cfg.FromLatest {
		reset = kgo.NewOffset().AtEnd()
	}
	s.cl, err = kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID("vigil-enrich"),
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
	}, cfg.ClientOpts...)...)
	if err != nil {
		geo.Close()
		return nil, fmt.Errorf("enrich: client: %w", err)
	}
	// Enriched records keep their input's partition (ManualPartitioner);
	// findings go through a client of their own, keyed by host like
	// detect's and partitioned by the default partitioner.
	popts := []kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.ClientID("vigil-enrich"), kgo.RequiredAcks(kgo.AllISRAcks())}
	s.pcl, err = kgo.NewClient(append(append(popts, kgo.RecordPartitioner(kgo.ManualPartitioner())), cfg.ClientOpts...)...)
	if err == nil {
		s.acl, err = kgo.NewClient(append(append(popts, kgo.AllowAutoTopicCreation()), cfg.ClientOpts...)...)
		if err != nil {
			s.pcl.Close()
		}
	}
	if err != nil {
		s.cl.Close()
		geo.Close()
		return nil, fmt.Errorf("enrich: producer client: %w", err)
	}
	// The intel reader is no group member: every enricher reads every
	// partition of every intel topic, from the start, and keeps reading.
	s.icl, err = kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID("vigil-enrich-intel"),
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(cfg.IntelRegex, "^"+regexp.QuoteMeta(cfg.AssetsTopic)+"$", "^"+regexp.QuoteMeta(cfg.IdentitiesTopic)+"$"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMaxAge(5 * time.Second),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}, cfg.ClientOpts...)...)
	if err != nil {
		s.cl.Close()
		s.pcl.Close()
		s.acl.Close()
		geo.Close()
		return nil, fmt.Errorf("enrich: intel client: %w", err)
	}
	s.adm = kadm.NewClient(s.pcl)
	return s, nil
}

// Enricher is the stage's enricher (its intel index and tables).
func (s *Stage) Enricher() *Enricher { return s.e }

// Stats returns the counters.
func (s *Stage) Stats() Stats {
	return Stats{Records: s.records.Load(), Enriched: s.enriched.Load(), Invalid: s.invalid.Load(), Findings: s.findings.Load(),
		IntelApplied: s.applied.Load(), IntelBad: s.bad.Load(), Batches: s.batches.Load()}
}

// Close closes the clients and the databases.
func (s *Stage) Close() {
	s.closeOnce.Do(func() {
		s.cl.Close()
		s.icl.Close()
		s.pcl.Close()
		s.acl.Close()
		s.e.Geo.Close()
	})
}

// Run reads the intel topics up to their ends, then enriches until ctx is
// cancelled, finishing the batch in flight (within ShutdownGrace). Intel
// keeps being read while it runs; each batch sees the intel applied
// before it started. It returns an error when enriched records cannot be
// produced (the batch's offsets stay uncommitted).
func (s *Stage) Run(ctx context.Context) error {
	defer s.Close()
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(s.cfg.ShutdownGrace, cancelWork) })
	defer stop()

	var wg sync.WaitGroup
	defer wg.Wait()
	ictx, stopIntel := context.WithCancel(ctx)
	defer stopIntel()
	caughtUp := make(chan struct{})
	wg.Go(func() { s.readIntel(ictx, caughtUp) })
	select {
	case <-caughtUp:
	case <-ctx.Done():
		return nil
	case <-time.After(s.cfg.IntelWait):
		s.log.Warn("intel not read to its end in time; enriching with what is loaded", "wait", s.cfg.IntelWait)
	}
	st := s.e.Intel.Stats()
	s.log.Info("enrich consuming", "group", s.cfg.Group, "topics", s.cfg.Topics, "output_prefix", s.cfg.OutputPrefix,
		"indicators", st.Indicators, "sets", len(st.Sets), "assets", s.e.Assets.Len(), "identities", s.e.Identities.Len())
	var out []*kgo.Record
	for {
		fetches := s.cl.PollRecords(ctx, s.cfg.MaxPollRecords)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			s.cl.AllowRebalance()
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				s.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		recs := fetches.Records()
		if len(recs) == 0 {
			s.cl.AllowRebalance()
			continue
		}
		err := s.ensureOutputs(work, recs)
		if err == nil {
			out = s.enrichBatch(recs, out[:0])
			err = s.commitBatch(work, recs, out)
		}
		clear(out)
		s.cl.AllowRebalance()
		if err != nil {
			if ctx.Err() != nil {
				s.log.Warn("shutdown: batch not committed; its records are enriched again on restart", "records", len(recs), "err", err)
				return nil
			}
			return err
		}
	}
}

// readIntel applies the intel and inventory topics to the index and the
// tables, and closes caughtUp once it has read every partition up to the
// end offsets it saw at start.
func (s *Stage) readIntel(ctx context.Context, caughtUp chan struct{}) {
	ends, err := s.intelEnds(ctx)
	if err != nil {
		s.log.Warn("cannot list the intel topics' end offsets; enriching without waiting for them", "err", err)
		ends = nil
	}
	pending := 0
	for _, ps := range ends {
		for _, end := range ps {
			if end > 0 {
				pending++
			}
		}
	}
	done := false
	check := func() {
		if !done && pending == 0 {
			done = true
			close(caughtUp)
		}
	}
	check()
	for {
		f := s.icl.PollFetches(ctx)
		if f.IsClientClosed() || ctx.Err() != nil {
			return
		}
		f.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				s.log.Warn("intel fetch error", "topic", t, "partition", p, "err", err)
			}
		})
		f.EachRecord(func(r *kgo.Record) {
			s.apply(r)
			if end, ok := ends[r.Topic][r.Partition]; ok && end > 0 && r.Offset >= end-1 {
				ends[r.Topic][r.Partition] = 0
				pending--
			}
		})
		check()
	}
}

func (s *Stage) apply(r *kgo.Record) {
	var err error
	switch {
	case r.Topic == s.cfg.AssetsTopic:
		err = s.e.Assets.Apply(r.Key, r.Value)
	case r.Topic == s.cfg.IdentitiesTopic:
		err = s.e.Identities.Apply(r.Key, r.Value)
	default:
		err = s.e.Intel.Apply(r.Key, r.Value)
	}
	if err != nil {
		if n := s.bad.Add(1); n <= 10 || n%1000 == 0 {
			s.log.Warn("intel record refused", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err, "refused_total", n)
		}
		return
	}
	s.applied.Add(1)
}

// intelEnds lists the end offsets of the intel and inventory topics that
// exist now.
func (s *Stage) intelEnds(ctx context.Context) (map[string]map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	topics, err := s.adm.ListTopics(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, t := range topics.Names() {
		if s.intelRegex.MatchString(t) || t == s.cfg.AssetsTopic || t == s.cfg.IdentitiesTopic {
			names = append(names, t)
		}
	}
	out := map[string]map[int32]int64{}
	if len(names) == 0 {
		return out, nil
	}
	lo, err := s.adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return nil, err
	}
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			return
		}
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	// A partition whose records were all compacted away or deleted ends
	// where it starts: nothing to wait for.
	st, err := s.adm.ListStartOffsets(ctx, names...)
	if err == nil {
		st.Each(func(o kadm.ListedOffset) {
			if o.Err == nil && out[o.Topic][o.Partition] <= o.Offset {
				out[o.Topic][o.Partition] = 0
			}
		})
	}
	return out, nil
}

// ensureOutputs creates the enriched topics a batch needs, with their
// input topic's partition count.
func (s *Stage) ensureOutputs(ctx context.Context, recs []*kgo.Record) error {
	var need []string
	seen := map[string]bool{}
	for _, r := range recs {
		out := s.cfg.OutputPrefix + r.Topic
		if _, ok := s.outReady[out]; ok || seen[r.Topic] {
			continue
		}
		seen[r.Topic] = true
		need = append(need, r.Topic)
	}
	if len(need) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	in, err := s.adm.ListTopics(ctx, need...)
	if err != nil {
		return fmt.Errorf("enrich: describe input topics: %w", err)
	}
	for _, t := range need {
		parts := int32(len(in[t].Partitions))
		out := s.cfg.OutputPrefix + t
		resp, err := s.adm.CreateTopic(ctx, parts, 1, nil, out)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("enrich: create %s: %w", out, err)
		}
		od, err := s.adm.ListTopics(ctx, out)
		if err != nil {
			return fmt.Errorf("enrich: describe %s: %w", out, err)
		}
		if got := int32(len(od[out].Partitions)); got < parts {
			return fmt.Errorf("enrich: %s has %d partitions, fewer than %s's %d: enriched records keep their partition", out, got, t, parts)
		}
		s.outReady[out] = int(parts)
		s.log.Info("output topic ready", "topic", out, "partitions", parts)
	}
	return nil
}

// enrichBatch enriches recs on the workers in parallel and appends, in
// input order, each enriched record and the findings of its alert hits.
func (s *Stage) enrichBatch(recs []*kgo.Record, out []*kgo.Record) []*kgo.Record {
	type result struct {
		rec      *kgo.Record
		findings []*kgo.Record
	}
	res := make([]result, len(recs))
	now := s.cfg.Now()
	n := min(len(s.workers), (len(recs)+63)/64)
	var wg sync.WaitGroup
	s.e.Lock()
	for wi := range n {
		w := s.workers[wi]
		wg.Go(func() {
			for i := wi; i < len(recs); i += n {
				r := recs[i]
				val, err := w.Enrich(nil, r.Value, r.Timestamp)
				if err != nil {
					// Not an event: passed on unchanged, never dropped.
					s.invalid.Add(1)
					val = r.Value
				} else if w.Enrichments > 0 {
					s.enriched.Add(1)
				}
				headers := append(append([]kgo.RecordHeader(nil), r.Headers...), kgo.RecordHeader{Key: detect.OriginHeader, Value: detect.OriginValue(r)})
				res[i].rec = &kgo.Record{Topic: s.cfg.OutputPrefix + r.Topic, Partition: r.Partition, Key: r.Key, Value: val,
					Timestamp: r.Timestamp, Headers: headers}
				for _, a := range w.Alerts {
					v, err := IntelFinding(a, r, val, now).Marshal()
					if err != nil {
						continue
					}
					res[i].findings = append(res[i].findings, &kgo.Record{Topic: s.cfg.AlertsTopic, Key: r.Key, Value: v,
						Headers: []kgo.RecordHeader{{Key: "rule_id", Value: []byte("intel:" + a.Hit.M.Set)},
							{Key: "class_uid", Value: []byte(strconv.Itoa(ocsf.DetectionFinding.UID))}}})
				}
			}
		})
	}
	wg.Wait()
	s.e.Unlock()
	for _, r := range res {
		out = append(out, r.rec)
		out = append(out, r.findings...)
	}
	return out
}

// commitBatch produces the batch's records, waits for every
// acknowledgement, then commits the batch's offsets.
func (s *Stage) commitBatch(ctx context.Context, recs, out []*kgo.Record) error {
	s.records.Add(int64(len(recs)))
	var enriched, findings []*kgo.Record
	for _, r := range out {
		if r.Topic == s.cfg.AlertsTopic {
			findings = append(findings, r)
		} else {
			enriched = append(enriched, r)
		}
	}
	var ferr error
	var wg sync.WaitGroup
	if len(findings) > 0 {
		wg.Go(func() { ferr = s.acl.ProduceSync(ctx, findings...).FirstErr() })
	}
	err := s.pcl.ProduceSync(ctx, enriched...).FirstErr()
	wg.Wait()
	if err == nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("enrich: produce (batch offsets not committed): %w", err)
	}
	nf := len(findings)
	s.findings.Add(int64(nf))
	if nf > 0 {
		s.log.Info("intel findings written", "findings", nf, "records", len(recs), "topic", s.cfg.AlertsTopic)
	}
	if err := s.cl.CommitRecords(ctx, recs...); err != nil {
		s.log.Warn("commit offsets failed; records may be enriched again", "records", len(recs), "err", err)
		return nil
	}
	s.batches.Add(1)
	return nil
}
