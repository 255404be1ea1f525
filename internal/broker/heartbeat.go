package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (b *Broker) handleHeartbeat(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	resp.ErrorCode = b.groups.Heartbeat(req)
	return func() kmsg.Response { return resp }
}
