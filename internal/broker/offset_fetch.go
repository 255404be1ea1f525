package broker

import (
	"cmp"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/group"
)

// handleOffsetFetch returns committed offsets: of one group (v0-v7) or of
// several (v8+). With RequireStable (v7+) a partition whose group has a
// transactional offset pending (committed by a transaction not yet ended)
// is UNSTABLE_OFFSET_COMMIT, and the consumer retries, rather than start
// from the offset the transaction is about to replace (KIP-447).
//
// Authorization, as Kafka's fetchOffsets, per group: Describe on the
// group, else GROUP_AUTHORIZATION_FAILED for the group (v8+: the group's
// error; v2-v7: the top-level error; v0-v1, which have none: every
// partition asked for), as for any error of the group. Then Describe on
// each topic: a refused topic's partitions are answered
// TOPIC_AUTHORIZATION_FAILED with offset -1, and a fetch of every offset
// leaves refused topics out.
//
// Topic ids (v10, KIP-848's KAFKA-14691): topics are named by id alone,
// in the request and the answer. After the group check, an id that is no
// live topic's is answered UNKNOWN_TOPIC_ID with offset -1 for each
// partition asked for, before the topic check, as for OffsetCommit. A
// fetch of every offset answers each topic with its live id and leaves
// out offsets of a name that is no live topic's: they have no id, and
// the offsets of a deleted topic are dropped with it anyway
// (ForgetTopic). Each id is confirmed after the read (confirmIDs), so an
// id of a deleted topic never reads the offsets of its successor, nor a
// successor's id those of the topic before it.
func (b *Broker) handleOffsetFetch(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if h.version >= 8 {
		byID := h.version >= 10
		for _, rg := range req.Groups {
			asked := make([]askedTopic, len(rg.Topics))
			for i, t := range rg.Topics {
				asked[i] = askedTopic{topic: t.Topic, partitions: t.Partitions}
				if byID {
					asked[i] = askedTopic{id: t.TopicID, partitions: t.Partitions, unknown: true}
					if lt := b.store.TopicByID(t.TopicID); lt != nil {
						asked[i].topic, asked[i].unknown = lt.Name, false
					}
				}
			}
			var before map[string][16]byte
			if byID && rg.Topics == nil {
				before = b.topicIDs()
			}
			code, topics := b.groupOffsets(c, rg.Group, asked, rg.Topics == nil, req.RequireStable)
			if byID {
				topics = b.confirmIDs(topics, before)
			}
			if co := b.coordinator(rg.Group); code == 0 && h.version >= 9 && co != nil {
				// A consumer group's member fetches at its epoch (KIP-848).
				if code = co.CheckConsumerFetch(rg.Group, rg.MemberID, rg.MemberEpoch); code != 0 {
					topics = nil
				}
			}
			g := kmsg.OffsetFetchResponseGroup{Group: rg.Group, ErrorCode: code}
			for _, t := range topics {
				gt := kmsg.OffsetFetchResponseGroupTopic{Topic: t.topic, TopicID: t.id}
				for _, o := range t.offs {
					md := o.Metadata
					gt.Partitions = append(gt.Partitions, kmsg.OffsetFetchResponseGroupTopicPartition{
						Partition: o.Partition, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: &md, ErrorCode: cmp.Or(t.code, o.ErrorCode)})
				}
				g.Topics = append(g.Topics, gt)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return func() kmsg.Response { return resp }
	}
	asked := make([]askedTopic, len(req.Topics))
	for i, t := range req.Topics {
		asked[i] = askedTopic{topic: t.Topic, partitions: t.Partitions}
	}
	// A null topic list (v2+) asks for every committed offset.
	all := req.Topics == nil && h.version >= 2
	code, topics := b.groupOffsets(c, req.Group, asked, all, h.version >= 7 && req.RequireStable)
	if code != 0 && h.version < 2 {
		// No top-level error before v2: Kafka puts it on every
		// partition asked for.
		topics = nil
		for _, t := range asked {
			ft := fetchedTopic{topic: t.topic, code: code}
			for _, p := range t.partitions {
				ft.offs = append(ft.offs, group.FetchedOffset{Topic: t.topic, Partition: p, Offset: -1, LeaderEpoch: -1})
			}
			topics = append(topics, ft)
		}
	}
	resp.ErrorCode = code
	for _, t := range topics {
		rt := kmsg.OffsetFetchResponseTopic{Topic: t.topic}
		for _, o := range t.offs {
			md := o.Metadata
			rt.Partitions = append(rt.Partitions, kmsg.OffsetFetchResponseTopicPartition{
				Partition: o.Partition, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: &md, ErrorCode: cmp.Or(t.code, o.ErrorCode)})
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return func() kmsg.Response { return resp }
}

// askedTopic is one topic of an OffsetFetch and its partitions; from v10
// its id too, and unknown when the id is no live topic's.
type askedTopic struct {
	topic      string
	id         [16]byte
	partitions []int32
	unknown    bool
}

// fetchedTopic is one topic of an OffsetFetch's answer; code is its
// partitions' error (TOPIC_AUTHORIZATION_FAILED for a refused topic,
// UNKNOWN_TOPIC_ID for an id that is no live topic's).
type fetchedTopic struct {
	topic string
	id    [16]byte
	offs  []group.FetchedOffset
	code  int16
}

// topicID is a live topic's id, zero if the name is no live topic's.
func (b *Broker) topicID(name string) [16]byte {
	id, _, _ := b.store.TopicInfo(name)
	return id
}

// topicIDs maps the live topics' names to their ids.
func (b *Broker) topicIDs() map[string][16]byte {
	ts := b.store.Topics()
	out := make(map[string][16]byte, len(ts))
	for _, t := range ts {
		out[t.Name] = t.ID
	}
	return out
}

// confirmIDs makes sure the offsets of a v10 answer are those of the ids
// it gives. An id stays a topic's from its creation until its deletion,
// and a topic's offsets are forgotten on this broker before its name is
// live again (storage.Engine.OnTopicDeleted), so a name with the same id
// before and after the read had no other topic's offsets in between.
// Topics asked by id were resolved before the read: one whose name has
// another id, or none, now is answered UNKNOWN_TOPIC_ID. With every
// offset asked for, before holds the ids from before the read; a topic
// whose id is not the same now, or is no live topic's, is left out.
func (b *Broker) confirmIDs(topics []fetchedTopic, before map[string][16]byte) []fetchedTopic {
	kept := topics[:0]
	for _, t := range topics {
		if t.code == kerr.UnknownTopicID.Code {
			kept = append(kept, t)
			continue
		}
		now := b.topicID(t.topic)
		switch {
		case before != nil:
			if id, ok := before[t.topic]; !ok || id != now {
				continue
			}
			t.id = now
		case now != t.id:
			asked := askedTopic{topic: t.topic, id: t.id}
			for _, o := range t.offs {
				asked.partitions = append(asked.partitions, o.Partition)
			}
			t = failedTopic(asked, kerr.UnknownTopicID.Code)
		}
		kept = append(kept, t)
	}
	return kept
}

// failedTopic answers each partition asked for of t with code, offset -1.
func failedTopic(t askedTopic, code int16) fetchedTopic {
	ft := fetchedTopic{topic: t.topic, id: t.id, code: code}
	for _, p := range t.partitions {
		ft.offs = append(ft.offs, group.FetchedOffset{Topic: t.topic, Partition: p, Offset: -1, LeaderEpoch: -1})
	}
	return ft
}

// groupOffsets answers one group of an OffsetFetch (Kafka's fetchOffsets):
// the group's error code, or its topics in request order (sorted when
// every offset was asked for). It runs on the reader goroutine.
func (b *Broker) groupOffsets(c *conn, groupID string, asked []askedTopic, all, requireStable bool) (int16, []fetchedTopic) {
	if !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeGroup, groupID) {
		return kerr.GroupAuthorizationFailed.Code, nil
	}
	g := b.coordinator(groupID)
	if g == nil {
		return kerr.NotCoordinator.Code, nil
	}
	if all {
		offs, code := g.FetchOffsetsStable(groupID, nil, true, requireStable)
		if code != 0 {
			return code, nil
		}
		by := map[string][]group.FetchedOffset{}
		for _, o := range offs {
			by[o.Topic] = append(by[o.Topic], o)
		}
		out := make([]fetchedTopic, 0, len(by))
		for t, os := range by {
			// Offsets of topics the principal may not describe are not
			// shown (Kafka reports these denials too).
			if c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t) {
				sort.Slice(os, func(i, j int) bool { return os[i].Partition < os[j].Partition })
				out = append(out, fetchedTopic{topic: t, offs: os})
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].topic < out[j].topic })
		return 0, out
	}
	topics := map[string][]int32{}
	denied := map[string]bool{}
	ids := map[string][16]byte{}
	var order []string
	var unknown []fetchedTopic
	for _, t := range asked {
		if t.unknown {
			unknown = append(unknown, failedTopic(t, kerr.UnknownTopicID.Code))
			continue
		}
		ids[t.topic] = t.id
		if _, ok := topics[t.topic]; !ok && !denied[t.topic] {
			order = append(order, t.topic)
			if !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t.topic) {
				denied[t.topic] = true
			}
		}
		if denied[t.topic] {
			continue
		}
		topics[t.topic] = append(topics[t.topic], t.partitions...)
	}
	offs, code := g.FetchOffsetsStable(groupID, topics, false, requireStable)
	if code != 0 {
		return code, nil
	}
	by := map[string][]group.FetchedOffset{}
	for _, o := range offs {
		by[o.Topic] = append(by[o.Topic], o)
	}
	out := make([]fetchedTopic, 0, len(order)+len(unknown))
	for _, t := range order {
		if !denied[t] {
			out = append(out, fetchedTopic{topic: t, id: ids[t], offs: by[t]})
			continue
		}
		ft := fetchedTopic{topic: t, id: ids[t], code: kerr.TopicAuthorizationFailed.Code}
		for _, a := range asked {
			if !a.unknown && a.topic == t {
				ft.offs = append(ft.offs, failedTopic(a, 0).offs...)
			}
		}
		out = append(out, ft)
	}
	return 0, append(out, unknown...)
}
