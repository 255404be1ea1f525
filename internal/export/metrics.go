package export

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus series of every job of a process, labelled
// by sink name. One Metrics is made per registry; each job takes its
// labelled children with For.
type Metrics struct {
	records, bytes, dead, retried, throttled, commits *prometheus.CounterVec
	errors                                            *prometheus.CounterVec
	lag                                               *prometheus.GaugeVec
	backoff                                           *prometheus.GaugeVec
}

// NewMetrics registers the series on reg (nil: a private registry, for
// tests and benchmarks).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	cv := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_export_" + name, Help: help}, append([]string{"sink"}, labels...))
	}
	m := &Metrics{
		records:   cv("records_total", "Records the sink acknowledged."),
		bytes:     cv("bytes_total", "Record value bytes the sink acknowledged."),
		dead:      cv("deadlettered_total", "Records written to the dead-letter topic (the sink refused them for good)."),
		retried:   cv("retried_total", "Records sent again after a retriable failure."),
		throttled: cv("throttled_total", "Requests or items the sink answered 429 or 503 (backpressure)."),
		commits:   cv("commits_total", "Offset commits after a delivered batch."),
		errors:    cv("errors_total", "Failed requests and refused records, by kind: request (a whole request failed), item (one record refused or to retry), commit, deadletter (the dead-letter topic refused).", "kind"),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vigil_export_lag_records",
			Help: "Records between the job's position and the high watermarks of its partitions, as of its last fetch."}, []string{"sink"}),
		backoff: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vigil_export_backoff_seconds",
			Help: "The wait before the job's next retry; 0 while the sink keeps up."}, []string{"sink"}),
	}
	for _, c := range []prometheus.Collector{m.records, m.bytes, m.dead, m.retried, m.throttled, m.commits, m.errors, m.lag, m.backoff} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// sinkMetrics are one job's children of Metrics.
type sinkMetrics struct {
	records, bytes, dead, retried, throttled, commits prometheus.Counter
	reqErr, itemErr, commitErr, deadErr               prometheus.Counter
	lag, backoff                                      prometheus.Gauge
}

// For returns the series of the sink name.
func (m *Metrics) For(name string) *sinkMetrics {
	return &sinkMetrics{
		records: m.records.WithLabelValues(name), bytes: m.bytes.WithLabelValues(name), dead: m.dead.WithLabelValues(name),
		retried: m.retried.WithLabelValues(name), throttled: m.throttled.WithLabelValues(name), commits: m.commits.WithLabelValues(name),
		reqErr: m.errors.WithLabelValues(name, "request"), itemErr: m.errors.WithLabelValues(name, "item"),
		commitErr: m.errors.WithLabelValues(name, "commit"), deadErr: m.errors.WithLabelValues(name, "deadletter"),
		lag: m.lag.WithLabelValues(name), backoff: m.backoff.WithLabelValues(name),
	}
}
