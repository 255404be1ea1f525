package broker

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleListGroups lists groups, filtered by state (v4+) and type (v5+:
// "classic" or "consumer", KIP-848).
//
// Authorization, as Kafka's handleListGroupsRequest: with Describe on the
// cluster every group is listed; without, only the groups the principal
// may Describe. Neither is an error (Kafka reports both denials).
func (b *Broker) handleListGroups(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	cluster := c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeCluster, clusterResource)
	typeOK := func(typ string) bool {
		if len(req.TypesFilter) == 0 {
			return true
		}
		for _, t := range req.TypesFilter {
			if strings.EqualFold(t, typ) {
				return true
			}
		}
		return false
	}
	resp.Groups = []kmsg.ListGroupsResponseGroup{}
	// Like a Kafka broker, only the groups this broker coordinates; a
	// client lists every broker's.
	for _, g := range b.coordinators() {
		for _, l := range g.List(req.StatesFilter) {
			if !typeOK(l.Type) {
				continue
			}
			if !cluster && !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, l.Group) {
				continue
			}
			resp.Groups = append(resp.Groups, kmsg.ListGroupsResponseGroup{Group: l.Group, ProtocolType: l.ProtocolType,
				GroupState: l.State, GroupType: l.Type})
		}
	}
	return func() kmsg.Response { return resp }
}
