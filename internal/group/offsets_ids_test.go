package group

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCommitByStaleTopicID: an OffsetCommit v10 topic whose id is not the
// id its name has now (the broker resolved it before the topic was deleted
// and created again) is UNKNOWN_TOPIC_ID and commits nothing; the same
// name with its current id commits.
func TestCommitByStaleTopicID(t *testing.T) {
	c := newTestCoordinator(t, newMemLog(4), 0)
	commit := func(id [16]byte) int16 {
		t.Helper()
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version, req.Group, req.Generation = 10, "g", -1
		req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", TopicID: id,
			Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 42, LeaderEpoch: -1}}}}
		resp := <-c.Commit(req)
		if rt := resp.Topics[0]; rt.TopicID != id {
			t.Fatalf("answered topic id %x, want %x", rt.TopicID, id)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	var stale [16]byte
	copy(stale[:], "t-before")
	if code := commit(stale); code != kerr.UnknownTopicID.Code {
		t.Fatalf("commit by a stale id: %v, want UNKNOWN_TOPIC_ID", kerr.ErrorForCode(code))
	}
	offs, _ := c.FetchOffsets("g", map[string][]int32{"t": {0}}, false)
	if len(offs) != 1 || offs[0].Offset != -1 {
		t.Fatalf("after a commit by a stale id: %+v, want no offset", offs)
	}
	current, _, _ := allTopics{}.TopicInfo("t")
	if code := commit(current); code != 0 {
		t.Fatalf("commit by the current id: %v", kerr.ErrorForCode(code))
	}
	if offs, _ := c.FetchOffsets("g", map[string][]int32{"t": {0}}, false); len(offs) != 1 || offs[0].Offset != 42 {
		t.Fatalf("after a commit by the current id: %+v, want offset 42", offs)
	}
}

// TestForgetTopicTakesCommitInFlight: a commit accepted while its topic
// still lived but not yet durable when the topic is deleted is forgotten
// with the topic: its record precedes the deletion's tombstone in the log.
// Otherwise a group of the topic created again under the name would
// resume at the deleted topic's offset, whether the commit named the
// topic or gave its id (v10).
func TestForgetTopicTakesCommitInFlight(t *testing.T) {
	l := &heldLog{memLog: newMemLog(1)}
	topics := someTopics{"t": 2}
	c := newConsumerTestCoordinator(t, l, topics)
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation = 10, "g", -1
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", TopicID: topicID("t"),
		Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 42, LeaderEpoch: -1}}}}
	committed := c.Commit(req)

	delete(topics, "t")
	forgot := make(chan error, 1)
	go func() {
		_, err := c.ForgetTopic(context.Background(), "t", 2)
		forgot <- err
	}()
	// The tombstone is appended (and held) once the log has two records.
	for deadline := time.Now().Add(5 * time.Second); l.replayed(0) < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("ForgetTopic appended no tombstone for the commit in flight (log holds %d records)", l.replayed(0))
		}
	}
	l.release()
	if code := (<-committed).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("commit accepted before the deletion: %v", kerr.ErrorForCode(code))
	}
	if err := <-forgot; err != nil {
		t.Fatal(err)
	}
	topics["t"] = 2 // created again
	if offs, _ := c.FetchOffsets("g", map[string][]int32{"t": {0}}, false); len(offs) != 1 || offs[0].Offset != -1 {
		t.Fatalf("offsets of the re-created topic: %+v, want none", offs)
	}
	c2 := newConsumerTestCoordinator(t, l.memLog, topics)
	if offs, _ := c2.FetchOffsets("g", map[string][]int32{"t": {0}}, false); len(offs) != 1 || offs[0].Offset != -1 {
		t.Fatalf("after a replay, offsets of the re-created topic: %+v, want none", offs)
	}
}
