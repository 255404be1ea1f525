package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleHeartbeat keeps a member in its group.
//
// Authorization, as Kafka's handleHeartbeatRequest: Read on the group,
// else GROUP_AUTHORIZATION_FAILED before the coordinator is asked.
func (b *Broker) handleHeartbeat(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if !c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
	} else if g := b.coordinator(req.Group); g != nil {
		resp.ErrorCode = g.Heartbeat(req)
	} else {
		resp.ErrorCode = kerr.NotCoordinator.Code
	}
	return func() kmsg.Response { return resp }
}
