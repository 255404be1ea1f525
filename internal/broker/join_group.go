package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleJoinGroup registers the join on the reader goroutine, so joins and
// later requests of a connection keep their order, and waits for the
// rebalance on the writer goroutine.
//
// Authorization, as Kafka's handleJoinGroupRequest: Read on the group,
// else GROUP_AUTHORIZATION_FAILED (member id "", generation -1) before the
// coordinator is asked.
func (b *Broker) handleJoinGroup(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.JoinGroupRequest)
	if !c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, req.Group) {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation = kerr.GroupAuthorizationFailed.Code, -1
		return func() kmsg.Response { return resp }
	}
	g := b.coordinator(req.Group)
	if g == nil {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation = kerr.NotCoordinator.Code, -1
		return func() kmsg.Response { return resp }
	}
	ch := g.Join(req, h.clientID, c.clientHost())
	return func() kmsg.Response {
		select {
		case resp := <-ch:
			return resp
		case <-c.ctx.Done():
			return nil // the client is gone; the member times out in the group
		}
	}
}

// clientHost is the client's address as Kafka reports it in
// DescribeGroups ("/" and the IP).
func (c *conn) clientHost() string {
	host, _, err := net.SplitHostPort(c.nc.RemoteAddr().String())
	if err != nil {
		host = c.nc.RemoteAddr().String()
	}
	return "/" + host
}
