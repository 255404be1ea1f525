package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDescribeTransactions describes the transactional ids this broker
// coordinates (KIP-664); one another broker coordinates is
// NOT_COORDINATOR, and the admin client asks that broker.
//
// Authorization, as Kafka's handleDescribeTransactionsRequest: Describe on
// each transactional id, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED for
// it; a described transaction lists only the topics the principal may
// Describe.
func (b *Broker) handleDescribeTransactions(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.DescribeTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range req.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = id
		co := b.txnCoordinator(id)
		switch {
		case !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTransactionalId, id):
			st.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		case co == nil:
			st.ErrorCode = kerr.NotCoordinator.Code
		default:
			// The coordinator answers at once (no append), so here, on
			// the reader goroutine that owns the principal.
			st = co.Describe([]string{id})[0]
			topics := st.Topics[:0:0]
			for _, t := range st.Topics {
				if c.allowedQuiet(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t.Topic) {
					topics = append(topics, t)
				}
			}
			st.Topics = topics
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return func() kmsg.Response { return resp }
}
