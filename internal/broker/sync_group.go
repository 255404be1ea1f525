package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleSyncGroup hands the leader's assignment to the coordinator on the
// reader goroutine; followers wait for it on the writer goroutine.
func (b *Broker) handleSyncGroup(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.SyncGroupRequest)
	ch := b.groups.Sync(req)
	return func() kmsg.Response {
		select {
		case resp := <-ch:
			return resp
		case <-c.ctx.Done():
			return nil
		}
	}
}
