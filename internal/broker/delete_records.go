package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/partition"
	"github.com/vigilhq/vigil/internal/storage"
)

// handleDeleteRecords moves partitions' log start offsets forward.
//
// Authorization, as Kafka's handleDeleteRecordsRequest: Delete on each
// topic, else its partitions are answered TOPIC_AUTHORIZATION_FAILED (low
// watermark -1) before the existence check.
func (b *Broker) handleDeleteRecords(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := kmsg.DeleteRecordsResponseTopic{Topic: rt.Topic}
		if !c.allowed(kmsg.ACLOperationDelete, kmsg.ACLResourceTypeTopic, rt.Topic) {
			for _, rp := range rt.Partitions {
				st.Partitions = append(st.Partitions, kmsg.DeleteRecordsResponseTopicPartition{Partition: rp.Partition,
					LowWatermark: -1, ErrorCode: kerr.TopicAuthorizationFailed.Code})
			}
			resp.Topics = append(resp.Topics, st)
			continue
		}
		t := b.store.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.DeleteRecordsResponseTopicPartition{Partition: rp.Partition, LowWatermark: -1}
			l, code := b.servePartition(t, rp.Partition, -1)
			if code != 0 {
				sp.ErrorCode = code
			} else if isInternalTopic(rt.Topic) {
				sp.ErrorCode = kerr.InvalidTopicException.Code // Kafka: cannot delete records of internal topic
			} else {
				ls, err := b.store.SetLogStart(context.Background(), t, l, rp.Offset)
				switch {
				case errors.Is(err, partition.ErrOffsetOutOfRange):
					sp.ErrorCode = kerr.OffsetOutOfRange.Code
				case errors.Is(err, storage.ErrLegalHold), errors.Is(err, storage.ErrCompactOnly):
					// DeleteRecords responses carry no message: the log says why.
					c.log.Warn("delete records refused", "topic", rt.Topic, "partition", rp.Partition, "reason", err)
					sp.ErrorCode = kerr.PolicyViolation.Code
				case err != nil:
					b.log.Error("delete records", "topic", rt.Topic, "partition", rp.Partition, "err", err)
					sp.ErrorCode = kerr.KafkaStorageError.Code
				default:
					sp.LowWatermark = ls
					b.admin(c.auth.principal, "DeleteRecords", fmt.Sprintf("topic %s partition %d: records before offset %d", rt.Topic, rp.Partition, ls))
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return func() kmsg.Response { return resp }
}
