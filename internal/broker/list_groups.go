package broker

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/group"
)

// handleListGroups lists groups, filtered by state (v4+) and type (v5+;
// every Vigil group is "classic").
//
// Authorization, as Kafka's handleListGroupsRequest: with Describe on the
// cluster every group is listed; without, only the groups the principal
// may Describe. Neither is an error (Kafka reports both denials).
func (b *Broker) handleListGroups(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	cluster := c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeCluster, clusterResource)
	typeOK := len(req.TypesFilter) == 0
	for _, t := range req.TypesFilter {
		if strings.EqualFold(t, group.GroupType) {
			typeOK = true
		}
	}
	resp.Groups = []kmsg.ListGroupsResponseGroup{}
	// Like a Kafka broker, only the groups this broker coordinates; a
	// client lists every broker's.
	for _, g := range b.coordinators() {
		if !typeOK {
			break
		}
		for _, l := range g.List(req.StatesFilter) {
			if !cluster && !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, l.Group) {
				continue
			}
			resp.Groups = append(resp.Groups, kmsg.ListGroupsResponseGroup{Group: l.Group, ProtocolType: l.ProtocolType,
				GroupState: l.State, GroupType: group.GroupType})
		}
	}
	return func() kmsg.Response { return resp }
}
