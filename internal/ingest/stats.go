package ingest

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats counts what happened to input; nothing leaves the service without
// being counted in one of these.
type Stats struct {
	// Frames is syslog messages and HTTP documents received.
	Frames atomic.Int64
	// Events is OCSF events handed to the producer; Produced those the
	// broker acknowledged.
	Events   atomic.Int64
	Produced atomic.Int64
	// DeadLettered is pieces written to the dead-letter topic (unparsable
	// input, or events the broker refused for good).
	DeadLettered atomic.Int64
	// Refused is input turned away because the memory budget was full or
	// the input too large (HTTP 503/413); the sender still has it.
	Refused atomic.Int64
	// UDPDropped is syslog datagrams read but not accepted because the
	// budget was full: UDP has no way to push back.
	UDPDropped atomic.Int64
	// CutFrames are octet-counted syslog frames the connection ended
	// inside of, and BadFrames lines without a length on an
	// octet-counted listener (both also dead-lettered).
	CutFrames atomic.Int64
	BadFrames atomic.Int64
	// Lost is accepted input that could be written neither to its topic
	// nor to the dead-letter topic (only at shutdown with the broker down,
	// or if the dead-letter topic itself refuses).
	Lost atomic.Int64
}

// Snapshot returns the counters by name (GET /v1/stats).
func (s *Stats) Snapshot() map[string]int64 {
	return map[string]int64{
		"frames":       s.Frames.Load(),
		"events":       s.Events.Load(),
		"produced":     s.Produced.Load(),
		"deadlettered": s.DeadLettered.Load(),
		"refused":      s.Refused.Load(),
		"udp_dropped":  s.UDPDropped.Load(),
		"cut_frames":   s.CutFrames.Load(),
		"bad_frames":   s.BadFrames.Load(),
		"lost":         s.Lost.Load(),
	}
}

// Register adds the counters to a Prometheus registry as
// vigil_ingest_<name>_total, and the memory in use as a gauge.
func (s *Service) Register(reg prometheus.Registerer) error {
	st := s.stats
	for _, c := range []struct {
		name, help string
		v          *atomic.Int64
	}{
		{"frames", "Syslog messages and HTTP documents received.", &st.Frames},
		{"events", "OCSF events handed to the producer.", &st.Events},
		{"produced", "OCSF events the broker acknowledged.", &st.Produced},
		{"deadlettered", "Pieces of input written to the dead-letter topic.", &st.DeadLettered},
		{"refused", "Inputs turned away (memory budget full or too large); the sender still has them.", &st.Refused},
		{"udp_dropped", "Syslog datagrams dropped because the memory budget was full.", &st.UDPDropped},
		{"cut_frames", "Octet-counted syslog frames cut short by the end of their connection (dead-lettered).", &st.CutFrames},
		{"bad_frames", "Lines without a length on an octet-counted syslog listener (dead-lettered).", &st.BadFrames},
		{"lost", "Accepted input written neither to its topic nor to the dead-letter topic.", &st.Lost},
	} {
		v := c.v
		if err := reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "vigil_ingest_" + c.name + "_total", Help: c.help,
		}, func() float64 { return float64(v.Load()) })); err != nil {
			return err
		}
	}
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vigil_ingest_buffered_bytes", Help: "Accepted input the broker has not acknowledged yet (bounded by the memory budget).",
	}, func() float64 { return float64(s.budget.Used()) }))
}
