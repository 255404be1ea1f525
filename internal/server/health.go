package server

import (
	"fmt"
	"time"

	"github.com/vigilhq/vigil/internal/cluster"
)

// registerClusterHealth exposes the cluster lease's standing, which
// decides whether acknowledgements flow (cluster.Health): the metrics
// vigil_cluster_lease_confirmed, vigil_cluster_lease_unconfirmed_seconds
// and vigil_cluster_lease_unconfirmed_total, and a /readyz check that
// answers 503 while the lease cannot be confirmed, naming why. The log
// lines come from the cluster member itself.
func (s *Server) registerClusterHealth() {
	m := s.member
	s.metrics.Gauge("vigil_cluster_lease_confirmed",
		"1 while this broker's cluster lease is surely held; 0 while the metadata store (etcd) has not answered a renewal within the lease TTL, during which every partition it leads holds its acknowledgements (or while it rejoins after losing the lease).",
		func() float64 {
			if h := m.Health(); h.Joined && h.LeaseConfirmed {
				return 1
			}
			return 0
		})
	s.metrics.Gauge("vigil_cluster_lease_unconfirmed_seconds",
		"Seconds since this broker's lease stopped being confirmed (0 while confirmed): how long acknowledgements have been held.",
		func() float64 {
			if h := m.Health(); !h.UnconfirmedSince.IsZero() {
				return time.Since(h.UnconfirmedSince).Seconds()
			}
			return 0
		})
	s.metrics.Counter("vigil_cluster_lease_unconfirmed_total",
		"Times this broker's lease went unconfirmed (etcd unreachable for longer than the lease TTL).",
		func() float64 { return float64(m.Health().Unconfirmed) })
	s.metrics.AddReadyCheck(func() error { return leaseProblem(m.Health()) })
}

// leaseProblem is what /readyz says about the lease, nil if nothing.
func leaseProblem(h cluster.Health) error {
	switch {
	case !h.Joined:
		return fmt.Errorf("not a cluster member: the lease was lost and the broker is rejoining (it leads nothing meanwhile)")
	case !h.LeaseConfirmed:
		since := "just now"
		if !h.UnconfirmedSince.IsZero() {
			since = time.Since(h.UnconfirmedSince).Round(time.Second).String() + " ago"
		}
		return fmt.Errorf("cluster lease unconfirmed since %s: the metadata store (etcd) has not answered a renewal within the lease TTL; acknowledgements are held on the %d partitions this broker leads until it answers", since, h.Led)
	}
	return nil
}
