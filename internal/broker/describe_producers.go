package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDescribeProducers lists the producers that a partition this
// broker leads remembers (KIP-664), as Kafka's tools ask to find a stuck
// producer or a hanging transaction. LastTimestamp is the broker's clock
// at the producer's last append or marker (the state Vigil keeps for
// expiry), not the batch's own max timestamp. CoordinatorEpoch is that of
// the producer's last transaction marker (-1 if none), and
// CurrentTxnStartOffset the first offset of its ongoing transaction (-1 if
// none). LastSequence is -1 when no batch of the producer's epoch is
// remembered (after a marker bumped it).
//
// Authorization, as Kafka's handleDescribeProducersRequest: after the
// topic name's validity (INVALID_TOPIC_EXCEPTION), Read on the topic, else
// its partitions are answered TOPIC_AUTHORIZATION_FAILED with Kafka's
// message, before the existence check.
func (b *Broker) handleDescribeProducers(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range req.Topics {
		t := b.store.Topic(rt.Topic)
		st := kmsg.DescribeProducersResponseTopic{Topic: rt.Topic}
		var topicErr *kerr.Error
		var topicMsg string
		if err := validTopicName(rt.Topic); err != nil {
			topicErr, topicMsg = kerr.InvalidTopicException, err.Error()
		} else if !c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, rt.Topic) {
			topicErr, topicMsg = kerr.TopicAuthorizationFailed, msgTopicAuthz
		}
		for _, p := range rt.Partitions {
			sp := kmsg.DescribeProducersResponseTopicPartition{Partition: p}
			if topicErr != nil {
				msg := topicMsg
				sp.ErrorCode, sp.ErrorMessage = topicErr.Code, &msg
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			l, code := b.servePartition(t, p, -1)
			if code != 0 {
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			for _, e := range l.Producers() {
				ap := kmsg.DescribeProducersResponseTopicPartitionActiveProducer{
					ProducerID: e.ID, ProducerEpoch: int32(e.Epoch), LastSequence: -1, LastTimestamp: e.LastMs,
					CoordinatorEpoch: e.CoordinatorEpoch, CurrentTxnStartOffset: e.TxnFirst,
				}
				if n := len(e.Batches); n > 0 {
					ap.LastSequence = e.Batches[n-1].LastSeq
				}
				sp.ActiveProducers = append(sp.ActiveProducers, ap)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return func() kmsg.Response { return resp }
}
