package broker

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/forward"
)

// handleOffsetForLeaderEpoch answers each partition's end offset for the
// epoch asked for (partition.Log.EpochEnd). Partitions another broker leads
// are forwarded to it for a client of this broker's zone.
//
// Authorization, as Kafka's handleOffsetForLeaderEpochRequest: ClusterAction
// on the cluster (a replica's right; not reported when missing) allows
// every topic; otherwise each topic needs Describe (KIP-320 consumers), and
// a refused topic's partitions are answered TOPIC_AUTHORIZATION_FAILED,
// after the others, and never forwarded.
func (b *Broker) handleOffsetForLeaderEpoch(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	fw := b.newForwarder(h)
	subs := map[int32]*kmsg.OffsetForLeaderEpochRequest{}
	cluster := c.allowedQuiet(kmsg.ACLOperationClusterAction, kmsg.ACLResourceTypeCluster, clusterResource)
	var denied []kmsg.OffsetForLeaderEpochResponseTopic
	for _, rt := range req.Topics {
		st := kmsg.OffsetForLeaderEpochResponseTopic{Topic: rt.Topic}
		if !cluster && !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, rt.Topic) {
			for _, rp := range rt.Partitions {
				st.Partitions = append(st.Partitions, kmsg.OffsetForLeaderEpochResponseTopicPartition{Partition: rp.Partition,
					ErrorCode: kerr.TopicAuthorizationFailed.Code, LeaderEpoch: -1, EndOffset: -1})
			}
			denied = append(denied, st)
			continue
		}
		t := b.store.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.OffsetForLeaderEpochResponseTopicPartition{Partition: rp.Partition, LeaderEpoch: -1, EndOffset: -1}
			l, code := b.servePartition(t, rp.Partition, rp.CurrentLeaderEpoch)
			if code == kerr.NotLeaderForPartition.Code {
				if leader, ok := fw.target(rt.Topic, rp.Partition); ok {
					sub := subs[leader]
					if sub == nil {
						cp := *req
						cp.Topics = nil
						sub = &cp
						subs[leader] = sub
					}
					if n := len(sub.Topics); n == 0 || sub.Topics[n-1].Topic != rt.Topic {
						sub.Topics = append(sub.Topics, kmsg.OffsetForLeaderEpochRequestTopic{Topic: rt.Topic})
					}
					st := &sub.Topics[len(sub.Topics)-1]
					st.Partitions = append(st.Partitions, rp)
					continue
				}
			}
			if code != 0 {
				sp.ErrorCode = code
			} else {
				sp.LeaderEpoch, sp.EndOffset = l.EpochEnd(rp.LeaderEpoch)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		if len(st.Partitions) > 0 || len(rt.Partitions) == 0 {
			resp.Topics = append(resp.Topics, st)
		}
	}
	if len(subs) == 0 {
		resp.Topics = append(resp.Topics, denied...)
		return func() kmsg.Response { return resp }
	}
	deadline := time.Now().Add(forwardTimeout)
	calls := map[int32]*forward.Call{}
	for leader, sub := range subs {
		calls[leader] = fw.submit(leader, sub)
	}
	return func() kmsg.Response {
		for leader, call := range calls {
			r, code := b.waitForward(call, deadline)
			fresp, _ := r.(*kmsg.OffsetForLeaderEpochResponse)
			if code == 0 {
				code = kerr.NotLeaderForPartition.Code
			}
			got := map[string]map[int32]kmsg.OffsetForLeaderEpochResponseTopicPartition{}
			if fresp != nil {
				for _, rt := range fresp.Topics {
					got[rt.Topic] = map[int32]kmsg.OffsetForLeaderEpochResponseTopicPartition{}
					for _, rp := range rt.Partitions {
						got[rt.Topic][rp.Partition] = rp
					}
				}
			}
			for _, rt := range subs[leader].Topics {
				i := slices.IndexFunc(resp.Topics, func(t kmsg.OffsetForLeaderEpochResponseTopic) bool { return t.Topic == rt.Topic })
				if i < 0 {
					resp.Topics = append(resp.Topics, kmsg.OffsetForLeaderEpochResponseTopic{Topic: rt.Topic})
					i = len(resp.Topics) - 1
				}
				for _, rp := range rt.Partitions {
					sp, ok := got[rt.Topic][rp.Partition]
					if !ok {
						sp = kmsg.OffsetForLeaderEpochResponseTopicPartition{Partition: rp.Partition, ErrorCode: code, LeaderEpoch: -1, EndOffset: -1}
					}
					resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, sp)
				}
			}
		}
		resp.Topics = append(resp.Topics, denied...)
		return resp
	}
}
