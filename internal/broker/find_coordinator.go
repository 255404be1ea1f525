package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Coordinator key types (FindCoordinator v1+).
const (
	coordinatorGroup       = 0
	coordinatorTransaction = 1
)

// handleFindCoordinator names the broker that coordinates a group or a
// transactional id: this one alone, or in a cluster the leader of the
// group's __consumer_offsets partition (group.PartitionFor) or of the
// id's __transaction_state partition (txn.PartitionFor), Kafka's own
// mappings. KIP-932 share groups are not supported: INVALID_REQUEST.
//
// Authorization, as Kafka's handleFindCoordinatorRequest, per key (v4+
// batches keys): Describe on the group, else GROUP_AUTHORIZATION_FAILED;
// for a transaction key, Describe on the transactional id, else
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
// Refused, the coordinator is node -1, host "", port -1, with Kafka's
// message before v4 and none in v4+.
func (b *Broker) handleFindCoordinator(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	ktype := req.CoordinatorType
	if h.version == 0 {
		ktype = coordinatorGroup // v0 has no key type: groups only
	}
	refuse := func(e *kerr.Error, m string) (int16, *string, int32, string, int32) {
		if h.version >= 4 {
			return e.Code, nil, -1, "", -1
		}
		return e.Code, &m, -1, "", -1
	}
	find := func(key string) (code int16, msg *string, node int32, host string, port int32) {
		switch {
		case ktype == coordinatorGroup && !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, key):
			return refuse(kerr.GroupAuthorizationFailed, msgGroupAuthz)
		case ktype == coordinatorTransaction && !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTransactionalId, key):
			return refuse(kerr.TransactionalIDAuthorizationFailed, msgTxnIDAuthz)
		}
		switch ktype {
		case coordinatorGroup:
			e, ok := b.coordinatorNode(c.listener.Protocol, key)
			if !ok {
				m := "the group coordinator is moving to another broker"
				return kerr.CoordinatorNotAvailable.Code, &m, -1, "", -1
			}
			return 0, nil, e.id, e.host, e.port
		case coordinatorTransaction:
			e, ok := b.txnCoordinatorNode(c.listener.Protocol, key)
			if !ok {
				m := "the transaction coordinator is moving to another broker"
				return kerr.CoordinatorNotAvailable.Code, &m, -1, "", -1
			}
			return 0, nil, e.id, e.host, e.port
		default:
			m := "unsupported coordinator key type"
			return kerr.InvalidRequest.Code, &m, -1, "", -1
		}
	}
	if h.version >= 4 {
		for _, key := range req.CoordinatorKeys {
			co := kmsg.FindCoordinatorResponseCoordinator{Key: key}
			co.ErrorCode, co.ErrorMessage, co.NodeID, co.Host, co.Port = find(key)
			resp.Coordinators = append(resp.Coordinators, co)
		}
	} else {
		resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = find(req.CoordinatorKey)
	}
	return func() kmsg.Response { return resp }
}
