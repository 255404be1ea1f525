package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleSyncGroup hands the leader's assignment to the coordinator on the
// reader goroutine; followers wait for it on the writer goroutine.
//
// Authorization, as Kafka's handleSyncGroupRequest: Read on the group,
// else GROUP_AUTHORIZATION_FAILED before the coordinator is asked.
func (b *Broker) handleSyncGroup(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.SyncGroupRequest)
	fail := func(e *kerr.Error) func() kmsg.Response {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode, resp.MemberAssignment = e.Code, []byte{}
		return func() kmsg.Response { return resp }
	}
	if !c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, req.Group) {
		return fail(kerr.GroupAuthorizationFailed)
	}
	g := b.coordinator(req.Group)
	if g == nil {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = kerr.NotCoordinator.Code
		return func() kmsg.Response { return resp }
	}
	ch := g.Sync(req)
	return func() kmsg.Response {
		select {
		case resp := <-ch:
			return resp
		case <-c.ctx.Done():
			return nil
		}
	}
}
