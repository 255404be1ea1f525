package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDeleteGroups deletes empty groups; the answer waits (on the writer
// goroutine) until their tombstones are durable.
func (b *Broker) handleDeleteGroups(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	g := b.coordinator()
	if g == nil {
		for _, id := range req.Groups {
			resp.Groups = append(resp.Groups, kmsg.DeleteGroupsResponseGroup{Group: id, ErrorCode: kerr.NotCoordinator.Code})
		}
		return func() kmsg.Response { return resp }
	}
	ch := g.Delete(req.Groups)
	return func() kmsg.Response {
		codes := <-ch
		for i, id := range req.Groups {
			resp.Groups = append(resp.Groups, kmsg.DeleteGroupsResponseGroup{Group: id, ErrorCode: codes[i]})
		}
		return resp
	}
}
