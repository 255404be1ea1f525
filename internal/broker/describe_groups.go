package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (b *Broker) handleDescribeGroups(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		co := b.coordinator(id)
		if co == nil {
			resp.Groups = append(resp.Groups, kmsg.DescribeGroupsResponseGroup{Group: id, ErrorCode: kerr.NotCoordinator.Code, AuthorizedOperations: noAuthorizedOps})
			continue
		}
		g := co.Describe(id, h.version)
		g.AuthorizedOperations = noAuthorizedOps
		if req.IncludeAuthorizedOperations {
			g.AuthorizedOperations = groupAuthorizedOps
		}
		resp.Groups = append(resp.Groups, g)
	}
	return func() kmsg.Response { return resp }
}
