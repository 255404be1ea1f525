package server

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit and OffsetFetch v10 (KIP-848, KAFKA-14690/14691) name
// topics by id alone: an id that is not, or no longer, a topic's is
// UNKNOWN_TOPIC_ID, and an id of a deleted topic neither commits to nor
// reads the offsets of the topic created again under its name.

// commitV10 commits offsets[p] for each partition p of the topic with id,
// as group outside a generation (as admin tools do), and returns the
// topic's answer.
func commitV10(t *testing.T, c *rawConn, group string, id [16]byte, offsets ...int64) kmsg.OffsetCommitResponseTopic {
	t.Helper()
	req := versioned(kmsg.NewPtrOffsetCommitRequest(), 10)
	req.Group, req.Generation = group, -1
	rt := kmsg.OffsetCommitRequestTopic{TopicID: id}
	for p, o := range offsets {
		rt.Partitions = append(rt.Partitions, kmsg.OffsetCommitRequestTopicPartition{Partition: int32(p), Offset: o, LeaderEpoch: -1})
	}
	req.Topics = []kmsg.OffsetCommitRequestTopic{rt}
	resp := c.roundTrip(req, -1).(*kmsg.OffsetCommitResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != len(offsets) {
		t.Fatalf("offset commit v10: %+v, want one topic with %d partitions", resp.Topics, len(offsets))
	}
	return resp.Topics[0]
}

// fetchOffsets asks OffsetFetch at version v (8+) for partitions
// [0, partitions) of a topic named by id (v10) or name (v8, v9), or for
// every offset when both are empty, and returns the group's answer.
func fetchOffsets(t *testing.T, c *rawConn, v int16, group string, id [16]byte, name string, partitions int32) kmsg.OffsetFetchResponseGroup {
	t.Helper()
	req := versioned(kmsg.NewPtrOffsetFetchRequest(), v)
	rg := kmsg.OffsetFetchRequestGroup{Group: group, MemberEpoch: -1}
	if name != "" || id != ([16]byte{}) {
		rt := kmsg.OffsetFetchRequestGroupTopic{Topic: name, TopicID: id}
		for p := range partitions {
			rt.Partitions = append(rt.Partitions, p)
		}
		rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{rt}
	}
	req.Groups = []kmsg.OffsetFetchRequestGroup{rg}
	resp := c.roundTrip(req, -1).(*kmsg.OffsetFetchResponse)
	if len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
		t.Fatalf("offset fetch v%d: %+v, want one group without error", v, resp.Groups)
	}
	return resp.Groups[0]
}

// offsetsOf lists a fetched topic's partitions as "p:offset/error".
func offsetsOf(gt kmsg.OffsetFetchResponseGroupTopic) string {
	var s []string
	for _, p := range gt.Partitions {
		s = append(s, fmt.Sprintf("%d:%d/%d", p.Partition, p.Offset, p.ErrorCode))
	}
	return fmt.Sprint(s)
}

