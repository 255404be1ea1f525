package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleEndTxn commits or aborts a producer's transaction. It is answered
// once the coordinator's decision (PrepareCommit or PrepareAbort) is
// durable, as in Kafka; the markers reach the transaction's partitions
// afterwards, retried until they do, and read_committed consumers see the
// records once they have. The broker advertises v0-4: v5 belongs to
// transaction version 2 (KIP-890 part 2), which clients use only when the
// cluster finalizes the transaction.version feature, which Vigil does
// not. PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2.
//
// Authorization, as Kafka's handleEndTxnRequest: Write on the
// transactional id, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
func (b *Broker) handleEndTxn(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.EndTxnRequest)
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	co := b.txnCoordinator(req.TransactionalID)
	switch {
	case !c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, req.TransactionalID):
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
	case co == nil:
		resp.ErrorCode = kerr.NotCoordinator.Code
	default:
		return func() kmsg.Response {
			ctx, cancel := context.WithTimeout(c.ctx, adminTimeout)
			defer cancel()
			pid, epoch, code := co.EndTxn(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit, h.version >= 5)
			resp.ErrorCode = fencedCode(code, h.version >= 2)
			if h.version >= 5 {
				resp.ProducerID, resp.ProducerEpoch = pid, epoch
			}
			return resp
		}
	}
	return func() kmsg.Response { return resp }
}
