package broker

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleOffsetCommit appends the commit records on the reader goroutine
// (so commits of a connection reach the offsets log in request order) and
// answers on the writer goroutine once they are durable in the WAL.
//
// Authorization, as Kafka's handleOffsetCommitRequest: Read on the group,
// else every partition is answered GROUP_AUTHORIZATION_FAILED; then Read on
// each topic, else its partitions are answered TOPIC_AUTHORIZATION_FAILED
// and are not committed. The coordinator sees only the topics allowed, and
// is not asked at all when every topic was refused.
//
// Topic ids (v10, KIP-848's KAFKA-14690): the request names each topic by
// id alone. After the group check, an id that is no live topic's (never
// was, or its topic was deleted, perhaps re-created under a new id) is
// answered UNKNOWN_TOPIC_ID for each of its partitions, before the topic
// check, as Kafka's handleOffsetCommitRequest: the id names nothing to
// authorize. A known id is checked against the name's id again under the
// coordinator's lock (group.Coordinator.Commit), so a topic deleted and
// re-created between here and there does not take the old id's offsets.
func (b *Broker) handleOffsetCommit(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.OffsetCommitRequest)
	failAll := func(e *kerr.Error) func() kmsg.Response {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.OffsetCommitResponseTopic{Topic: rt.Topic, TopicID: rt.TopicID}
			for _, rp := range rt.Partitions {
				st.Partitions = append(st.Partitions, kmsg.OffsetCommitResponseTopicPartition{Partition: rp.Partition, ErrorCode: e.Code})
			}
			resp.Topics = append(resp.Topics, st)
		}
		return func() kmsg.Response { return resp }
	}
	if !c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, req.Group) {
		return failAll(kerr.GroupAuthorizationFailed)
	}
	req, unknown := b.resolveCommitIDs(req)
	if len(req.Topics) == 0 && len(unknown) > 0 {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		resp.Topics = unknown
		return func() kmsg.Response { return resp }
	}
	answer := b.authorizedCommit(c, req)
	if unknown == nil {
		return answer
	}
	return func() kmsg.Response {
		resp := answer().(*kmsg.OffsetCommitResponse)
		resp.Topics = append(resp.Topics, unknown...)
		return resp
	}
}

// resolveCommitIDs names the topics of a v10+ commit by their ids and
// takes out those whose id is no live topic's, returning their answers
// (UNKNOWN_TOPIC_ID), as resolveFetchIDs. Earlier versions are returned
// as they are.
func (b *Broker) resolveCommitIDs(req *kmsg.OffsetCommitRequest) (*kmsg.OffsetCommitRequest, []kmsg.OffsetCommitResponseTopic) {
	if req.Version < 10 {
		return req, nil
	}
	kept := req.Topics[:0:0]
	var unknown []kmsg.OffsetCommitResponseTopic
	for _, rt := range req.Topics {
		if t := b.store.TopicByID(rt.TopicID); t != nil {
			rt.Topic = t.Name
			kept = append(kept, rt)
			continue
		}
		st := kmsg.OffsetCommitResponseTopic{TopicID: rt.TopicID}
		for _, rp := range rt.Partitions {
			st.Partitions = append(st.Partitions, kmsg.OffsetCommitResponseTopicPartition{Partition: rp.Partition, ErrorCode: kerr.UnknownTopicID.Code})
		}
		unknown = append(unknown, st)
	}
	cp := *req
	cp.Topics = kept
	return &cp, unknown
}

// authorizedCommit checks Read on each topic of a commit whose group the
// principal may read and hands the allowed topics to the coordinator.
func (b *Broker) authorizedCommit(c *conn, req *kmsg.OffsetCommitRequest) func() kmsg.Response {
	// denied[i]: topic i was refused; nil when none was (no allocation).
	var denied []bool
	sub := req
	for i, rt := range req.Topics {
		if c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, rt.Topic) {
			if denied != nil {
				sub.Topics = append(sub.Topics, rt)
			}
			continue
		}
		if denied == nil {
			denied = make([]bool, len(req.Topics))
			cp := *req
			cp.Topics = append([]kmsg.OffsetCommitRequestTopic(nil), req.Topics[:i]...)
			sub = &cp
		}
		denied[i] = true
	}
	if denied != nil && len(sub.Topics) == 0 {
		return failAllOr(req, nil, kerr.TopicAuthorizationFailed)
	}
	g := b.coordinator(req.Group)
	if g == nil {
		return failAllOr(req, denied, kerr.NotCoordinator)
	}
	ch := g.Commit(sub)
	// A commit outside a group generation is how admin tools reset a
	// group's offsets (vigil groups reset, kafka-consumer-groups.sh); a
	// standalone consumer commits so too, hence Frequent.
	outside := req.Generation < 0 && req.MemberID == ""
	who := c.auth.principal
	return func() kmsg.Response {
		// Not abandoned on disconnect: the WAL answers promptly, and
		// the commit happens whether or not the client hears of it.
		resp := <-ch
		if outside {
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					if rp.ErrorCode == 0 {
						b.secObs.Admin(AdminEvent{Principal: who, Operation: "OffsetCommit", Frequent: true,
							Resource: "group " + req.Group + ": offset of " + rt.Topic + " partition " + strconv.Itoa(int(rp.Partition)) + " set outside a group generation"})
					}
				}
			}
		}
		if denied != nil {
			resp.Topics = mergeCommit(req, denied, resp.Topics)
		}
		return resp
	}
}

// failAllOr answers every partition with e, and those of refused topics
// with TOPIC_AUTHORIZATION_FAILED.
func failAllOr(req *kmsg.OffsetCommitRequest, denied []bool, e *kerr.Error) func() kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for i, rt := range req.Topics {
		code := e.Code
		if denied != nil && denied[i] {
			code = kerr.TopicAuthorizationFailed.Code
		}
		st := kmsg.OffsetCommitResponseTopic{Topic: rt.Topic, TopicID: rt.TopicID}
		for _, rp := range rt.Partitions {
			st.Partitions = append(st.Partitions, kmsg.OffsetCommitResponseTopicPartition{Partition: rp.Partition, ErrorCode: code})
		}
		resp.Topics = append(resp.Topics, st)
	}
	return func() kmsg.Response { return resp }
}

// mergeCommit puts the refused topics back among the coordinator's
// answers (one per allowed topic, in order), in the request's order.
func mergeCommit(req *kmsg.OffsetCommitRequest, denied []bool, answered []kmsg.OffsetCommitResponseTopic) []kmsg.OffsetCommitResponseTopic {
	out := make([]kmsg.OffsetCommitResponseTopic, 0, len(req.Topics))
	j := 0
	for i, rt := range req.Topics {
		if !denied[i] {
			if j < len(answered) {
				out = append(out, answered[j])
				j++
			}
			continue
		}
		st := kmsg.OffsetCommitResponseTopic{Topic: rt.Topic, TopicID: rt.TopicID}
		for _, rp := range rt.Partitions {
			st.Partitions = append(st.Partitions, kmsg.OffsetCommitResponseTopicPartition{Partition: rp.Partition, ErrorCode: kerr.TopicAuthorizationFailed.Code})
		}
		out = append(out, st)
	}
	return out
}
