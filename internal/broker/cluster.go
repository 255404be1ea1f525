package broker

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/vigilhq/vigil/internal/clientsec"
	"github.com/vigilhq/vigil/internal/forward"
	"github.com/vigilhq/vigil/internal/group"
	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/partition"
	"github.com/vigilhq/vigil/internal/storage"
)

// ClusterView tells the broker where partitions live in a multi-broker
// cluster. A single broker has none and leads everything itself.
type ClusterView interface {
	// LiveBrokers returns the registered brokers, sorted by id.
	LiveBrokers() []meta.BrokerInfo
	// LeaderOf returns a partition's current leader, if it has one.
	LeaderOf(topic string, partition int32) (meta.Leader, bool)
	// SetDraining marks a broker as draining (or not).
	SetDraining(ctx context.Context, id int32, draining bool) error
}

// SetCluster switches the broker to cluster mode; call before Serve. The
// links to the peers (zone forwarding) use the inter-broker protocol.
func (b *Broker) SetCluster(v ClusterView) error {
	dial, err := b.peerDialer()
	if err != nil {
		return err
	}
	b.cluster = v
	b.fwd = forward.New(forward.Config{ClientID: forwardClientID, Bytes: b.countForward, Dial: dial})
	return nil
}

// peerDialer connects to a peer's listener of the inter-broker protocol
// and passes its TLS and SASL; the peer then authorizes what this broker
// forwards as this broker's principal, after this broker authorized it as
// the client's.
func (b *Broker) peerDialer() (func(ctx context.Context, id int32, addr string) (net.Conn, error), error) {
	sec := b.cfg.Security
	proto := b.cfg.InterBroker()
	cs := &clientsec.Config{Protocol: proto}
	if cs.TLS() {
		cs.CA = cmp.Or(sec.InterBrokerCA, sec.TLSClientCA)
		cs.Cert, cs.Key = sec.TLSCert, sec.TLSKey
	}
	if cs.SASL() {
		cs.Mechanism, cs.Username, cs.PasswordFile = sec.InterBrokerMechanism, sec.InterBrokerUsername, sec.InterBrokerPasswordFile
	}
	d, err := cs.NewDialer(forwardClientID)
	if err != nil {
		return nil, fmt.Errorf("inter-broker %s: %w", proto, err)
	}
	return func(ctx context.Context, id int32, addr string) (net.Conn, error) {
		for _, br := range b.cluster.LiveBrokers() {
			if a, ok := br.Endpoints[proto]; ok && br.ID == id {
				addr = a
			}
		}
		return d.Dial(ctx, addr)
	}, nil
}

// SetGroups replaces the group coordinators (nil: this broker
// coordinates no group now); in a cluster each moves with its
// __consumer_offsets partition.
func (b *Broker) SetGroups(s *group.Shards) { b.groupsPtr.Store(s) }

// coordinator is the coordinator of a group, or nil when another broker
// coordinates it (NOT_COORDINATOR).
func (b *Broker) coordinator(groupID string) *group.Coordinator {
	return b.groupsPtr.Load().For(groupID)
}

// coordinators are every coordinator this broker runs.
func (b *Broker) coordinators() []*group.Coordinator { return b.groupsPtr.Load().All() }

// brokerEndpoint is one broker as Metadata lists it.
type brokerEndpoint struct {
	id   int32
	host string
	port int32
	rack *string
}

// endpoints lists the brokers clients of a listener's protocol may use:
// this one alone, or every live broker of the cluster at its address for
// that protocol, with its zone as its rack.
func (b *Broker) endpoints(protocol string) []brokerEndpoint {
	if b.cluster == nil {
		self, ok := b.self[protocol]
		if !ok {
			return nil
		}
		self.rack = zoneRack(b.cfg.Zone)
		return []brokerEndpoint{self}
	}
	var out []brokerEndpoint
	for _, br := range b.cluster.LiveBrokers() {
		addr := br.Addr
		if a, ok := br.Endpoints[protocol]; ok {
			addr = a
		}
		e, err := parseEndpoint(br.ID, addr)
		if err != nil {
			continue
		}
		e.rack = zoneRack(br.Zone)
		out = append(out, e)
	}
	return out
}

