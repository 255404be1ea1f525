package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleSyncGroup hands the leader's assignment to the coordinator on the
// reader goroutine; followers wait for it on the writer goroutine.
func (b *Broker) handleSyncGroup(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.SyncGroupRequest)
	g := b.coordinator(req.Group)
	if g == nil {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = kerr.NotCoordinator.Code
		return func() kmsg.Response { return resp }
	}
	ch := g.Sync(req)
	return func() kmsg.Response {
		select {
		case resp := <-ch:
			return resp
		case <-c.ctx.Done():
			return nil
		}
	}
}
