package mirror

// The mirror itself (`vigil mirror`, Mirror): topics copied from another
// Kafka-compatible cluster onto Vigil with their offsets kept.
//
// How offsets are kept. Each partition is fetched from the source as raw
// record batches at read_uncommitted (kmsg Fetch, not a consumer, so
// control batches and aborted data come as they are stored), and the
// batches are sent to Vigil unchanged in Produce requests over a
// connection whose client.id is ClientID. Vigil takes those only on a
// mirror topic (the topic config storage.MirrorSourceConfig, which the
// mirror sets when it creates the topic), and appends each batch at the
// base offset it carries (partition.Log.AppendMirror): offsets, keys,
// headers, timestamps, codecs and batch boundaries are the source's;
// offsets compaction removed stay gaps; transaction markers update the
// last stable offset and the aborted index as Vigil's own markers do; a
// batch sent again after a lost answer is recognised and acknowledged.
// kgo's producer cannot choose offsets, hence the raw requests; they go to
// each partition's leader by metadata, like any client's.
//
// Where a partition resumes. Vigil's high watermark is the copy's only
// state: a partition copies from there (or from the source's log start,
// when that is beyond it), so a mirror stopped at any point, killed or
// run again from another host, continues where Vigil's log ends, and a
// batch whose answer was lost is sent again and recognised.
//
// What else follows the source, every Interval:
//   - new topics the pattern matches, and new partitions;
//   - the log start (DeleteRecords on Vigil up to the source's log start,
//     as far as copied): retention and the cleaner leave mirror topics
//     alone, the source's are copied;
//   - committed group offsets (OffsetFetch on the source, OffsetCommit on
//     Vigil), for the mirrored topics, each only once Vigil holds the
//     offset, and never for a group with members on Vigil (the consumers
//     moved: their commits win) or for a promoted topic;
//   - topic configs: those set on the source topic (DYNAMIC_TOPIC_CONFIG),
//     but for Vigil's own (vigil.*) and Confluent's (confluent.*), copied
//     when the topic is created and set or removed on Vigil as they change
//     on the source (configs.go);
//   - with CopyConfig.ACLs, the ACLs of topics, groups and transactional
//     ids (acls.go); with CopyConfig.Quotas, the byte-rate quotas of users
//     and client ids (quotas.go); what the mirror copied of them is kept in
//     StateTopic on Vigil (state.go), so that what is deleted on the
//     source while no mirror runs is deleted on Vigil all the same.
//
// A promoted topic (Promote: the config deleted) refuses the mirror's
// appends; the mirror then stops copying it.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/rangeread"
)

// ClientID is the client.id of the mirror's connections to Vigil, which
// makes their produces mirror appends (broker.MirrorClientID, the same
// string: the broker does not import this package).
const ClientID = "vigil-mirror"

// MirrorSourceConfig is the topic config marking a mirror topic
// (storage.MirrorSourceConfig).
const MirrorSourceConfig = "vigil.mirror.source"

