package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// createBurst asks for n topics of two partitions each in one CreateTopics
// at version v and returns the response.
func (c *rawConn) createBurst(v int16, prefix string, n int) *kmsg.CreateTopicsResponse {
	c.t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = v
	req.TimeoutMillis = 10_000
	for i := range n {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = fmt.Sprintf("%s-%02d", prefix, i), 2, 1
		req.Topics = append(req.Topics, rt)
	}
	return c.roundTrip(req, -1).(*kmsg.CreateTopicsResponse)
}

// TestControllerMutationQuota: controller_mutation_rate (KIP-599) counts
// the partitions a client creates or deletes, in Kafka's token bucket
// (a burst of 11 s worth, then the rate); a strict version refuses the
// topics asked for once it is exhausted, an old one is accepted and
// throttled.
func TestControllerMutationQuota(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, time.Minute)
	adm := ts.admin(t)

	var entries []kadm.AlterClientQuotaEntry
	for _, cq := range []struct {
		client string
		rate   float64
	}{{"strict", 2}, {"permissive", 2}, {"deleter", 1}, {"grower", 1}, {"validator", 1}} {
		name := cq.client
		entries = append(entries, kadm.AlterClientQuotaEntry{
			Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: &name}},
			Ops:    []kadm.AlterClientQuotaOp{{Key: "controller_mutation_rate", Value: cq.rate}},
		})
	}
	res, err := adm.AlterClientQuotas(ctx, entries)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("alter %v: %v %s", r.Entity, r.Err, r.ErrMessage)
		}
	}
	// An ip entity has only connection_creation_rate.
	addr := "10.0.0.1"
	res, err = adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "ip", Name: &addr}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "controller_mutation_rate", Value: 2}},
	}})
	if err != nil || res[0].Err != kerr.InvalidRequest {
		t.Fatalf("controller_mutation_rate on an ip: %v %+v, want INVALID_REQUEST", err, res)
	}
	strict := "strict"
	desc, err := adm.DescribeClientQuotas(ctx, true, []kadm.DescribeClientQuotaComponent{{Type: "client-id", MatchName: &strict, MatchType: 0}})
	if err != nil || len(desc) != 1 || len(desc[0].Values) != 1 || desc[0].Values[0].Key != "controller_mutation_rate" || desc[0].Values[0].Value != 2 {
		t.Fatalf("describe strict: %v %+v", err, desc)
	}

	// 2/s: a burst of 22 partitions is credited. 15 topics of 2: the first
	// 11 use it up, the 12th is accepted on the last credit (Kafka checks
	// before it records), the rest are refused. A slow machine may have
	// earned a topic or two back meanwhile, so the count is not exact.
	resp := dialRaw(t, ts.addr).as("strict").createBurst(7, "strict", 15)
	accepted := 0
	for i, st := range resp.Topics {
		switch {
		case st.ErrorCode == 0 && accepted == i:
			accepted++
		case st.ErrorCode != kerr.ThrottlingQuotaExceeded.Code || st.ErrorMessage == nil:
			t.Fatalf("v7 topic %d (%d accepted before): %v %v, want accepted up to the quota, then THROTTLING_QUOTA_EXCEEDED", i, accepted, kerr.ErrorForCode(st.ErrorCode), st.ErrorMessage)
		}
	}
	if accepted < 12 || accepted > 14 {
		t.Fatalf("v7: %d of 15 topics accepted, want 12 (or a little more if slow)", accepted)
	}
	if resp.ThrottleMillis <= 0 || resp.ThrottleMillis > 1000 {
		t.Fatalf("v7 throttle %d ms, want the time to earn the overdraft (2 partitions at 2/s) back", resp.ThrottleMillis)
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	created := 0
	for _, td := range topics {
		if len(td.Topic) > 7 && td.Topic[:7] == "strict-" {
			created++
		}
	}
	if created != accepted {
		t.Fatalf("%d strict topics exist, %d were answered as created", created, accepted)
	}

	// Before v6 the client cannot know the error: all are created, and
	// the response is throttled for the overdraft (8 partitions at 2/s).
	resp = dialRaw(t, ts.addr).as("permissive").createBurst(5, "perm", 15)
	for i, st := range resp.Topics {
		if st.ErrorCode != 0 {
			t.Fatalf("v5 topic %d: %v, want created", i, kerr.ErrorForCode(st.ErrorCode))
		}
	}
	if resp.ThrottleMillis < 2000 || resp.ThrottleMillis > 4000 {
		t.Fatalf("v5 throttle %d ms, want about 4000", resp.ThrottleMillis)
	}

	// A client without the quota is not metered.
	resp = dialRaw(t, ts.addr).as("free").createBurst(7, "free", 15)
	for i, st := range resp.Topics {
		if st.ErrorCode != 0 {
			t.Fatalf("unquoted client's topic %d: %v", i, kerr.ErrorForCode(st.ErrorCode))
		}
	}
	if resp.ThrottleMillis != 0 {
		t.Fatalf("unquoted client throttled %d ms", resp.ThrottleMillis)
	}

	// A validate-only request is counted too, as on Kafka's KRaft
	// controller: 12 partitions validated overdraw the 11 of credit.
	vc := dialRaw(t, ts.addr).as("validator")
	for i, want := range []int16{0, kerr.ThrottlingQuotaExceeded.Code} {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Version, req.ValidateOnly, req.TimeoutMillis = 7, true, 10_000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = fmt.Sprintf("validated-%d", i), 12, 1
		req.Topics = append(req.Topics, rt)
		vr := vc.roundTrip(req, -1).(*kmsg.CreateTopicsResponse)
		if got := vr.Topics[0].ErrorCode; got != want {
			t.Fatalf("validate-only request %d: %v, want %v", i, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
		}
	}

	// DeleteTopics counts the deleted topic's partitions: at 1/s (11 of
	// credit) a 12-partition topic is deleted, overdrawing the bucket, and
	// the next topic (one partition) is refused.
	createTopics(t, ctx, adm, 12, nil, "big")
	createTopics(t, ctx, adm, 1, nil, "small")
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.Version = 5
	del.TimeoutMillis = 10_000
	del.TopicNames = []string{"big", "small"}
	dresp := dialRaw(t, ts.addr).as("deleter").roundTrip(del, -1).(*kmsg.DeleteTopicsResponse)
	if len(dresp.Topics) != 2 || dresp.Topics[0].ErrorCode != 0 || dresp.Topics[1].ErrorCode != kerr.ThrottlingQuotaExceeded.Code {
		t.Fatalf("delete big, small: %+v, want big deleted and small THROTTLING_QUOTA_EXCEEDED", dresp.Topics)
	}
	if dresp.ThrottleMillis <= 0 {
		t.Fatalf("delete throttle %d ms", dresp.ThrottleMillis)
	}

	// CreatePartitions counts the partitions added: 1 -> 13 takes 12 of
	// the 11 of credit, and the next topic's one more is refused.
	createTopics(t, ctx, adm, 1, nil, "grow-a", "grow-b")
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Version = 3
	cp.TimeoutMillis = 10_000
	for _, g := range []struct {
		topic string
		count int32
	}{{"grow-a", 13}, {"grow-b", 2}} {
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = g.topic, g.count
		cp.Topics = append(cp.Topics, rt)
	}
	cresp := dialRaw(t, ts.addr).as("grower").roundTrip(cp, -1).(*kmsg.CreatePartitionsResponse)
	if len(cresp.Topics) != 2 || cresp.Topics[0].ErrorCode != 0 || cresp.Topics[1].ErrorCode != kerr.ThrottlingQuotaExceeded.Code || cresp.ThrottleMillis <= 0 {
		t.Fatalf("create partitions: %+v throttle %d, want grow-a grown, grow-b THROTTLING_QUOTA_EXCEEDED, throttled", cresp.Topics, cresp.ThrottleMillis)
	}
	td, err := adm.ListTopics(ctx, "grow-a", "grow-b")
	if err != nil {
		t.Fatal(err)
	}
	if n, m := len(td["grow-a"].Partitions), len(td["grow-b"].Partitions); n != 13 || m != 1 {
		t.Fatalf("partitions after: grow-a %d, grow-b %d; want 13 and 1", n, m)
	}
}
