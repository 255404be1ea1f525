package broker

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/storage"
)

// DescribeTopicPartitions v0 (KIP-966): topics described as Metadata
// describes them, a page at a time; newer Java admin clients use it for
// describeTopics when the broker serves it. As Kafka's
// DescribeTopicPartitionsRequestHandler and
// KRaftMetadataCache.getTopicMetadataForDescribeTopicResponse:
//
//   - Topics: the named ones, or every topic for an empty list, those
//     sorted by name before the cursor's topic left out. A cursor naming a
//     topic the list does not hold refuses the request: INVALID_REQUEST for
//     every named topic, nothing else.
//   - Authorization: Describe on each topic. Named and refused, a topic is
//     answered TOPIC_AUTHORIZATION_FAILED after the others, with no id and
//     without saying whether it exists; asked for every topic, the refused
//     ones are left out (quietly, as Metadata does; Kafka logs each).
//     Every topic answered otherwise carries its authorized operations.
//   - A named topic that does not exist: UNKNOWN_TOPIC_OR_PARTITION, or
//     INVALID_TOPIC_EXCEPTION for a name no topic can have; never created.
//   - Paging: at most min(ResponsePartitionLimit, 2000) partitions
//     (Kafka's max.request.partition.size.limit), in partition order, the
//     cursor's topic from the cursor's partition. A topic cut short ends
//     the page with NextCursor at its first partition left out; a page
//     filled exactly at a topic's end points NextCursor at the next
//     topic's partition 0 (a topic that may not exist, as in Kafka).
//   - Partitions: leader, epoch, replicas and ISR as Metadata answers them
//     to the same client (one replica, the leader; a client naming its
//     zone is given an in-zone broker that forwards), a leader of -1 and
//     no replicas while a partition has none. Eligible leader replicas
//     (KIP-966's ELR) do not exist in Vigil, whose partitions have one
//     replica: empty lists.
//
// The answer is built on the reader goroutine from the engine's topics
// and the cluster view, both safe for concurrent use; a topic created or
// moved meanwhile shows on the next page or the next request.
func (b *Broker) handleDescribeTopicPartitions(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.DescribeTopicPartitionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
	names, ok := b.describeCandidates(req)
	if !ok {
		c.log.Info("describe topic partitions refused", "reason", "the cursor's topic is not among the topics named", "cursor", req.Cursor.Topic)
		for _, rt := range req.Topics {
			st := kmsg.NewDescribeTopicPartitionsResponseTopic()
			st.ErrorCode, st.Topic = kerr.InvalidRequest.Code, kmsg.StringPtr(rt.Topic)
			resp.Topics = append(resp.Topics, st)
		}
		return func() kmsg.Response { return resp }
	}
	all := len(req.Topics) == 0
	var refused []kmsg.DescribeTopicPartitionsResponseTopic
	authorized := names[:0]
	for _, name := range names {
		if all {
			if c.allowedQuiet(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, name) {
				authorized = append(authorized, name)
			}
			continue
		}
		if c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, name) {
			authorized = append(authorized, name)
			continue
		}
		st := kmsg.NewDescribeTopicPartitionsResponseTopic()
		st.ErrorCode, st.Topic = kerr.TopicAuthorizationFailed.Code, kmsg.StringPtr(name)
		refused = append(refused, st)
	}

	cursorTopic, cursorPartition := "", int32(0)
	if req.Cursor != nil {
		cursorTopic, cursorPartition = req.Cursor.Topic, req.Cursor.Partition
	}
	route := b.clientRoute(h.clientID)
	remaining := min(req.ResponsePartitionLimit, maxDescribePartitions)
	for _, name := range authorized {
		if remaining == 0 {
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: 0}
			break
		}
		if remaining < 0 {
			break // nothing fits; Kafka answers no topic and no cursor
		}
		st := kmsg.NewDescribeTopicPartitionsResponseTopic()
		st.Topic = kmsg.StringPtr(name)
		st.IsInternal = isInternalTopic(name)
		st.AuthorizedOperations = c.authorizedOps(kmsg.ACLResourceTypeTopic, name)
		t := b.store.Topic(name)
		if t == nil {
			if all {
				continue // deleted since it was listed
			}
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if validTopicName(name) != nil {
				st.ErrorCode = kerr.InvalidTopicException.Code
			}
			resp.Topics = append(resp.Topics, st)
			continue
		}
		start := int32(0)
		if name == cursorTopic {
			start = cursorPartition
		}
		var next int32
		st.TopicID = t.ID
		st.Partitions, next = b.describePartitions(t, start, remaining, route)
		resp.Topics = append(resp.Topics, st)
		if next >= 0 {
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: next}
			break
		}
		remaining -= int32(len(st.Partitions))
	}
	resp.Topics = append(resp.Topics, refused...)
	return func() kmsg.Response { return resp }
}

// maxDescribePartitions is Kafka's max.request.partition.size.limit
// default: the most partitions one answer describes, whatever the client
// asks for.
const maxDescribePartitions = 2000

// describeCandidates is the sorted, distinct topic names a request may
// describe: those named, or every topic, from the cursor's topic on.
// false if the request names topics and the cursor's is not among them.
func (b *Broker) describeCandidates(req *kmsg.DescribeTopicPartitionsRequest) ([]string, bool) {
	from := ""
	if req.Cursor != nil {
		from = req.Cursor.Topic
	}
	var names []string
	if len(req.Topics) == 0 {
		for _, t := range b.store.Topics() {
			if t.Name >= from {
				names = append(names, t.Name)
			}
		}
		return names, true
	}
	for _, rt := range req.Topics {
		if rt.Topic >= from {
			names = append(names, rt.Topic)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if req.Cursor != nil {
		if _, found := slices.BinarySearch(names, from); !found {
			return nil, false
		}
	}
	return names, true
}

// describePartitions describes the partitions [start, start+count) of t
// that exist, and returns the first one beyond them, or -1 if they
// reach the topic's end (Kafka's getPartitionMetadataForDescribeTopicResponse:
// a start outside the topic describes nothing there).
func (b *Broker) describePartitions(t *storage.Topic, start, count int32, route routing) ([]kmsg.DescribeTopicPartitionsResponseTopicPartition, int32) {
	n := int64(len(t.Logs))
	upper := min(n, int64(start)+int64(count)) // in int64: a cursor near the int32 limit must not wrap
	next := int32(-1)
	if upper < n {
		next = int32(upper)
	}
	out := []kmsg.DescribeTopicPartitionsResponseTopicPartition{}
	for p := start; int64(p) < upper; p++ {
		if p < 0 {
			continue
		}
		leader, epoch := b.partitionLeader(t.Name, p, route)
		sp := kmsg.NewDescribeTopicPartitionsResponseTopicPartition()
		sp.Partition, sp.LeaderID, sp.LeaderEpoch = p, leader, epoch
		sp.Replicas, sp.ISR, sp.OfflineReplicas = []int32{leader}, []int32{leader}, []int32{}
		sp.EligibleLeaderReplicas, sp.LastKnownELR = []int32{}, []int32{}
		if leader < 0 {
			sp.Replicas, sp.ISR = []int32{}, []int32{}
		}
		out = append(out, sp)
	}
	return out, next
}
