package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleInitProducerID gives an idempotent producer a fresh producer id at
// epoch 0. Without a transactional id Kafka does the same on every call,
// including KIP-360 re-initialisations (v3+) that name the old id: the
// producer starts a new sequence space and the old id's state expires.
func (b *Broker) handleInitProducerID(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	return func() kmsg.Response {
		if req.TransactionalID != nil {
			// No transaction coordinator yet: refuse clearly rather than hand
			// out an id whose transactional batches the log would refuse.
			c.log.Warn("InitProducerId refused: transactions are not supported yet", "transactional_id", *req.TransactionalID)
			resp.ErrorCode = kerr.InvalidRequest.Code
			return resp
		}
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
