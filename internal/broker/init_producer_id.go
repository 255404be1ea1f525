package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleInitProducerID gives an idempotent producer a fresh producer id at
// epoch 0. Without a transactional id Kafka does the same on every call,
// including KIP-360 re-initialisations (v3+) that name the old id: the
// producer starts a new sequence space and the old id's state expires.
//
// Authorization, as Kafka's handleInitProducerIdRequest: with a
// transactional id, Write on it, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED
// (and with it, INVALID_REQUEST as before: no transactions yet). Without,
// IdempotentWrite on the cluster or (KIP-679) Write on some topic, else
// CLUSTER_AUTHORIZATION_FAILED. Kafka asks both quietly; the refusal is
// reported here once, as IdempotentWrite on the cluster, so the audit
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
		// No transaction coordinator yet: refuse clearly rather than hand
		// out an id whose transactional batches the log would refuse.
		c.log.Warn("InitProducerId refused: transactions are not supported yet", "transactional_id", *req.TransactionalID)
		resp.ErrorCode = kerr.InvalidRequest.Code
		return func() kmsg.Response { return resp }
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
