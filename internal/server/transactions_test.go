package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transactions end to end with franz-go: the producer's protocol
// (InitProducerId, AddPartitionsToTxn, EndTxn) against the coordinator,
// markers on every partition, read_committed consumers, offsets in
// transactions, and the error codes Kafka answers.

// readIsolated consumes topics from the start at an isolation level until it
// has n records, then a little longer to see nothing more comes.
func readIsolated(t *testing.T, ts *testServer, committed bool, n int, topics ...string) []*kgo.Record {
	t.Helper()
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	cl := ts.client(t, kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso))
	ctx := testCtx(t, 30*time.Second)
	var out []*kgo.Record
	quiet := time.Time{}
	for {
		pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
		if len(out) > n {
			t.Fatalf("read %d records, want %d", len(out), n)
		}
		if len(out) == n {
			if quiet.IsZero() {
				quiet = time.Now()
			} else if time.Since(quiet) > time.Second {
				return out
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("read %d records of %d", len(out), n)
		}
	}
}

func values(recs []*kgo.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Value))
	}
	slices.Sort(out)
	return out
}

func TestTransactionsFranzGo(t *testing.T) {
	ts := startServer(t, t.TempDir(), groupConfig)
	ctx := testCtx(t, time.Minute)
	createTopics(t, ctx, ts.admin(t), 2, nil, "tx-a", "tx-b")
	p := ts.client(t, kgo.TransactionalID("tx-franz"), kgo.DefaultProduceTopic("tx-a"))

	run := func(commit bool, prefix string) {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			topic := []string{"tx-a", "tx-b"}[i%2]
			r := &kgo.Record{Topic: topic, Partition: int32(i % 2), Value: fmt.Appendf(nil, "%s-%d", prefix, i)}
			if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce in a transaction: %v", err)
			}
		}
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end transaction (commit %v): %v", commit, err)
		}
	}
	run(true, "c1")
	run(false, "a1")
	run(true, "c2")

	committed := values(readIsolated(t, ts, true, 20, "tx-a", "tx-b"))
	for _, v := range committed {
		if v[0] != 'c' {
			t.Errorf("read_committed read %q, of an aborted transaction", v)
		}
	}
	if all := readIsolated(t, ts, false, 30, "tx-a", "tx-b"); len(all) != 30 {
		t.Errorf("read_uncommitted: %d records", len(all))
	}

	adm := ts.admin(t)
	ds, err := adm.DescribeTransactions(ctx, "tx-franz")
	if err != nil {
		t.Fatal(err)
	}
	// franz-go uses transaction version 2 (the broker finalizes
	// transaction.version 2): every ended transaction bumped the epoch.
	if d, ok := ds["tx-franz"]; !ok || d.State != "CompleteCommit" || d.ProducerEpoch != 3 {
		t.Errorf("DescribeTransactions: %+v", ds)
	}
	ls, err := adm.ListTransactions(ctx, nil, nil)
	if err != nil || len(ls) != 1 {
		t.Errorf("ListTransactions: %v %v", ls, err)
	}

	// A second producer with the same id fences the first.
	p2 := ts.client(t, kgo.TransactionalID("tx-franz"), kgo.DefaultProduceTopic("tx-a"))
	if err := p2.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p2.ProduceSync(ctx, &kgo.Record{Value: []byte("c-new")}).FirstErr(); err != nil {
		t.Fatalf("the new producer: %v", err)
	}
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	err = p.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie")}).FirstErr()
	if !errors.Is(err, kerr.InvalidProducerEpoch) && !errors.Is(err, kerr.ProducerFenced) {
		t.Errorf("the fenced producer's produce: %v, want INVALID_PRODUCER_EPOCH or PRODUCER_FENCED", err)
	}
	if err := p2.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("the new producer's commit: %v", err)
	}
	if got := values(readIsolated(t, ts, true, 21, "tx-a", "tx-b")); !slices.Contains(got, "c-new") || slices.Contains(got, "zombie") {
		t.Errorf("after the fence: %v", got)
	}
}

