package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleAddOffsetsToTxn adds a group's __consumer_offsets partition to a
// producer's transaction, before TxnOffsetCommit sends the group's
// coordinator the offsets, so the transaction's marker reaches them.
// PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2, as Kafka answers.
//
// Authorization, as Kafka's handleAddOffsetsToTxnRequest: Write on the
// transactional id, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED; Read on
// the group, else GROUP_AUTHORIZATION_FAILED.
func (b *Broker) handleAddOffsetsToTxn(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.AddOffsetsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	co := b.txnCoordinator(req.TransactionalID)
	switch {
	case !c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, req.TransactionalID):
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
	case !c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, req.Group):
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
	case co == nil:
		resp.ErrorCode = kerr.NotCoordinator.Code
	default:
		return func() kmsg.Response {
			ctx, cancel := context.WithTimeout(c.ctx, adminTimeout)
			defer cancel()
			resp.ErrorCode = fencedCode(co.AddOffsets(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group), h.version >= 2)
			return resp
		}
	}
	return func() kmsg.Response { return resp }
}
