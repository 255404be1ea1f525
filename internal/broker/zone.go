package broker

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/forward"
	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/placement"
)

// forwardClientID is the client.id of forwarded requests. It names no
// zone, so the leader serves them or refuses them but never forwards
// them again (no loops between brokers with different views).
const forwardClientID = "vigil-forward"

// clientZone is the zone a client names in its client.id: the value of a
// "zone=NAME" element, elements separated by ';' or ',' (e.g.
// "myapp;zone=a"). "" if it names none.
func clientZone(clientID string) string {
	if !strings.Contains(clientID, "zone=") {
		return "" // the common case, without allocating
	}
	for _, part := range strings.FieldsFunc(clientID, func(r rune) bool { return r == ';' || r == ',' }) {
		if z, ok := strings.CutPrefix(strings.TrimSpace(part), "zone="); ok && z != "" {
			return strings.TrimSpace(z)
		}
	}
	return ""
}

// inZoneBroker picks the broker that serves a partition to clients of
// zone: rendezvous hashing of (topic/partition, broker id) over the live,
// non-draining brokers of that zone, so every broker answers the same,
// the partitions spread over the zone's brokers, and a broker coming or
// going moves only its own share. -1 if the zone has no such broker.
func inZoneBroker(topic string, partition int32, zone string, brokers []meta.BrokerInfo) int32 {
	return placement.Owner(placement.PartitionKey(topic, partition), brokers,
		func(br meta.BrokerInfo) bool { return br.Zone == zone && !br.Draining })
}

// routedLeader is the leader Metadata reports to a client of zone: the
// real leader, unless it is in another zone and zone has a live broker,
// which then forwards for it.
func routedLeader(topic string, partition int32, leader int32, zone string, brokers []meta.BrokerInfo) int32 {
	if zone == "" || leader < 0 {
		return leader
	}
	for _, br := range brokers {
		if br.ID == leader && br.Zone == zone {
			return leader
		}
	}
	if id := inZoneBroker(topic, partition, zone, brokers); id >= 0 {
		return id
	}
	return leader
}

// ZoneBytes counts bytes by whether they crossed zones.
type ZoneBytes struct {
	ClientSame, ClientCross   atomic.Int64 // to and from clients that named a zone
	ForwardSame, ForwardCross atomic.Int64 // to and from peers, forwarded requests
}

// ZoneBytes returns the broker's cross-zone byte counters (metrics).
func (b *Broker) ZoneBytes() *ZoneBytes { return &b.zoneBytes }

// countClient counts n bytes exchanged with a client, if it named a zone.
func (b *Broker) countClient(clientID string, n int) {
	z := clientZone(clientID)
	switch {
	case z == "":
	case z == b.cfg.Zone:
		b.zoneBytes.ClientSame.Add(int64(n))
	default:
		b.zoneBytes.ClientCross.Add(int64(n))
	}
}

// countForward counts n bytes exchanged with peer over the forward link.
func (b *Broker) countForward(peer int32, n int) {
	zone := ""
	if b.cluster != nil {
		for _, br := range b.cluster.LiveBrokers() {
			if br.ID == peer {
				zone = br.Zone
			}
		}
	}
	if zone == b.cfg.Zone {
		b.zoneBytes.ForwardSame.Add(int64(n))
	} else {
		b.zoneBytes.ForwardCross.Add(int64(n))
	}
}

// forwardTimeout bounds a forwarded ListOffsets or OffsetForLeaderEpoch,
// which carry no timeout of their own.
const forwardTimeout = 10 * time.Second

// forwarder collects the partitions of one request that this broker
// forwards, per leader.
type forwarder struct {
	b       *Broker
	enabled bool
	leaders map[int32]string // leader id -> address
}

// newForwarder decides whether a request may be forwarded at all: in a
// cluster, from a client that named this broker's zone.
func (b *Broker) newForwarder(h header) *forwarder {
	f := &forwarder{b: b}
	f.enabled = b.cluster != nil && b.fwd != nil && b.cfg.Zone != "" && clientZone(h.clientID) == b.cfg.Zone
	return f
}

// target returns the leader to forward a partition to, if the request
// may be forwarded and another live broker leads the partition.
func (f *forwarder) target(topic string, partition int32) (int32, bool) {
	if !f.enabled {
		return 0, false
	}
	l, ok := f.b.cluster.LeaderOf(topic, partition)
	if !ok || l.Broker == f.b.cfg.NodeID {
		return 0, false
	}
	for _, br := range f.b.cluster.LiveBrokers() {
		if br.ID == l.Broker {
			if f.leaders == nil {
				f.leaders = map[int32]string{}
			}
			f.leaders[br.ID] = br.Addr
			return br.ID, true
		}
	}
	return 0, false
}

// submit sends req to leader; call on the reader goroutine, so that
// requests reach each leader in the order the client sent them.
func (f *forwarder) submit(leader int32, req kmsg.Request) *forward.Call {
	return f.b.fwd.Submit(leader, f.leaders[leader], req)
}

// waitForward waits for a forwarded call until deadline and returns its
// response, or the retriable error code its partitions get.
func (b *Broker) waitForward(call *forward.Call, deadline time.Time) (kmsg.Response, int16) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	resp, err := call.Wait(ctx)
	switch {
	case err == nil:
		return resp, 0
	case errors.Is(err, context.DeadlineExceeded):
		b.log.Warn("forwarded request timed out", "err", err)
		return nil, kerr.RequestTimedOut.Code
	default:
		b.log.Warn("forwarded request failed", "err", err)
		return nil, kerr.NotLeaderForPartition.Code
	}
}
