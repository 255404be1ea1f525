package txn

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
)

// result is an answer to a producer: a producer id and epoch with a code.
type result struct {
	pid   int64
	epoch int16
	code  int16
}

func fail(code int16) result { return result{noPID, noEpoch, code} }

// checkLocked answers what Kafka's TransactionStateManager answers before
// it finds an id's metadata: NOT_COORDINATOR for an id this coordinator
// does not serve (or no longer: it closed when its partitions moved),
// COORDINATOR_LOAD_IN_PROGRESS before Load finished.
func (c *Coordinator) checkLocked(txnID string) int16 {
	switch {
	case c.closed:
		return kerr.NotCoordinator.Code
	case !c.loaded:
		return kerr.CoordinatorLoadInProgress.Code
	case !c.owns(c.partition(txnID)):
		return kerr.NotCoordinator.Code
	}
	return 0
}

// await waits for the answer of an append. A caller that gives up (its
// request timed out, or the broker stops) gets COORDINATOR_NOT_AVAILABLE,
// Kafka's answer for an append that timed out; the transition still
// applies if the append becomes durable.
func await(ctx context.Context, ch <-chan result) result {
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		return fail(kerr.CoordinatorNotAvailable.Code)
	}
}

// nextPID reserves a producer id (never under c.mu: it may call the
// metadata store). Kafka answers its producer id manager's failure with
// that error; the retriable COORDINATOR_LOAD_IN_PROGRESS is what it
// answers when no block of ids is available yet.
func (c *Coordinator) nextPID(ctx context.Context) (int64, int16) {
	pid, err := c.ids.Next(ctx)
	if err != nil {
		c.log.Warn("cannot allocate a producer id for a transactional id", "err", err)
		return noPID, kerr.CoordinatorLoadInProgress.Code
	}
	return pid, 0
}

// InitProducerID is InitProducerId with a transactional id
// (TransactionCoordinator.handleInitProducerId): a new id gets a new
// producer id at epoch 0; a known one its epoch bumped (fencing any other
// producer with that id), or a new producer id once its epochs are
// exhausted. producerID and epoch are the ones the producer has (KIP-360),
// or -1 and -1. An ongoing transaction is aborted first, with an epoch
// bump: the answer is CONCURRENT_TRANSACTIONS until that abort is durable,
// and the producer retries. It returns once the new state is durable.
func (c *Coordinator) InitProducerID(ctx context.Context, txnID string, timeoutMs int32, producerID int64, epoch int16) (int64, int16, int16) {
	switch {
	case txnID == "":
		return noPID, noEpoch, kerr.InvalidRequest.Code
	case timeoutMs <= 0 || int64(timeoutMs) > c.cfg.MaxTimeout.Milliseconds():
		return noPID, noEpoch, kerr.InvalidTransactionTimeout.Code
	}
	// KafkaApis: both or neither of the producer id and epoch.
	hasExpected := producerID != noPID || epoch != noEpoch
	if hasExpected && (producerID == noPID || epoch == noEpoch) {
		return noPID, noEpoch, kerr.InvalidRequest.Code
	}
	ch := make(chan result, 1)
	reply := func(r result) { ch <- r }
	spare := noPID
	for {
		c.mu.Lock()
		need := c.initLocked(txnID, timeoutMs, producerID, epoch, hasExpected, spare, reply)
		c.mu.Unlock()
		if !need {
			break
		}
		var code int16
		if spare, code = c.nextPID(ctx); code != 0 {
			return noPID, noEpoch, code
		}
	}
	r := await(ctx, ch)
	return r.pid, r.epoch, r.code
}

