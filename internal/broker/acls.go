package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Vigil has no authorizer yet, and answers the ACL APIs as a Kafka broker
// without one does (SECURITY_DISABLED), so that tools and admin clients
// learn that plainly instead of from an unsupported API.
const noAuthorizer = "No Authorizer is configured: Vigil does not enforce ACLs yet, so every client may do everything."

func (b *Broker) handleDescribeAcls(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	resp := r.(*kmsg.DescribeACLsRequest).ResponseKind().(*kmsg.DescribeACLsResponse)
	resp.ErrorCode = kerr.SecurityDisabled.Code
	resp.ErrorMessage = ptr(noAuthorizer)
	return func() kmsg.Response { return resp }
}

func (b *Broker) handleCreateAcls(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.CreateACLsRequest)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	for range req.Creations {
		resp.Results = append(resp.Results, kmsg.CreateACLsResponseResult{ErrorCode: kerr.SecurityDisabled.Code, ErrorMessage: ptr(noAuthorizer)})
	}
	c.log.Info("ACL creation refused: no authorizer", "acls", len(req.Creations))
	return func() kmsg.Response { return resp }
}

func (b *Broker) handleDeleteAcls(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	for range req.Filters {
		resp.Results = append(resp.Results, kmsg.DeleteACLsResponseResult{ErrorCode: kerr.SecurityDisabled.Code, ErrorMessage: ptr(noAuthorizer)})
	}
	return func() kmsg.Response { return resp }
}

func ptr(s string) *string { return &s }
