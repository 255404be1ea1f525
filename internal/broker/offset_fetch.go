package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/group"
)

// handleOffsetFetch returns committed offsets: of one group (v0-v7) or of
// several (v8+). RequireStable (v7+) needs no waiting: without
// transactions no commit is ever pending in Kafka's sense.
func (b *Broker) handleOffsetFetch(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if h.version >= 8 {
		for _, rg := range req.Groups {
			topics := map[string][]int32{}
			var order []string
			for _, t := range rg.Topics {
				if _, ok := topics[t.Topic]; !ok {
					order = append(order, t.Topic)
				}
				topics[t.Topic] = append(topics[t.Topic], t.Partitions...)
			}
			offs, code := b.fetchOffsets(rg.Group, topics, rg.Topics == nil)
			g := kmsg.OffsetFetchResponseGroup{Group: rg.Group, ErrorCode: code}
			for _, t := range groupFetched(offs, order, rg.Topics == nil) {
				gt := kmsg.OffsetFetchResponseGroupTopic{Topic: t.topic}
				for _, o := range t.offs {
					md := o.Metadata
					gt.Partitions = append(gt.Partitions, kmsg.OffsetFetchResponseGroupTopicPartition{
						Partition: o.Partition, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: &md})
				}
				g.Topics = append(g.Topics, gt)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return func() kmsg.Response { return resp }
	}
	topics := map[string][]int32{}
	var order []string
	for _, t := range req.Topics {
		if _, ok := topics[t.Topic]; !ok {
			order = append(order, t.Topic)
		}
		topics[t.Topic] = append(topics[t.Topic], t.Partitions...)
	}
	// A null topic list (v2+) asks for every committed offset.
	all := req.Topics == nil && h.version >= 2
	offs, code := b.fetchOffsets(req.Group, topics, all)
	resp.ErrorCode = code
	for _, t := range groupFetched(offs, order, all) {
		rt := kmsg.OffsetFetchResponseTopic{Topic: t.topic}
		for _, o := range t.offs {
			md := o.Metadata
			rt.Partitions = append(rt.Partitions, kmsg.OffsetFetchResponseTopicPartition{
				Partition: o.Partition, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: &md})
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return func() kmsg.Response { return resp }
}

type fetchedTopic struct {
	topic string
	offs  []group.FetchedOffset
}

// groupFetched groups offsets by topic: in request order, or sorted when
// every offset was asked for.
func groupFetched(offs []group.FetchedOffset, order []string, all bool) []fetchedTopic {
	by := map[string][]group.FetchedOffset{}
	for _, o := range offs {
		by[o.Topic] = append(by[o.Topic], o)
	}
	if all {
		order = nil
		for t := range by {
			order = append(order, t)
		}
		sort.Strings(order)
		for _, t := range order {
			sort.Slice(by[t], func(i, j int) bool { return by[t][i].Partition < by[t][j].Partition })
		}
	}
	out := make([]fetchedTopic, 0, len(order))
	for _, t := range order {
		out = append(out, fetchedTopic{t, by[t]})
	}
	return out
}

// fetchOffsets asks the group's coordinator, or answers NOT_COORDINATOR
// when another broker coordinates the group.
func (b *Broker) fetchOffsets(id string, topics map[string][]int32, all bool) ([]group.FetchedOffset, int16) {
	g := b.coordinator(id)
	if g == nil {
		return nil, kerr.NotCoordinator.Code
	}
	return g.FetchOffsets(id, topics, all)
}