// TestOffsetsByTopicID: offsets committed by id at v10 are the offsets a
// v9 fetch by name and a v10 fetch by id (one topic, or every offset)
// read; an unknown id is UNKNOWN_TOPIC_ID for each partition; after the
// topic is deleted and created again, the old id commits nothing and reads
// nothing, and the new topic starts without offsets.
func TestOffsetsByTopicID(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	c := dialRaw(t, ts.addr)
	first := createV7(t, c, "offs", 2)

	if rt := commitV10(t, c, "g", first, 5, 7); rt.TopicID != first || rt.Topic != "" ||
		rt.Partitions[0].ErrorCode != 0 || rt.Partitions[1].ErrorCode != 0 {
		t.Fatalf("commit v10 by id: %+v, want both partitions committed under the id", rt)
	}
	const want = "[0:5/0 1:7/0]"
	byID := fetchOffsets(t, c, 10, "g", first, "", 2)
	if len(byID.Topics) != 1 || byID.Topics[0].TopicID != first || offsetsOf(byID.Topics[0]) != want {
		t.Fatalf("fetch v10 by id: %+v, want %s under the id", byID.Topics, want)
	}
	byName := fetchOffsets(t, c, 9, "g", [16]byte{}, "offs", 2)
	if len(byName.Topics) != 1 || byName.Topics[0].Topic != "offs" || offsetsOf(byName.Topics[0]) != want {
		t.Fatalf("fetch v9 by name: %+v, want %s", byName.Topics, want)
	}
	all := fetchOffsets(t, c, 10, "g", [16]byte{}, "", 0)
	if len(all.Topics) != 1 || all.Topics[0].TopicID != first || offsetsOf(all.Topics[0]) != want {
		t.Fatalf("fetch v10 of every offset: %+v, want %s under the id", all.Topics, want)
	}

	// An id that is no topic's, beside a known one in the same request.
	unknown := [16]byte{0xde, 0xad, 0xbe, 0xef}
	req := versioned(kmsg.NewPtrOffsetCommitRequest(), 10)
	req.Group, req.Generation = "g", -1
	req.Topics = []kmsg.OffsetCommitRequestTopic{
		{TopicID: unknown, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, LeaderEpoch: -1}, {Partition: 1, Offset: 1, LeaderEpoch: -1}}},
		{TopicID: first, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 6, LeaderEpoch: -1}}},
	}
	codes := map[[16]byte][]int16{}
	for _, rt := range c.roundTrip(req, -1).(*kmsg.OffsetCommitResponse).Topics {
		for _, p := range rt.Partitions {
			codes[rt.TopicID] = append(codes[rt.TopicID], p.ErrorCode)
		}
	}
	if u, k := kerr.UnknownTopicID.Code, int16(0); fmt.Sprint(codes[unknown]) != fmt.Sprint([]int16{u, u}) || fmt.Sprint(codes[first]) != fmt.Sprint([]int16{k}) {
		t.Fatalf("commit v10 of an unknown and a known id: %v, want [%d %d] for the unknown id and [0] for the known", codes, u, u)
	}
	gt := fetchOffsets(t, c, 10, "g", unknown, "", 2).Topics
	if len(gt) != 1 || gt[0].TopicID != unknown || offsetsOf(gt[0]) != fmt.Sprintf("[0:-1/%d 1:-1/%d]", kerr.UnknownTopicID.Code, kerr.UnknownTopicID.Code) {
		t.Fatalf("fetch v10 by an unknown id: %+v, want UNKNOWN_TOPIC_ID and offset -1 for each partition", gt)
	}

	// Delete the topic and create the name again: the old id is refused
	// both ways, and nothing it commits reaches the new topic.
	del := versioned(kmsg.NewPtrDeleteTopicsRequest(), 6)
	del.TimeoutMillis, del.Topics = 5000, []kmsg.DeleteTopicsRequestTopic{{TopicID: first}}
	if dt := c.roundTrip(del, -1).(*kmsg.DeleteTopicsResponse).Topics[0]; dt.ErrorCode != 0 {
		t.Fatalf("delete: %v", kerr.ErrorForCode(dt.ErrorCode))
	}
	second := createV7(t, c, "offs", 2)
	if rt := commitV10(t, c, "g", first, 9, 9); rt.Partitions[0].ErrorCode != kerr.UnknownTopicID.Code || rt.Partitions[1].ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("commit v10 by the deleted id: %+v, want UNKNOWN_TOPIC_ID", rt)
	}
	if gt := fetchOffsets(t, c, 10, "g", first, "", 2).Topics; len(gt) != 1 || gt[0].Partitions[0].ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("fetch v10 by the deleted id: %+v, want UNKNOWN_TOPIC_ID", gt)
	}
	const none = "[0:-1/0 1:-1/0]"
	if gt := fetchOffsets(t, c, 9, "g", [16]byte{}, "offs", 2).Topics; offsetsOf(gt[0]) != none {
		t.Fatalf("fetch v9 by name of the re-created topic: %s, want %s (no offsets)", offsetsOf(gt[0]), none)
	}
	if gt := fetchOffsets(t, c, 10, "g", second, "", 2).Topics; gt[0].TopicID != second || offsetsOf(gt[0]) != none {
		t.Fatalf("fetch v10 by the new id: %+v, want %s", gt, none)
	}
	if rt := commitV10(t, c, "g", second, 3, 4); rt.Partitions[0].ErrorCode != 0 || rt.Partitions[1].ErrorCode != 0 {
		t.Fatalf("commit v10 by the new id: %+v", rt)
	}
	if gt := fetchOffsets(t, c, 9, "g", [16]byte{}, "offs", 2).Topics; offsetsOf(gt[0]) != "[0:3/0 1:4/0]" {
		t.Fatalf("fetch v9 after a commit by the new id: %s, want [0:3/0 1:4/0]", offsetsOf(gt[0]))
	}
	if gt := fetchOffsets(t, c, 10, "g", [16]byte{}, "", 0).Topics; len(gt) != 1 || gt[0].TopicID != second {
		t.Fatalf("fetch v10 of every offset after re-creation: %+v, want the new id alone", gt)
	}
}

// wroteLog keeps the "wrote <API> v<version>" lines of a franz-go client's
// debug log: which version of each request the client chose.
type wroteLog struct {
	mu    sync.Mutex
	wrote map[string]bool
}

func (l *wroteLog) Level() kgo.LogLevel { return kgo.LogLevelDebug }

func (l *wroteLog) Log(_ kgo.LogLevel, msg string, _ ...any) {
	if strings.HasPrefix(msg, "wrote ") {
		l.mu.Lock()
		l.wrote[strings.TrimPrefix(msg, "wrote ")] = true
		l.mu.Unlock()
	}
}

