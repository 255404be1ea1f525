package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Commit handles an OffsetCommit request. The response arrives on the
// returned channel once the commit records are durable in the offsets log
// (or at once on errors); only then are the offsets visible to OffsetFetch.
//
// From v10 each topic carries its id beside the name the broker resolved
// it to; a topic whose name no longer has that id here, under the lock
// the deletion's ForgetTopic takes too, is answered UNKNOWN_TOPIC_ID, so
// a commit by a deleted topic's id never lands on its successor.
func (c *Coordinator) Commit(req *kmsg.OffsetCommitRequest) <-chan *kmsg.OffsetCommitResponse {
	ch := make(chan *kmsg.OffsetCommitResponse, 1)
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, t := range req.Topics {
		rt := kmsg.OffsetCommitResponseTopic{Topic: t.Topic, TopicID: t.TopicID}
		for _, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, kmsg.OffsetCommitResponseTopicPartition{Partition: p.Partition})
		}
		resp.Topics = append(resp.Topics, rt)
	}
	failAll := func(e *kerr.Error) <-chan *kmsg.OffsetCommitResponse {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = e.Code
			}
		}
		ch <- resp
		return ch
	}
	gen, memberID, instance := req.Generation, req.MemberID, ""
	if req.Version == 0 {
		gen, memberID = -1, "" // v0 commits carry no membership
	}
	if req.InstanceID != nil {
		instance = *req.InstanceID
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return failAll(kerr.CoordinatorNotAvailable)
	}
	g := c.groups[req.Group]
	if g == nil {
		if gen >= 0 {
			// A commit for a generation of a group that does not exist
			// comes from an older incarnation of the group; v9+ says so
			// with GROUP_ID_NOT_FOUND, older versions keep the old error.
			if req.Version >= 9 {
				return failAll(kerr.GroupIDNotFound)
			}
			return failAll(kerr.IllegalGeneration)
		}
		// A simple (non-member) consumer or an admin: the group exists
		// only to hold offsets.
		g = newGroup(req.Group)
		c.groups[req.Group] = g
	}
	// Kafka's ClassicGroup.validateOffsetCommit, in its order.
	if g.state == Dead {
		return failAll(kerr.CoordinatorNotAvailable)
	}
	if g.cons != nil {
		if e := c.consumerCommitCheckLocked(g, req, gen, memberID); e != nil {
			return failAll(e)
		}
	} else if !(gen < 0 && g.state == Empty) {
		if gen >= 0 || memberID != "" || instance != "" {
			if e := g.fenced(instance, memberID); e != nil {
				return failAll(e)
			}
			if g.members[memberID] == nil {
				return failAll(kerr.UnknownMemberID)
			}
			if gen != g.generation {
				return failAll(kerr.IllegalGeneration)
			}
		} else {
			// No membership at all: only an empty group takes it.
			return failAll(kerr.UnknownMemberID)
		}
		if g.state == CompletingRebalance {
			// The member has the new generation from its JoinGroup but
			// has not synced; it retries after SyncGroup.
			return failAll(kerr.RebalanceInProgress)
		}
		c.touchLocked(g.members[memberID])
	}
	now := time.Now().UnixMilli()
	var recs []Record
	var keys []tp
	var vals []offset
	for i, t := range req.Topics {
		stale := false
		if req.Version >= 10 {
			id, _, ok := c.topics.TopicInfo(t.Topic)
			stale = !ok || id != t.TopicID
		}
		for j, p := range t.Partitions {
			rp := &resp.Topics[i].Partitions[j]
			md := ""
			if p.Metadata != nil {
				md = *p.Metadata
			}
			switch {
			case stale:
				rp.ErrorCode = kerr.UnknownTopicID.Code
				continue
			case !c.topics.PartitionExists(t.Topic, p.Partition):
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			case len(md) > c.cfg.MaxMetadataBytes:
				rp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			epoch := p.LeaderEpoch
			if req.Version < 6 {
				epoch = -1
			}
			o := offset{offset: p.Offset, leaderEpoch: epoch, metadata: md, commitTs: now, at: -1}
			recs = append(recs, offsetRecord(g.id, t.Topic, p.Partition, o))
			keys = append(keys, tp{t.Topic, p.Partition})
			vals = append(vals, o)
		}
	}
	if len(recs) == 0 {
		ch <- resp
		return ch
	}
	for _, k := range keys {
		g.pendingCommits[k]++
	}
	c.appendAtLocked(c.partition(g.id), recs, func(first int64, err error) {
		for _, k := range keys {
			if g.pendingCommits[k]--; g.pendingCommits[k] <= 0 {
				delete(g.pendingCommits, k)
			}
		}
		if err != nil {
			c.log.Error("offset commit failed", "group", g.id, "err", err)
			for i := range resp.Topics {
				for j := range resp.Topics[i].Partitions {
					if rp := &resp.Topics[i].Partitions[j]; rp.ErrorCode == 0 {
						rp.ErrorCode = kerr.CoordinatorNotAvailable.Code
					}
				}
			}
			ch <- resp
			return
		}
		// The group may have been deleted meanwhile; its tombstones came
		// after these records in the log, so a replay agrees.
		if c.groups[g.id] == g {
			for i, k := range keys {
				o := vals[i]
				o.at = first + int64(i)
				g.offsets[k] = o
			}
		}
		ch <- resp
	})
	return ch
}

