package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/batch"
)

// Topic ids (KIP-516): every topic has a random id from its creation, the
// same on every broker and across restarts, a new one when the name is
// deleted and created again; Fetch v13+ names topics by id and is refused
// UNKNOWN_TOPIC_ID for an id that is not, or no longer, a topic's.

// createV7 creates topic over c with CreateTopics v7 and returns the id
// the answer gives.
func createV7(t *testing.T, c *rawConn, topic string, partitions int32) [16]byte {
	t.Helper()
	req := versioned(kmsg.NewPtrCreateTopicsRequest(), 7)
	req.TimeoutMillis = 5000
	req.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}
	st := c.roundTrip(req, -1).(*kmsg.CreateTopicsResponse).Topics[0]
	if err := kerr.ErrorForCode(st.ErrorCode); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	if st.TopicID == [16]byte{} {
		t.Fatalf("create %s: CreateTopics v7 answered the zero topic id", topic)
	}
	return st.TopicID
}

// metadataID asks Metadata v12 over c for topic by name and returns its
// id and error code.
func metadataID(t *testing.T, c *rawConn, topic string) ([16]byte, int16) {
	t.Helper()
	req := versioned(kmsg.NewPtrMetadataRequest(), 12)
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(topic)}}
	mt := c.roundTrip(req, -1).(*kmsg.MetadataResponse).Topics[0]
	return mt.TopicID, mt.ErrorCode
}

// fetchV13 fetches partition 0 of the topic with id from offset, without
// waiting, and returns the topic's answer.
func fetchV13(t *testing.T, c *rawConn, id [16]byte, offset int64) kmsg.FetchResponseTopic {
	t.Helper()
	req := versioned(kmsg.NewPtrFetchRequest(), 13)
	req.ReplicaID, req.MaxBytes, req.SessionEpoch = -1, 1<<20, -1
	req.Topics = []kmsg.FetchRequestTopic{{TopicID: id, Partitions: []kmsg.FetchRequestTopicPartition{
		{Partition: 0, FetchOffset: offset, CurrentLeaderEpoch: -1, LastFetchedEpoch: -1, LogStartOffset: -1, PartitionMaxBytes: 1 << 20}}}}
	resp := c.roundTrip(req, -1).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch v13: error %d, %d topics, want one topic with one partition", resp.ErrorCode, len(resp.Topics))
	}
	return resp.Topics[0]
}

// fetchedValues decodes the record values of a fetched partition.
func fetchedValues(t *testing.T, p kmsg.FetchResponseTopicPartition) []string {
	t.Helper()
	var out []string
	dec := kgo.DefaultDecompressor()
	for raw := p.RecordBatches; len(raw) > 0; {
		rb, recs, err := batch.Records(raw, dec)
		if err != nil {
			t.Fatalf("decode fetched batch: %v", err)
		}
		raw = raw[12+int(rb.Length):]
		for _, r := range recs {
			out = append(out, string(r.Value))
		}
	}
	return out
}

func produceValues(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, values ...string) {
	t.Helper()
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %q to %s: %v", v, topic, err)
		}
	}
}