// CopyConfig is one mirror.
type CopyConfig struct {
	// Source and Destination are each cluster's client options: seed
	// brokers and security (package clientsec's Opts).
	Source, Destination []kgo.Opt
	// Topics selects the source topics copied (TopicPattern).
	Topics *regexp.Regexp
	// Groups selects the groups whose offsets are copied; nil: every group.
	Groups *regexp.Regexp
	// SourceName is the value of MirrorSourceConfig on the topics created;
	// empty: the source's cluster id.
	SourceName string
	// Interval is how often topics, log starts and group offsets are
	// synced (5s).
	Interval time.Duration
	// MaxBytes bounds one fetch (1 MiB), and so one produce to Vigil.
	MaxBytes int32
	// Progress gets a progress line every ProgressEvery (5s); nil: none.
	Progress      io.Writer
	ProgressEvery time.Duration
	// ACLs copies the source's ACLs of topics, groups and transactional
	// ids (acls.go); Quotas its byte-rate quotas (quotas.go).
	ACLs, Quotas bool
	// Registerer, when set, gets the mirror's Prometheus series.
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// PartitionStatus is one partition's position.
type PartitionStatus struct {
	Topic     string
	Partition int32
	// SourceEnd is the source's high watermark as last fetched (-1 before
	// the first fetch); Copied is Vigil's high watermark as the mirror
	// made it (its next offset).
	SourceEnd, Copied int64
	// Stopped: the topic was promoted (or refused), nothing more is copied.
	Stopped bool
}

// Lag is how many offsets Vigil is behind.
func (p PartitionStatus) Lag() int64 { return max(p.SourceEnd-p.Copied, 0) }

// Mirror copies topics and group offsets until its context ends.
type Mirror struct {
	cfg            CopyConfig
	src, dst       *kgo.Client
	srcAdm, dstAdm *kadm.Client
	log            *slog.Logger
	metrics        *copyMetrics
	sourceName     string
	mu             sync.Mutex
	topics         map[string]*mirrorTopic
	groupsCopied   atomic.Int64
	records, bytes atomic.Int64
	fatal          chan error
	leaderMu       sync.Mutex
	dstLeaders     map[string]map[int32]int32
	srcLeaders     map[string]map[int32]int32
	committed      map[string]map[string]map[int32]int64 // group, topic, partition: last offset copied
	skippedLogged  map[string]bool
	// What the mirror copied (state.go), kept in StateTopic: the ACLs,
	// and the quotas by entity (its String) and key, with the value set.
	state                *stateStore // nil: neither ACLs nor quotas
	stateRead            bool
	aclsCopied           map[aclBinding]bool
	quotasCopied         map[string]map[string]float64
	quotasCopiedEntities map[string]kadm.ClientQuotaEntity
	quotasLeftLogged     map[string]float64 // Vigil's own quotas left, as last logged
	wg                   sync.WaitGroup
	partitionsActive     atomic.Int64
}

type mirrorTopic struct {
	name  string
	parts []*mirrorPart
	// skipped: the topic exists on Vigil but is not a mirror topic (or it
	// was promoted): left alone.
	skipped bool
}

type mirrorPart struct {
	topic     string
	p         int32
	sourceEnd atomic.Int64
	copied    atomic.Int64
	stopped   atomic.Bool
}

// NewMirror builds the clients; nothing is dialed yet.
func NewMirror(cfg CopyConfig) (*Mirror, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 1 << 20
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	// Fetch at v12 at most, as verify: topics by name on every cluster.
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(kmsg.Fetch.Int16(), 12)
	src, err := kgo.NewClient(append([]kgo.Opt{kgo.ClientID(ClientID), kgo.MaxVersions(versions)}, cfg.Source...)...)
	if err != nil {
		return nil, fmt.Errorf("source client: %w", err)
	}
	dst, err := kgo.NewClient(append(append([]kgo.Opt(nil), cfg.Destination...), kgo.ClientID(ClientID))...)
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("destination client: %w", err)
	}
	m := &Mirror{cfg: cfg, src: src, dst: dst, srcAdm: kadm.NewClient(src), dstAdm: kadm.NewClient(dst), log: cfg.Log,
		topics: map[string]*mirrorTopic{}, fatal: make(chan error, 1),
		dstLeaders: map[string]map[int32]int32{}, srcLeaders: map[string]map[int32]int32{},
		committed: map[string]map[string]map[int32]int64{}, skippedLogged: map[string]bool{},
		quotasLeftLogged: map[string]float64{}}
	if cfg.ACLs || cfg.Quotas {
		if m.state, err = newStateStore(cfg.Destination); err != nil {
			m.Close()
			return nil, err
		}
	}
	if cfg.Registerer != nil {
		if m.metrics, err = newCopyMetrics(cfg.Registerer); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

// Close closes the clients (after Run has returned).
func (m *Mirror) Close() {
	m.src.Close()
	m.dst.Close()
	if m.state != nil {
		m.state.close()
	}
}

// Run copies until ctx ends (then nil) or something no retry fixes: a
// source that cannot be listed at the start, or a partition whose batches
// Vigil refuses as conflicting with what it holds (the two logs
// diverged).
func (m *Mirror) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		m.wg.Wait()
	}()
	m.sourceName = m.cfg.SourceName
	if m.sourceName == "" {
		md, err := m.srcAdm.BrokerMetadata(ctx)
		if err != nil {
			return fmt.Errorf("source: metadata: %w", err)
		}
		m.sourceName = md.Cluster
		if m.sourceName == "" {
			m.sourceName = "unknown-cluster"
		}
	}
	if err := m.syncTopics(ctx); err != nil {
		return err
	}
	m.readState(ctx)
	tick := time.NewTicker(m.cfg.Interval)
	defer tick.Stop()
	var progress <-chan time.Time
	if m.cfg.Progress != nil {
		t := time.NewTicker(m.cfg.ProgressEvery)
		defer t.Stop()
		progress = t.C
	}
	start, lastRecords, lastAt := time.Now(), int64(0), time.Now()
	for {
		select {
		case <-ctx.Done():
			if m.cfg.Progress != nil {
				fmt.Fprintf(m.cfg.Progress, "vigil mirror: stopped after %s: %s\n", time.Since(start).Round(time.Millisecond), m.progressLine(0))
			}
			return nil
		case err := <-m.fatal:
			return err
		case <-tick.C:
			if err := m.syncTopics(ctx); err != nil {
				m.log.Warn("mirror: topics not synced", "err", err)
			}
			m.syncLogStarts(ctx)
			m.syncConfigs(ctx)
			if m.readState(ctx) {
				m.syncACLs(ctx)
				m.syncQuotas(ctx)
			}
			m.syncGroups(ctx)
		case <-progress:
			n := m.records.Load()
			rate := float64(n-lastRecords) / time.Since(lastAt).Seconds()
			lastRecords, lastAt = n, time.Now()
			fmt.Fprintf(m.cfg.Progress, "vigil mirror: %s\n", m.progressLine(rate))
		}
	}
}

