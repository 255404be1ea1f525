package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleOffsetDelete deletes committed offsets of topics the group does
// not consume (KIP-496); the answer waits until the tombstones are durable.
//
// Authorization, as Kafka's handleOffsetDeleteRequest: Delete on the group,
// else the top-level GROUP_AUTHORIZATION_FAILED; then Read on each topic,
// else its partitions are answered TOPIC_AUTHORIZATION_FAILED and keep
// their offsets. The coordinator is asked with the topics allowed (even
// none: it still answers the group's own errors, which replace the
// partitions' answers).
func (b *Broker) handleOffsetDelete(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.OffsetDeleteRequest)
	if !c.allowed(kmsg.ACLOperationDelete, kmsg.ACLResourceTypeGroup, req.Group) {
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return func() kmsg.Response { return resp }
	}
	var denied []bool // denied[i]: topic i was refused; nil when none was
	sub := req
	for i, rt := range req.Topics {
		if c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, rt.Topic) {
			if denied != nil {
				sub.Topics = append(sub.Topics, rt)
			}
			continue
		}
		if denied == nil {
			denied = make([]bool, len(req.Topics))
			cp := *req
			cp.Topics = append([]kmsg.OffsetDeleteRequestTopic(nil), req.Topics[:i]...)
			sub = &cp
		}
		denied[i] = true
	}
	g := b.coordinator(req.Group)
	if g == nil {
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = kerr.NotCoordinator.Code
		return func() kmsg.Response { return resp }
	}
	ch := g.DeleteOffsets(sub)
	who := c.auth.principal
	return func() kmsg.Response {
		resp := <-ch
		if resp.ErrorCode == 0 {
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					if rp.ErrorCode == 0 {
						b.admin(who, "OffsetDelete", fmt.Sprintf("group %s: committed offset of %s partition %d", req.Group, rt.Topic, rp.Partition))
					}
				}
			}
		}
		if denied == nil || resp.ErrorCode != 0 {
			return resp
		}
		answered := resp.Topics
		resp.Topics = make([]kmsg.OffsetDeleteResponseTopic, 0, len(req.Topics))
		j := 0
		for i, rt := range req.Topics {
			if !denied[i] {
				if j < len(answered) {
					resp.Topics = append(resp.Topics, answered[j])
					j++
				}
				continue
			}
			st := kmsg.OffsetDeleteResponseTopic{Topic: rt.Topic}
			for _, rp := range rt.Partitions {
				st.Partitions = append(st.Partitions, kmsg.OffsetDeleteResponseTopicPartition{Partition: rp.Partition, ErrorCode: kerr.TopicAuthorizationFailed.Code})
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
}