// initLocked decides an InitProducerId; needPID asks the caller for a
// fresh producer id in spare and to call again (nothing changed).
func (c *Coordinator) initLocked(txnID string, timeoutMs int32, reqPID int64, reqEpoch int16, hasExpected bool, spare int64, reply func(result)) (needPID bool) {
	if code := c.checkLocked(txnID); code != 0 {
		reply(fail(code))
		return false
	}
	m := c.txns[txnID]
	if m == nil {
		if spare == noPID {
			return true
		}
		// In the cache before the append, as in Kafka.
		m = newMeta(txnID, spare, timeoutMs, c.nowMs())
		c.txns[txnID] = m
		spare = noPID
	}
	// Kafka's isValidProducerId: a producer that names its id keeps it
	// only if the entry is new (epoch -1), names the current id, or names
	// the previous one at an exhausted epoch (a retry of a rotation).
	valid := m.epoch == noEpoch || reqPID == m.pid || (reqPID == m.prevPID && epochExhausted(reqEpoch))
	switch {
	case m.pending != none:
		reply(fail(kerr.ConcurrentTransactions.Code))
		return false
	case hasExpected && !valid:
		reply(fail(kerr.ProducerFenced.Code))
		return false
	}
	switch m.state {
	case PrepareAbort, PrepareCommit:
		reply(fail(kerr.ConcurrentTransactions.Code))
	case CompleteAbort, CompleteCommit, Empty:
		var t *transit
		var err error
		if epochExhausted(m.epoch) && (!hasExpected || reqEpoch == m.epoch) {
			if spare == noPID {
				return true
			}
			t, err = m.prepareRotation(spare, timeoutMs, c.nowMs(), hasExpected)
		} else {
			var ok bool
			if t, ok, err = m.prepareIncrementEpoch(timeoutMs, reqEpoch, hasExpected, c.nowMs()); err == nil && !ok {
				reply(fail(kerr.ProducerFenced.Code))
				return false
			}
		}
		if err != nil {
			c.log.Error("InitProducerId", "err", err)
			reply(fail(kerr.UnknownServerError.Code))
			return false
		}
		c.appendTransitLocked(m, t, never, func(code int16) {
			if code != 0 {
				reply(fail(code))
				return
			}
			c.log.Info("initialized transactional id", "transactional_id", txnID, "producer_id", t.pid, "epoch", t.epoch,
				"partition", c.partition(txnID))
			reply(result{t.pid, t.epoch, 0})
		})
	case Ongoing:
		// Abort the ongoing transaction with a bumped epoch, which is never
		// handed out: the producer retries after CONCURRENT_TRANSACTIONS
		// and the epoch is bumped again (or the producer id rotated).
		return c.fenceLocked(m, spare, func(r result) {
			if r.code == 0 {
				r = fail(kerr.ConcurrentTransactions.Code)
			}
			reply(r)
		})
	default:
		c.log.Error("transactional id in an illegal state", "transactional_id", txnID, "state", m.state)
		reply(fail(kerr.UnknownServerError.Code))
	}
	return false
}

// fenceLocked aborts m's ongoing transaction after bumping its epoch,
// which fences the producer on the coordinator and, through the markers'
// epoch, on every partition of the transaction. With transaction version 2
// the abort bumps once more, and rotates the producer id when the epochs
// run out (needPID: the caller supplies one in spare and calls again).
func (c *Coordinator) fenceLocked(m *txnMeta, spare int64, reply func(result)) (needPID bool) {
	t, err := m.prepareFence()
	if err != nil {
		c.log.Error("fence producer", "err", err)
		reply(fail(kerr.UnknownServerError.Code))
		return false
	}
	needPID = c.endTxnLocked(m, t.pid, t.epoch, false, false, serverTV, spare, reply)
	if m.pending == PrepareEpochFence {
		// Nothing was appended (a producer id is needed first): the fence
		// is prepared again on the next call.
		m.pending = none
	}
	return needPID
}

// AddPartitions is AddPartitionsToTxn (and the implicit addition of
// KIP-890 part 2): the partitions join the producer's transaction, which
// starts if none was ongoing. It returns once that is durable.
func (c *Coordinator) AddPartitions(ctx context.Context, txnID string, pid int64, epoch int16, parts []TopicPartition) int16 {
	if txnID == "" {
		return kerr.InvalidRequest.Code
	}
	ch := make(chan result, 1)
	c.mu.Lock()
	c.addPartitionsLocked(txnID, pid, epoch, parts, func(r result) { ch <- r })
	c.mu.Unlock()
	return await(ctx, ch).code
}

func (c *Coordinator) addPartitionsLocked(txnID string, pid int64, epoch int16, parts []TopicPartition, reply func(result)) {
	if code := c.checkLocked(txnID); code != 0 {
		reply(fail(code))
		return
	}
	m := c.txns[txnID]
	switch {
	case m == nil || m.pid != pid:
		reply(fail(kerr.InvalidProducerIDMapping.Code))
		return
	case m.epoch != epoch:
		reply(fail(kerr.ProducerFenced.Code))
		return
	case m.pending != none, m.state == PrepareCommit, m.state == PrepareAbort:
		reply(fail(kerr.ConcurrentTransactions.Code))
		return
	case m.state == Ongoing && containsAll(m.parts, parts):
		// Already in the transaction: nothing to append.
		reply(result{code: 0})
		return
	}
	t, err := m.prepareAddPartitions(parts, c.nowMs())
	if err != nil {
		c.log.Error("AddPartitionsToTxn", "err", err)
		reply(fail(kerr.UnknownServerError.Code))
		return
	}
	c.appendTransitLocked(m, t, never, func(code int16) { reply(result{code: code}) })
}