func parseEndpoint(id int32, addr string) (brokerEndpoint, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return brokerEndpoint{}, err
	}
	port, err := strconv.ParseInt(portStr, 10, 32)
	if err != nil {
		return brokerEndpoint{}, err
	}
	return brokerEndpoint{id: id, host: host, port: int32(port)}, nil
}

func zoneRack(zone string) *string {
	if zone == "" {
		return nil
	}
	return &zone
}

// endpoint finds one broker by id.
func (b *Broker) endpoint(protocol string, id int32) (brokerEndpoint, bool) {
	for _, e := range b.endpoints(protocol) {
		if e.id == id {
			return e, true
		}
	}
	return brokerEndpoint{}, false
}

// leaderOf is a partition's leader and epoch: -1 while it has none
// (being taken over).
func (b *Broker) leaderOf(topic string, p int32) (int32, int32) {
	if b.cluster == nil {
		return b.cfg.NodeID, 0
	}
	if l, ok := b.cluster.LeaderOf(topic, p); ok {
		return l.Broker, l.Epoch
	}
	return -1, -1
}

// partitionLeader is a partition's leader and epoch as Metadata reports
// them to a client of route: an in-zone broker stands in for a leader of
// another zone and forwards to it; the epoch stays the real leader's,
// which is what the leader checks the client's requests against.
func (b *Broker) partitionLeader(topic string, p int32, route routing) (int32, int32) {
	leader, epoch := b.leaderOf(topic, p)
	return routedLeader(topic, p, leader, route.zone, route.brokers), epoch
}

// clientRoute is the routing of a client by the zone its client.id names
// (none for a single broker).
func (b *Broker) clientRoute(clientID string) routing {
	route := routing{zone: clientZone(clientID)}
	if route.zone != "" && b.cluster != nil {
		route.brokers = b.cluster.LiveBrokers()
	} else {
		route.zone = ""
	}
	return route
}

// servePartition finds a partition this broker serves and checks the
// client's idea of its leader epoch (KIP-320; -1: not given). It returns
// the log or the error code to answer with.
func (b *Broker) servePartition(t *storage.Topic, p int32, clientEpoch int32) (*partition.Log, int16) {
	if t == nil || p < 0 || int(p) >= len(t.Logs) {
		return nil, kerr.UnknownTopicOrPartition.Code
	}
	l := t.Logs[p]
	epoch, led := l.Leader()
	switch {
	case !led:
		return nil, kerr.NotLeaderForPartition.Code
	case clientEpoch > epoch:
		return nil, kerr.UnknownLeaderEpoch.Code
	case clientEpoch >= 0 && clientEpoch < epoch:
		return nil, kerr.FencedLeaderEpoch.Code
	}
	return l, 0
}

// coordinatorNode is the broker that coordinates a group, the leader of
// its __consumer_offsets partition, and whether there is one now.
func (b *Broker) coordinatorNode(protocol, groupID string) (brokerEndpoint, bool) {
	if b.cluster == nil {
		return b.endpoint(protocol, b.cfg.NodeID)
	}
	if b.coordinator(groupID) != nil {
		return b.endpoint(protocol, b.cfg.NodeID)
	}
	t := b.store.Topic(group.OffsetsTopic)
	if t == nil || len(t.Logs) == 0 {
		return brokerEndpoint{}, false
	}
	l, ok := b.cluster.LeaderOf(group.OffsetsTopic, group.PartitionFor(groupID, int32(len(t.Logs))))
	if !ok {
		return brokerEndpoint{}, false
	}
	return b.endpoint(protocol, l.Broker)
}
