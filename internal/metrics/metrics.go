// Package metrics holds the broker's Prometheus metrics and the admin HTTP
// endpoints that serve them (/metrics, /healthz, /readyz). Components do
// not import it: each defines the small observer interface it reports to
// (broker.RequestObserver, storage.Observer), and Metrics implements them,
// so the storage and protocol code stay free of the Prometheus client.
package metrics

import (
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is one broker's metric set, on its own registry (no global
// state: two brokers in one test process do not collide).
type Metrics struct {
	reg *prometheus.Registry

	requests       *prometheus.CounterVec
	requestSeconds *prometheus.HistogramVec
	walSyncSeconds prometheus.Histogram
	walSyncBytes   prometheus.Histogram
	uploads        prometheus.Counter
	uploadBytes    prometheus.Counter
	uploadSeconds  prometheus.Histogram
	uploadFailures prometheus.Counter
	retention      prometheus.Counter
	compactions    prometheus.Counter
	compactedSegs  prometheus.Counter
	compactedBytes prometheus.Counter
	cleanerRuns    prometheus.Counter
	cleanerRead    prometheus.Counter
	cleanerWritten prometheus.Counter

	ready  atomic.Bool
	checks atomic.Pointer[[]func() error] // readiness conditions besides ready
}

// latencyBuckets span a fast in-memory request (50µs) to a long poll (30s).
var latencyBuckets = prometheus.ExponentialBucketsRange(50e-6, 30, 20)

// New builds the metric set with the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_requests_total", Help: "Kafka requests answered, by API.",
	}, []string{"api"})
	m.requestSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "vigil_request_duration_seconds", Help: "Time from reading a request to writing its response, by API (includes long-poll waits).",
		Buckets: latencyBuckets,
	}, []string{"api"})
	m.walSyncSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "vigil_wal_fsync_duration_seconds", Help: "Duration of one WAL group commit (write and fsync).",
		Buckets: prometheus.ExponentialBucketsRange(50e-6, 2, 18),
	})
	m.walSyncBytes = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "vigil_wal_group_commit_bytes", Help: "Bytes written by one WAL group commit.",
		Buckets: prometheus.ExponentialBuckets(1024, 4, 10),
	})
	m.uploads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_segment_uploads_total", Help: "Segment objects uploaded.",
	})
	m.uploadBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_segment_upload_bytes_total", Help: "Bytes of segment objects uploaded.",
	})
	m.uploadSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "vigil_segment_upload_duration_seconds", Help: "Time to put one segment object and commit its index.",
		Buckets: prometheus.ExponentialBucketsRange(1e-3, 60, 16),
	})
	m.uploadFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_segment_upload_failures_total", Help: "Upload attempts that failed (retried).",
	})
	m.retention = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_retention_deleted_segments_total", Help: "Segment index entries removed by retention.",
	})
	m.compactions = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_compactions_total", Help: "Objects written by compaction.",
	})
	m.compactedSegs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_compacted_segments_total", Help: "Index entries merged away by compaction.",
	})
	m.compactedBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_compacted_bytes_total", Help: "Bytes rewritten by compaction.",
	})
	m.cleanerRuns = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_cleaner_passes_total", Help: "Partitions of compacted topics cleaned (one pass each).",
	})
	m.cleanerRead = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_cleaner_read_bytes_total", Help: "Bytes of segment objects the log cleaner rewrote.",
	})
	m.cleanerWritten = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_cleaner_written_bytes_total", Help: "Bytes of cleaned batches the log cleaner wrote in their place.",
	})
	m.reg.MustRegister(m.compactions, m.compactedSegs, m.compactedBytes, m.cleanerRuns, m.cleanerRead, m.cleanerWritten)
	m.reg.MustRegister(m.requests, m.requestSeconds, m.walSyncSeconds, m.walSyncBytes,
		m.uploads, m.uploadBytes, m.uploadSeconds, m.uploadFailures, m.retention,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Request records one answered request (broker.RequestObserver).
func (m *Metrics) Request(api string, d time.Duration) {
	m.requests.WithLabelValues(api).Inc()
	m.requestSeconds.WithLabelValues(api).Observe(d.Seconds())
}

// WALSync records one group commit (storage.Observer).
func (m *Metrics) WALSync(d time.Duration, bytes int64) {
	m.walSyncSeconds.Observe(d.Seconds())
	m.walSyncBytes.Observe(float64(bytes))
}

// Upload records one segment upload (storage.Observer).
func (m *Metrics) Upload(d time.Duration, bytes int64, err error) {
	if err != nil {
		m.uploadFailures.Inc()
		return
	}
	m.uploads.Inc()
	m.uploadBytes.Add(float64(bytes))
	m.uploadSeconds.Observe(d.Seconds())
}

// RetentionDeleted records index entries removed by retention (storage.Observer).
func (m *Metrics) RetentionDeleted(segments int) { m.retention.Add(float64(segments)) }

// Compacted records one compaction (storage.Observer).
func (m *Metrics) Compacted(inputs int, bytes int64) {
	m.compactions.Inc()
	m.compactedSegs.Add(float64(inputs))
	m.compactedBytes.Add(float64(bytes))
}

// Cleaned records one pass of the log cleaner over a partition
// (storage.Observer).
func (m *Metrics) Cleaned(read, written int64) {
	m.cleanerRuns.Inc()
	m.cleanerRead.Add(float64(read))
	m.cleanerWritten.Add(float64(written))
}

// Gauge registers a gauge whose value is read from fn at each scrape.
func (m *Metrics) Gauge(name, help string, fn func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

// Counter registers a counter whose value is read from fn at each scrape.
func (m *Metrics) Counter(name, help string, fn func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, fn))
}

