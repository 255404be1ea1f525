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

// metadataInvalid is Kafka's answer to a v10 or v11 request that names a
// topic by id (or by nothing): topic ids are looked up from v12 on, and
// handleTopicMetadataRequest throws InvalidRequestException, which
// MetadataRequest.getErrorResponse turns into INVALID_REQUEST for every
// topic asked, a null name answered as "", and no brokers.
func metadataInvalid(req *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	for _, rt := range req.Topics {
		name := ""
		if rt.Topic != nil {
			name = *rt.Topic
		}
		resp.Topics = append(resp.Topics, kmsg.MetadataResponseTopic{ErrorCode: kerr.InvalidRequest.Code, Topic: &name,
			TopicID: rt.TopicID, AuthorizedOperations: noAuthorizedOps})
	}
	return resp
}

// handleMetadata answers the brokers (of the client's listener, routed by
// its zone) and topics: every topic for a null list (or an empty one at
// v0), else the named ones, by name or (v12) by topic id (at v10 and v11
// a null name or a topic id is INVALID_REQUEST, as Kafka), auto-creating a
// named topic that does not exist when the broker and the request allow it.
// v13 (KIP-1102) adds a top-level error code, for an answer that refuses
// the whole request (REBOOTSTRAP_REQUIRED among them); no v13 answer of
// Vigil's does, so it is always 0.
//
// Authorization, as Kafka's handleTopicMetadataRequest:
//   - Describe on each topic. Asked for every topic, the ones refused are
//     left out silently; named, they are answered TOPIC_AUTHORIZATION_FAILED
//     without saying whether they exist (null topic id; by id, the id
//     without the name).
//   - Auto-creating a described topic needs Create on the cluster (asked
//     quietly) or on the topic, else TOPIC_AUTHORIZATION_FAILED.
//   - Authorized operations (v8+), when asked: the topic's (every topic
//     answered with its name) and, at v8-v10, the cluster's if the
//     principal may Describe the cluster (else 0); Kafka's bit fields.
//   - Kafka's order: unknown topic ids, the topics answered, those refused
//     Create, those refused Describe.
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
	if h.version >= 8 && h.version <= 10 && req.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = 0
		if c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeCluster, clusterResource) {
			resp.AuthorizedOperations = c.authorizedOps(kmsg.ACLResourceTypeCluster, clusterResource)
		}
	}
	topicOps := h.version >= 8 && req.IncludeTopicAuthorizedOperations
	answer := func(mt kmsg.MetadataResponseTopic) {
		if topicOps && mt.Topic != nil {
			mt.AuthorizedOperations = c.authorizedOps(kmsg.ACLResourceTypeTopic, *mt.Topic)
		}
		resp.Topics = append(resp.Topics, mt)
	}
	// A client that names a zone is routed to brokers of that zone.
	route := b.clientRoute(h.clientID)

	// v0 and a nil list (v1+) both mean every topic.
	if req.Topics == nil || (h.version == 0 && len(req.Topics) == 0) {
		for _, t := range b.store.Topics() {
			if c.allowedQuiet(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t.Name) {
				answer(b.metadataTopic(t, route))
			}
		}
		return func() kmsg.Response { return resp }
	}
	if h.version < 12 {
		for _, rt := range req.Topics {
			if rt.Topic == nil || rt.TopicID != ([16]byte{}) {
				return func() kmsg.Response { return metadataInvalid(req) }
			}
		}
	}
	autoCreate := b.cfg.AutoCreateTopics && (h.version < 4 || req.AllowAutoTopicCreation)
	var clusterCreate *bool // asked once, when first needed
	var unknownIDs, noCreate, noDescribe []kmsg.MetadataResponseTopic
	for _, rt := range req.Topics {
		var t *storage.Topic
		if rt.Topic == nil {
			t = b.store.TopicByID(rt.TopicID)
			if t == nil {
				unknownIDs = append(unknownIDs, kmsg.MetadataResponseTopic{ErrorCode: kerr.UnknownTopicID.Code, TopicID: rt.TopicID, AuthorizedOperations: noAuthorizedOps})
				continue
			}
			if !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t.Name) {
				// Topic ids are not secret; the name is.
				noDescribe = append(noDescribe, kmsg.MetadataResponseTopic{ErrorCode: kerr.TopicAuthorizationFailed.Code, TopicID: rt.TopicID, AuthorizedOperations: noAuthorizedOps})
				continue
			}
		} else {
			name := *rt.Topic
			if !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, name) {
				noDescribe = append(noDescribe, kmsg.MetadataResponseTopic{ErrorCode: kerr.TopicAuthorizationFailed.Code, Topic: rt.Topic, AuthorizedOperations: noAuthorizedOps})
				continue
			}
			t = b.store.Topic(name)
			if t == nil {
				if autoCreate {
					if clusterCreate == nil {
						ok := c.allowedQuiet(kmsg.ACLOperationCreate, kmsg.ACLResourceTypeCluster, clusterResource)
						clusterCreate = &ok
					}
					if !*clusterCreate && !c.allowed(kmsg.ACLOperationCreate, kmsg.ACLResourceTypeTopic, name) {
						noCreate = append(noCreate, kmsg.MetadataResponseTopic{ErrorCode: kerr.TopicAuthorizationFailed.Code, Topic: rt.Topic,
							IsInternal: isInternalTopic(name), AuthorizedOperations: noAuthorizedOps})
						continue
					}
				}
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
					answer(kmsg.MetadataResponseTopic{ErrorCode: code, Topic: rt.Topic, AuthorizedOperations: noAuthorizedOps})
					continue
				}
			}
		}
		answer(b.metadataTopic(t, route))
	}
	resp.Topics = append(append(append(unknownIDs, resp.Topics...), noCreate...), noDescribe...)
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
		leader, epoch := b.partitionLeader(name, int32(p), route)
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
