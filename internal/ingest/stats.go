package ingest

import "sync/atomic"

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
		"lost":         s.Lost.Load(),
	}
}