// TestTransactionsGroupSession: franz-go's GroupTransactSession copies a
// topic, consuming in a group and committing its offsets in the
// producer's transactions; the output holds every input record once.
func TestTransactionsGroupSession(t *testing.T) {
	ts := startServer(t, t.TempDir(), groupConfig)
	ctx := testCtx(t, 2*time.Minute)
	createTopics(t, ctx, ts.admin(t), 3, nil, "etl-in", "etl-out")
	in := ts.client(t, kgo.DefaultProduceTopic("etl-in"))
	const n = 300
	for i := range n {
		if err := in.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(ts.addr), kgo.TransactionalID("etl-1"), kgo.DefaultProduceTopic("etl-out"),
		kgo.ConsumerGroup("etl"), kgo.ConsumeTopics("etl-in"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	copied := 0
	for copied < n {
		fs := sess.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("poll: %v", err)
		}
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			sess.Produce(ctx, &kgo.Record{Value: append([]byte("out-"), r.Value...)}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce: %v", err)
				}
			})
		})
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			t.Fatalf("end: %v", err)
		}
		if committed {
			copied += fs.NumRecords()
		}
	}
	out := values(readIsolated(t, ts, true, n, "etl-out"))
	if len(slices.Compact(out)) != n {
		t.Errorf("output: %d distinct of %d", len(slices.Compact(out)), n)
	}
	offs, err := ts.admin(t).FetchOffsets(ctx, "etl")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum != n {
		t.Errorf("committed offsets sum to %d, want %d", sum, n)
	}
}

// TestTransactionErrors: Kafka's codes for requests out of the protocol.
func TestTransactionErrors(t *testing.T) {
	ts := startServer(t, t.TempDir(), groupConfig)
	ctx := testCtx(t, time.Minute)
	createTopics(t, ctx, ts.admin(t), 1, nil, "txe")
	c := dialRaw(t, ts.addr)
	id := "txe-1"

	end := func(pid int64, epoch int16, ver int16) int16 {
		r := kmsg.NewPtrEndTxnRequest()
		r.SetVersion(ver)
		r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit = id, pid, epoch, true
		return c.roundTrip(r, -1).(*kmsg.EndTxnResponse).ErrorCode
	}
	wantCode(t, "EndTxn of an unknown transactional id", end(5, 0, 3), kerr.InvalidProducerIDMapping)

	long := kmsg.NewPtrInitProducerIDRequest()
	long.SetVersion(4)
	long.TransactionalID, long.ProducerID, long.ProducerEpoch, long.TransactionTimeoutMillis = &id, -1, -1, int32(time.Hour/time.Millisecond)
	wantCode(t, "a timeout over transaction.max.timeout.ms", c.roundTrip(long, -1).(*kmsg.InitProducerIDResponse).ErrorCode, kerr.InvalidTransactionTimeout)

	r := c.initProducerID(&id)
	if r.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	pid := r.ProducerID
	wantCode(t, "EndTxn commit with no transaction", end(pid, 0, 3), kerr.InvalidTxnState)
	again := c.initProducerID(&id) // epoch 1 fences epoch 0
	if again.ProducerEpoch != 1 || again.ProducerID != pid {
		t.Fatalf("second InitProducerId: %+v", again)
	}
	wantCode(t, "EndTxn v3 at a fenced epoch", end(pid, 0, 3), kerr.ProducerFenced)
	wantCode(t, "EndTxn v1 at a fenced epoch (before PRODUCER_FENCED existed)", end(pid, 0, 1), kerr.InvalidProducerEpoch)

	// A transactional batch for a partition not in the transaction is
	// refused before it is appended.
	raw := idemBatch(pid, 1, 0, 1) // epoch 1: the current one
	raw[22] |= 0x10                // transactional
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	for _, v := range []struct {
		version int16
		want    *kerr.Error
	}{{9, kerr.InvalidTxnState}, {11, kerr.TransactionAbortable}} { // v11+ clients know TRANSACTION_ABORTABLE
		req := produceReq("txe", 0, -1, raw)
		req.SetVersion(v.version)
		req.TransactionID = &id
		resp := c.roundTrip(req, -1).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
		wantCode(t, fmt.Sprintf("produce v%d of a transactional batch before AddPartitionsToTxn", v.version), resp.ErrorCode, v.want)
	}
	if hw := hwOf(ts.srv.store.Topic("txe").Logs[0]); hw != 0 {
		t.Errorf("the refused batch was appended: high watermark %d", hw)
	}
	// Produce v12 (transaction version 2) adds the partition itself.
	req := produceReq("txe", 0, -1, raw)
	req.SetVersion(12)
	req.TransactionID = &id
	if code := c.roundTrip(req, -1).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce v12 of a transaction's first batch: %v", kerr.ErrorForCode(code))
	}
	dt := kmsg.NewPtrDescribeTransactionsRequest()
	dt.TransactionalIDs = []string{id}
	st := c.roundTrip(dt, -1).(*kmsg.DescribeTransactionsResponse).TransactionStates[0]
	if st.State != "Ongoing" || len(st.Topics) != 1 || st.Topics[0].Topic != "txe" {
		t.Errorf("after produce v12: %+v, want Ongoing with txe", st)
	}
}
