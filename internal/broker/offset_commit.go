package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleOffsetCommit appends the commit records on the reader goroutine
// (so commits of a connection reach the offsets log in request order) and
// answers on the writer goroutine once they are durable in the WAL.
func (b *Broker) handleOffsetCommit(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.OffsetCommitRequest)
	g := b.coordinator(req.Group)
	if g == nil {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.OffsetCommitResponseTopic{Topic: rt.Topic}
			for _, rp := range rt.Partitions {
				st.Partitions = append(st.Partitions, kmsg.OffsetCommitResponseTopicPartition{Partition: rp.Partition, ErrorCode: kerr.NotCoordinator.Code})
			}
			resp.Topics = append(resp.Topics, st)
		}
		return func() kmsg.Response { return resp }
	}
	ch := g.Commit(req)
	return func() kmsg.Response {
		// Not abandoned on disconnect: the WAL answers promptly, and
		// the commit happens whether or not the client hears of it.
		return <-ch
	}
}
