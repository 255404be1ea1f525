package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (b *Broker) handleHeartbeat(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if g := b.coordinator(req.Group); g != nil {
		resp.ErrorCode = g.Heartbeat(req)
	} else {
		resp.ErrorCode = kerr.NotCoordinator.Code
	}
	return func() kmsg.Response { return resp }
}