// Status is every partition's position, by topic and partition.
func (m *Mirror) Status() []PartitionStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []PartitionStatus
	for _, name := range slices.Sorted(maps.Keys(m.topics)) {
		for _, p := range m.topics[name].parts {
			out = append(out, PartitionStatus{Topic: p.topic, Partition: p.p, SourceEnd: p.sourceEnd.Load(), Copied: p.copied.Load(), Stopped: p.stopped.Load()})
		}
	}
	return out
}

// GroupsCopied is how many group offset commits the mirror made.
func (m *Mirror) GroupsCopied() int64 { return m.groupsCopied.Load() }

// progressLine: the totals, the lag and the partitions furthest behind.
func (m *Mirror) progressLine(rate float64) string {
	st := m.Status()
	topics := map[string]bool{}
	var lag int64
	var behind []PartitionStatus
	starting, promoted := 0, 0
	for _, p := range st {
		topics[p.Topic] = true
		if p.Stopped {
			promoted++
			continue
		}
		if p.SourceEnd < 0 {
			starting++
			continue
		}
		lag += p.Lag()
		if p.Lag() > 0 {
			behind = append(behind, p)
		}
	}
	sort.Slice(behind, func(i, j int) bool { return behind[i].Lag() > behind[j].Lag() })
	line := fmt.Sprintf("%d topics, %d partitions, %d records copied (%s), %.0f records/s, lag %d offsets",
		len(topics), len(st), m.records.Load(), rangeread.Bytes(m.bytes.Load()), rate, lag)
	if len(behind) > 0 {
		var parts []string
		for _, p := range behind[:min(len(behind), 5)] {
			parts = append(parts, fmt.Sprintf("%s/%d %d", p.Topic, p.Partition, p.Lag()))
		}
		line += " (" + strings.Join(parts, ", ")
		if len(behind) > 5 {
			line += fmt.Sprintf(", %d more", len(behind)-5)
		}
		line += ")"
	}
	if starting > 0 {
		line += fmt.Sprintf(", %d partitions not fetched yet", starting)
	}
	if promoted > 0 {
		line += fmt.Sprintf(", %d partitions promoted (no longer copied)", promoted)
	}
	return line + fmt.Sprintf(", %d group commits", m.groupsCopied.Load())
}

