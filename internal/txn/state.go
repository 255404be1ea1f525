package txn

import (
	"fmt"
	"maps"
	"slices"
)

// State is a transaction's state, numbered as Kafka's TransactionState
// (the number is what the log stores).
type State int8

// The states; see Kafka's TransactionMetadata.scala for their meaning.
const (
	Empty State = iota
	Ongoing
	PrepareCommit
	PrepareAbort
	CompleteCommit
	CompleteAbort
	Dead
	PrepareEpochFence

	none State = -1 // no transition pending
)

var stateNames = [...]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence"}

// String is the name DescribeTransactions and ListTransactions use.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int8(s))
}

// StateNamed returns the state of a ListTransactions filter name.
func StateNamed(name string) (State, bool) {
	for i, n := range stateNames {
		if n == name {
			return State(i), true
		}
	}
	return none, false
}

// validFrom is Kafka's validPreviousStates. PrepareAbort is reachable from
// Empty and the completed states with transaction version 2 (an abort
// without partitions, which a KIP-890 client sends when unsure).
func (s State) validFrom(prev State) bool {
	switch s {
	case Empty:
		return prev == Empty || prev == CompleteCommit || prev == CompleteAbort
	case Ongoing:
		return prev == Ongoing || prev == Empty || prev == CompleteCommit || prev == CompleteAbort
	case PrepareCommit:
		return prev == Ongoing
	case PrepareAbort:
		return prev == Ongoing || prev == PrepareEpochFence || prev == Empty || prev == CompleteCommit || prev == CompleteAbort
	case CompleteCommit:
		return prev == PrepareCommit
	case CompleteAbort:
		return prev == PrepareAbort
	case Dead:
		return prev == Empty || prev == CompleteAbort || prev == CompleteCommit
	case PrepareEpochFence:
		return prev == Ongoing
	}
	return false
}

// expirable: no transaction in progress (Kafka's isExpirationAllowed).
func (s State) expirable() bool {
	return s == Empty || s == CompleteCommit || s == CompleteAbort
}

type partSet map[TopicPartition]struct{}

func (s partSet) clone() partSet { return maps.Clone(s) }