// FetchedOffset is one partition's committed offset, -1 if none.
// ErrorCode is the partition's error: UNSTABLE_OFFSET_COMMIT (offset -1)
// when stable offsets were required and a transaction's offset of the
// partition is pending.
type FetchedOffset struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	ErrorCode   int16
}

// FetchOffsets returns the committed offsets of a group: of the requested
// partitions (topics non-nil), or all of them (topics nil). A group that
// does not exist has no offsets, which is not an error (as in Kafka).
// Offsets of transactions not yet committed are never shown.
func (c *Coordinator) FetchOffsets(groupID string, topics map[string][]int32, all bool) ([]FetchedOffset, int16) {
	return c.FetchOffsetsStable(groupID, topics, all, false)
}

// FetchOffsetsStable is FetchOffsets for OffsetFetch v7+: with
// requireStable, a partition with a pending transactional offset is
// answered UNSTABLE_OFFSET_COMMIT instead of its committed offset, so the
// consumer retries rather than starting from an offset the transaction is
// about to move (Kafka's OffsetMetadataManager.fetchOffsets; with every
// offset asked for, that holds for the committed ones listed).
func (c *Coordinator) FetchOffsetsStable(groupID string, topics map[string][]int32, all, requireStable bool) ([]FetchedOffset, int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	g := c.groups[groupID]
	unstable := func(f *FetchedOffset) {
		if requireStable && g != nil && g.hasPending(tp{f.Topic, f.Partition}) {
			f.Offset, f.LeaderEpoch, f.Metadata = -1, -1, ""
			f.ErrorCode = kerr.UnstableOffsetCommit.Code
		}
	}
	var out []FetchedOffset
	if all {
		if g == nil {
			return nil, 0
		}
		for k, o := range g.offsets {
			f := FetchedOffset{Topic: k.topic, Partition: k.partition, Offset: o.offset, LeaderEpoch: o.leaderEpoch, Metadata: o.metadata}
			unstable(&f)
			out = append(out, f)
		}
		return out, 0
	}
	for t, ps := range topics {
		for _, p := range ps {
			f := FetchedOffset{Topic: t, Partition: p, Offset: -1, LeaderEpoch: -1}
			if g != nil {
				if o, ok := g.offsets[tp{t, p}]; ok {
					f.Offset, f.LeaderEpoch, f.Metadata = o.offset, o.leaderEpoch, o.metadata
				}
			}
			unstable(&f)
			out = append(out, f)
		}
	}
	return out, 0
}

// DeleteOffsets handles OffsetDelete: it removes committed offsets of
// partitions the group does not consume. The answer arrives once the
// tombstones are durable.
func (c *Coordinator) DeleteOffsets(req *kmsg.OffsetDeleteRequest) <-chan *kmsg.OffsetDeleteResponse {
	ch := make(chan *kmsg.OffsetDeleteResponse, 1)
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	fail := func(e *kerr.Error) <-chan *kmsg.OffsetDeleteResponse {
		resp.ErrorCode = e.Code
		ch <- resp
		return ch
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fail(kerr.CoordinatorNotAvailable)
	}
	g := c.groups[req.Group]
	if g == nil || g.state == Dead {
		return fail(kerr.GroupIDNotFound)
	}
	var subscribed map[string]bool
	switch {
	case g.state == Empty:
	case g.protocolType == "consumer":
		if topics, ok := g.subscribedTopics(); ok {
			subscribed = topics
		} else {
			subscribed = nil // unreadable subscriptions: every topic counts as consumed
		}
	default:
		return fail(kerr.NonEmptyGroup)
	}
	isSubscribed := func(topic string) bool {
		if g.state == Empty {
			return false
		}
		return subscribed == nil || subscribed[topic]
	}
	var recs []Record
	var keys []tp
	for _, t := range req.Topics {
		rt := kmsg.OffsetDeleteResponseTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			rp := kmsg.OffsetDeleteResponseTopicPartition{Partition: p.Partition}
			switch {
			case !c.topics.PartitionExists(t.Topic, p.Partition):
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case isSubscribed(t.Topic):
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				// A tombstone even without a known offset: a commit still
				// on its way to durability is deleted too, and so are the
				// partition's pending transactional offsets (appendLocked).
				recs = append(recs, Record{Key: offsetKey(g.id, t.Topic, p.Partition)})
				keys = append(keys, tp{t.Topic, p.Partition})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(recs) == 0 {
		ch <- resp
		return ch
	}
	c.appendLocked(c.partition(g.id), recs, func(err error) {
		if err != nil {
			c.log.Error("offset delete failed", "group", g.id, "err", err)
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			ch <- resp
			return
		}
		for _, k := range keys {
			delete(g.offsets, k)
		}
		ch <- resp
	})
	return ch
}
