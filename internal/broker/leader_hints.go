package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Leader discovery (KIP-951): a Produce (v10+) or Fetch (v16+) partition
// refused because this broker does not lead it carries the leader the
// broker knows of (CurrentLeader: id and epoch) and the response lists
// that leader's endpoint (NodeEndpoints, kmsg's Brokers), so a client can
// send the retry there without a Metadata round trip first. As Kafka's
// KafkaApis.getCurrentLeader:
//   - Produce hints NOT_LEADER_OR_FOLLOWER; Fetch hints it and
//     FENCED_LEADER_EPOCH (the leader is then this broker, at the epoch the
//     client is behind).
//   - The leader and its epoch are the broker's view of placement (the
//     cluster's leader keys), -1 and -1 while a partition has no leader;
//     an endpoint is listed only for a live broker, at its address for the
//     protocol of the listener the client came in on.
//   - Every other partition leaves CurrentLeader at Kafka's default, -1
//     and -1, which is left off the wire (a tagged field).
//
// Vigil's one addition: a client that names its zone is hinted at the
// broker Metadata would give it (routedLeader: an in-zone broker that
// forwards for a leader of another zone), with the real leader's epoch,
// so the hint and Metadata never send it different ways. Partitions
// answered by a forward get their hint here too, replacing the leader's,
// which was computed for the inter-broker listener.
//
// The hints are set on the connection's writer goroutine, once every
// partition of the response has its answer (a WAL callback's, a
// forward's); they read the cluster view, safe for concurrent use.
//
// Clients act on a hint only when its epoch is newer than the one they
// have (franz-go's kip951move, as the Java client); an older or equal one
// makes them refresh Metadata as before.

// hintCodes says which partition error codes carry a hint at a version.
type hintCodes func(code int16) bool

func produceHinted(version int16) hintCodes {
	return func(code int16) bool { return version >= 10 && code == kerr.NotLeaderForPartition.Code }
}

func fetchHinted(version int16) hintCodes {
	return func(code int16) bool {
		return version >= 16 && (code == kerr.NotLeaderForPartition.Code || code == kerr.FencedLeaderEpoch.Code)
	}
}

// leaderHints finds the hints of one response; the cluster's view is read
// only once a partition needs a hint.
type leaderHints struct {
	b        *Broker
	protocol string
	clientID string
	route    *routing
	nodes    []brokerEndpoint // the leaders named, once each
}

// newLeaderHints is a value, so that the fetch and produce paths, which
// hint nothing almost always, allocate nothing for it.
func (b *Broker) newLeaderHints(c *conn, h header) leaderHints {
	return leaderHints{b: b, protocol: c.listener.Protocol, clientID: h.clientID}
}

// current is the leader and epoch to hint for a partition, and notes the
// leader's endpoint if it is live.
func (lh *leaderHints) current(topic string, p int32) (int32, int32) {
	if lh.route == nil {
		r := lh.b.clientRoute(lh.clientID)
		lh.route = &r
	}
	leader, epoch := lh.b.partitionLeader(topic, p, *lh.route)
	if leader < 0 {
		return -1, -1
	}
	for _, n := range lh.nodes {
		if n.id == leader {
			return leader, epoch
		}
	}
	if e, ok := lh.b.endpoint(lh.protocol, leader); ok {
		lh.nodes = append(lh.nodes, e)
	}
	return leader, epoch
}

// hintProduce sets every partition's CurrentLeader of a produce response
// and its NodeEndpoints.
func (lh *leaderHints) hintProduce(resp *kmsg.ProduceResponse) {
	hinted := produceHinted(resp.Version)
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		for j := range rt.Partitions {
			sp := &rt.Partitions[j]
			sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = -1, -1
			if hinted(sp.ErrorCode) {
				sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = lh.current(rt.Topic, sp.Partition)
			}
		}
	}
	resp.Brokers = nil
	for _, n := range lh.nodes {
		resp.Brokers = append(resp.Brokers, kmsg.ProduceResponseBroker{NodeID: n.id, Host: n.host, Port: n.port, Rack: n.rack})
	}
}

// hintFetch is hintProduce for a fetch response. Topics of a v13+
// response carry their names too (resolveFetchIDs), except those whose id
// is unknown, which get no hint.
func (lh *leaderHints) hintFetch(resp *kmsg.FetchResponse) {
	hinted := fetchHinted(resp.Version)
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		for j := range rt.Partitions {
			sp := &rt.Partitions[j]
			sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = -1, -1
			if hinted(sp.ErrorCode) && rt.Topic != "" {
				sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = lh.current(rt.Topic, sp.Partition)
			}
		}
	}
	resp.Brokers = nil
	for _, n := range lh.nodes {
		resp.Brokers = append(resp.Brokers, kmsg.FetchResponseBroker{NodeID: n.id, Host: n.host, Port: n.port, Rack: n.rack})
	}
}
