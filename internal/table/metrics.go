package table

import (
	"maps"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Metrics are the Prometheus series of a broker's tables, labelled by
// topic. One Metrics is made per registry; each maintainer takes its
// topic's children with For.
type Metrics struct {
	commits, records, failures, orphans *prometheus.CounterVec
	lag, lastCommit                     *prometheus.GaugeVec
}

// NewMetrics registers the series on reg (nil: a private registry, for
// tests and benchmarks).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	cv := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_table_" + name, Help: help}, []string{"topic"})
	}
	gv := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vigil_table_" + name, Help: help}, []string{"topic"})
	}
	m := &Metrics{
		commits:    cv("commits_total", "Snapshots of records committed to the topic's table."),
		records:    cv("records_total", "Records committed to the topic's table."),
		failures:   cv("failures_total", "Times the table's maintainer failed (a commit refused, the store or the topic unreadable) and restarted from the newest snapshot."),
		orphans:    cv("orphan_files_deleted_total", "Files of failed commits (named by no snapshot) deleted by the orphan sweep."),
		lag:        gv("lag_records", "Committed records of the topic (to its last stable offsets, as of the maintainer's last fetch) not yet in the table; only on the broker keeping the table."),
		lastCommit: gv("last_commit_timestamp_seconds", "When this broker last committed records to the table (Unix time)."),
	}
	for _, c := range []prometheus.Collector{m.commits, m.records, m.failures, m.orphans, m.lag, m.lastCommit} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// topicMetrics are one table's children of Metrics; a nil one records
// nothing.
type topicMetrics struct {
	commits, records, failures, orphans prometheus.Counter
	lag, lastCommit                     prometheus.Gauge
}

// For returns the series of topic's table; nil for a nil Metrics.
func (m *Metrics) For(topic string) *topicMetrics {
	if m == nil {
		return nil
	}
	return &topicMetrics{
		commits: m.commits.WithLabelValues(topic), records: m.records.WithLabelValues(topic),
		failures: m.failures.WithLabelValues(topic), orphans: m.orphans.WithLabelValues(topic),
		lag: m.lag.WithLabelValues(topic), lastCommit: m.lastCommit.WithLabelValues(topic),
	}
}

// forget drops the gauges of a table this broker stopped keeping: its
// lag is the new keeper's to report.
func (m *Metrics) forget(topic string) {
	if m == nil {
		return
	}
	m.lag.DeleteLabelValues(topic)
	m.lastCommit.DeleteLabelValues(topic)
}

func (t *topicMetrics) committed(records int) {
	if t == nil {
		return
	}
	t.commits.Inc()
	t.records.Add(float64(records))
	t.lastCommit.Set(float64(time.Now().UnixNano()) / 1e9)
}

func (t *topicMetrics) failed() {
	if t != nil {
		t.failures.Inc()
	}
}

func (t *topicMetrics) swept(files int) {
	if t != nil {
		t.orphans.Add(float64(files))
	}
}

func (t *topicMetrics) setLag(records int64) {
	if t != nil {
		t.lag.Set(float64(records))
	}
}

// lagTracker computes a table's lag: per partition, the committed
// records of the topic (to the last stable offset, which a
// read_committed fetch reports) past the table's next offset.
type lagTracker struct {
	done  map[int32]int64 // the table's next offsets
	lso   map[int32]int64
	start map[int32]int64 // log starts, for partitions the table has none of
}

func newLagTracker(done map[int32]int64) *lagTracker {
	return &lagTracker{done: maps.Clone(done), lso: map[int32]int64{}, start: map[int32]int64{}}
}

// fetched takes the partitions' offsets from a fetch; it returns the lag.
func (l *lagTracker) fetched(fs kgo.Fetches) int64 {
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if p.Err == nil && p.LastStableOffset >= 0 {
			l.lso[p.Partition] = p.LastStableOffset
			l.start[p.Partition] = p.LogStartOffset
		}
	})
	return l.sum()
}

// committed takes the table's offsets after a commit; it returns the lag.
func (l *lagTracker) committed(next map[int32]int64) int64 {
	maps.Copy(l.done, next)
	return l.sum()
}

func (l *lagTracker) sum() int64 {
	var n int64
	for p, lso := range l.lso {
		from, ok := l.done[p]
		if !ok {
			from = l.start[p]
		}
		n += max(0, lso-from)
	}
	return n
}