// syncTopics creates on Vigil the matching source topics it lacks (or
// their new partitions) and starts copying their partitions.
func (m *Mirror) syncTopics(ctx context.Context) error {
	tds, err := m.srcAdm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("source: list topics: %w", err)
	}
	for _, name := range slices.Sorted(maps.Keys(tds)) {
		td := tds[name]
		if td.IsInternal || strings.HasPrefix(name, "__") || strings.HasPrefix(name, "_vigil.") || !m.cfg.Topics.MatchString(name) {
			continue
		}
		if td.Err != nil {
			m.log.Warn("mirror: source topic not listed", "topic", name, "err", td.Err)
			continue
		}
		m.mu.Lock()
		mt := m.topics[name]
		m.mu.Unlock()
		n := len(td.Partitions)
		if mt != nil && (mt.skipped || len(mt.parts) >= n) {
			continue
		}
		if err := m.ensureTopic(ctx, name, int32(n)); err != nil {
			if errors.Is(err, errNotMirror) {
				m.mu.Lock()
				m.topics[name] = &mirrorTopic{name: name, skipped: true}
				m.mu.Unlock()
				m.log.Error("mirror: topic left alone", "topic", name, "err", err)
				continue
			}
			m.log.Warn("mirror: topic not created", "topic", name, "err", err)
			continue
		}
		m.mu.Lock()
		if mt == nil {
			mt = &mirrorTopic{name: name}
			m.topics[name] = mt
		}
		for p := int32(len(mt.parts)); p < int32(n); p++ {
			mp := &mirrorPart{topic: name, p: p}
			mp.sourceEnd.Store(-1) // not fetched yet
			mt.parts = append(mt.parts, mp)
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.copyPartition(ctx, mp)
			}()
		}
		m.mu.Unlock()
	}
	return nil
}

var errNotMirror = errors.New("exists on the destination and is not a mirror topic")

// ensureTopic creates the topic on Vigil as a mirror topic with the
// source's partition count and configs, or checks the one there is a
// mirror topic and adds the partitions it lacks.
func (m *Mirror) ensureTopic(ctx context.Context, name string, parts int32) error {
	dtds, err := m.dstAdm.ListTopics(ctx, name)
	if err != nil {
		return fmt.Errorf("destination: metadata: %w", err)
	}
	if d, ok := dtds[name]; ok && d.Err == nil {
		rcs, err := m.dstAdm.DescribeTopicConfigs(ctx, name)
		if err != nil {
			return fmt.Errorf("destination: describe configs: %w", err)
		}
		rc, err := rcs.On(name, nil)
		if err != nil {
			return fmt.Errorf("destination: describe configs: %w", err)
		}
		if !marked(rc.Configs) {
			return fmt.Errorf("%s %w (%s unset: created by others, or promoted); delete it or leave it out of --topics", name, errNotMirror, MirrorSourceConfig)
		}
		if have := int32(len(d.Partitions)); have < parts {
			if _, err := m.dstAdm.CreatePartitions(ctx, int(parts-have), name); err != nil {
				return fmt.Errorf("destination: add %d partitions: %w", parts-have, err)
			}
			m.log.Info("mirror: partitions added", "topic", name, "partitions", parts)
		}
		return nil
	}
	configs, err := m.sourceConfigs(ctx, name)
	if err != nil {
		return err
	}
	src := m.sourceName
	configs[MirrorSourceConfig] = &src
	resp, err := m.dstAdm.CreateTopic(ctx, parts, -1, configs, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		msg := ""
		if resp.ErrMessage != "" {
			msg = ": " + resp.ErrMessage
		}
		return fmt.Errorf("destination: create %s: %w%s", name, err, msg)
	}
	m.log.Info("mirror: topic created", "topic", name, "partitions", parts, "configs", len(configs)-1)
	return nil
}

// sourceConfigs are the configs set on the source topic that the mirror
// topic takes.
func (m *Mirror) sourceConfigs(ctx context.Context, name string) (map[string]*string, error) {
	rcs, err := m.srcAdm.DescribeTopicConfigs(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("source: describe configs of %s: %w", name, err)
	}
	rc, err := rcs.On(name, nil)
	if err != nil {
		return nil, fmt.Errorf("source: describe configs of %s: %w", name, err)
	}
	out := map[string]*string{}
	for k, v := range mirroredConfigs(rc.Configs) {
		out[k] = &v
	}
	return out, nil
}

