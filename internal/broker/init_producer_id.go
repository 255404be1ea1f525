package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleInitProducerID gives a producer its id and epoch. Without a
// transactional id Kafka hands out a fresh producer id at epoch 0 on every
// call, including KIP-360 re-initialisations (v3+) that name the old id:
// the producer starts a new sequence space and the old id's state
// expires. With one, the id's transaction coordinator answers (fencing
// the id's previous producer, aborting its transaction, KIP-360 recovery);
// PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v4, as Kafka answers.
//
// Authorization, as Kafka's handleInitProducerIdRequest: with a
// transactional id, Write on it, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
// Without, IdempotentWrite on the cluster or (KIP-679) Write on some topic,
// else CLUSTER_AUTHORIZATION_FAILED. Kafka asks both quietly; the refusal
// is reported here once, as IdempotentWrite on the cluster, so the audit
// trail has it.
func (b *Broker) handleInitProducerID(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	switch {
	case req.TransactionalID != nil:
		if !c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, *req.TransactionalID) {
			resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			return func() kmsg.Response { return resp }
		}
		id, timeout, pid, epoch := *req.TransactionalID, req.TransactionTimeoutMillis, req.ProducerID, req.ProducerEpoch
		if h.version < 3 {
			pid, epoch = -1, -1 // KIP-360's fields are v3+
		}
		co := b.txnCoordinator(id)
		if co == nil {
			resp.ErrorCode = kerr.NotCoordinator.Code
			return func() kmsg.Response { return resp }
		}
		return func() kmsg.Response {
			ctx, cancel := context.WithTimeout(c.ctx, adminTimeout)
			defer cancel()
			var code int16
			resp.ProducerID, resp.ProducerEpoch, code = co.InitProducerID(ctx, id, timeout, pid, epoch)
			resp.ErrorCode = fencedCode(code, h.version >= 4)
			return resp
		}
	case !c.allowedQuiet(kmsg.ACLOperationIdempotentWrite, kmsg.ACLResourceTypeCluster, clusterResource) &&
		!c.allowedAny(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic):
		c.allowed(kmsg.ACLOperationIdempotentWrite, kmsg.ACLResourceTypeCluster, clusterResource) // reports the denial
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return func() kmsg.Response { return resp }
	}
	return func() kmsg.Response {
		id, err := b.store.NewProducerID(c.ctx)
		if err != nil {
			c.log.Error("InitProducerId failed", "err", err)
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			return resp
		}
		resp.ProducerID, resp.ProducerEpoch = id, 0
		return resp
	}
}
