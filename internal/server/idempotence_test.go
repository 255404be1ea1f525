package server

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// idemBatch builds a valid batch of n records from an idempotent producer.
func idemBatch(pid int64, epoch int16, seq int32, n int) []byte {
	raw := makeBatch(n, 10)
	binary.BigEndian.PutUint64(raw[43:], uint64(pid))
	binary.BigEndian.PutUint16(raw[51:], uint16(epoch))
	binary.BigEndian.PutUint32(raw[53:], uint32(seq))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

func (c *rawConn) initProducerID(txn *string) *kmsg.InitProducerIDResponse {
	c.t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.SetVersion(4)
	req.TransactionalID = txn
	req.TransactionTimeoutMillis = 60_000
	req.ProducerID, req.ProducerEpoch = -1, -1
	return c.roundTrip(req, -1).(*kmsg.InitProducerIDResponse)
}

// countRecords fetches a whole partition and returns its records' offsets.
func countRecords(t *testing.T, ts *testServer, topic string, partition int32) []int64 {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	cl := ts.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().AtStart()}}))
	end, err := ts.admin(t).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	o, _ := end.Lookup(topic, partition)
	var offs []int64
	for int64(len(offs)) < o.Offset {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("fetch %s/%d: %v", topic, partition, err)
		}
		fs.EachRecord(func(r *kgo.Record) { offs = append(offs, r.Offset) })
	}
	return offs
}