// LabeledCounter registers one counter series per value of label, each
// read from its fn at each scrape (a fixed, small set of label values).
func (m *Metrics) LabeledCounter(name, help, label string, fns map[string]func() float64) {
	for v, fn := range fns {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: prometheus.Labels{label: v}}, fn))
	}
}

// Lag is one partition's consumer-group lag: to the high watermark
// (Lag) and to the last stable offset (Stable), what a read_uncommitted
// and a read_committed consumer of the group have left to read.
type Lag struct {
	Group, Topic string
	Partition    int32
	Lag, Stable  int64
}

// GroupLag registers vigil_group_lag and vigil_group_lag_stable, computed
// by fn at each scrape. The group does not know its consumers' isolation
// level, so both are given.
func (m *Metrics) GroupLag(fn func() []Lag) {
	labels := []string{"group", "topic", "partition"}
	m.reg.MustRegister(&lagCollector{fn: fn,
		lag: prometheus.NewDesc("vigil_group_lag",
			"Messages between a consumer group's committed offset and the partition's high watermark.", labels, nil),
		stable: prometheus.NewDesc("vigil_group_lag_stable",
			"Messages between a consumer group's committed offset and the partition's last stable offset (the lag of read_committed consumers: records of open transactions are not counted).", labels, nil)})
}

type lagCollector struct {
	fn          func() []Lag
	lag, stable *prometheus.Desc
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.lag; ch <- c.stable }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	for _, l := range c.fn() {
		p := strconv.Itoa(int(l.Partition))
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(l.Lag), l.Group, l.Topic, p)
		ch <- prometheus.MustNewConstMetric(c.stable, prometheus.GaugeValue, float64(l.Stable), l.Group, l.Topic, p)
	}
}

// Registerer lets another component in the process (the in-process
// ingest service) add its metrics to /metrics.
func (m *Metrics) Registerer() prometheus.Registerer { return m.reg }

// SetReady marks the broker ready (serving) or not (starting, stopping).
func (m *Metrics) SetReady(ok bool) { m.ready.Store(ok) }

// AddReadyCheck adds a condition /readyz requires: while check returns an
// error, /readyz answers 503 with the error's text (the cluster's lease
// health, say). Checks are added at start, before the handler serves.
func (m *Metrics) AddReadyCheck(check func() error) {
	var list []func() error
	if p := m.checks.Load(); p != nil {
		list = append(list, *p...)
	}
	list = append(list, check)
	m.checks.Store(&list)
}

// notReady is why the broker is not ready ("" when it is).
func (m *Metrics) notReady() string {
	if !m.ready.Load() {
		return "not ready: starting or shutting down"
	}
	if p := m.checks.Load(); p != nil {
		for _, check := range *p {
			if err := check(); err != nil {
				return "not ready: " + err.Error()
			}
		}
	}
	return ""
}

// Handler serves /metrics, /healthz (the process answers) and /readyz
// (the broker accepts Kafka clients and every ready check passes).
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if why := m.notReady(); why != "" {
			http.Error(w, why, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	// Go's profiles and execution trace, for finding latency spikes in a
	// running broker (the admin listener is loopback-only by default).
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
