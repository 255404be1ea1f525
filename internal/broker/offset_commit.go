package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleOffsetCommit appends the commit records on the reader goroutine
// (so commits of a connection reach the offsets log in request order) and
// answers on the writer goroutine once they are durable in the WAL.
func (b *Broker) handleOffsetCommit(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.OffsetCommitRequest)
	ch := b.groups.Commit(req)
	return func() kmsg.Response {
		// Not abandoned on disconnect: the WAL answers promptly, and
		// the commit happens whether or not the client hears of it.
		return <-ch
	}
}
