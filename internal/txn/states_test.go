package txn

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// reach drives a new transactional id to state s through the API and
// returns what its producer then holds. A transaction is ended with
// transaction version 2 (EndTxn v5) when v2 is set. Prepare states are
// held there by blocking the markers.
func reach(ev *env, id string, s State, v2 bool) producerAt {
	ev.t.Helper()
	if s == none {
		return producerAt{-1, -1}
	}
	p := ev.init(id)
	switch s {
	case Empty:
		return p
	case Ongoing:
		ev.add(id, p, t1p0)
		return p
	case PrepareCommit, PrepareAbort:
		ev.add(id, p, t1p0)
		ev.mk.hold()
		p = ev.end(id, p, s == PrepareCommit, v2)
		ev.waitState(id, s)
		return p
	case CompleteCommit, CompleteAbort:
		ev.add(id, p, t1p0)
		p = ev.end(id, p, s == CompleteCommit, v2)
		ev.waitState(id, s)
		ev.waitIdle(id)
		return p
	}
	ev.t.Fatalf("cannot reach %v", s)
	return p
}

type op func(ev *env, id string, p producerAt) (producerAt, int16)

func initOp(expected bool) op {
	return func(ev *env, id string, p producerAt) (producerAt, int16) {
		pid, epoch := int64(-1), int16(-1)
		if expected {
			pid, epoch = p.pid, p.epoch
		}
		pid, epoch, code := ev.c.InitProducerID(ctx, id, 60000, pid, epoch)
		return producerAt{pid, epoch}, code
	}
}

func initWith(dpid int64, depoch int16) op {
	return func(ev *env, id string, p producerAt) (producerAt, int16) {
		pid, epoch, code := ev.c.InitProducerID(ctx, id, 60000, p.pid+dpid, p.epoch+depoch)
		return producerAt{pid, epoch}, code
	}
}

func addOp(dpid int64, depoch int16, parts ...TopicPartition) op {
	return func(ev *env, id string, p producerAt) (producerAt, int16) {
		return p, ev.c.AddPartitions(ctx, id, p.pid+dpid, p.epoch+depoch, parts)
	}
}

func endOp(commit, v2 bool, dpid int64, depoch int16) op {
	return func(ev *env, id string, p producerAt) (producerAt, int16) {
		pid, epoch, code := ev.c.EndTxn(ctx, id, p.pid+dpid, p.epoch+depoch, commit, v2)
		return producerAt{pid, epoch}, code
	}
}

func verifyOp(depoch int16, tp TopicPartition) op {
	return func(ev *env, id string, p producerAt) (producerAt, int16) {
		return p, ev.c.VerifyPartition(id, p.pid, p.epoch+depoch, tp)
	}
}

// same is the producer unchanged; bumped(n) its epoch n higher.
func same(p producerAt) producerAt { return p }
func bumped(n int16) func(producerAt) producerAt {
	return func(p producerAt) producerAt { return producerAt{p.pid, p.epoch + n} }
}
func noProducer(producerAt) producerAt { return producerAt{-1, -1} }

