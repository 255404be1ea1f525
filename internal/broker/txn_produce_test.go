package broker

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/storage"
)

// txnProduce drives handleProduce of one broker with transactional
// requests, as a client's reader goroutine would.
type txnProduce struct {
	t *testing.T
	b *Broker
	c *conn
}

func newTxnProduce(t *testing.T) *txnProduce {
	b := fuzzBroker(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := &conn{b: b, ctx: ctx, cancel: cancel, log: b.log, api: "Produce", auth: authState{principal: "User:ANONYMOUS", host: "127.0.0.1"}}
	return &txnProduce{t: t, b: b, c: c}
}

// produce sends one batch to fuzz/0 with acks=-1, as transactional id
// txnID (nil: none), and returns the partition's answer.
func (p *txnProduce) produce(txnID *string, raw []byte) kmsg.ProduceResponseTopicPartition {
	p.t.Helper()
	return p.produceV(9, txnID, raw)
}

// produceV is produce at a request version.
func (p *txnProduce) produceV(version int16, txnID *string, raw []byte) kmsg.ProduceResponseTopicPartition {
	p.t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	req.Acks, req.TimeoutMillis, req.TransactionID = -1, 5000, txnID
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "fuzz", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: raw}}}}
	respond := p.b.handleProduce(p.c, header{key: kmsg.Produce.Int16(), version: version, clientID: "txn"}, req)
	return respond().(*kmsg.ProduceResponse).Topics[0].Partitions[0]
}

func (p *txnProduce) marker(pid int64, epoch int16, commit bool) {
	p.t.Helper()
	top := p.b.store.Topic("fuzz")
	done := make(chan error, 1)
	p.b.store.AppendMarker(top, top.Logs[0], storage.Marker{ProducerID: pid, Epoch: epoch, Commit: commit}, func(_ int64, err error) { done <- err })
	if err := <-done; err != nil {
		p.t.Fatal(err)
	}
}

func txnRecords(pid int64, epoch int16, seq int32) []byte {
	return batch.BuildTxn([]batch.KV{{Key: []byte("k"), Value: []byte("v")}}, time.Now().UnixMilli(), pid, epoch, seq)
}

func wantProduceCode(t *testing.T, what string, p kmsg.ProduceResponseTopicPartition, want *kerr.Error) {
	t.Helper()
	var code int16
	if want != nil {
		code = want.Code
	}
	if p.ErrorCode != code {
		t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(p.ErrorCode), kerr.ErrorForCode(code))
	}
}

type verifyCall struct {
	txnID string
	pid   int64
	epoch int16
	topic string
	part  int32
}

// TestProduceTransactional: the partition-level rules of transactional
// produce, and the KIP-890 part 1 verification hook: asked for the first
// batch of a transaction only, its code answered instead of appending,
// and a batch whose transaction ended during the verification refused.
func TestProduceTransactional(t *testing.T) {
	p := newTxnProduce(t)
	id := "app-1"
	var calls []verifyCall
	answer := kerr.InvalidTxnState.Code
	var during func() // run inside the hook, as the coordinator acting meanwhile
	p.b.txnVerify = func(txnID string, pid int64, epoch int16, topic string, part int32, _ bool) int16 {
		calls = append(calls, verifyCall{txnID, pid, epoch, topic, part})
		if during != nil {
			during()
			during = nil
		}
		return answer
	}
	l := p.b.store.Topic("fuzz").Logs[0]

	wantProduceCode(t, "not in the transaction", p.produce(&id, txnRecords(7, 0, 0)), kerr.InvalidTxnState)
	if want := (verifyCall{"app-1", 7, 0, "fuzz", 0}); len(calls) != 1 || calls[0] != want {
		t.Fatalf("verification calls %+v, want [%+v]", calls, want)
	}
	if _, hw := l.Offsets(); hw != 0 {
		t.Fatalf("an unverified batch was appended (HW %d)", hw)
	}
	answer = 0
	wantProduceCode(t, "verified", p.produce(&id, txnRecords(7, 0, 0)), nil)
	wantProduceCode(t, "inside the transaction", p.produce(&id, txnRecords(7, 0, 1)), nil)
	if len(calls) != 2 {
		t.Fatalf("%d verification calls, want 2: a transaction's later batches need none", len(calls))
	}
	if lso, ok := l.LSO(), l.OngoingTxns(); lso != 0 || len(ok) != 1 {
		t.Fatalf("LSO %d, ongoing %v: want the transaction open from 0", lso, ok)
	}
	// A plain batch of the producer inside its transaction.
	plain := batch.BuildTxn([]batch.KV{{Key: []byte("k")}}, time.Now().UnixMilli(), 7, 0, 2)
	plain[22] &^= 0x10
	binary.BigEndian.PutUint32(plain[17:], crc32.Checksum(plain[21:], crc32.MakeTable(crc32.Castagnoli)))
	wantProduceCode(t, "idempotent batch in a transaction", p.produce(&id, plain), kerr.InvalidTxnState)
	wantProduceCode(t, "sequence gap in a transaction", p.produce(&id, txnRecords(7, 0, 5)), kerr.OutOfOrderSequenceNumber)

	// The coordinator ends the transaction while the next one's first
	// batch is being verified: the batch must not open a transaction.
	p.marker(7, 0, true)
	during = func() { p.marker(7, 0, false) }
	wantProduceCode(t, "transaction ended during verification", p.produce(&id, txnRecords(7, 0, 2)), kerr.InvalidTxnState)
	if got := l.OngoingTxns(); len(got) != 0 {
		t.Fatalf("a late batch opened a transaction: %v", got)
	}
	wantProduceCode(t, "verified again", p.produce(&id, txnRecords(7, 0, 2)), nil)

	// Fenced: the coordinator aborts with a bumped epoch; the zombie's
	// batches are refused.
	p.marker(7, 1, false)
	wantProduceCode(t, "zombie epoch", p.produce(&id, txnRecords(7, 0, 3)), kerr.InvalidProducerEpoch)

	wantProduceCode(t, "no producer id", p.produce(&id, txnRecords(-1, -1, -1)), kerr.InvalidRecord)
	wantProduceCode(t, "no transactional id", p.produce(nil, txnRecords(8, 0, 0)), kerr.TransactionalIDAuthorizationFailed)
	if _, ok := l.TxnGuard(8, 0); ok {
		t.Fatal("a refused batch opened a transaction")
	}
}

