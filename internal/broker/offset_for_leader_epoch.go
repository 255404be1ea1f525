package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleOffsetForLeaderEpoch answers from the partition's current epoch,
// which ends at the high watermark (the broker keeps no history of where
// earlier epochs ended: a new leader continues its predecessor's log
// without truncating it); later epochs are unknown (-1, -1), as Kafka
// answers for an epoch past its latest.
func (b *Broker) handleOffsetForLeaderEpoch(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.OffsetForLeaderEpochResponseTopic{Topic: rt.Topic}
		t := b.store.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.OffsetForLeaderEpochResponseTopicPartition{Partition: rp.Partition, LeaderEpoch: -1, EndOffset: -1}
			l, code := b.servePartition(t, rp.Partition, rp.CurrentLeaderEpoch)
			if code != 0 {
				sp.ErrorCode = code
			} else if epoch, _ := l.Leader(); rp.LeaderEpoch <= epoch {
				_, hw := l.Offsets()
				sp.LeaderEpoch, sp.EndOffset = epoch, hw
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return func() kmsg.Response { return resp }
}