// TestTopicIDs: the id CreateTopics v7 gives is Metadata's, survives a
// restart, reads the topic by Fetch v13, deletes it by DeleteTopics v6;
// the name created again gets a new id, and the old id is refused
// UNKNOWN_TOPIC_ID by Fetch v13, Metadata v12 and DeleteTopics v6 while
// the new one reads only the new incarnation's records.
func TestTopicIDs(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir, nil)
	ctx := testCtx(t, 60*time.Second)
	c := dialRaw(t, ts.addr)
	first := createV7(t, c, "ids", 1)
	if got, code := metadataID(t, c, "ids"); code != 0 || got != first {
		t.Fatalf("metadata v12: id %x (error %d), CreateTopics gave %x", got, code, first)
	}
	produceValues(t, ctx, ts.client(t), "ids", "old-0", "old-1")

	ts.close()
	ts = startServer(t, dir, nil)
	c = dialRaw(t, ts.addr)
	if got, code := metadataID(t, c, "ids"); code != 0 || got != first {
		t.Fatalf("after restart: id %x (error %d), want %x", got, code, first)
	}
	ft := fetchV13(t, c, first, 0)
	if ft.TopicID != first || ft.Partitions[0].ErrorCode != 0 {
		t.Fatalf("fetch v13 by id: topic id %x, error %d", ft.TopicID, ft.Partitions[0].ErrorCode)
	}
	if got := fetchedValues(t, ft.Partitions[0]); fmt.Sprint(got) != "[old-0 old-1]" {
		t.Fatalf("fetch v13 by id read %q, want old-0 old-1", got)
	}

	// Delete by id, then create the name again.
	del := versioned(kmsg.NewPtrDeleteTopicsRequest(), 6)
	del.TimeoutMillis, del.Topics = 5000, []kmsg.DeleteTopicsRequestTopic{{TopicID: first}}
	dt := c.roundTrip(del, -1).(*kmsg.DeleteTopicsResponse).Topics[0]
	if dt.ErrorCode != 0 || dt.Topic == nil || *dt.Topic != "ids" || dt.TopicID != first {
		t.Fatalf("delete by id: error %d, topic %v, id %x", dt.ErrorCode, dt.Topic, dt.TopicID)
	}
	if _, code := metadataID(t, c, "ids"); code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("metadata after delete by id: error %d, want UNKNOWN_TOPIC_OR_PARTITION", code)
	}
	second := createV7(t, c, "ids", 1)
	if second == first {
		t.Fatalf("re-created topic kept its old id %x", first)
	}
	if got, _ := metadataID(t, c, "ids"); got != second {
		t.Fatalf("metadata after re-creation: id %x, want the new %x", got, second)
	}
	produceValues(t, ctx, ts.client(t), "ids", "new-0", "new-1", "new-2")

	// The old id reads nothing, even at an offset the new topic has.
	ft = fetchV13(t, c, first, 1)
	if p := ft.Partitions[0]; ft.TopicID != first || p.ErrorCode != kerr.UnknownTopicID.Code || len(p.RecordBatches) != 0 || p.HighWatermark != -1 {
		t.Fatalf("fetch v13 by the deleted id: id %x, error %d, %d bytes, high watermark %d; want UNKNOWN_TOPIC_ID and nothing read",
			ft.TopicID, p.ErrorCode, len(p.RecordBatches), p.HighWatermark)
	}
	ft = fetchV13(t, c, second, 0)
	if got := fetchedValues(t, ft.Partitions[0]); ft.Partitions[0].ErrorCode != 0 || fmt.Sprint(got) != "[new-0 new-1 new-2]" {
		t.Fatalf("fetch v13 by the new id: error %d, read %q, want new-0 new-1 new-2", ft.Partitions[0].ErrorCode, got)
	}
	md := versioned(kmsg.NewPtrMetadataRequest(), 12)
	md.Topics = []kmsg.MetadataRequestTopic{{TopicID: first}}
	if mt := c.roundTrip(md, -1).(*kmsg.MetadataResponse).Topics[0]; mt.ErrorCode != kerr.UnknownTopicID.Code || mt.TopicID != first || mt.Topic != nil {
		t.Fatalf("metadata v12 by the deleted id: error %d, id %x, name %v; want UNKNOWN_TOPIC_ID", mt.ErrorCode, mt.TopicID, mt.Topic)
	}
	// Before v12 topics are named: a null name or an id is INVALID_REQUEST
	// for every topic asked, as Kafka answers it.
	for _, v := range []int16{10, 11} {
		md := versioned(kmsg.NewPtrMetadataRequest(), v)
		md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("ids")}, {TopicID: second}}
		resp := c.roundTrip(md, -1).(*kmsg.MetadataResponse)
		if len(resp.Topics) != 2 || len(resp.Brokers) != 0 {
			t.Fatalf("metadata v%d with a null name: %d topics, %d brokers; want 2 and none", v, len(resp.Topics), len(resp.Brokers))
		}
		for _, mt := range resp.Topics {
			if mt.ErrorCode != kerr.InvalidRequest.Code || mt.Topic == nil {
				t.Fatalf("metadata v%d with a null name: topic %v error %d, want INVALID_REQUEST", v, mt.Topic, mt.ErrorCode)
			}
		}
		md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("ids"), TopicID: second}}
		if mt := c.roundTrip(md, -1).(*kmsg.MetadataResponse).Topics[0]; mt.ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("metadata v%d naming a topic id: error %d, want INVALID_REQUEST", v, mt.ErrorCode)
		}
	}
	del.Topics = []kmsg.DeleteTopicsRequestTopic{{TopicID: first}}
	if dt := c.roundTrip(del, -1).(*kmsg.DeleteTopicsResponse).Topics[0]; dt.ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("delete by the deleted id: error %d, want UNKNOWN_TOPIC_ID", dt.ErrorCode)
	}
	if got, _ := metadataID(t, c, "ids"); got != second {
		t.Fatalf("deleting the old id touched the new topic: id now %x", got)
	}
}

