package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/group"
)

// handleTxnOffsetCommit hands a transaction's offsets to the group's
// coordinator, which keeps them pending until the transaction's marker
// reaches the group's offsets partition (KIP-98, KIP-447). The first
// commit of a transaction is verified with the transaction coordinator
// (KIP-890 part 1): the offsets partition must be in the transaction
// (AddOffsetsToTxn); v5+ (transaction version 2, which sends no
// AddOffsetsToTxn) adds it instead. COORDINATOR_LOAD_IN_PROGRESS is
// COORDINATOR_NOT_AVAILABLE before v2, as Kafka answers (KAFKA-7296).
//
// Authorization, as Kafka's handleTxnOffsetCommitRequest: Write on the
// transactional id, else every partition
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED; Read on the group, else every
// partition GROUP_AUTHORIZATION_FAILED; then Read on each topic, else its
// partitions TOPIC_AUTHORIZATION_FAILED, and an unknown topic's
// UNKNOWN_TOPIC_OR_PARTITION. The coordinator sees only the rest.
func (b *Broker) handleTxnOffsetCommit(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.TxnOffsetCommitRequest)
	answer := func(resp *kmsg.TxnOffsetCommitResponse) kmsg.Response {
		if h.version < 2 {
			for i := range resp.Topics {
				for j := range resp.Topics[i].Partitions {
					if p := &resp.Topics[i].Partitions[j]; p.ErrorCode == kerr.CoordinatorLoadInProgress.Code {
						p.ErrorCode = kerr.CoordinatorNotAvailable.Code
					}
				}
			}
		}
		return resp
	}
	failAll := func(code int16) func() kmsg.Response {
		resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.TxnOffsetCommitResponseTopic{Topic: rt.Topic}
			for _, rp := range rt.Partitions {
				st.Partitions = append(st.Partitions, kmsg.TxnOffsetCommitResponseTopicPartition{Partition: rp.Partition, ErrorCode: code})
			}
			resp.Topics = append(resp.Topics, st)
		}
		return func() kmsg.Response { return answer(resp) }
	}
	switch {
	case !c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, req.TransactionalID):
		return failAll(kerr.TransactionalIDAuthorizationFailed.Code)
	case !c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, req.Group):
		return failAll(kerr.GroupAuthorizationFailed.Code)
	}
	refused := map[string]int16{} // topic: its partitions' code
	sub := *req
	sub.Topics = nil
	for _, rt := range req.Topics {
		switch {
		case !c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, rt.Topic):
			refused[rt.Topic] = kerr.TopicAuthorizationFailed.Code
		case b.store.Topic(rt.Topic) == nil:
			refused[rt.Topic] = kerr.UnknownTopicOrPartition.Code
		default:
			sub.Topics = append(sub.Topics, rt)
		}
	}
	if len(sub.Topics) == 0 {
		return func() kmsg.Response { return answer(mergeTxnCommit(req, nil, refused)) }
	}
	g := b.coordinator(req.Group)
	if g == nil {
		return failAll(kerr.NotCoordinator.Code)
	}
	abortable := h.version >= 4 // KIP-890: these clients know TRANSACTION_ABORTABLE
	add := h.version >= 5       // transaction version 2: no AddOffsetsToTxn came first
	ch := g.TxnCommitVerified(&sub, func(p int32) int16 {
		code := b.verifyTxnPartition(req.TransactionalID, req.ProducerID, req.ProducerEpoch, group.OffsetsTopic, p, add)
		return verifiedCode(code, abortable, kerr.CoordinatorNotAvailable.Code)
	})
	return func() kmsg.Response { return answer(mergeTxnCommit(req, <-ch, refused)) }
}

// mergeTxnCommit answers every topic of req in request order: the refused
// ones with their code, the others as the coordinator answered them.
func mergeTxnCommit(req *kmsg.TxnOffsetCommitRequest, coord *kmsg.TxnOffsetCommitResponse, refused map[string]int16) *kmsg.TxnOffsetCommitResponse {
	out := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	answered := map[string]kmsg.TxnOffsetCommitResponseTopic{}
	if coord != nil {
		out.ThrottleMillis = coord.ThrottleMillis
		for _, t := range coord.Topics {
			answered[t.Topic] = t
		}
	}
	for _, rt := range req.Topics {
		code, ok := refused[rt.Topic]
		if !ok {
			if t, ok := answered[rt.Topic]; ok {
				out.Topics = append(out.Topics, t)
				continue
			}
			code = kerr.UnknownServerError.Code
		}
		st := kmsg.TxnOffsetCommitResponseTopic{Topic: rt.Topic}
		for _, rp := range rt.Partitions {
			st.Partitions = append(st.Partitions, kmsg.TxnOffsetCommitResponseTopicPartition{Partition: rp.Partition, ErrorCode: code})
		}
		out.Topics = append(out.Topics, st)
	}
	return out
}
