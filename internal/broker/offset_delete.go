package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleOffsetDelete deletes committed offsets of topics the group does
// not consume (KIP-496); the answer waits until the tombstones are durable.
func (b *Broker) handleOffsetDelete(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.OffsetDeleteRequest)
	g := b.coordinator(req.Group)
	if g == nil {
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = kerr.NotCoordinator.Code
		return func() kmsg.Response { return resp }
	}
	ch := g.DeleteOffsets(req)
	return func() kmsg.Response { return <-ch }
}
