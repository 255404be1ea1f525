package broker

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/partition"
	"github.com/vigilhq/vigil/internal/quota"
	"github.com/vigilhq/vigil/internal/storage"
)

// handleFetch serves fetches without sessions: every request is a full
// fetch, and a request for a new session (epoch 0) is answered with
// session id 0, which tells the client none was created (KIP-227).
func (b *Broker) handleFetch(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.FetchRequest)
	return func() kmsg.Response {
		resp := b.fetch(c, h, req)
		var n int
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				n += len(p.RecordBatches)
			}
		}
		resp.ThrottleMillis = b.throttle(c, quota.ConsumerByteRate, h, n)
		return resp
	}
}

// fetch answers one fetch, long-polling until min bytes or max wait.
func (b *Broker) fetch(c *conn, h header, req *kmsg.FetchRequest) *kmsg.FetchResponse {
	{
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		if h.version >= 7 {
			if req.SessionID != 0 {
				resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
				return resp
			}
			if req.SessionEpoch != 0 && req.SessionEpoch != -1 {
				resp.ErrorCode = kerr.InvalidFetchSessionEpoch.Code
				return resp
			}
		}
		wait := time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond
		deadline := time.Now().Add(wait)
		wake := make(chan struct{}, 1)
		watched := map[*partition.Log]struct{}{}
		defer func() {
			for l := range watched {
				l.Unwatch(wake)
			}
		}()
		for {
			size := b.fetchOnce(c.ctx, req, resp, wake, watched)
			left := time.Until(deadline)
			if size >= int(req.MinBytes) || left <= 0 {
				return resp
			}
			timer := time.NewTimer(left)
			select {
			case <-wake:
			case <-timer.C:
			case <-c.ctx.Done():
				timer.Stop()
				return resp
			}
			timer.Stop()
		}
	}
}

// fetchOnce fills resp from the current logs and returns the bytes it
// holds. It registers wake with every partition that had nothing, so a
// long poll wakes as soon as any of them gets data.
func (b *Broker) fetchOnce(ctx context.Context, req *kmsg.FetchRequest, resp *kmsg.FetchResponse, wake chan struct{}, watched map[*partition.Log]struct{}) int {
	resp.Topics = resp.Topics[:0]
	maxBytes := int(req.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = 1 << 30 // versions before v3 have no response limit
	}
	total := 0
	for _, rt := range req.Topics {
		st := kmsg.FetchResponseTopic{Topic: rt.Topic, TopicID: rt.TopicID}
		var t *storage.Topic
		t = b.store.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			// RecordBatches is never null: librdkafka rejects a null
			// (size -1) record set even alongside an error code.
			sp := kmsg.FetchResponseTopicPartition{Partition: rp.Partition, HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1, PreferredReadReplica: -1, RecordBatches: []byte{}}
			l, code := b.servePartition(t, rp.Partition, rp.CurrentLeaderEpoch)
			switch {
			case code != 0:
				sp.ErrorCode = code
			default:
				limit := min(int(rp.PartitionMaxBytes), maxBytes-total)
				var res partition.ReadResult
				var err error
				if limit > 0 || total == 0 {
					res, err = l.Read(ctx, rp.FetchOffset, max(limit, 0), total == 0)
				} else {
					res.LogStart, res.HW = l.Offsets()
				}
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = res.HW, res.HW, res.LogStart
				switch {
				case errors.Is(err, partition.ErrOffsetOutOfRange):
					sp.ErrorCode = kerr.OffsetOutOfRange.Code
				case errors.Is(err, partition.ErrNotLeader):
					sp.ErrorCode = kerr.NotLeaderForPartition.Code
				case err != nil && ctx.Err() != nil:
					sp.ErrorCode = kerr.KafkaStorageError.Code // client gone; nobody reads this
				case err != nil:
					b.log.Error("fetch read failed", "topic", rt.Topic, "partition", rp.Partition, "offset", rp.FetchOffset, "err", err)
					sp.ErrorCode = kerr.KafkaStorageError.Code
				default:
					if res.Data != nil {
						sp.RecordBatches = res.Data
					}
					total += len(res.Data)
					if _, ok := watched[l]; !ok && len(res.Data) == 0 {
						l.Watch(wake)
						watched[l] = struct{}{}
					}
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return total
}
