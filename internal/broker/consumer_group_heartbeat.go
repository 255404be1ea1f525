package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleConsumerGroupHeartbeat is the consumer group protocol of KIP-848:
// joins, heartbeats, leaves and the assignment, all through the
// coordinator (internal/group, consumer.go). It registers on the reader
// goroutine, so a connection's heartbeats keep their order, and waits on
// the writer goroutine for the changes to be durable.
//
// Authorization, as Kafka's handleConsumerGroupHeartbeat: Read on the
// group, else GROUP_AUTHORIZATION_FAILED; then Describe on every topic
// subscribed by name, else TOPIC_AUTHORIZATION_FAILED; both before the
// coordinator is asked. A regex matches only topics the member may
// describe.
func (b *Broker) handleConsumerGroupHeartbeat(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.ConsumerGroupHeartbeatRequest)
	fail := func(e *kerr.Error) func() kmsg.Response {
		resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode = e.Code
		return func() kmsg.Response { return resp }
	}
	if !c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, req.Group) {
		return fail(kerr.GroupAuthorizationFailed)
	}
	for _, t := range req.SubscribedTopicNames {
		if !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t) {
			return fail(kerr.TopicAuthorizationFailed)
		}
	}
	g := b.coordinator(req.Group)
	if g == nil {
		return fail(kerr.NotCoordinator)
	}
	var canDescribe func(string) bool
	if b.acls != nil {
		// A regex matches only the topics the member may describe (as
		// Kafka); checked quietly, as Metadata leaves topics out.
		canDescribe = func(t string) bool { return c.allowedQuiet(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t) }
	}
	ch := g.ConsumerHeartbeat(req, h.clientID, c.clientHost(), canDescribe)
	return func() kmsg.Response {
		select {
		case resp := <-ch:
			return resp
		case <-c.ctx.Done():
			return nil
		}
	}
}

// handleConsumerGroupDescribe describes consumer groups (KIP-848) this
// broker coordinates.
//
// Authorization, as Kafka's handleConsumerGroupDescribe: Describe on each
// group, else GROUP_AUTHORIZATION_FAILED for it. Authorized operations,
// when asked, are the group's bit field as in DescribeGroups.
func (b *Broker) handleConsumerGroupDescribe(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.ConsumerGroupDescribeRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	for _, id := range req.Groups {
		var g kmsg.ConsumerGroupDescribeResponseGroup
		switch co := b.coordinator(id); {
		case !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, id):
			g = kmsg.NewConsumerGroupDescribeResponseGroup()
			g.Group, g.ErrorCode = id, kerr.GroupAuthorizationFailed.Code
		case co == nil:
			g = kmsg.NewConsumerGroupDescribeResponseGroup()
			g.Group, g.ErrorCode = id, kerr.NotCoordinator.Code
		default:
			g = co.DescribeConsumer(id)
		}
		g.AuthorizedOperations = noAuthorizedOps
		if req.IncludeAuthorizedOperations && g.ErrorCode == 0 {
			g.AuthorizedOperations = c.authorizedOps(kmsg.ACLResourceTypeGroup, id)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return func() kmsg.Response { return resp }
}