// TestProduceAddsAfterLastTransaction: with transaction version 2
// (Produce v12) a producer's next transaction starts as soon as EndTxn
// answered, and adding its first partition waits while the coordinator
// writes the last one's markers. The abort marker landing during that
// wait must not refuse the batch (it did: INVALID_TXN_STATE on the first
// record of a transaction after an aborted one, found by vigil
// scorecard); a marker that ends the new transaction itself carries a
// bumped epoch and still refuses it.
func TestProduceAddsAfterLastTransaction(t *testing.T) {
	p := newTxnProduce(t)
	id := "app-2"
	var adds []bool
	var during func()
	p.b.txnVerify = func(_ string, _ int64, _ int16, _ string, _ int32, add bool) int16 {
		adds = append(adds, add)
		if during != nil {
			during()
			during = nil
		}
		return 0
	}
	l := p.b.store.Topic("fuzz").Logs[0]
	tv2Marker := func(epoch int16, commit bool) {
		t.Helper()
		done := make(chan error, 1)
		top := p.b.store.Topic("fuzz")
		p.b.store.AppendMarker(top, top.Logs[0], storage.Marker{ProducerID: 9, Epoch: epoch, Commit: commit, TransactionVersion: 2},
			func(_ int64, err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	wantProduceCode(t, "first transaction", p.produceV(12, &id, txnRecords(9, 0, 0)), nil)
	// EndTxn(abort) answered; the next transaction's first batch arrives
	// while the abort marker (epoch bumped to 1) is being written.
	during = func() { tv2Marker(1, false) }
	wantProduceCode(t, "next transaction, marker written during the add", p.produceV(12, &id, txnRecords(9, 1, 0)), nil)
	if got := l.OngoingTxns(); len(got) != 1 {
		t.Fatalf("ongoing transactions %v: want the new one open", got)
	}
	tv2Marker(2, true)
	// The coordinator ends the transaction being added (a timeout, a new
	// producer instance) before the batch is appended: its marker's
	// epoch fences the batch.
	during = func() { tv2Marker(3, false) }
	wantProduceCode(t, "transaction ended during the add", p.produceV(12, &id, txnRecords(9, 2, 0)), kerr.InvalidProducerEpoch)
	if got := l.OngoingTxns(); len(got) != 0 {
		t.Fatalf("a fenced batch opened a transaction: %v", got)
	}
	if len(adds) != 3 || !adds[0] || !adds[1] || !adds[2] {
		t.Fatalf("coordinator calls %v: want three adds (Produce v12)", adds)
	}
}

// TestVerificationAddsNoAllocations: a plain produce allocates as much
// with a verification hook set as without.
func TestVerificationAddsNoAllocations(t *testing.T) {
	count := func(hook bool) float64 {
		p := newProduceBench(t, "none")
		if hook {
			p.b.txnVerify = func(string, int64, int16, string, int32, bool) int16 { return 0 }
		}
		bufs := make([][]byte, 0, 256)
		for range 256 {
			bufs = append(bufs, make([]byte, len(p.raw)))
		}
		i := 0
		p.run(bufs[len(bufs)-1])
		return testing.AllocsPerRun(200, func() {
			p.run(bufs[i])
			i++
		})
	}
	if with, without := count(true), count(false); with != without {
		t.Fatalf("plain produce: %v allocations with a verification hook, %v without", with, without)
	}
}