// copyPartition copies one partition until ctx ends or the topic is
// promoted. Any failure starts it again from Vigil's high watermark after
// a pause; a conflict (Vigil holds other batches at those offsets) stops
// the whole mirror.
func (m *Mirror) copyPartition(ctx context.Context, mp *mirrorPart) {
	m.partitionsActive.Add(1)
	defer m.partitionsActive.Add(-1)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := m.copyFrom(ctx, mp)
		if ctx.Err() != nil {
			return
		}
		var stop *stopCopy
		if errors.As(err, &stop) {
			if stop.fatal {
				select {
				case m.fatal <- err:
				default:
				}
			} else {
				m.log.Info("mirror: partition no longer copied", "topic", mp.topic, "partition", mp.p, "reason", err)
			}
			mp.stopped.Store(true)
			return
		}
		m.log.Warn("mirror: partition copy interrupted, resuming", "topic", mp.topic, "partition", mp.p, "err", err)
		m.metrics.error("copy")
		m.forgetLeaders(mp.topic, mp.p)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// stopCopy ends a partition's copy for good.
type stopCopy struct {
	err   error
	fatal bool
}

func (e *stopCopy) Error() string { return e.err.Error() }
func (e *stopCopy) Unwrap() error { return e.err }

// fetched is one fetch's whole batches, ready to send.
type fetched struct {
	data       []byte
	last       int64 // last offset of the last batch
	records    int64
	sourceEnd  int64
	sourceFrom int64 // the log start the source reported
}

// copyFrom copies from Vigil's high watermark on: one goroutine fetches
// from the source while the previous fetch is written to Vigil.
func (m *Mirror) copyFrom(ctx context.Context, mp *mirrorPart) error {
	next, err := m.resumeAt(ctx, mp)
	if err != nil {
		return err
	}
	mp.copied.Store(next)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan fetched, 1)
	errc := make(chan error, 1)
	go func() {
		defer close(ch)
		at := next
		for ctx.Err() == nil {
			f, err := m.fetchRaw(ctx, mp, at)
			if err != nil {
				errc <- err
				return
			}
			mp.sourceEnd.Store(f.sourceEnd)
			m.metrics.lag(mp)
			if len(f.data) == 0 {
				if f.sourceFrom > at {
					// Retention on the source passed us: the offsets below
					// its log start are a gap on Vigil.
					at = f.sourceFrom
				}
				continue
			}
			select {
			case ch <- f:
			case <-ctx.Done():
				return
			}
			at = f.last + 1
		}
	}()
	for f := range ch {
		if err := m.produce(ctx, mp, f.data); err != nil {
			return err
		}
		mp.copied.Store(f.last + 1)
		m.records.Add(f.records)
		m.bytes.Add(int64(len(f.data)))
		m.metrics.copied(mp, f.records, len(f.data))
	}
	select {
	case err := <-errc:
		return err
	default:
		return ctx.Err()
	}
}

// resumeAt is where the copy of a partition begins: Vigil's high
// watermark.
//
// A topic or partition just created may take a moment to be listed (its
// leader is being placed): that is waited for, briefly, before it counts
// as a failure.
func (m *Mirror) resumeAt(ctx context.Context, mp *mirrorPart) (int64, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ends, err := m.dstAdm.ListEndOffsets(ctx, mp.topic)
		if err != nil {
			return 0, fmt.Errorf("destination: list end offsets: %w", err)
		}
		o, ok := ends.Lookup(mp.topic, mp.p)
		switch {
		case ok && o.Err == nil:
			return o.Offset, nil
		case time.Now().After(deadline) && !ok:
			return 0, fmt.Errorf("destination: no end offset for %s/%d", mp.topic, mp.p)
		case time.Now().After(deadline):
			return 0, fmt.Errorf("destination: end offset of %s/%d: %w", mp.topic, mp.p, o.Err)
		}
		if !sleep(ctx, 100*time.Millisecond) {
			return 0, ctx.Err()
		}
	}
}

