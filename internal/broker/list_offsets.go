package broker

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/forward"
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
//
// Isolation (v2+), as Kafka's fetchOffsetForTimestamp: the latest offset
// (-1) is the high watermark for READ_UNCOMMITTED and the last stable
// offset for READ_COMMITTED, and a timestamp lookup (-3 included) answers
// no offset (-1) when the one it finds is not below that bound; the
// earliest offsets are the log start either way.
//
// Authorization, as Kafka's handleListOffsetRequest: each topic needs
// Describe; a refused topic's partitions are answered
// TOPIC_AUTHORIZATION_FAILED, after the others, and never forwarded.
func (b *Broker) handleListOffsets(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.ListOffsetsRequest)
	// Partitions another broker leads, forwarded to it, from a client of
	// this broker's zone.
	fw := b.newForwarder(h)
	local := *req
	local.Topics = nil
	subs := map[int32]*kmsg.ListOffsetsRequest{}
	var denied []kmsg.ListOffsetsResponseTopic
	for _, rt := range req.Topics {
		if !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, rt.Topic) {
			st := kmsg.ListOffsetsResponseTopic{Topic: rt.Topic}
			for _, rp := range rt.Partitions {
				st.Partitions = append(st.Partitions, kmsg.ListOffsetsResponseTopicPartition{Partition: rp.Partition,
					ErrorCode: kerr.TopicAuthorizationFailed.Code, Timestamp: -1, Offset: -1, LeaderEpoch: -1})
			}
			denied = append(denied, st)
			continue
		}
		lt := rt
		lt.Partitions = nil
		t := b.store.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			if _, code := b.servePartition(t, rp.Partition, -1); code == kerr.NotLeaderForPartition.Code {
				if leader, ok := fw.target(rt.Topic, rp.Partition); ok {
					sub := subs[leader]
					if sub == nil {
						cp := *req
						cp.Topics = nil
						sub = &cp
						subs[leader] = sub
					}
					if n := len(sub.Topics); n == 0 || sub.Topics[n-1].Topic != rt.Topic {
						sub.Topics = append(sub.Topics, kmsg.ListOffsetsRequestTopic{Topic: rt.Topic})
					}
					st := &sub.Topics[len(sub.Topics)-1]
					st.Partitions = append(st.Partitions, rp)
					continue
				}
			}
			lt.Partitions = append(lt.Partitions, rp)
		}
		if len(lt.Partitions) > 0 || len(rt.Partitions) == 0 {
			local.Topics = append(local.Topics, lt)
		}
	}
	deadline := time.Now().Add(forwardTimeout)
	calls := map[int32]*forward.Call{}
	for leader, sub := range subs {
		calls[leader] = fw.submit(leader, sub)
	}
	return func() kmsg.Response {
		resp := b.listOffsets(c, &local)
		for leader, call := range calls {
			r, code := b.waitForward(call, deadline)
			fresp, _ := r.(*kmsg.ListOffsetsResponse)
			if code == 0 {
				code = kerr.NotLeaderForPartition.Code
			}
			got := map[string]map[int32]kmsg.ListOffsetsResponseTopicPartition{}
			if fresp != nil {
				for _, rt := range fresp.Topics {
					got[rt.Topic] = map[int32]kmsg.ListOffsetsResponseTopicPartition{}
					for _, rp := range rt.Partitions {
						got[rt.Topic][rp.Partition] = rp
					}
				}
			}
			for _, rt := range subs[leader].Topics {
				i := slices.IndexFunc(resp.Topics, func(t kmsg.ListOffsetsResponseTopic) bool { return t.Topic == rt.Topic })
				if i < 0 {
					resp.Topics = append(resp.Topics, kmsg.ListOffsetsResponseTopic{Topic: rt.Topic})
					i = len(resp.Topics) - 1
				}
				for _, rp := range rt.Partitions {
					sp, ok := got[rt.Topic][rp.Partition]
					if !ok {
						sp = kmsg.ListOffsetsResponseTopicPartition{Partition: rp.Partition, ErrorCode: code, Timestamp: -1, Offset: -1, LeaderEpoch: -1}
					}
					resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, sp)
				}
			}
		}
		resp.Topics = append(resp.Topics, denied...)
		return resp
	}
}

// listOffsets answers the partitions of req this broker serves.
func (b *Broker) listOffsets(c *conn, req *kmsg.ListOffsetsRequest) *kmsg.ListOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.ListOffsetsResponseTopic{Topic: rt.Topic}
		t := b.store.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.ListOffsetsResponseTopicPartition{Partition: rp.Partition, Timestamp: -1, Offset: -1, LeaderEpoch: -1}
			if l, code := b.servePartition(t, rp.Partition, rp.CurrentLeaderEpoch); code != 0 {
				sp.ErrorCode = code
			} else {
				b.listOffset(c.ctx, l, rp.Timestamp, req.IsolationLevel == 1, &sp)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func (b *Broker) listOffset(ctx context.Context, l *partition.Log, ts int64, committed bool, sp *kmsg.ListOffsetsResponseTopicPartition) {
	logStart, hw := l.Offsets()
	fetchable := hw // the end of what the client's isolation level reads
	if committed {
		fetchable = l.LSO()
	}
	sp.LeaderEpoch, _ = l.Leader()
	defer func() {
		switch ts {
		case tsLatest, tsEarliest, tsEarliestLocal:
		default:
			if sp.Offset >= fetchable {
				sp.Offset, sp.Timestamp = -1, -1
			}
		}
	}()
	switch ts {
	case tsLatest:
		sp.Offset = fetchable
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
