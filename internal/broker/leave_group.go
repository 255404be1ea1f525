package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/group"
)

// handleLeaveGroup removes one member (v0-v2) or a batch of members,
// possibly by group.instance.id (v3+, KIP-345).
//
// Authorization, as Kafka's handleLeaveGroupRequest: Read on the group,
// else GROUP_AUTHORIZATION_FAILED (top level, no members) before the
// coordinator is asked.
func (b *Broker) handleLeaveGroup(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.LeaveGroupRequest)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if !c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return func() kmsg.Response { return resp }
	}
	var leaving []group.LeaveMember
	if h.version < 3 {
		leaving = []group.LeaveMember{{MemberID: req.MemberID}}
	} else {
		for _, m := range req.Members {
			lm := group.LeaveMember{MemberID: m.MemberID}
			if m.InstanceID != nil {
				lm.InstanceID = *m.InstanceID
			}
			leaving = append(leaving, lm)
		}
	}
	g := b.coordinator(req.Group)
	if g == nil {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return func() kmsg.Response { return resp }
	}
	code, codes := g.Leave(req.Group, leaving)
	resp.ErrorCode = code
	if h.version < 3 {
		if code == 0 {
			resp.ErrorCode = codes[0]
		}
	} else if code == 0 {
		for i, m := range req.Members {
			resp.Members = append(resp.Members, kmsg.LeaveGroupResponseMember{MemberID: m.MemberID, InstanceID: m.InstanceID, ErrorCode: codes[i]})
		}
	}
	return func() kmsg.Response { return resp }
}