func containsAll(s partSet, parts []TopicPartition) bool {
	for _, tp := range parts {
		if _, ok := s[tp]; !ok {
			return false
		}
	}
	return true
}

// OffsetsTopic is where a transaction's offsets go (AddOffsets adds its
// group's partition to the transaction).
const OffsetsTopic = "__consumer_offsets"

// AddOffsets is AddOffsetsToTxn: the group's __consumer_offsets partition
// joins the transaction, so the commit or abort marker reaches the
// offsets the transaction commits there.
func (c *Coordinator) AddOffsets(ctx context.Context, txnID string, pid int64, epoch int16, groupID string) int16 {
	if txnID == "" {
		return kerr.InvalidRequest.Code
	}
	if c.offsets == nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	p, ok := c.offsets(groupID)
	if !ok {
		return kerr.CoordinatorNotAvailable.Code
	}
	return c.AddPartitions(ctx, txnID, pid, epoch, []TopicPartition{{OffsetsTopic, p}})
}

// VerifyPartition is KIP-890 part 1's check (AddPartitionsToTxn v4+ with
// VerifyOnly), asked by a partition leader before it appends a producer's
// first transactional batch: 0 if tp is in the producer's ongoing
// transaction. As Kafka's handleVerifyPartitionsInTransaction: a pending
// transition is not looked at, and a partition not in the transaction is
// TRANSACTION_ABORTABLE (Kafka 3.8+; a caller serving an older produce
// version answers INVALID_TXN_STATE instead, as Kafka does).
func (c *Coordinator) VerifyPartition(txnID string, pid int64, epoch int16, tp TopicPartition) int16 {
	if txnID == "" {
		return kerr.InvalidRequest.Code
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if code := c.checkLocked(txnID); code != 0 {
		return code
	}
	m := c.txns[txnID]
	switch {
	case m == nil || m.pid != pid:
		return kerr.InvalidProducerIDMapping.Code
	case m.epoch != epoch:
		return kerr.ProducerFenced.Code
	case m.state == PrepareCommit || m.state == PrepareAbort:
		return kerr.ConcurrentTransactions.Code
	}
	if _, ok := m.parts[tp]; ok {
		return 0
	}
	return kerr.TransactionAbortable.Code
}

// EndTxn commits or aborts the producer's transaction: once
// PrepareCommit/PrepareAbort is durable it answers, and the markers are
// written in the background, then the completion appended. bumpEpoch is
// transaction version 2 (EndTxn v5+, KIP-890 part 2): the transaction ends
// with the epoch bumped, which newPID/newEpoch carry (a new producer id at
// epoch 0 once the epochs run out); below v5 they are -1.
func (c *Coordinator) EndTxn(ctx context.Context, txnID string, pid int64, epoch int16, commit, bumpEpoch bool) (newPID int64, newEpoch int16, code int16) {
	if txnID == "" {
		return noPID, noEpoch, kerr.InvalidRequest.Code
	}
	tv := tv0
	if bumpEpoch {
		tv = tv2
	}
	ch := make(chan result, 1)
	reply := func(r result) { ch <- r }
	spare := noPID
	for {
		c.mu.Lock()
		var need bool
		if code := c.checkLocked(txnID); code != 0 {
			reply(fail(code))
		} else {
			need = c.endTxnLocked(c.txns[txnID], pid, epoch, commit, true, tv, spare, reply)
		}
		c.mu.Unlock()
		if !need {
			break
		}
		var code int16
		if spare, code = c.nextPID(ctx); code != 0 {
			return noPID, noEpoch, code
		}
	}
	r := await(ctx, ch)
	return r.pid, r.epoch, r.code
}

// endTxnLocked is Kafka's endTransaction (transaction version 2) and
// endTransactionWithTV1. fromClient is false for the coordinator's own
// aborts (a fence: the epoch given is the bumped one). needPID asks for a
// fresh producer id in spare (nothing changed).
func (c *Coordinator) endTxnLocked(m *txnMeta, pid int64, epoch int16, commit, fromClient bool, tv int16, spare int64, reply func(result)) (needPID bool) {
	if m == nil {
		reply(fail(kerr.InvalidProducerIDMapping.Code))
		return false
	}
	if tv >= tv2 {
		return c.endTxnV2Locked(m, pid, epoch, commit, fromClient, spare, reply)
	}
	c.endTxnV1Locked(m, pid, epoch, commit, fromClient, reply)
	return false
}

func (c *Coordinator) endTxnV1Locked(m *txnMeta, pid int64, epoch int16, commit, fromClient bool, reply func(result)) {
	invalid := func() {
		c.log.Info("EndTxn in an invalid state", "transactional_id", m.id, "state", m.state, "commit", commit)
		reply(fail(kerr.InvalidTxnState.Code))
	}
	switch {
	case m.pid != pid:
		reply(fail(kerr.InvalidProducerIDMapping.Code))
		return
	case (fromClient && epoch != m.epoch) || epoch < m.epoch:
		// A client must name the current epoch; a fence names a higher one.
		reply(fail(kerr.ProducerFenced.Code))
		return
	case m.pending != none && m.pending != PrepareEpochFence:
		reply(fail(kerr.ConcurrentTransactions.Code))
		return
	}
	switch m.state {
	case Ongoing:
		next := PrepareAbort
		if commit {
			next = PrepareCommit
		}
		fence := false
		if next == PrepareAbort && m.pending == PrepareEpochFence {
			// The fence's epoch becomes current now, before the append,
			// as in Kafka; a failed append leaves it raised (failedFence).
			fence = true
			m.pending, m.epoch, m.lastEpoch = none, epoch, noEpoch
		}
		t, err := m.prepareEnd(next, tv0, noPID, c.nowMs(), false, true)
		if err != nil {
			c.log.Error("EndTxn", "err", err)
			reply(fail(kerr.UnknownServerError.Code))
			return
		}
		c.appendPrepareLocked(m, t, pid, epoch, commit, tv0, fence, reply)
	case CompleteCommit:
		if commit {
			reply(result{noPID, noEpoch, 0})
		} else {
			invalid()
		}
	case CompleteAbort:
		if !commit {
			reply(result{noPID, noEpoch, 0})
		} else {
			invalid()
		}
	case PrepareCommit:
		if commit {
			reply(fail(kerr.ConcurrentTransactions.Code))
		} else {
			invalid()
		}
	case PrepareAbort:
		if !commit {
			reply(fail(kerr.ConcurrentTransactions.Code))
		} else {
			invalid()
		}
	case Empty:
		invalid()
	default:
		c.log.Error("transactional id in an illegal state", "transactional_id", m.id, "state", m.state)
		reply(fail(kerr.UnknownServerError.Code))
	}
}

// endTxnV2Locked follows Kafka's table for transaction version 2 (PF:
// PRODUCER_FENCED, ITS: INVALID_TXN_STATE, NONE: no error and no change,
// EB: an epoch bump; "retry" is the epoch before the last bump):
//
//	               | Abort          | Commit
//	               | retry | current| retry | current
//	Empty          | PF    | EB     | PF    | ITS
//	CompleteAbort  | NONE  | EB     | ITS   | ITS
//	CompleteCommit | ITS   | EB     | NONE  | ITS
func (c *Coordinator) endTxnV2Locked(m *txnMeta, pid int64, epoch int16, commit, fromClient bool, spare int64, reply func(result)) (needPID bool) {
	fence := m.pending == PrepareEpochFence
	// A retry after the rotation of an exhausted producer id names the old
	// id at its last epoch; a retry after a bump names the epoch before.
	retryOnOverflow := !fence && m.prevPID == pid && epoch == maxEpoch-1 && m.epoch == 0
	retryOnBump := !fence && int(m.epoch) == int(epoch)+1
	var valid bool
	if fence {
		valid = (!fromClient || epoch == m.epoch) && epoch >= m.epoch
	} else {
		switch m.state {
		case PrepareCommit, PrepareAbort:
			valid = retryOnBump
		case CompleteCommit, CompleteAbort:
			valid = retryOnBump || retryOnOverflow || epoch == m.epoch
		default:
			valid = epoch == m.epoch
		}
	}
	retry := retryOnBump || retryOnOverflow
	invalid := func() {
		c.log.Info("EndTxn in an invalid state", "transactional_id", m.id, "state", m.state, "commit", commit, "retry", retry)
		reply(fail(kerr.InvalidTxnState.Code))
	}
	prepare := func(next State, noPartitionAdded bool) bool {
		// Every end bumps the epoch, so one that would reach the last
		// epoch rotates the producer id, the fence's abort included
		// (Kafka trunk: at epoch Short.MaxValue-1 the fence's bump
		// already takes the last epoch, and the abort completes into the
		// new id).
		nextPID := noPID
		if epochExhausted(m.epoch) {
			if spare == noPID {
				return true
			}
			nextPID = spare
		}
		bump := true
		if next == PrepareAbort && fence {
			m.pending, m.epoch, m.lastEpoch = none, epoch, noEpoch
			bump = m.epoch < maxEpoch
		}
		t, err := m.prepareEnd(next, tv2, nextPID, c.nowMs(), noPartitionAdded, bump)
		if err != nil {
			c.log.Error("EndTxn", "err", err)
			reply(fail(kerr.UnknownServerError.Code))
			return false
		}
		c.appendPrepareLocked(m, t, pid, epoch, commit, tv2, fence, reply)
		return false
	}
	switch {
	case m.pid != pid && !retryOnOverflow:
		reply(fail(kerr.InvalidProducerIDMapping.Code))
		return false
	case !valid:
		reply(fail(kerr.ProducerFenced.Code))
		return false
	case m.pending != none && m.pending != PrepareEpochFence:
		reply(fail(kerr.ConcurrentTransactions.Code))
		return false
	}
	switch m.state {
	case Ongoing:
		next := PrepareAbort
		if commit {
			next = PrepareCommit
		}
		return prepare(next, false)
	case CompleteCommit:
		switch {
		case commit && retry:
			reply(result{m.pid, m.epoch, 0})
		case !commit && !retry:
			return prepare(PrepareAbort, true)
		default:
			invalid()
		}
	case CompleteAbort:
		switch {
		case !commit && retry:
			reply(result{m.pid, m.epoch, 0})
		case !commit:
			return prepare(PrepareAbort, true)
		default:
			invalid()
		}
	case PrepareCommit:
		if commit {
			reply(fail(kerr.ConcurrentTransactions.Code))
		} else {
			invalid()
		}
	case PrepareAbort:
		if !commit {
			reply(fail(kerr.ConcurrentTransactions.Code))
		} else {
			invalid()
		}
	case Empty:
		if !commit {
			return prepare(PrepareAbort, true)
		}
		invalid()
	default:
		c.log.Error("transactional id in an illegal state", "transactional_id", m.id, "state", m.state)
		reply(fail(kerr.UnknownServerError.Code))
	}
	return false
}

// appendPrepareLocked appends PrepareCommit/PrepareAbort and, once it is
// durable, answers the producer and starts writing the markers (Kafka's
// sendTxnMarkersCallback).
func (c *Coordinator) appendPrepareLocked(m *txnMeta, t *transit, pid int64, epoch int16, commit bool, tv int16, fence bool, reply func(result)) {
	c.appendTransitLocked(m, t, never, func(code int16) {
		if code != 0 {
			if fence && !c.closed && c.txns[m.id] == m {
				// The epoch was raised but never handed out: the next
				// fence does not raise it again.
				m.failedFence = true
				c.log.Warn("epoch fence not written", "transactional_id", m.id, "epoch", m.epoch)
			}
			reply(fail(code))
			return
		}
		epochOK := m.epoch == epoch
		if tv >= tv2 {
			epochOK = epochOK || int(m.epoch) == int(epoch)+1
		}
		switch {
		case m.pid != pid:
			reply(fail(kerr.InvalidProducerIDMapping.Code))
		case !epochOK:
			reply(fail(kerr.ProducerFenced.Code))
		case m.pending != none:
			reply(fail(kerr.ConcurrentTransactions.Code))
		case (m.state == PrepareCommit && commit) || (m.state == PrepareAbort && !commit):
			ct, err := m.prepareComplete(c.nowMs())
			if err != nil {
				c.log.Error("EndTxn", "err", err)
				reply(fail(kerr.UnknownServerError.Code))
				return
			}
			if tv >= tv2 {
				reply(result{ct.pid, ct.epoch, 0})
			} else {
				reply(result{noPID, noEpoch, 0})
			}
			c.startMarkersLocked(m, ct)
		default:
			reply(fail(kerr.InvalidTxnState.Code))
		}
	})
}
