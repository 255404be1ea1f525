package server

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDescribeTopicPartitions checks KIP-966's DescribeTopicPartitions v0
// against Metadata over TCP: every topic walked a page at a time (down to
// one partition per page) describes exactly the partitions, leaders,
// epochs, replicas, topic ids and internal flags Metadata answers; a page
// filled at a topic's end points the cursor at the next topic's first
// partition; named topics that do not exist get their errors; a cursor
// whose topic is not named refuses the request.
func TestDescribeTopicPartitions(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, 30*time.Second)
	adm := kadm.NewClient(ts.client(t))
	createTopics(t, ctx, adm, 3, nil, "dtp-a")
	createTopics(t, ctx, adm, 2, nil, "dtp-b")
	createTopics(t, ctx, adm, 1, nil, "dtp-c")
	nc := dialBroker(t, ts.addr)

	dtp := func(limit int32, cursor *kmsg.DescribeTopicPartitionsRequestCursor, topics ...string) *kmsg.DescribeTopicPartitionsResponse {
		t.Helper()
		req := kmsg.NewPtrDescribeTopicPartitionsRequest()
		req.ResponsePartitionLimit, req.Cursor = limit, cursor
		for _, name := range topics {
			req.Topics = append(req.Topics, kmsg.DescribeTopicPartitionsRequestTopic{Topic: name})
		}
		return roundTrip(t, nc, req).(*kmsg.DescribeTopicPartitionsResponse)
	}
	// What Metadata says of every topic, as lines to compare.
	mdReq := kmsg.NewPtrMetadataRequest()
	mdReq.SetVersion(12)
	md := roundTrip(t, nc, mdReq).(*kmsg.MetadataResponse)
	var want []string
	for _, mt := range md.Topics {
		for _, p := range mt.Partitions {
			want = append(want, fmt.Sprintf("%s id=%x internal=%v p%d leader=%d epoch=%d replicas=%v isr=%v",
				*mt.Topic, mt.TopicID, mt.IsInternal, p.Partition, p.Leader, p.LeaderEpoch, p.Replicas, p.ISR))
		}
	}
	slices.Sort(want)

	for _, limit := range []int32{1, 2, 5, 2000} {
		var got []string
		var cursor *kmsg.DescribeTopicPartitionsRequestCursor
		pages := 0
		for {
			resp := dtp(limit, cursor)
			pages++
			n := 0
			for _, rt := range resp.Topics {
				if rt.ErrorCode != 0 {
					t.Fatalf("limit %d: topic %s: %v", limit, *rt.Topic, kerr.ErrorForCode(rt.ErrorCode))
				}
				if rt.AuthorizedOperations == -2147483648 {
					t.Errorf("limit %d: topic %s without its authorized operations", limit, *rt.Topic)
				}
				for _, p := range rt.Partitions {
					got = append(got, fmt.Sprintf("%s id=%x internal=%v p%d leader=%d epoch=%d replicas=%v isr=%v",
						*rt.Topic, rt.TopicID, rt.IsInternal, p.Partition, p.LeaderID, p.LeaderEpoch, p.Replicas, p.ISR))
					n++
				}
			}
			if n > int(limit) {
				t.Errorf("limit %d: a page of %d partitions", limit, n)
			}
			if resp.NextCursor == nil {
				break
			}
			cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: resp.NextCursor.Topic, Partition: resp.NextCursor.Partition}
			if pages > 1000 {
				t.Fatalf("limit %d: no end after %d pages", limit, pages)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("limit %d, %d pages: described\n%v\nMetadata says\n%v", limit, pages, got, want)
		}
		t.Logf("limit %d: %d partitions in %d pages", limit, len(got), pages)
	}

	// Named topics, three partitions per page: dtp-a fills the first page
	// exactly, so the cursor points at dtp-b's partition 0.
	resp := dtp(3, nil, "dtp-b", "dtp-a", "dtp-a")
	if len(resp.Topics) != 1 || *resp.Topics[0].Topic != "dtp-a" || len(resp.Topics[0].Partitions) != 3 ||
		resp.NextCursor == nil || resp.NextCursor.Topic != "dtp-b" || resp.NextCursor.Partition != 0 {
		t.Errorf("dtp-a and dtp-b, 3 per page: %s", describeSummary(resp))
	}
	// From the cursor (dtp-a, 2): one of dtp-a, then dtp-b cut after one.
	resp = dtp(2, &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "dtp-a", Partition: 2}, "dtp-a", "dtp-b")
	if got := describeSummary(resp); got != "dtp-a[2] dtp-b[0] next=dtp-b/1" {
		t.Errorf("from dtp-a/2, 2 per page: %s, want dtp-a[2] dtp-b[0] next=dtp-b/1", got)
	}
	// Missing and invalid names.
	resp = dtp(2000, nil, "dtp-missing", "bad/name", "dtp-c")
	if got := describeSummary(resp); got != "bad/name:INVALID_TOPIC_EXCEPTION dtp-c[0] dtp-missing:UNKNOWN_TOPIC_OR_PARTITION" {
		t.Errorf("missing and invalid names: %s", got)
	}
	// A cursor on a topic not named.
	resp = dtp(2000, &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "dtp-c"}, "dtp-a", "dtp-b")
	if got := describeSummary(resp); got != "dtp-a:INVALID_REQUEST dtp-b:INVALID_REQUEST" {
		t.Errorf("cursor on a topic not named: %s", got)
	}
}

// describeSummary is a response in one line: each topic with its error
// or its partitions, then the cursor.
func describeSummary(resp *kmsg.DescribeTopicPartitionsResponse) string {
	var s string
	for _, rt := range resp.Topics {
		if s != "" {
			s += " "
		}
		if rt.ErrorCode != 0 {
			s += *rt.Topic + ":" + kerr.ErrorForCode(rt.ErrorCode).(*kerr.Error).Message
			continue
		}
		var ps []int32
		for _, p := range rt.Partitions {
			ps = append(ps, p.Partition)
		}
		s += fmt.Sprintf("%s%v", *rt.Topic, ps)
	}
	if resp.NextCursor != nil {
		s += fmt.Sprintf(" next=%s/%d", resp.NextCursor.Topic, resp.NextCursor.Partition)
	}
	return s
}