func (l *wroteLog) saw(req string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wrote[req]
}

// TestConsumerGroupCommitsByTopicID: franz-go (v1.22) commits and fetches
// offsets at v10 against a broker that serves it; a group member, of the
// classic and of the consumer protocol (KIP-848), resumes where the one
// before it committed.
func TestConsumerGroupCommitsByTopicID(t *testing.T) {
	ts := startServer(t, t.TempDir(), groupConfig)
	ctx := testCtx(t, 60*time.Second)
	createTopics(t, ctx, ts.admin(t), 1, nil, "resume")
	produceValues(t, ctx, ts.client(t), "resume", "r-0", "r-1", "r-2", "r-3")
	for _, proto := range []struct {
		name string
		opts []kgo.Opt
	}{{"classic", nil}, {"consumer", []kgo.Opt{kgo.GroupProtocol("consumer")}}} {
		t.Run(proto.name, func(t *testing.T) {
			log := &wroteLog{wrote: map[string]bool{}}
			consume := func(n int) []string {
				t.Helper()
				cl := ts.client(t, append([]kgo.Opt{kgo.WithLogger(log), kgo.ConsumerGroup("resume-" + proto.name), kgo.ConsumeTopics("resume"),
					kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit()}, proto.opts...)...)
				defer cl.Close()
				var got []string
				for len(got) < n && ctx.Err() == nil {
					fs := cl.PollRecords(ctx, n-len(got))
					fs.EachError(func(topic string, p int32, err error) { t.Fatalf("consume %s/%d: %v", topic, p, err) })
					fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
				}
				if err := cl.CommitUncommittedOffsets(ctx); err != nil {
					t.Fatalf("commit: %v", err)
				}
				return got
			}
			if got := consume(2); fmt.Sprint(got) != "[r-0 r-1]" {
				t.Fatalf("first member read %q, want r-0 r-1", got)
			}
			if got := consume(2); fmt.Sprint(got) != "[r-2 r-3]" {
				t.Fatalf("second member read %q, want r-2 r-3 (resumed at the committed offset)", got)
			}
			for _, req := range []string{"OffsetCommit v10", "OffsetFetch v10"} {
				if !log.saw(req) {
					t.Errorf("the client never wrote %s (wrote %v)", req, log.wrote)
				}
			}
		})
	}
}

// TestUnknownTopicIDBeforeTopicAuthz: an id that is no topic's names
// nothing to authorize, so a principal that may read the group but no
// topic is answered UNKNOWN_TOPIC_ID for it (Kafka's order), and
// TOPIC_AUTHORIZATION_FAILED for the id of a topic it may not read, by
// OffsetCommit and OffsetFetch v10 alike.
func TestUnknownTopicIDBeforeTopicAuthz(t *testing.T) {
	e := startAuthzServer(t, false)
	e.topics(t, "secret")
	secret, _, _ := e.ts.srv.store.TopicInfo("secret")
	e.grantTo(t, "idless", onGroup("idg", kmsg.ACLOperationRead))
	nc := e.conn(t, "idless")
	unknown := [16]byte{0xfe, 0xed}
	for _, tc := range []struct {
		id   [16]byte
		want *kerr.Error
	}{{unknown, kerr.UnknownTopicID}, {secret, kerr.TopicAuthorizationFailed}} {
		oc := versioned(kmsg.NewPtrOffsetCommitRequest(), 10)
		oc.Group, oc.Generation = "idg", -1
		oc.Topics = []kmsg.OffsetCommitRequestTopic{{TopicID: tc.id, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, LeaderEpoch: -1}}}}
		if rt := roundTrip(t, nc, oc).(*kmsg.OffsetCommitResponse).Topics[0]; rt.TopicID != tc.id || rt.Partitions[0].ErrorCode != tc.want.Code {
			t.Errorf("commit v10 of id %x: id %x, %s; want %s", tc.id, rt.TopicID, codeName(rt.Partitions[0].ErrorCode), tc.want.Message)
		}
		of := versioned(kmsg.NewPtrOffsetFetchRequest(), 10)
		of.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "idg", MemberEpoch: -1,
			Topics: []kmsg.OffsetFetchRequestGroupTopic{{TopicID: tc.id, Partitions: []int32{0}}}}}
		g := roundTrip(t, nc, of).(*kmsg.OffsetFetchResponse).Groups[0]
		if g.ErrorCode != 0 || len(g.Topics) != 1 || g.Topics[0].TopicID != tc.id || g.Topics[0].Partitions[0].ErrorCode != tc.want.Code {
			t.Errorf("fetch v10 of id %x: %+v; want %s", tc.id, g, tc.want.Message)
		}
	}
}