func TestIdempotentProduce(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir, nil)
	ctx := testCtx(t, time.Minute)
	createTopics(t, ctx, ts.admin(t), 2, nil, "idem")
	c := dialRaw(t, ts.addr)

	first := c.initProducerID(nil)
	second := c.initProducerID(nil)
	if first.ErrorCode != 0 || second.ErrorCode != 0 || first.ProducerID < 0 || first.ProducerEpoch != 0 || second.ProducerID == first.ProducerID {
		t.Fatalf("InitProducerId: %+v then %+v; want two distinct ids at epoch 0", first, second)
	}
	pid := first.ProducerID

	// Replaying the exact bytes of a request writes nothing the second time
	// and answers with the original offset.
	c.corr++
	frame := c.fmtr.AppendRequest(nil, produceReq("idem", 0, -1, idemBatch(pid, 0, 0, 3)), c.corr)
	var bases []int64
	for range 2 {
		if err := c.write(frame); err != nil {
			t.Fatal(err)
		}
		body, err := c.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(9)
		if err := resp.ReadFrom(body[5:]); err != nil { // correlation id + header tags
			t.Fatal(err)
		}
		p := resp.Topics[0].Partitions[0]
		wantCode(t, "produce (replayed bytes)", p.ErrorCode, nil)
		bases = append(bases, p.BaseOffset)
	}
	if bases[0] != 0 || bases[1] != 0 {
		t.Fatalf("original and replay got base offsets %v, want [0 0]", bases)
	}

	// Five batches in flight, then all five retried: every retry is a
	// duplicate with its original offset.
	var reqs []int32
	for i := range 5 {
		reqs = append(reqs, c.send(produceReq("idem", 0, -1, idemBatch(pid, 0, int32(3+2*i), 2))))
	}
	for range reqs {
		if _, err := c.readFrame(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		p := c.produce("idem", 0, -1, idemBatch(pid, 0, int32(3+2*i), 2))
		wantCode(t, "retry of in-flight batch", p.ErrorCode, nil)
		if want := int64(3 + 2*i); p.BaseOffset != want {
			t.Fatalf("retry %d: base offset %d, want %d", i, p.BaseOffset, want)
		}
	}

	// A gap in the sequence, a stale epoch, a transactional batch in a
	// request without a transactional id, and two batches in one
	// partition are refused.
	p := c.produce("idem", 0, -1, idemBatch(pid, 0, 20, 1))
	wantCode(t, "sequence gap", p.ErrorCode, kerr.OutOfOrderSequenceNumber)
	if p := c.produce("idem", 1, -1, idemBatch(second.ProducerID, 3, 0, 1)); p.ErrorCode != 0 {
		t.Fatalf("epoch 3 of a new producer: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	p = c.produce("idem", 1, -1, idemBatch(second.ProducerID, 2, 1, 1))
	wantCode(t, "stale epoch", p.ErrorCode, kerr.InvalidProducerEpoch)
	p = c.produce("idem", 1, -1, idemBatch(second.ProducerID, 4, 5, 1))
	wantCode(t, "new epoch not at sequence 0", p.ErrorCode, kerr.OutOfOrderSequenceNumber)
	txnBatch := idemBatch(second.ProducerID, 3, 1, 1)
	txnBatch[22] |= 0x10 // attributes low byte: transactional
	binary.BigEndian.PutUint32(txnBatch[17:], crc32.Checksum(txnBatch[21:], crc32.MakeTable(crc32.Castagnoli)))
	p = c.produce("idem", 1, -1, txnBatch)
	wantCode(t, "transactional batch without a transactional id", p.ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	two := append(idemBatch(-1, -1, -1, 1), idemBatch(-1, -1, -1, 1)...)
	p = c.produce("idem", 1, -1, two)
	wantCode(t, "two batches in one partition", p.ErrorCode, kerr.InvalidRecord)

	if got := countRecords(t, ts, "idem", 0); len(got) != 13 {
		t.Fatalf("partition 0 holds %d records, want 13 (3 + 5x2, no duplicates)", len(got))
	}

	// After a restart the state comes back: the retries are still
	// duplicates and the sequence continues.
	ts.close()
	ts = startServer(t, dir, nil)
	c = dialRaw(t, ts.addr)
	p = c.produce("idem", 0, -1, idemBatch(pid, 0, 11, 2))
	wantCode(t, "retry after restart", p.ErrorCode, nil)
	if p.BaseOffset != 11 {
		t.Fatalf("retry after restart: base offset %d, want 11 (the original)", p.BaseOffset)
	}
	p = c.produce("idem", 0, -1, idemBatch(pid, 0, 13, 1))
	wantCode(t, "next sequence after restart", p.ErrorCode, nil)
	if p.BaseOffset != 13 {
		t.Fatalf("next batch after restart: base offset %d, want 13", p.BaseOffset)
	}
	p = c.produce("idem", 0, -1, idemBatch(pid, 0, 20, 1))
	wantCode(t, "gap after restart", p.ErrorCode, kerr.OutOfOrderSequenceNumber)
	if got := countRecords(t, ts, "idem", 0); len(got) != 14 {
		t.Fatalf("after restart partition 0 holds %d records, want 14", len(got))
	}
}

// TestIdempotentClient drives franz-go's default (idempotent) producer.
func TestIdempotentClient(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, time.Minute)
	createTopics(t, ctx, ts.admin(t), 4, nil, "idem-client")
	cl := ts.client(t, kgo.DefaultProduceTopic("idem-client"))
	const n = 5000
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Value: []byte{byte(i)}}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	total := 0
	for p := range int32(4) {
		total += len(countRecords(t, ts, "idem-client", p))
	}
	if total != n {
		t.Fatalf("%d records stored, want %d", total, n)
	}
}

// TestDescribeProducers: kadm's DescribeProducers (KIP-664) lists, per
// partition, the idempotent producer that wrote to it, with its epoch and
// last sequence; a partition it never wrote to lists none, and a
// partition that does not exist gets UNKNOWN_TOPIC_OR_PARTITION.
func TestDescribeProducers(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, time.Minute)
	cl := ts.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	createTopics(t, ctx, adm, 3, nil, "described")
	for p, n := range map[int32]int{0: 5, 1: 3} {
		for range n {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "described", Partition: p, Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	id, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	described, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"described": {0: {}, 1: {}, 2: {}}})
	if err != nil {
		t.Fatal(err)
	}
	parts := described["described"].Partitions
	for p, lastSeq := range map[int32]int32{0: 4, 1: 2} {
		dp := parts[p]
		prod, ok := dp.ActiveProducers[id]
		if dp.Err != nil || len(dp.ActiveProducers) != 1 || !ok || prod.ProducerEpoch != epoch || prod.LastSequence != lastSeq || prod.LastTimestamp <= 0 {
			t.Errorf("partition %d: %+v (err %v); want producer %d epoch %d at sequence %d", p, dp.ActiveProducers, dp.Err, id, epoch, lastSeq)
		}
	}
	if dp := parts[2]; dp.Err != nil || len(dp.ActiveProducers) != 0 {
		t.Errorf("partition 2, never written: %+v (err %v); want no producer", dp.ActiveProducers, dp.Err)
	}
	// Straight to the broker: the client would refuse a partition its
	// metadata does not know before sending.
	req := kmsg.NewPtrDescribeProducersRequest()
	req.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: "described", Partitions: []int32{7}}}
	resp, err := cl.Broker(int(ts.cfg.NodeID)).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.(*kmsg.DescribeProducersResponse).Topics[0].Partitions[0]; p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("partition 7, which does not exist: %v, want UNKNOWN_TOPIC_OR_PARTITION", kerr.ErrorForCode(p.ErrorCode))
	}
}
