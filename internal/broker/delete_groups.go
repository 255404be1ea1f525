package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/group"
)

// handleDeleteGroups deletes empty groups; the answer waits (on the writer
// goroutine) until their tombstones are durable.
//
// Authorization, as Kafka's handleDeleteGroupsRequest: Delete on each
// group, else GROUP_AUTHORIZATION_FAILED for it, before the coordinator is
// asked.
func (b *Broker) handleDeleteGroups(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	// The groups may have different coordinators (offsets partitions);
	// each deletes its own, and the answer keeps the request's order.
	codes := make([]int16, len(req.Groups))
	type part struct {
		at []int // indexes into req.Groups
		ch <-chan []int16
	}
	var parts []part
	byCo := map[*group.Coordinator]int{}
	var ids [][]string
	for i, id := range req.Groups {
		if !c.allowed(kmsg.ACLOperationDelete, kmsg.ACLResourceTypeGroup, id) {
			codes[i] = kerr.GroupAuthorizationFailed.Code
			continue
		}
		g := b.coordinator(id)
		if g == nil {
			codes[i] = kerr.NotCoordinator.Code
			continue
		}
		j, ok := byCo[g]
		if !ok {
			j = len(parts)
			byCo[g] = j
			parts = append(parts, part{})
			ids = append(ids, nil)
		}
		parts[j].at = append(parts[j].at, i)
		ids[j] = append(ids[j], id)
	}
	for g, j := range byCo {
		parts[j].ch = g.Delete(ids[j])
	}
	who := c.auth.principal
	return func() kmsg.Response {
		for _, p := range parts {
			for k, code := range <-p.ch {
				codes[p.at[k]] = code
				if code == 0 {
					b.admin(who, "DeleteGroups", "group "+req.Groups[p.at[k]])
				}
			}
		}
		for i, id := range req.Groups {
			resp.Groups = append(resp.Groups, kmsg.DeleteGroupsResponseGroup{Group: id, ErrorCode: codes[i]})
		}
		return resp
	}
}