func (s partSet) sorted() []TopicPartition {
	out := slices.Collect(maps.Keys(s))
	slices.SortFunc(out, func(a, b TopicPartition) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	return out
}

// txnMeta is one transactional id's metadata, Kafka's TransactionMetadata.
// Guarded by Coordinator.mu.
type txnMeta struct {
	id        string
	pid       int64 // the producer id in use
	prevPID   int64 // before the last transition (KIP-890: a retry after a rotation names it)
	nextPID   int64 // set by a PrepareCommit/PrepareAbort whose epoch bump exhausts pid
	epoch     int16
	lastEpoch int16 // the epoch before the last bump (KIP-360 retries); not in the log, as in Kafka
	timeoutMs int32
	state     State
	parts     partSet
	start     int64 // ms: when the transaction started, -1 if none
	update    int64 // ms: the last change
	tv        int16 // the client's transaction version at the last transition

	pending     State // the transition in flight, or none
	failedFence bool  // an epoch fence's append failed: do not bump again (Kafka's hasFailedEpochFence)
}

// transit is a transition's target (Kafka's TxnTransitMetadata): what is
// appended to the log, and what the entry becomes once that is durable.
type transit struct {
	pid, prevPID, nextPID int64
	epoch, lastEpoch      int16
	timeoutMs             int32
	state                 State
	parts                 partSet
	start, update         int64
	tv                    int16
}

func newMeta(id string, pid int64, timeoutMs int32, nowMs int64) *txnMeta {
	return &txnMeta{id: id, pid: pid, prevPID: noPID, nextPID: noPID, epoch: noEpoch, lastEpoch: noEpoch,
		timeoutMs: timeoutMs, state: Empty, parts: partSet{}, start: -1, update: nowMs, tv: tv0, pending: none}
}

// base is a transition to s that keeps everything else.
func (m *txnMeta) base(s State) transit {
	return transit{pid: m.pid, nextPID: noPID, epoch: m.epoch, lastEpoch: m.lastEpoch, timeoutMs: m.timeoutMs,
		state: s, parts: m.parts.clone(), start: m.start, update: m.update, tv: m.tv}
}

// prepare checks t and marks it pending (Kafka's prepareTransitionTo).
func (m *txnMeta) prepare(t transit) (*transit, error) {
	switch {
	case m.pending != none:
		return nil, fmt.Errorf("txn %s: transition to %v while %v is pending", m.id, t.state, m.pending)
	case t.pid < 0:
		return nil, fmt.Errorf("txn %s: illegal producer id %d", m.id, t.pid)
	case t.state != Dead && t.epoch < 0:
		return nil, fmt.Errorf("txn %s: illegal producer epoch %d", m.id, t.epoch)
	case !t.state.validFrom(m.state):
		return nil, fmt.Errorf("txn %s: %v is not reachable from %v", m.id, t.state, m.state)
	}
	t.prevPID = m.pid
	m.pending = t.state
	return &t, nil
}

// prepareFence bumps the epoch to fence the producer of an ongoing
// transaction, which is then aborted.
func (m *txnMeta) prepareFence() (*transit, error) {
	if m.epoch == maxEpoch {
		return nil, fmt.Errorf("txn %s: cannot fence epoch %d", m.id, m.epoch)
	}
	t := m.base(PrepareEpochFence)
	// After a fence whose append failed the epoch was already raised (in
	// memory, never handed out): raising it again gains nothing.
	if !m.failedFence {
		t.epoch = m.epoch + 1
	}
	t.lastEpoch = noEpoch
	return m.prepare(t)
}

// prepareIncrementEpoch is InitProducerId's bump. expected is the epoch
// the producer says it has (KIP-360), if it said one. The caller rotates
// the producer id instead where the bump would exhaust the epochs.
func (m *txnMeta) prepareIncrementEpoch(timeoutMs int32, expected int16, hasExpected bool, nowMs int64) (*transit, bool, error) {
	t := m.base(Empty)
	switch {
	case !hasExpected:
		// A new producer: fences whatever had the id; a retry cannot be
		// told apart, so the last epoch is forgotten.
		t.epoch, t.lastEpoch = m.epoch+1, noEpoch
	case m.epoch == noEpoch || expected == m.epoch:
		// The producer continues after an error and no one else took
		// the id over.
		t.epoch, t.lastEpoch = m.epoch+1, m.epoch
	case expected == m.lastEpoch:
		// A retry of a bump whose answer was lost: answer it again.
		t.epoch, t.lastEpoch = m.epoch, m.lastEpoch
	default:
		return nil, false, nil // PRODUCER_FENCED
	}
	t.timeoutMs, t.parts, t.start, t.update = timeoutMs, partSet{}, -1, nowMs
	tr, err := m.prepare(t)
	return tr, true, err
}

// prepareRotation moves the id to a new producer id at epoch 0.
func (m *txnMeta) prepareRotation(newPID int64, timeoutMs int32, nowMs int64, recordLastEpoch bool) (*transit, error) {
	if m.state == Ongoing || m.state == PrepareCommit || m.state == PrepareAbort {
		return nil, fmt.Errorf("txn %s: cannot rotate the producer id in %v", m.id, m.state)
	}
	t := m.base(Empty)
	t.pid, t.epoch, t.lastEpoch = newPID, 0, noEpoch
	if recordLastEpoch {
		t.lastEpoch = m.epoch
	}
	t.timeoutMs, t.parts, t.start, t.update = timeoutMs, partSet{}, -1, nowMs
	return m.prepare(t)
}

func (m *txnMeta) prepareAddPartitions(add []TopicPartition, nowMs int64) (*transit, error) {
	t := m.base(Ongoing)
	if m.state == Empty || m.state == CompleteCommit || m.state == CompleteAbort {
		t.start = nowMs
	}
	for _, tp := range add {
		t.parts[tp] = struct{}{}
	}
	t.update = nowMs
	return m.prepare(t)
}

// prepareEnd is the transition to PrepareCommit or PrepareAbort. With
// transaction version 2 it bumps the epoch (KIP-890 part 2); nextPID is the
// producer id the transaction completes into when that bump exhausts the
// epochs; bump false skips the bump where it would pass Short.MaxValue (a
// fence of the last epoch, which rotates the producer id instead).
func (m *txnMeta) prepareEnd(s State, tv int16, nextPID int64, nowMs int64, noPartitionAdded, bump bool) (*transit, error) {
	t := m.base(s)
	if tv >= tv2 {
		t.lastEpoch = m.epoch
		if bump {
			t.epoch = m.epoch + 1
		}
	}
	if noPartitionAdded {
		// An abort without partitions (version 2): the transaction starts
		// now, a start time being required.
		t.start = nowMs
	}
	t.nextPID, t.update, t.tv = nextPID, nowMs, tv
	return m.prepare(t)
}

// prepareComplete is the transition to CompleteCommit or CompleteAbort
// once every marker is written; a rotation decided at the prepare takes
// effect here (the producer sees the old id's last epoch, then the new id
// at 0).
func (m *txnMeta) prepareComplete(nowMs int64) (*transit, error) {
	m.failedFence = false
	s := CompleteAbort
	if m.state == PrepareCommit {
		s = CompleteCommit
	}
	t := m.base(s)
	if m.tv >= tv2 && m.nextPID != noPID {
		t.pid, t.epoch = m.nextPID, 0
	}
	t.nextPID, t.parts, t.update = noPID, partSet{}, nowMs
	return m.prepare(t)
}

func (m *txnMeta) prepareDead() (*transit, error) {
	t := m.base(Dead)
	t.parts = partSet{}
	return m.prepare(t)
}

// complete applies a durable transition (Kafka's completeTransitionTo,
// with its checks).
func (m *txnMeta) complete(t *transit) error {
	if m.pending == none || m.pending != t.state {
		return fmt.Errorf("txn %s: completing %v while %v is pending", m.id, t.state, m.pending)
	}
	bad := func() error {
		return fmt.Errorf("txn %s: illegal transition from %v (pid %d epoch %d) to %+v", m.id, m.state, m.pid, m.epoch, *t)
	}
	switch t.state {
	case Empty: // InitProducerId
		if (m.epoch != t.epoch && !m.validEpochBump(t)) || len(t.parts) != 0 || t.start != -1 {
			return bad()
		}
		m.timeoutMs, m.epoch, m.lastEpoch, m.pid, m.prevPID = t.timeoutMs, t.epoch, t.lastEpoch, t.pid, t.prevPID
	case Ongoing: // AddPartitions
		if !m.validEpoch(t) || !subset(m.parts, t.parts) || m.timeoutMs != t.timeoutMs {
			return bad()
		}
		m.start = t.start
		maps.Copy(m.parts, t.parts)
	case PrepareCommit, PrepareAbort: // EndTxn
		emptyAbort := t.state == PrepareAbort && t.tv >= tv2 && m.state.expirable()
		if !m.validEpoch(t) || !maps.Equal(m.parts, t.parts) || m.timeoutMs != t.timeoutMs || (m.start != t.start && !emptyAbort) {
			return bad()
		}
		if t.tv >= tv2 {
			m.epoch, m.lastEpoch, m.nextPID, m.start = t.epoch, t.lastEpoch, t.nextPID, t.start
		}
	case CompleteCommit, CompleteAbort: // markers written
		if !m.validEpoch(t) || m.timeoutMs != t.timeoutMs || t.start == -1 {
			return bad()
		}
		m.start = t.start
		m.parts = partSet{}
		if t.tv >= tv2 {
			m.epoch, m.lastEpoch, m.prevPID, m.pid, m.nextPID = t.epoch, t.lastEpoch, t.prevPID, t.pid, t.nextPID
		}
	default: // PrepareEpochFence and Dead are never completed
		return bad()
	}
	m.tv, m.update, m.pending, m.state = t.tv, t.update, none, t.state
	return nil
}

// validEpoch is Kafka's validProducerEpoch.
func (m *txnMeta) validEpoch(t *transit) bool {
	v2 := t.tv >= tv2
	switch {
	case v2 && (t.state == CompleteCommit || t.state == CompleteAbort) && t.epoch == 0:
		// The rotation: the new id at 0; the old id is the previous one.
		return t.lastEpoch == m.lastEpoch && t.prevPID == m.pid
	case v2 && (t.state == PrepareCommit || t.state == PrepareAbort):
		return t.lastEpoch == m.epoch && t.pid == m.pid
	default:
		return t.epoch == m.epoch && t.pid == m.pid
	}
}

func (m *txnMeta) validEpochBump(t *transit) bool {
	return int(t.epoch) == int(m.epoch)+1 || (t.epoch == 0 && t.pid != m.pid)
}

func subset(a, b partSet) bool {
	for tp := range a {
		if _, ok := b[tp]; !ok {
			return false
		}
	}
	return true
}
