package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/partition"
)

// Special ListOffsets timestamps.
const (
	tsLatest        = -1
	tsEarliest      = -2
	tsMaxTimestamp  = -3 // v7+
	tsEarliestLocal = -4 // v8+: all of our log is "local"
)

// handleListOffsets answers on the writer goroutine because a timestamp
// lookup may read objects.
func (b *Broker) handleListOffsets(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.ListOffsetsRequest)
	return func() kmsg.Response {
		resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, rt := range req.Topics {
			st := kmsg.ListOffsetsResponseTopic{Topic: rt.Topic}
			t := b.store.Topic(rt.Topic)
			for _, rp := range rt.Partitions {
				sp := kmsg.ListOffsetsResponseTopicPartition{Partition: rp.Partition, Timestamp: -1, Offset: -1, LeaderEpoch: -1}
				if l, code := b.servePartition(t, rp.Partition, rp.CurrentLeaderEpoch); code != 0 {
					sp.ErrorCode = code
				} else {
					b.listOffset(c.ctx, l, rp.Timestamp, &sp)
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
}

func (b *Broker) listOffset(ctx context.Context, l *partition.Log, ts int64, sp *kmsg.ListOffsetsResponseTopicPartition) {
	logStart, hw := l.Offsets()
	sp.LeaderEpoch, _ = l.Leader()
	switch ts {
	case tsLatest:
		sp.Offset = hw
	case tsEarliest, tsEarliestLocal:
		sp.Offset = logStart
	case tsMaxTimestamp:
		off, t, ok, err := l.MaxTimestamp(ctx, b.dec)
		if err != nil {
			b.log.Error("list offsets: max timestamp", "err", err)
			sp.ErrorCode = kerr.KafkaStorageError.Code
		} else if ok {
			sp.Offset, sp.Timestamp = off, t
		}
	default:
		if ts < 0 {
			sp.ErrorCode = kerr.InvalidRequest.Code
			return
		}
		off, t, ok, err := l.OffsetForTimestamp(ctx, ts, b.dec)
		if err != nil {
			b.log.Error("list offsets: by timestamp", "err", err)
			sp.ErrorCode = kerr.KafkaStorageError.Code
		} else if ok {
			sp.Offset, sp.Timestamp = off, t
		}
		// No record at or after ts: offset -1 and timestamp -1, as Kafka.
	}
}
