package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/acl"
)

// noAuthorizer answers the ACL APIs as a Kafka broker without an
// authorizer does (SECURITY_DISABLED), so tools learn it plainly.
const noAuthorizer = "No Authorizer is configured: start vigil serve with --authorizer acl to enforce ACLs; until then every client may do everything."

// clusterResource is the name of Kafka's one cluster resource.
const clusterResource = "kafka-cluster"

func (b *Broker) handleDescribeAcls(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.DescribeACLsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	switch {
	case b.acls == nil:
		resp.ErrorCode, resp.ErrorMessage = kerr.SecurityDisabled.Code, ptr(noAuthorizer)
	case !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeCluster, clusterResource):
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
	default:
		f, err := acl.FilterFromDescribe(req)
		if err != nil {
			resp.ErrorCode, resp.ErrorMessage = acl.ErrorCode(err)
			break
		}
		resp.Resources = acl.DescribeResources(b.acls.Bindings(f))
	}
	return func() kmsg.Response { return resp }
}

func (b *Broker) handleCreateAcls(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.CreateACLsRequest)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	fail := func(code int16, msg *string) func() kmsg.Response {
		for range req.Creations {
			resp.Results = append(resp.Results, kmsg.CreateACLsResponseResult{ErrorCode: code, ErrorMessage: msg})
		}
		return func() kmsg.Response { return resp }
	}
	if b.acls == nil {
		c.log.Info("ACL creation refused: no authorizer", "acls", len(req.Creations))
		return fail(kerr.SecurityDisabled.Code, ptr(noAuthorizer))
	}
	if !c.allowed(kmsg.ACLOperationAlter, kmsg.ACLResourceTypeCluster, clusterResource) {
		return fail(kerr.ClusterAuthorizationFailed.Code, nil)
	}
	who := c.auth.principal
	return func() kmsg.Response {
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		resp.Results = acl.Create(ctx, b.security, req.Creations)
		for i, res := range resp.Results {
			if res.ErrorCode == 0 {
				b.admin(who, "CreateAcls", aclName(req.Creations[i]))
			}
		}
		return resp
	}
}

func (b *Broker) handleDeleteAcls(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	fail := func(code int16, msg *string) func() kmsg.Response {
		for range req.Filters {
			resp.Results = append(resp.Results, kmsg.DeleteACLsResponseResult{ErrorCode: code, ErrorMessage: msg})
		}
		return func() kmsg.Response { return resp }
	}
	if b.acls == nil {
		return fail(kerr.SecurityDisabled.Code, ptr(noAuthorizer))
	}
	if !c.allowed(kmsg.ACLOperationAlter, kmsg.ACLResourceTypeCluster, clusterResource) {
		return fail(kerr.ClusterAuthorizationFailed.Code, nil)
	}
	who := c.auth.principal
	return func() kmsg.Response {
		ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
		defer cancel()
		resp.Results = acl.Delete(ctx, b.security, req.Filters)
		for _, res := range resp.Results {
			for _, m := range res.MatchingACLs {
				b.admin(who, "DeleteAcls", m.ResourceType.String()+":"+m.ResourcePatternType.String()+":"+m.ResourceName+" "+
					m.Principal+" "+m.Operation.String()+" "+m.PermissionType.String()+" from "+m.Host)
			}
		}
		return resp
	}
}

func aclName(c kmsg.CreateACLsRequestCreation) string {
	return c.ResourceType.String() + ":" + c.ResourcePatternType.String() + ":" + c.ResourceName + " " +
		c.Principal + " " + c.Operation.String() + " " + c.PermissionType.String() + " from " + c.Host
}

func ptr(s string) *string { return &s }
