package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDescribeGroups describes groups this broker coordinates.
//
// Authorization, as Kafka's handleDescribeGroupRequest: Describe on each
// group, else the group is answered GROUP_AUTHORIZATION_FAILED with empty
// state, protocol type and protocol, before the coordinator is asked.
// Authorized operations (v3+), when asked, are Kafka's bit field of the
// group's (Read, Describe, Delete), for a group answered without error.
func (b *Broker) handleDescribeGroups(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		if !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, id) {
			resp.Groups = append(resp.Groups, kmsg.DescribeGroupsResponseGroup{Group: id, ErrorCode: kerr.GroupAuthorizationFailed.Code, AuthorizedOperations: noAuthorizedOps})
			continue
		}
		co := b.coordinator(id)
		if co == nil {
			resp.Groups = append(resp.Groups, kmsg.DescribeGroupsResponseGroup{Group: id, ErrorCode: kerr.NotCoordinator.Code, AuthorizedOperations: noAuthorizedOps})
			continue
		}
		g := co.Describe(id, h.version)
		g.AuthorizedOperations = noAuthorizedOps
		if req.IncludeAuthorizedOperations && g.ErrorCode == 0 {
			g.AuthorizedOperations = c.authorizedOps(kmsg.ACLResourceTypeGroup, id)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return func() kmsg.Response { return resp }
}
