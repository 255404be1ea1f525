package server

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (c *rawConn) as(clientID string) *rawConn {
	c.fmtr = kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))
	return c
}

func (c *rawConn) produceThrottle(topic string, records []byte) int32 {
	c.t.Helper()
	resp := c.roundTrip(produceReq(topic, 0, -1, records), -1).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		c.t.Fatalf("produce: %v", kerr.ErrorForCode(code))
	}
	return resp.ThrottleMillis
}

func TestClientQuotas(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir, nil)
	ctx := testCtx(t, time.Minute)
	adm := ts.admin(t)
	createTopics(t, ctx, adm, 1, nil, "quoted")

	capped := "capped"
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: &capped}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 10_000}},
	}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("alter quotas: %v %+v", err, res)
	}
	for _, bad := range []kadm.AlterClientQuotaEntry{
		{Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: &capped}}, Ops: []kadm.AlterClientQuotaOp{{Key: "connection_creation_rate", Value: 10}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "ip", Name: &capped}}, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 10}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: &capped}}, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: -1}}},
	} {
		res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{bad})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Err != kerr.InvalidRequest || res[0].ErrMessage == "" {
			t.Errorf("alter %+v: %v %q, want INVALID_REQUEST with a message", bad.Ops, res[0].Err, res[0].ErrMessage)
		}
	}

	// Within the window's budget (10 s x 10 kB/s) no throttle; beyond it,
	// the response carries the time to get back under the rate.
	c := dialRaw(t, ts.addr).as("capped")
	if ms := c.produceThrottle("quoted", makeBatch(40, 1000)); ms != 0 {
		t.Fatalf("first 40 kB throttled %d ms", ms)
	}
	ms := c.produceThrottle("quoted", makeBatch(80, 1000)) // ~122 kB in the window: 1.2x the rate
	if ms < 1000 || ms > 11_000 {
		t.Fatalf("over quota: throttle %d ms, want a few seconds", ms)
	}
	// The connection stays muted meanwhile: the next request is only read
	// once the throttle time has passed (KIP-219).
	start := time.Now()
	c.apiVersionsOK()
	if waited := time.Since(start); waited < time.Duration(ms)*time.Millisecond*9/10 {
		t.Fatalf("next request answered after %v, during the %d ms throttle", waited, ms)
	}
	if ms := dialRaw(t, ts.addr).as("free").produceThrottle("quoted", makeBatch(60, 1000)); ms != 0 {
		t.Fatalf("client without quota throttled %d ms", ms)
	}

	// Fetches are metered against consumer_byte_rate the same way.
	reader := "slow-reader"
	if res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: &reader}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Value: 15_000}},
	}}); err != nil || res[0].Err != nil {
		t.Fatalf("alter consumer quota: %v %+v", err, res)
	}
	fr := kmsg.NewPtrFetchRequest()
	fr.SetVersion(12)
	fr.ReplicaID, fr.MaxBytes, fr.SessionEpoch = -1, 1<<20, -1
	fr.Topics = []kmsg.FetchRequestTopic{{Topic: "quoted", Partitions: []kmsg.FetchRequestTopicPartition{
		{Partition: 0, FetchOffset: 0, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1, LogStartOffset: -1}}}}
	rc := dialRaw(t, ts.addr).as(reader)
	fresp := rc.roundTrip(fr, -1).(*kmsg.FetchResponse)
	if got := len(fresp.Topics[0].Partitions[0].RecordBatches); got == 0 || fresp.ThrottleMillis <= 0 || fresp.ThrottleMillis > 11_000 {
		t.Fatalf("fetch of %d bytes (~1.2x a 15 kB/s quota over the window): throttle %d ms, want a few seconds", got, fresp.ThrottleMillis)
	}
	start = time.Now()
	rc.apiVersionsOK()
	if waited := time.Since(start); waited < time.Duration(fresp.ThrottleMillis)*time.Millisecond*9/10 {
		t.Fatalf("request after a throttled fetch answered after %v, during the %d ms throttle", waited, fresp.ThrottleMillis)
	}

	// Quotas survive a restart and are described.
	ts.close()
	ts = startServer(t, dir, nil)
	adm = ts.admin(t)
	ds, err := adm.DescribeClientQuotas(ctx, true, []kadm.DescribeClientQuotaComponent{{Type: "client-id", MatchName: &capped, MatchType: 0}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || len(ds[0].Values) != 1 || ds[0].Values[0].Key != "producer_byte_rate" || ds[0].Values[0].Value != 10_000 {
		t.Fatalf("describe after restart: %+v", ds)
	}
}

func (c *rawConn) metadataThrottle() int32 {
	c.t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	return c.roundTrip(req, -1).(*kmsg.MetadataResponse).ThrottleMillis
}

func TestRequestPercentageQuota(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, time.Minute)
	adm := ts.admin(t)
	busy := "busy"
	ent := kadm.ClientQuotaEntity{{Type: "client-id", Name: &busy}}
	for _, bad := range []float64{0, -10} {
		res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: ent, Ops: []kadm.AlterClientQuotaOp{{Key: "request_percentage", Value: bad}}}})
		if err != nil || res[0].Err != kerr.InvalidRequest {
			t.Fatalf("request_percentage=%v: %v %+v, want INVALID_REQUEST", bad, err, res)
		}
	}
	// 0.01% of a thread over the ten-second window: a millisecond of
	// handling, a few dozen metadata requests.
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: ent, Ops: []kadm.AlterClientQuotaOp{{Key: "request_percentage", Value: 0.01}}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("set request_percentage: %v %+v", err, res)
	}
	ds, err := adm.DescribeClientQuotas(ctx, true, []kadm.DescribeClientQuotaComponent{{Type: "client-id", MatchName: &busy}})
	if err != nil || len(ds) != 1 || ds[0].Values[0].Key != "request_percentage" || ds[0].Values[0].Value != 0.01 {
		t.Fatalf("describe: %v %+v", err, ds)
	}

	c := dialRaw(t, ts.addr).as(busy)
	var ms int32
	n := 0
	for ; n < 2000 && ms == 0; n++ {
		ms = c.metadataThrottle()
	}
	// Kafka bounds a request quota's throttle by one quota sample (1 s).
	if ms <= 0 || ms > 1000 {
		t.Fatalf("after %d metadata requests at 0.01%%: throttle %d ms, want (0, 1000]", n, ms)
	}
	t.Logf("throttled %d ms after %d metadata requests", ms, n)
	// The connection is muted meanwhile (KIP-219), as for byte rates.
	start := time.Now()
	c.apiVersionsOK()
	if waited := time.Since(start); waited < time.Duration(ms)*time.Millisecond*9/10 {
		t.Fatalf("next request answered after %v, during the %d ms throttle", waited, ms)
	}
	// A client without a quota is not throttled by as many requests.
	free := dialRaw(t, ts.addr).as("free")
	for i := range n + 50 {
		if ms := free.metadataThrottle(); ms != 0 {
			t.Fatalf("client without quota: request %d throttled %d ms", i, ms)
		}
	}
}