// TestStateMachine checks every request against every state it can meet,
// over a real engine, against the code and next state Kafka's coordinator
// gives (the kafka column names the TransactionCoordinatorTest case or the
// branch of TransactionCoordinator.scala). "retry" is the epoch before the
// last bump, "current" the producer's epoch.
func TestStateMachine(t *testing.T) {
	const (
		none_   = int16(0)
		ipim    = int16(49)  // INVALID_PRODUCER_ID_MAPPING
		its     = int16(48)  // INVALID_TXN_STATE
		fenced  = int16(90)  // PRODUCER_FENCED
		conc    = int16(51)  // CONCURRENT_TRANSACTIONS
		badReq  = int16(42)  // INVALID_REQUEST
		abortbl = int16(120) // TRANSACTION_ABORTABLE
	)
	if kerr.InvalidProducerIDMapping.Code != ipim || kerr.InvalidTxnState.Code != its || kerr.ProducerFenced.Code != fenced ||
		kerr.ConcurrentTransactions.Code != conc || kerr.InvalidRequest.Code != badReq || kerr.TransactionAbortable.Code != abortbl {
		t.Fatal("error code constants drifted from kerr")
	}
	rows := []struct {
		kafka string
		v2    bool // the producer ends transactions with EndTxn v5
		from  State
		op    op
		code  int16
		after State // none: the id is unknown
		want  func(producerAt) producerAt
	}{
		// InitProducerId.
		{"shouldInitPidWithEpochZeroForNewTransactionalId", false, none, initOp(false), none_, Empty, nil},
		{"shouldIncrementEpochAndUpdateMetadataOnHandleInitPidWhenExistingEmptyTransaction", false, Empty, initOp(false), none_, Empty, bumped(1)},
		{"shouldIncrementEpochAndUpdateMetadataOnHandleInitPidWhenExistingCompleteTransaction", false, CompleteCommit, initOp(false), none_, Empty, bumped(1)},
		{"shouldIncrementEpochAndUpdateMetadataOnHandleInitPidWhenExistingCompleteAbortTransaction", false, CompleteAbort, initOp(false), none_, Empty, bumped(1)},
		{"shouldRespondWithConcurrentTransactionsOnInitPidWhenInPrepareCommitState", false, PrepareCommit, initOp(false), conc, PrepareCommit, noProducer},
		{"shouldRespondWithConcurrentTransactionsOnInitPidWhenInPrepareAbortState", false, PrepareAbort, initOp(false), conc, PrepareAbort, noProducer},
		{"shouldAbortTransactionOnHandleInitPidWhenExistingTransactionInOngoingState", false, Ongoing, initOp(false), conc, CompleteAbort, noProducer},
		{"KIP-360 expected epoch matches: bump", false, Empty, initOp(true), none_, Empty, bumped(1)},
		{"KIP-360 the expected epoch was the last one: a retry of a bump, answered again", false, Empty, func(ev *env, id string, p producerAt) (producerAt, int16) {
			if _, code := initOp(true)(ev, id, p); code != 0 {
				return p, code
			}
			return initOp(true)(ev, id, p) // p is the epoch before that bump
		}, none_, Empty, bumped(1)},
		{"KIP-360 the expected epoch is neither the current nor the last", false, Empty, func(ev *env, id string, p producerAt) (producerAt, int16) {
			ev.init(id) // a new producer: the last epoch is forgotten
			ev.markRecords(id)
			return initOp(true)(ev, id, p)
		}, fenced, Empty, noProducer},
		{"KIP-360 expected producer id unknown", false, Empty, initWith(1000, 0), fenced, Empty, noProducer},
		{"KafkaApis: a producer id without an epoch", false, Empty, func(ev *env, id string, p producerAt) (producerAt, int16) {
			pid, epoch, code := ev.c.InitProducerID(ctx, id, 60000, p.pid, -1)
			return producerAt{pid, epoch}, code
		}, badReq, Empty, noProducer},
		{"validateTransactionTimeoutMs: above transaction.max.timeout.ms", false, none, func(ev *env, id string, p producerAt) (producerAt, int16) {
			pid, epoch, code := ev.c.InitProducerID(ctx, id, 15*60*1000+1, -1, -1)
			return producerAt{pid, epoch}, code
		}, int16(50), none, noProducer},
		{"validateTransactionTimeoutMs: zero", false, none, func(ev *env, id string, p producerAt) (producerAt, int16) {
			pid, epoch, code := ev.c.InitProducerID(ctx, id, 0, -1, -1)
			return producerAt{pid, epoch}, code
		}, int16(50), none, noProducer},
		// AddPartitionsToTxn.
		{"shouldRespondWithInvalidPidMappingOnAddPartitionsToTransactionWhenTransactionalIdNotPresent", false, none, addOp(0, 0, t1p0), ipim, none, nil},
		{"shouldRespondWithInvalidPidMappingOnAddPartitionsWhenPidDiffers", false, Ongoing, addOp(1, 0, t1p1), ipim, Ongoing, nil},
		{"shouldRespondWithProducerFencedOnAddPartitionsWhenEpochsAreDifferent", false, Ongoing, addOp(0, 1, t1p1), fenced, Ongoing, nil},
		{"shouldRespondWithConcurrentTransactionsOnAddPartitionsWhenStateIsPrepareCommit", false, PrepareCommit, addOp(0, 0, t1p1), conc, PrepareCommit, nil},
		{"shouldRespondWithConcurrentTransactionsOnAddPartitionsWhenStateIsPrepareAbort", false, PrepareAbort, addOp(0, 0, t1p1), conc, PrepareAbort, nil},
		{"shouldWriteTxnLogOnAddPartitionsWhenStateIsEmpty", false, Empty, addOp(0, 0, t1p1), none_, Ongoing, nil},
		{"shouldWriteTxnLogOnAddPartitionsWhenStateIsCompleteCommit", false, CompleteCommit, addOp(0, 0, t1p1), none_, Ongoing, nil},
		{"shouldWriteTxnLogOnAddPartitionsWhenStateIsCompleteAbort", false, CompleteAbort, addOp(0, 0, t1p1), none_, Ongoing, nil},
		{"shouldWriteTxnLogOnAddPartitionsWhenStateIsOngoing", false, Ongoing, addOp(0, 0, t1p1), none_, Ongoing, nil},
		{"shouldRespondWithErrorsNoneOnAddPartitionWhenOngoingAndPartitionsAreTheSame", false, Ongoing, addOp(0, 0, t1p0), none_, Ongoing, nil},
		{"AddPartitions after a v2 commit uses the bumped epoch", true, CompleteCommit, addOp(0, 0, t1p1), none_, Ongoing, nil},
		{"AddPartitions after a v2 commit with the old epoch", true, CompleteCommit, addOp(0, -1, t1p1), fenced, CompleteCommit, nil},
		// VerifyPartition (KIP-890 part 1).
		{"handleVerifyPartitionsInTransaction: in the transaction", false, Ongoing, verifyOp(0, t1p0), none_, Ongoing, nil},
		{"handleVerifyPartitionsInTransaction: not in it", false, Ongoing, verifyOp(0, t1p1), abortbl, Ongoing, nil},
		{"handleVerifyPartitionsInTransaction: no transaction", false, Empty, verifyOp(0, t1p0), abortbl, Empty, nil},
		{"handleVerifyPartitionsInTransaction: epoch", false, Ongoing, verifyOp(-1, t1p0), fenced, Ongoing, nil},
		{"handleVerifyPartitionsInTransaction: unknown id", false, none, verifyOp(0, t1p0), ipim, none, nil},
		{"handleVerifyPartitionsInTransaction: completing", false, PrepareCommit, verifyOp(0, t1p0), conc, PrepareCommit, nil},
		// EndTxn below v5 (endTransactionWithTV1).
		{"shouldRespondWithInvalidRequestOnEndTxnWhenTransactionalIdIsNull: unknown id", false, none, endOp(true, false, 0, 0), ipim, none, noProducer},
		{"shouldRespondWithInvalidPidMappingOnEndTxnWhenPidDosentMatchMapped", false, Ongoing, endOp(true, false, 1, 0), ipim, Ongoing, noProducer},
		{"shouldReplyWithProducerFencedOnEndTxnWhenEpochIsNotSameAsTransaction", false, Ongoing, endOp(true, false, 0, 1), fenced, Ongoing, noProducer},
		{"shouldReplyWithProducerFencedOnEndTxnWhenEpochIsOlder", false, Ongoing, endOp(true, false, 0, -1), fenced, Ongoing, noProducer},
		{"TestEndTxnRequestWhenEmptyTransactionStateForAbortInV1", false, Empty, endOp(false, false, 0, 0), its, Empty, noProducer},
		{"shouldReturnInvalidTxnRequestOnEndTxnRequestWhenStatusIsEmpty (commit)", false, Empty, endOp(true, false, 0, 0), its, Empty, noProducer},
		{"shouldReturnOkOnEndTxnWhenStatusIsCompleteCommitAndResultIsCommit", false, CompleteCommit, endOp(true, false, 0, 0), none_, CompleteCommit, noProducer},
		{"shouldReturnInvalidTxnRequestOnEndTxnRequestWhenStatusIsCompleteCommitAndResultIsNotCommit", false, CompleteCommit, endOp(false, false, 0, 0), its, CompleteCommit, noProducer},
		{"shouldReturnOkOnEndTxnWhenStatusIsCompleteAbortAndResultIsAbort", false, CompleteAbort, endOp(false, false, 0, 0), none_, CompleteAbort, noProducer},
		{"shouldReturnInvalidTxnRequestOnEndTxnRequestWhenStatusIsCompleteAbortAndResultIsNotAbort", false, CompleteAbort, endOp(true, false, 0, 0), its, CompleteAbort, noProducer},
		{"shouldReturnConcurrentTransactionsOnEndTxnRequestWhenStatusIsPrepareCommit", false, PrepareCommit, endOp(true, false, 0, 0), conc, PrepareCommit, noProducer},
		{"PrepareCommit, abort: the completion is pending (CONCURRENT before the state check)", false, PrepareCommit, endOp(false, false, 0, 0), conc, PrepareCommit, noProducer},
		{"shouldAppendPrepareCommitToLogOnEndTxnWhenStatusIsOngoingAndResultIsCommit", false, Ongoing, endOp(true, false, 0, 0), none_, CompleteCommit, noProducer},
		{"shouldAppendPrepareAbortToLogOnEndTxnWhenStatusIsOngoingAndResultIsAbort", false, Ongoing, endOp(false, false, 0, 0), none_, CompleteAbort, noProducer},
		// EndTxn v5 (transaction version 2, KIP-890 part 2).
		{"endTransaction TV2: Ongoing commit bumps the epoch", true, Ongoing, endOp(true, true, 0, 0), none_, CompleteCommit, bumped(1)},
		{"endTransaction TV2: Ongoing abort bumps the epoch", true, Ongoing, endOp(false, true, 0, 0), none_, CompleteAbort, bumped(1)},
		{"endTransaction TV2: Ongoing, older epoch", true, Ongoing, endOp(true, true, 0, -1), fenced, Ongoing, noProducer},
		{"endTransaction TV2: wrong producer id", true, Ongoing, endOp(true, true, 1, 0), ipim, Ongoing, noProducer},
		{"TestEndTxnRequestWhenEmptyTransactionStateForAbortInV2 (current)", true, Empty, endOp(false, true, 0, 0), none_, CompleteAbort, bumped(1)},
		{"TestEndTxnRequestWhenEmptyTransactionStateForAbortInV2 (retry)", true, Empty, endOp(false, true, 0, -1), fenced, Empty, noProducer},
		{"TestEndTxnRequestWhenEmptyTransactionStateForCommitInV2 (current)", true, Empty, endOp(true, true, 0, 0), its, Empty, noProducer},
		{"TestEndTxnRequestWhenEmptyTransactionStateForCommitInV2 (retry)", true, Empty, endOp(true, true, 0, -1), fenced, Empty, noProducer},
		{"TV2 table: CompleteCommit, commit retry: NONE", true, CompleteCommit, endOp(true, true, 0, -1), none_, CompleteCommit, same},
		{"shouldReturnInvalidTxnRequestOnEndTxnV2IfNotEndTxnV2Retry", true, CompleteCommit, endOp(true, true, 0, 0), its, CompleteCommit, noProducer},
		{"testEndTxnRequestWhenStatusIsCompleteCommitAndResultIsAbortInV2 (retry)", true, CompleteCommit, endOp(false, true, 0, -1), its, CompleteCommit, noProducer},
		{"testEndTxnRequestWhenStatusIsCompleteCommitAndResultIsAbortInV2 (current)", true, CompleteCommit, endOp(false, true, 0, 0), none_, CompleteAbort, bumped(1)},
		{"TV2 table: CompleteAbort, abort retry: NONE", true, CompleteAbort, endOp(false, true, 0, -1), none_, CompleteAbort, same},
		{"TV2 table: CompleteAbort, abort current: EB", true, CompleteAbort, endOp(false, true, 0, 0), none_, CompleteAbort, bumped(1)},
		{"TV2 table: CompleteAbort, commit retry: ITS", true, CompleteAbort, endOp(true, true, 0, -1), its, CompleteAbort, noProducer},
		{"TV2 table: CompleteAbort, commit current: ITS", true, CompleteAbort, endOp(true, true, 0, 0), its, CompleteAbort, noProducer},
		{"TV2: Complete, an epoch never handed out", true, CompleteCommit, endOp(true, true, 0, 1), fenced, CompleteCommit, noProducer},
		{"shouldReturnConcurrentTransactionsOnEndTxnRequestWhenStatusIsPrepareCommit (TV2 retry)", true, PrepareCommit, endOp(true, true, 0, -1), conc, PrepareCommit, noProducer},
		{"TV2: PrepareCommit, the bumped epoch is not a retry", true, PrepareCommit, endOp(true, true, 0, 0), fenced, PrepareCommit, noProducer},
		{"TV2: PrepareAbort, commit retry (pending completion)", true, PrepareAbort, endOp(true, true, 0, -1), conc, PrepareAbort, noProducer},
		// Empty transactional id.
		{"shouldRespondWithInvalidRequestOnInitPidWhenTransactionalIdIsEmpty", false, none, func(ev *env, _ string, p producerAt) (producerAt, int16) {
			pid, epoch, code := ev.c.InitProducerID(ctx, "", 60000, -1, -1)
			return producerAt{pid, epoch}, code
		}, badReq, none, noProducer},
		{"shouldRespondWithInvalidRequestAddPartitionsToTransactionWhenTransactionalIdIsEmpty", false, none, func(ev *env, _ string, p producerAt) (producerAt, int16) {
			return p, ev.c.AddPartitions(ctx, "", 1, 0, []TopicPartition{t1p0})
		}, badReq, none, nil},
		{"shouldRespondWithInvalidRequestOnEndTxnWhenTransactionalIdIsEmpty", false, none, func(ev *env, _ string, p producerAt) (producerAt, int16) {
			pid, epoch, code := ev.c.EndTxn(ctx, "", 1, 0, true, true)
			return producerAt{pid, epoch}, code
		}, badReq, none, noProducer},
	}
	for i, r := range rows {
		t.Run(fmt.Sprintf("%02d_%s", i, r.kafka), func(t *testing.T) {
			t.Parallel()
			ev := openEnv(t, t.TempDir(), testConfig(), newRecMarkers())
			id := fmt.Sprintf("txn-%d", i)
			p := reach(ev, id, r.from, r.v2)
			ev.markRecords(id)
			got, code := r.op(ev, id, p)
			if code != r.code {
				t.Fatalf("%s from %v: %s, want %s", r.kafka, r.from, codeName(code), codeName(r.code))
			}
			if r.want != nil {
				if want := r.want(p); got != want {
					t.Errorf("producer after: %+v, want %+v (before %+v)", got, want, p)
				}
			}
			if code != 0 && r.from != none && r.after == r.from && ev.recordsOf(id) != ev.marked {
				t.Errorf("a refused request appended to the state log")
			}
			if r.after == none {
				if d := ev.describe(id); d.ErrorCode != kerr.TransactionalIDNotFound.Code {
					t.Errorf("id exists after: %+v", d)
				}
				return
			}
			ev.waitState(id, r.after)
		})
	}
}

// markRecords notes the records of id's partition before a request.
func (ev *env) markRecords(id string) { ev.marked = ev.recordsOf(id) }

// recordsOf counts the records appended to id's state partition.
func (ev *env) recordsOf(id string) int {
	ev.c.mu.Lock()
	defer ev.c.mu.Unlock()
	return ev.c.parts[ev.c.partition(id)].records
}
