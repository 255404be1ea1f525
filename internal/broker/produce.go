package broker

import (
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/partition"
	"github.com/vigilhq/vigil/internal/producer"
	"github.com/vigilhq/vigil/internal/quota"
)

// handleProduce validates and appends on the reader goroutine, so that
// pipelined produces on one connection get offsets in request order, and
// waits for durability on the writer goroutine.
func (b *Broker) handleProduce(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	acks := req.Acks
	var wg sync.WaitGroup
	for _, rt := range req.Topics {
		st := kmsg.ProduceResponseTopic{Topic: rt.Topic}
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		t := b.store.Topic(rt.Topic)
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			*sp = kmsg.ProduceResponseTopicPartition{Partition: rp.Partition, BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}
			fail := func(e *kerr.Error, msg string) {
				sp.ErrorCode = e.Code
				if msg != "" {
					sp.ErrorMessage = &msg
					c.log.Info("produce refused", "topic", rt.Topic, "partition", rp.Partition, "error", e.Message, "reason", msg)
				}
			}
			if acks != 0 && acks != 1 && acks != -1 {
				fail(kerr.InvalidRequiredAcks, fmt.Sprintf("acks=%d: must be 0, 1 or -1", acks))
				continue
			}
			if isInternalTopic(rt.Topic) {
				fail(kerr.InvalidTopicException, "cannot append to internal topic "+rt.Topic)
				continue
			}
			if _, code := b.servePartition(t, rp.Partition, -1); code != 0 {
				sp.ErrorCode = code
				continue
			}
			hs, err := batch.Split(rp.Records)
			if err != nil {
				if errors.Is(err, batch.ErrCorrupt) {
					fail(kerr.CorruptMessage, err.Error())
				} else {
					fail(kerr.InvalidRecord, err.Error())
				}
				continue
			}
			// Kafka's rule since Produce v3; it is also what lets a retried
			// batch be answered as one unit.
			if len(hs) != 1 {
				fail(kerr.InvalidRecord, fmt.Sprintf("%d record batches for one partition: produce v3+ carries exactly one", len(hs)))
				continue
			}
			bh := &hs[0]
			if limit := b.effectiveInt(t.Configs, "max.message.bytes"); int64(len(bh.Raw)) > limit {
				fail(kerr.MessageTooLarge, fmt.Sprintf("record batch of %d bytes exceeds max.message.bytes=%d", len(bh.Raw), limit))
				continue
			}
			if bh.IsControl() {
				fail(kerr.InvalidRecord, "control batches are written by the broker, not by clients")
				continue
			}
			if bh.IsTransactional() {
				fail(kerr.InvalidTxnState, "transactions are not supported yet")
				continue
			}
			l := t.Logs[rp.Partition]
			wg.Add(1)
			b.store.Produce(t, l, bh, func(base int64, err error) {
				defer wg.Done()
				if err != nil {
					switch {
					case errors.Is(err, partition.ErrDeleted):
						sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
						return
					case errors.Is(err, partition.ErrNotLeader):
						sp.ErrorCode = kerr.NotLeaderForPartition.Code
						return
					case errors.Is(err, producer.ErrOutOfOrder):
						fail(kerr.OutOfOrderSequenceNumber, err.Error())
						return
					case errors.Is(err, producer.ErrInvalidEpoch):
						fail(kerr.InvalidProducerEpoch, err.Error())
						return
					}
					b.log.Error("produce failed", "topic", l.Topic, "partition", l.Partition, "err", err)
					sp.ErrorCode = kerr.KafkaStorageError.Code
					msg := err.Error()
					sp.ErrorMessage = &msg
					return
				}
				sp.BaseOffset = base
				sp.LogStartOffset, _ = l.Offsets()
			})
		}
		resp.Topics = append(resp.Topics, st)
	}
	var n int
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			n += len(rp.Records)
		}
	}
	resp.ThrottleMillis = b.throttle(c, quota.ProducerByteRate, h, n)
	if acks == 0 {
		return nil
	}
	return func() kmsg.Response {
		wg.Wait()
		return resp
	}
}
