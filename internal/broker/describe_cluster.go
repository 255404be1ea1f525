package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDescribeCluster lists the brokers of the client's listener.
//
// Authorization, as Kafka's handleDescribeCluster: none is needed; asked
// for the cluster's authorized operations, a principal that may Describe
// the cluster gets Kafka's bit field of them and any other gets 0.
func (b *Broker) handleDescribeCluster(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterAuthorizedOperations = noAuthorizedOps
	resp.EndpointType = 1 // brokers
	if h.version >= 1 && req.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		msg := "only the brokers endpoint type (1) is served"
		resp.ErrorMessage = &msg
		return func() kmsg.Response { return resp }
	}
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = 0
		if c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeCluster, clusterResource) {
			resp.ClusterAuthorizedOperations = c.authorizedOps(kmsg.ACLResourceTypeCluster, clusterResource)
		}
	}
	resp.ClusterID = b.clusterID
	resp.ControllerID = b.cfg.NodeID
	for _, e := range b.endpoints(c.listener.Protocol) {
		resp.Brokers = append(resp.Brokers, kmsg.DescribeClusterResponseBroker{NodeID: e.id, Host: e.host, Port: e.port, Rack: e.rack})
	}
	return func() kmsg.Response { return resp }
}