// TestTopicIDsCluster: two brokers of a cluster answer the same id for a
// topic, and after it is deleted and created again on the other broker,
// both answer the new id and refuse a fetch by the old one.
func TestTopicIDsCluster(t *testing.T) {
	cluster := startCluster(t, 2, func(int32) string { return "" })
	c1, c2 := dialRaw(t, cluster.brokers[0].addr), dialRaw(t, cluster.brokers[1].addr)
	first := createV7(t, c1, "shared", 1)
	// sameID waits until broker c's metadata names topic by id.
	sameID := func(c *rawConn, id [16]byte) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			got, code := metadataID(t, c, "shared")
			if got == id && code == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("broker answers id %x (error %d), want %x", got, code, id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	sameID(c2, first)

	adm := kadm.NewClient(cluster.client(t))
	ctx := testCtx(t, 60*time.Second)
	// Committed offsets of a few groups, whose coordinators hash over the
	// brokers.
	groups := []string{"cg-a", "cg-b", "cg-c", "cg-d"}
	for _, g := range groups {
		var offs kadm.Offsets
		offs.Add(kadm.Offset{Topic: "shared", Partition: 0, At: 1, LeaderEpoch: -1})
		if resp, err := adm.CommitOffsets(ctx, g, offs); err != nil || resp.Error() != nil {
			t.Fatalf("commit for %s: %v %v", g, err, resp.Error())
		}
	}
	if resp, err := adm.DeleteTopics(ctx, "shared"); err != nil || resp.Error() != nil {
		t.Fatalf("delete: %v %v", err, resp.Error())
	}
	// Created again through broker 2 once it no longer knows the name.
	var second [16]byte
	for deadline := time.Now().Add(20 * time.Second); ; {
		if _, code := metadataID(t, c2, "shared"); code == kerr.UnknownTopicOrPartition.Code {
			second = createV7(t, c2, "shared", 1)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("broker 2 still knows the deleted topic")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if second == first {
		t.Fatalf("re-created topic kept its id %x", first)
	}
	sameID(c1, second)
	sameID(c2, second)
	for i, c := range []*rawConn{c1, c2} {
		if p := fetchV13(t, c, first, 0).Partitions[0]; p.ErrorCode != kerr.UnknownTopicID.Code {
			t.Errorf("broker %d: fetch by the old id: error %d, want UNKNOWN_TOPIC_ID", i+1, p.ErrorCode)
		}
	}
	// The deleted topic's offsets are gone from every group, whichever
	// broker coordinates it, and the new topic does not inherit them.
	for _, g := range groups {
		for deadline := time.Now().Add(20 * time.Second); ; {
			offs, err := adm.FetchOffsets(ctx, g)
			if err != nil || offs.Error() != nil {
				t.Fatalf("fetch offsets of %s: %v %v", g, err, offs.Error())
			}
			o, ok := offs.Lookup("shared", 0)
			if !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("group %s still has the deleted topic's offset %d", g, o.At)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestRecreatedTopicNotReadAcross: a franz-go consumer reading a topic
// that is deleted and auto-created again at once, by the consumer's own
// metadata requests as in issue 25, never gets the new incarnation's
// records at the old incarnation's offsets: it fetches by topic id
// (Fetch v13), the old id is refused, and franz-go, seeing a new id for
// the name, stops the topic until it is purged and added again, after
// which it reads the new incarnation from its start.
func TestRecreatedTopicNotReadAcross(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, 60*time.Second)
	adm := ts.admin(t)
	createTopics(t, ctx, adm, 1, nil, "reborn")
	prod := ts.client(t)
	produceValues(t, ctx, prod, "reborn", "old-0", "old-1", "old-2")

	cons := ts.client(t, kgo.ConsumeTopics("reborn"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AllowAutoTopicCreation(), kgo.FetchMaxWait(200*time.Millisecond))
	var got []string
	// poll consumes for d or until until holds, checked at least every
	// 100 ms: franz-go keeps UNKNOWN_TOPIC_ID to itself, so a poll of a
	// stopped topic returns nothing until its context ends.
	poll := func(d time.Duration, until func() bool) {
		t.Helper()
		for end := time.Now().Add(d); time.Now().Before(end) && !until(); {
			pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			fs := cons.PollFetches(pctx)
			cancel()
			fs.EachError(func(topic string, p int32, err error) {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("consume %s/%d: %v", topic, p, err)
				}
			})
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		}
	}
	poll(20*time.Second, func() bool { return len(got) == 3 })
	if fmt.Sprint(got) != "[old-0 old-1 old-2]" {
		t.Fatalf("consumed %q, want old-0 old-1 old-2", got)
	}

	if resp, err := adm.DeleteTopics(ctx, "reborn"); err != nil || resp.Error() != nil {
		t.Fatalf("delete: %v %v", err, resp.Error())
	}
	// The consumer's next metadata request creates the name again; wait
	// for that, then fill the new incarnation past the old offsets.
	poll(10*time.Second, func() bool {
		td, err := adm.ListTopics(ctx, "reborn")
		return err == nil && td["reborn"].Err == nil && td["reborn"].ID != kadm.TopicID{}
	})
	if td, err := adm.ListTopics(ctx, "reborn"); err != nil || td["reborn"].Err != nil {
		t.Fatalf("the consumer did not create the topic again: %v %v", err, td["reborn"].Err)
	}
	produceValues(t, ctx, prod, "reborn", "new-0", "new-1", "new-2", "new-3", "new-4", "new-5")

	// Long enough for many fetches and metadata refreshes: a consumer
	// fetching by name reads new-3.. at offset 3 within a second.
	got = nil
	poll(3*time.Second, func() bool { return false })
	for _, v := range got {
		if bytes.HasPrefix([]byte(v), []byte("new-")) {
			t.Fatalf("the old incarnation's consumer read the new one's records at its old offsets: %q", got)
		}
	}
	if len(got) != 0 {
		t.Fatalf("consumed %q after the deletion, want nothing", got)
	}

	// franz-go's documented recovery: purge and add the topic again.
	cons.PurgeTopicsFromClient("reborn")
	cons.AddConsumeTopics("reborn")
	poll(20*time.Second, func() bool { return len(got) == 6 })
	if fmt.Sprint(got) != "[new-0 new-1 new-2 new-3 new-4 new-5]" {
		t.Fatalf("after purge and re-adding, consumed %q, want new-0..new-5", got)
	}
}

// TestRecreatedTopicStartsWithoutOffsets: deleting a topic drops its
// consumer groups' committed offsets at once, as Kafka's
// onPartitionsDeleted, so a group consuming the topic created again
// under the name starts at its reset offset instead of resuming at the
// old topic's offset (which would skip the new topic's first records).
func TestRecreatedTopicStartsWithoutOffsets(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, 60*time.Second)
	adm := ts.admin(t)
	createTopics(t, ctx, adm, 1, nil, "again")
	prod := ts.client(t)
	produceValues(t, ctx, prod, "again", "old-0", "old-1", "old-2", "old-3", "old-4")

	// consume reads n records as group g from its committed offsets (else
	// the start), commits them and leaves.
	consume := func(n int) []string {
		t.Helper()
		cl := ts.client(t, kgo.ConsumerGroup("g"), kgo.ConsumeTopics("again"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		var got []string
		for len(got) < n && ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachError(func(topic string, p int32, err error) { t.Fatalf("consume %s/%d: %v", topic, p, err) })
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("commit: %v", err)
		}
		cl.Close()
		return got
	}
	if got := consume(5); fmt.Sprint(got) != "[old-0 old-1 old-2 old-3 old-4]" {
		t.Fatalf("consumed %q, want old-0..old-4", got)
	}
	committed := func() kadm.OffsetResponses {
		t.Helper()
		offs, err := adm.FetchOffsets(ctx, "g")
		if err != nil || offs.Error() != nil {
			t.Fatalf("fetch offsets: %v %v", err, offs.Error())
		}
		return offs
	}
	if o, ok := committed().Lookup("again", 0); !ok || o.At != 5 {
		t.Fatalf("committed offset %+v (found %v), want 5", o, ok)
	}

	if resp, err := adm.DeleteTopics(ctx, "again"); err != nil || resp.Error() != nil {
		t.Fatalf("delete: %v %v", err, resp.Error())
	}
	// Gone as soon as DeleteTopics answers, before any re-creation.
	if o, ok := committed().Lookup("again", 0); ok {
		t.Fatalf("the deleted topic's committed offset is still there: %+v", o)
	}
	createTopics(t, ctx, adm, 1, nil, "again")
	vals := []string{"new-0", "new-1", "new-2", "new-3", "new-4", "new-5", "new-6", "new-7"}
	produceValues(t, ctx, prod, "again", vals...)
	if got := consume(len(vals)); fmt.Sprint(got) != fmt.Sprint(vals) {
		t.Fatalf("group on the re-created topic consumed %q, want %q", got, vals)
	}
}
