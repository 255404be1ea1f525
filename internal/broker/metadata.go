package broker

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/storage"
)

// noAuthorizedOps is Kafka's "not requested" value for authorized operations.
const noAuthorizedOps = -2147483648

func (b *Broker) handleMetadata(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	req := r.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	for _, e := range b.endpoints(c.listener.Protocol) {
		resp.Brokers = append(resp.Brokers, kmsg.MetadataResponseBroker{NodeID: e.id, Host: e.host, Port: e.port, Rack: e.rack})
	}
	resp.ClusterID = &b.clusterID
	resp.ControllerID = b.cfg.NodeID
	resp.AuthorizedOperations = noAuthorizedOps
	// A client that names a zone is routed to brokers of that zone.
	route := routing{zone: clientZone(h.clientID)}
	if route.zone != "" && b.cluster != nil {
		route.brokers = b.cluster.LiveBrokers()
	} else {
		route.zone = ""
	}

	// v0 and a nil list (v1+) both mean every topic.
	if req.Topics == nil || (h.version == 0 && len(req.Topics) == 0) {
		for _, t := range b.store.Topics() {
			resp.Topics = append(resp.Topics, b.metadataTopic(t, route))
		}
		return func() kmsg.Response { return resp }
	}
	autoCreate := b.cfg.AutoCreateTopics && (h.version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		var t *storage.Topic
		if rt.Topic == nil {
			t = b.store.TopicByID(rt.TopicID)
			if t == nil {
				resp.Topics = append(resp.Topics, kmsg.MetadataResponseTopic{ErrorCode: kerr.UnknownTopicID.Code, TopicID: rt.TopicID, AuthorizedOperations: noAuthorizedOps})
				continue
			}
		} else {
			name := *rt.Topic
			t = b.store.Topic(name)
			if t == nil {
				code := kerr.UnknownTopicOrPartition.Code
				if err := validTopicName(name); err != nil {
					code = kerr.InvalidTopicException.Code
				} else if autoCreate {
					var err error
					t, err = b.store.CreateTopic(ctx, name, b.cfg.DefaultPartitions, nil)
					if errors.Is(err, storage.ErrTopicExists) {
						t, err = b.store.Topic(name), nil
					}
					if err != nil {
						b.log.Error("auto-create topic", "topic", name, "err", err)
						code = kerr.UnknownServerError.Code
					}
				}
				if t == nil {
					resp.Topics = append(resp.Topics, kmsg.MetadataResponseTopic{ErrorCode: code, Topic: rt.Topic, AuthorizedOperations: noAuthorizedOps})
					continue
				}
			}
		}
		resp.Topics = append(resp.Topics, b.metadataTopic(t, route))
	}
	return func() kmsg.Response { return resp }
}

// routing is the client's zone ("" for none, or a single broker) and
// the live brokers as Metadata saw them.
type routing struct {
	zone    string
	brokers []meta.BrokerInfo
}

func (b *Broker) metadataTopic(t *storage.Topic, route routing) kmsg.MetadataResponseTopic {
	name := t.Name
	mt := kmsg.MetadataResponseTopic{Topic: &name, TopicID: t.ID, IsInternal: isInternalTopic(name), AuthorizedOperations: noAuthorizedOps}
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, len(t.Logs))
	for p := range t.Logs {
		leader, epoch := b.leaderOf(t, int32(p))
		// An in-zone broker stands in for a leader of another zone and
		// forwards to it; the epoch stays the real leader's, which is
		// what the leader checks the client's requests against.
		leader = routedLeader(name, int32(p), leader, route.zone, route.brokers)
		mp := kmsg.MetadataResponseTopicPartition{
			Partition: int32(p), Leader: leader, LeaderEpoch: epoch,
			Replicas: []int32{leader}, ISR: []int32{leader}, OfflineReplicas: []int32{},
		}
		if leader < 0 {
			// Being taken over: clients retry the metadata request.
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
			mp.Replicas, mp.ISR = []int32{}, []int32{}
		}
		mt.Partitions[p] = mp
	}
	return mt
}