// fetchRaw fetches the partition's batches from offset on, as stored on
// the source: whole batches only (a fetch may end inside one), none
// ending before offset.
func (m *Mirror) fetchRaw(ctx context.Context, mp *mirrorPart, offset int64) (fetched, error) {
	leader, err := m.leader(ctx, m.srcAdm, m.srcLeaders, mp.topic, mp.p)
	if err != nil {
		return fetched{}, fmt.Errorf("source: %w", err)
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 500
	req.MinBytes = 1
	req.MaxBytes = m.cfg.MaxBytes
	req.IsolationLevel = 0 // read_uncommitted: aborted data and markers are copied too
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = mp.topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = mp.p
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = m.cfg.MaxBytes
	rp.CurrentLeaderEpoch = -1
	rp.LogStartOffset = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, m.src.Broker(int(leader)))
	if err != nil {
		return fetched{}, fmt.Errorf("source: fetch %s/%d from broker %d: %w", mp.topic, mp.p, leader, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fetched{}, fmt.Errorf("source: fetch: %w", err)
	}
	if resp.ThrottleMillis > 0 {
		sleep(ctx, time.Duration(resp.ThrottleMillis)*time.Millisecond)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if t.Topic != mp.topic || p.Partition != mp.p {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				if errors.Is(err, kerr.OffsetOutOfRange) && p.LogStartOffset > offset {
					return fetched{sourceEnd: p.HighWatermark, sourceFrom: p.LogStartOffset}, nil
				}
				err = fmt.Errorf("source: fetch %s/%d at %d: %w", mp.topic, mp.p, offset, err)
				var ke *kerr.Error
				if errors.As(err, &ke) && !ke.Retriable {
					return fetched{}, &stopCopy{err: err, fatal: true} // authorization, a corrupt log: waiting fixes nothing
				}
				return fetched{}, err
			}
			f := fetched{sourceEnd: p.HighWatermark, sourceFrom: p.LogStartOffset, last: -1}
			data := p.RecordBatches
			start, end := -1, 0
			for len(data[end:]) >= batch.HeaderLen {
				info, err := batch.Peek(data[end:])
				if err != nil {
					break // the fetch ended inside this batch
				}
				if magic := data[end+16]; magic != 2 {
					return fetched{}, &stopCopy{err: fmt.Errorf("source: %s/%d at %d: record batch magic %d: only v2 batches (Kafka 0.11 and later) can be mirrored",
						mp.topic, mp.p, info.BaseOffset, magic), fatal: true}
				}
				if info.LastOffset >= offset {
					if start < 0 {
						start = end
					}
					f.last = info.LastOffset
					f.records += int64(int32(uint32(data[end+57])<<24 | uint32(data[end+58])<<16 | uint32(data[end+59])<<8 | uint32(data[end+60])))
				}
				end += info.Size
			}
			if start >= 0 {
				f.data = data[start:end]
			}
			return f, nil
		}
	}
	return fetched{}, fmt.Errorf("source: fetch answer without %s/%d", mp.topic, mp.p)
}

// produce writes a fetch's batches to the partition's leader on Vigil and
// waits for them to be durable.
func (m *Mirror) produce(ctx context.Context, mp *mirrorPart, data []byte) error {
	leader, err := m.leader(ctx, m.dstAdm, m.dstLeaders, mp.topic, mp.p)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = mp.topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = mp.p
	rp.Records = data
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, m.dst.Broker(int(leader)))
	if err != nil {
		return fmt.Errorf("destination: produce %s/%d to broker %d: %w", mp.topic, mp.p, leader, err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if t.Topic != mp.topic || p.Partition != mp.p {
				continue
			}
			err := kerr.ErrorForCode(p.ErrorCode)
			if err == nil {
				return nil
			}
			msg := ""
			if p.ErrorMessage != nil {
				msg = ": " + *p.ErrorMessage
			}
			err = fmt.Errorf("destination: append to %s/%d: %w%s", mp.topic, mp.p, err, msg)
			switch {
			case errors.Is(err, kerr.InvalidRequest) && strings.Contains(msg, "not a mirror topic"):
				return &stopCopy{err: fmt.Errorf("%s is no longer a mirror topic (promoted): %w", mp.topic, err)}
			case errors.Is(err, kerr.InvalidRequest), errors.Is(err, kerr.CorruptMessage), errors.Is(err, kerr.InvalidRecord),
				errors.Is(err, kerr.ClusterAuthorizationFailed), errors.Is(err, kerr.TopicAuthorizationFailed):
				return &stopCopy{err: err, fatal: true}
			}
			return err
		}
	}
	return fmt.Errorf("destination: produce answer without %s/%d", mp.topic, mp.p)
}

// leader is a partition's leader on one side, cached until a copy fails.
func (m *Mirror) leader(ctx context.Context, adm *kadm.Client, cache map[string]map[int32]int32, topic string, p int32) (int32, error) {
	m.leaderMu.Lock()
	l, ok := cache[topic][p]
	m.leaderMu.Unlock()
	if ok {
		return l, nil
	}
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return -1, fmt.Errorf("metadata: %w", err)
	}
	td, ok := md.Topics[topic]
	switch {
	case !ok:
		return -1, fmt.Errorf("metadata does not list %s", topic)
	case td.Err != nil:
		return -1, fmt.Errorf("metadata of %s: %w", topic, td.Err)
	}
	m.leaderMu.Lock()
	defer m.leaderMu.Unlock()
	if cache[topic] == nil {
		cache[topic] = map[int32]int32{}
	}
	for _, pd := range td.Partitions {
		if pd.Leader >= 0 {
			cache[topic][pd.Partition] = pd.Leader
		}
	}
	if l, ok := cache[topic][p]; ok {
		return l, nil
	}
	return -1, fmt.Errorf("no leader for %s/%d", topic, p)
}

func (m *Mirror) forgetLeaders(topic string, p int32) {
	m.leaderMu.Lock()
	delete(m.srcLeaders[topic], p)
	delete(m.dstLeaders[topic], p)
	m.leaderMu.Unlock()
}

// copiedTopics are the topics being copied (not promoted), with each
// partition's copied end.
func (m *Mirror) copiedTopics() map[string]map[int32]int64 {
	out := map[string]map[int32]int64{}
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, mt := range m.topics {
		if mt.skipped {
			continue
		}
		for _, p := range mt.parts {
			if p.stopped.Load() {
				continue
			}
			if out[name] == nil {
				out[name] = map[int32]int64{}
			}
			out[name][p.p] = p.copied.Load()
		}
	}
	return out
}

// syncLogStarts moves Vigil's log starts up to the source's, as far as
// copied.
func (m *Mirror) syncLogStarts(ctx context.Context) {
	copied := m.copiedTopics()
	if len(copied) == 0 {
		return
	}
	names := slices.Collect(maps.Keys(copied))
	srcStarts, err := m.srcAdm.ListStartOffsets(ctx, names...)
	if err != nil {
		m.log.Warn("mirror: source log starts not listed", "err", err)
		return
	}
	dstStarts, err := m.dstAdm.ListStartOffsets(ctx, names...)
	if err != nil {
		m.log.Warn("mirror: destination log starts not listed", "err", err)
		return
	}
	del := kadm.Offsets{}
	srcStarts.Each(func(o kadm.ListedOffset) {
		end, ok := copied[o.Topic][o.Partition]
		d, dok := dstStarts.Lookup(o.Topic, o.Partition)
		if o.Err != nil || !ok || !dok || d.Err != nil {
			return
		}
		if to := min(o.Offset, end); to > d.Offset {
			del.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: to, LeaderEpoch: -1})
		}
	})
	if len(del) == 0 {
		return
	}
	resps, err := m.dstAdm.DeleteRecords(ctx, del)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		m.log.Warn("mirror: log start not moved", "err", err)
		m.metrics.error("log_start")
	}
}

// syncGroups copies committed offsets of the source's groups to Vigil.
func (m *Mirror) syncGroups(ctx context.Context) {
	copied := m.copiedTopics()
	if len(copied) == 0 {
		return
	}
	groups, err := m.srcAdm.ListGroups(ctx)
	if err != nil {
		m.log.Warn("mirror: source groups not listed", "err", err)
		return
	}
	for _, g := range groups.Groups() {
		if g == "" || (m.cfg.Groups != nil && !m.cfg.Groups.MatchString(g)) {
			continue
		}
		if err := m.syncGroup(ctx, g, copied); err != nil {
			m.log.Warn("mirror: group offsets not copied", "group", g, "err", err)
			m.metrics.error("group")
		}
	}
}

func (m *Mirror) syncGroup(ctx context.Context, g string, copied map[string]map[int32]int64) error {
	offs, err := m.srcAdm.FetchOffsets(ctx, g)
	if err != nil {
		return fmt.Errorf("source: fetch offsets: %w", err)
	}
	last := m.committed[g]
	commit := kadm.Offsets{}
	offs.Each(func(o kadm.OffsetResponse) {
		end, ok := copied[o.Topic][o.Partition]
		// An offset Vigil does not hold yet waits: a consumer moved now
		// would find it out of range.
		if o.Err != nil || !ok || o.At < 0 || o.At > end {
			return
		}
		if prev, ok := last[o.Topic][o.Partition]; ok && prev == o.At {
			return
		}
		commit.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.At, LeaderEpoch: -1, Metadata: o.Metadata})
	})
	if len(commit) == 0 {
		return nil
	}
	dg, err := m.dstAdm.DescribeGroups(ctx, g)
	if err != nil {
		return fmt.Errorf("destination: describe: %w", err)
	}
	if d, ok := dg[g]; ok && d.Err == nil && len(d.Members) > 0 {
		return nil // the group runs on Vigil now: its own commits win
	}
	resps, err := m.dstAdm.CommitOffsets(ctx, g, commit)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		return fmt.Errorf("destination: commit: %w", err)
	}
	if last == nil {
		last = map[string]map[int32]int64{}
		m.committed[g] = last
	}
	commit.Each(func(o kadm.Offset) {
		if last[o.Topic] == nil {
			last[o.Topic] = map[int32]int64{}
		}
		last[o.Topic][o.Partition] = o.At
	})
	m.groupsCopied.Add(1)
	m.metrics.groupCommit()
	return nil
}

// Promote makes mirror topics ordinary topics on Vigil: their
// MirrorSourceConfig is deleted, so they take produces again and refuse
// the mirror's appends. A topic that is not a mirror topic is an error.
func Promote(ctx context.Context, opts []kgo.Opt, topics ...string) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	rcs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return fmt.Errorf("describe configs: %w", err)
	}
	for _, t := range topics {
		rc, err := rcs.On(t, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		mirrored := false
		for _, c := range rc.Configs {
			if c.Key == MirrorSourceConfig && c.Value != nil && strings.TrimSpace(*c.Value) != "" && c.Source == kmsg.ConfigSourceDynamicTopicConfig {
				mirrored = true
			}
		}
		if !mirrored {
			return fmt.Errorf("%s is not a mirror topic (%s is not set)", t, MirrorSourceConfig)
		}
	}
	resps, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: MirrorSourceConfig}}, topics...)
	if err != nil {
		return fmt.Errorf("alter configs: %w", err)
	}
	for _, r := range resps {
		if r.Err != nil {
			return fmt.Errorf("%s: %w %s", r.Name, r.Err, r.ErrMessage)
		}
	}
	return nil
}

// copyMetrics are the mirror's Prometheus series. A nil *copyMetrics
// records nothing.
type copyMetrics struct {
	records, bytes *prometheus.CounterVec
	lagGauge       *prometheus.GaugeVec
	commits        prometheus.Counter
	errors         *prometheus.CounterVec
}

func newCopyMetrics(reg prometheus.Registerer) (*copyMetrics, error) {
	m := &copyMetrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_mirror_records_total",
			Help: "Records copied to Vigil, by topic (control records included)."}, []string{"topic"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_mirror_bytes_total",
			Help: "Record batch bytes copied to Vigil, by topic."}, []string{"topic"}),
		lagGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vigil_mirror_lag_offsets",
			Help: "Offsets between the source's high watermark, as last fetched, and Vigil's, per partition."}, []string{"topic", "partition"}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_mirror_group_commits_total",
			Help: "Group offset commits copied to Vigil."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_mirror_errors_total",
			Help: "Failures the mirror retried, by kind: copy (a partition's copy resumed), group, log_start."}, []string{"kind"}),
	}
	for _, c := range []prometheus.Collector{m.records, m.bytes, m.lagGauge, m.commits, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *copyMetrics) copied(mp *mirrorPart, records int64, bytes int) {
	if m == nil {
		return
	}
	m.records.WithLabelValues(mp.topic).Add(float64(records))
	m.bytes.WithLabelValues(mp.topic).Add(float64(bytes))
	m.lag(mp)
}

func (m *copyMetrics) lag(mp *mirrorPart) {
	if m == nil || mp.sourceEnd.Load() < 0 {
		return
	}
	m.lagGauge.WithLabelValues(mp.topic, fmt.Sprint(mp.p)).Set(float64(max(mp.sourceEnd.Load()-mp.copied.Load(), 0)))
}

func (m *copyMetrics) groupCommit() {
	if m != nil {
		m.commits.Inc()
	}
}

func (m *copyMetrics) error(kind string) {
	if m != nil {
		m.errors.WithLabelValues(kind).Inc()
	}
}
