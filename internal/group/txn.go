package group

import (
	"errors"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/partition"
	"github.com/vigilhq/vigil/internal/producer"
)

// Transactional offsets (KIP-98, KIP-447), as Kafka's group coordinator
// keeps them:
//
//   - TxnCommit appends a transaction's offsets to the group's offsets
//     partition as one transactional batch of the request's producer id
//     and epoch; the partition log's producer checks refuse a fenced
//     epoch. Until the transaction ends they are the producer's pending
//     offsets: OffsetFetch does not show them (and answers
//     UNSTABLE_OFFSET_COMMIT for their partitions when asked to require
//     stable offsets), retention does not expire the partition's
//     committed offset, and the group is not removed.
//   - The transaction coordinator writes a commit or abort marker to the
//     partition; once it is durable, CompleteTxn commits the producer's
//     pending offsets (each one only if no newer record of its partition,
//     by log position, was committed meanwhile: Kafka's rule for a mix of
//     transactional and plain commits) or drops them.
//   - Load replays the same rules from the log: transactional batches
//     are pending until their producer's marker; without a marker they
//     stay pending, for the coordinator to complete.
//   - A tombstone of an offset (OffsetDelete, DeleteGroups, a deleted
//     topic) drops its pending transactional offsets too, in memory and
//     in a replay, as Kafka's current coordinator does.

// txnOffset is one pending transactional offset: the offset, the value
// bytes of its record (for the written state once committed) and the
// record's position in the log, -1 until its batch is durable.
//
// A producer's pending offsets of one partition are a list in append
// order: a later commit of the transaction supersedes an earlier one only
// once it is durable (a replay keeps the last record), so a refused batch
// (a fenced epoch) takes nothing away, and the marker completes what was
// appended before it.
type txnOffset struct {
	o     offset
	value []byte
	at    int64
}

// TxnCommit handles a TxnOffsetCommit request. The response arrives on
// the returned channel once the transaction's offsets are durable in the
// offsets log (or at once on errors). They stay invisible to OffsetFetch
// until CompleteTxn commits them.
//
// The checks are Kafka's (ClassicGroup.validateOffsetCommit with
// isTransactional): an unknown group is created as a simple group when
// the request carries no generation, else ILLEGAL_GENERATION; with any of
// generation, member id or group instance id (v3+, KIP-447) the member
// must be the group's current one (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID)
// at the group's generation (ILLEGAL_GENERATION); without them the commit
// is taken in any state, and no state refuses a transactional commit
// (REBALANCE_IN_PROGRESS is for plain commits only). The producer's epoch
// is checked by the log: an older one is INVALID_PRODUCER_EPOCH.
//
// The request's topics are named (v0-v5); a caller serving v6+ resolves
// topic ids to names first. TxnCommit does not verify the transaction
// with its coordinator; TxnCommitVerified does.
func (c *Coordinator) TxnCommit(req *kmsg.TxnOffsetCommitRequest) <-chan *kmsg.TxnOffsetCommitResponse {
	return c.TxnCommitVerified(req, nil)
}

// TxnCommitVerified is TxnCommit with KIP-890 part 1's verification, as
// Kafka's handleTxnCommitOffsets: unless the producer already has a
// transaction ongoing on the group's offsets partition at its epoch,
// verify asks the transaction coordinator whether that partition is in
// the producer's transaction (AddOffsetsToTxn added it) and returns an
// error code (INVALID_TXN_STATE, ...) or 0. The batch is then appended
// under the partition's guard, so a transaction that ended meanwhile (its
// marker written) refuses it with INVALID_TXN_STATE instead of the late
// offsets starting a transaction no coordinator would ever end. verify
// runs on the caller's goroutine, before the coordinator's lock; nil
// skips the verification.
func (c *Coordinator) TxnCommitVerified(req *kmsg.TxnOffsetCommitRequest, verify func(offsetsPartition int32) int16) <-chan *kmsg.TxnOffsetCommitResponse {
	ch := make(chan *kmsg.TxnOffsetCommitResponse, 1)
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	for _, t := range req.Topics {
		rt := kmsg.TxnOffsetCommitResponseTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, kmsg.TxnOffsetCommitResponseTopicPartition{Partition: p.Partition})
		}
		resp.Topics = append(resp.Topics, rt)
	}
	failCode := func(code int16) <-chan *kmsg.TxnOffsetCommitResponse {
		setCodes(resp, code)
		ch <- resp
		return ch
	}
	failAll := func(e *kerr.Error) <-chan *kmsg.TxnOffsetCommitResponse { return failCode(e.Code) }
	gen, memberID, instance := req.Generation, req.MemberID, ""
	if req.Version < 3 {
		gen, memberID = -1, "" // before KIP-447 the request names no member
	} else if req.InstanceID != nil {
		instance = *req.InstanceID
	}
	switch {
	case req.Group == "":
		return failAll(kerr.InvalidGroupID)
	case req.ProducerID < 0:
		return failAll(kerr.InvalidProducerIDMapping)
	case req.ProducerEpoch < 0:
		return failAll(kerr.InvalidProducerEpoch)
	}
	p := c.partition(req.Group)
	if !c.owns(p) {
		return failAll(kerr.NotCoordinator)
	}
	guard := producer.NoGuard
	if verify != nil {
		g, ongoing := c.olog.TxnGuard(p, req.ProducerID, req.ProducerEpoch)
		if !ongoing {
			if code := verify(p); code != 0 {
				return failCode(verifyError(code))
			}
			guard = g
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return failAll(kerr.CoordinatorNotAvailable)
	}
	g := c.groups[req.Group]
	if g == nil {
		if gen >= 0 {
			// A generation of a group that does not exist: an older
			// incarnation's member (Kafka's validateTransactionalOffsetCommit).
			return failAll(kerr.IllegalGeneration)
		}
		g = newGroup(req.Group) // kept below once something is appended
	}
	if e := g.validateTxnCommit(gen, memberID, instance); e != nil {
		return failAll(e)
	}

	tx := c.txnRecords(g, req, resp)
	if len(tx.recs) == 0 {
		ch <- resp
		return ch
	}
	if c.groups[g.id] == nil {
		c.groups[g.id] = g
	}
	c.appendTxnLocked(g, p, tx, guard, func(code int16) {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				if rp := &resp.Topics[i].Partitions[j]; rp.ErrorCode == 0 {
					rp.ErrorCode = code
				}
			}
		}
		ch <- resp
	})
	return ch
}

// txnBatch is what one TxnOffsetCommit appends: its records, their
// partitions and their pending offsets, in the same order.
type txnBatch struct {
	pid   int64
	epoch int16
	ts    int64
	recs  []Record
	keys  []tp
	pend  []*txnOffset
}

// txnRecords builds the offset records of a TxnOffsetCommit, setting the
// error of each partition it leaves out (an unknown topic partition,
// metadata over offset.metadata.max.bytes).
func (c *Coordinator) txnRecords(g *group, req *kmsg.TxnOffsetCommitRequest, resp *kmsg.TxnOffsetCommitResponse) txnBatch {
	tx := txnBatch{pid: req.ProducerID, epoch: req.ProducerEpoch, ts: time.Now().UnixMilli()}
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			rp := &resp.Topics[i].Partitions[j]
			md := ""
			if p.Metadata != nil {
				md = *p.Metadata
			}
			switch {
			case !c.topics.PartitionExists(t.Topic, p.Partition):
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			case len(md) > c.cfg.MaxMetadataBytes:
				rp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			epoch := p.LeaderEpoch
			if req.Version < 2 {
				epoch = -1
			}
			o := offset{offset: p.Offset, leaderEpoch: epoch, metadata: md, commitTs: tx.ts, at: -1}
			r := offsetRecord(g.id, t.Topic, p.Partition, o)
			tx.recs = append(tx.recs, r)
			tx.keys = append(tx.keys, tp{t.Topic, p.Partition})
			tx.pend = append(tx.pend, &txnOffset{o: o, value: r.Value, at: -1})
		}
	}
	return tx
}

// appendTxnLocked makes tx's offsets pending and appends them as one
// transactional batch of the producer to offsets partition p; answer
// runs on the applier with 0 once the batch is durable, or the error of
// its refusal (and the offsets are no longer pending).
func (c *Coordinator) appendTxnLocked(g *group, p int32, tx txnBatch, guard producer.Guard, answer func(code int16)) {
	// Pending from now on, as Kafka's prepareTxnOffsetCommit: a fetch
	// that requires stable offsets waits for the outcome from here.
	for i, k := range tx.keys {
		c.addPendingLocked(g, tx.pid, k, tx.pend[i])
	}
	raw := batch.BuildTxn(tx.recs, tx.ts, tx.pid, tx.epoch, c.olog.NextSequence(p, tx.pid, tx.epoch))
	c.parts[p].records += len(tx.recs)
	c.olog.AppendBatchVerified(p, raw, guard, func(first int64, err error) {
		c.later(func() {
			if err != nil {
				c.log.Warn("transactional offset commit failed", "group", g.id, "producer_id", tx.pid, "epoch", tx.epoch, "err", err)
				for i, k := range tx.keys {
					c.removePendingLocked(g, tx.pid, k, tx.pend[i])
				}
				c.maybeForgetLocked(g)
				answer(txnAppendError(err))
				return
			}
			for i, e := range tx.pend {
				e.at = first + int64(i)
			}
			answer(0)
		})
	})
}

// validateTxnCommit is Kafka's ClassicGroup.validateOffsetCommit for a
// transactional commit.
func (g *group) validateTxnCommit(gen int32, memberID, instance string) *kerr.Error {
	if g.cons != nil && g.state != Dead {
		// ConsumerGroup.validateOffsetCommit: without membership fields
		// a transactional commit is taken; with them, at the epoch.
		if gen < 0 && (len(g.cons.members) == 0 || (memberID == "" && instance == "")) {
			return nil
		}
		return g.cons.checkMemberEpoch(memberID, gen)
	}
	switch {
	case g.state == Dead:
		return kerr.CoordinatorNotAvailable
	case gen < 0 && g.state == Empty:
		return nil
	case gen >= 0 || memberID != "" || instance != "":
		if e := g.fenced(instance, memberID); e != nil {
			return e
		}
		if g.members[memberID] == nil {
			return kerr.UnknownMemberID
		}
		if gen != g.generation {
			return kerr.IllegalGeneration
		}
	}
	return nil
}

// txnAppendError maps the offsets log's refusal of a transaction's batch
// to the TxnOffsetCommit error, as Kafka's maybeConvertOffsetCommitError:
// the producer checks' errors as they are, a lost leadership as
// NOT_COORDINATOR, anything else as COORDINATOR_NOT_AVAILABLE (retriable,
// as a plain commit's failure).
func txnAppendError(err error) int16 {
	var ke *kerr.Error
	switch {
	case errors.Is(err, producer.ErrInvalidEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, producer.ErrInvalidTxnState):
		return kerr.InvalidTxnState.Code
	case errors.As(err, &ke):
		return ke.Code
	case errors.Is(err, partition.ErrNotLeader):
		return kerr.NotCoordinator.Code
	}
	return kerr.CoordinatorNotAvailable.Code
}

// verifyError is Kafka's maybeConvertOffsetCommitError for a failed
// verification: NETWORK_EXCEPTION, which older clients do not retry, as
// COORDINATOR_LOAD_IN_PROGRESS, which they do without looking the
// coordinator up again.
func verifyError(code int16) int16 {
	if code == kerr.NetworkException.Code {
		return kerr.CoordinatorLoadInProgress.Code
	}
	return code
}

func setCodes(resp *kmsg.TxnOffsetCommitResponse, code int16) {
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			resp.Topics[i].Partitions[j].ErrorCode = code
		}
	}
}

// CompleteTxn ends producerID's transaction on the offsets partitions of
// this coordinator: commit makes its pending offsets the committed ones,
// abort drops them. The broker calls it once the transaction's marker is
// durable on the partition (a server runs one coordinator per offsets
// partition, so the marker and the coordinator match), and before it
// reports the marker written: offsets the producer commits after that
// belong to its next transaction. Offsets whose batch is not durable yet
// were appended after the marker and stay pending.
//
// It runs on the applier, after every durability callback of records
// appended before the marker; the returned channel is closed once it has
// (callers may ignore it).
func (c *Coordinator) CompleteTxn(producerID int64, commit bool) <-chan struct{} {
	done := make(chan struct{})
	c.later(func() {
		c.completeTxnLocked(producerID, commit)
		close(done)
	})
	return done
}

func (c *Coordinator) completeTxnLocked(pid int64, commit bool) {
	for id := range c.txnGroups[pid] {
		g := c.groups[id]
		if g == nil {
			delete(c.txnGroups[pid], id)
			continue
		}
		ps := c.parts[c.partition(id)]
		pend := g.txn[pid]
		for k, list := range pend {
			// The last durable record of the partition is the one a
			// replay completes; later ones (at -1) follow the marker.
			var last *txnOffset
			kept := list[:0]
			for _, e := range list {
				if e.at < 0 {
					kept = append(kept, e)
				} else if last == nil || e.at > last.at {
					last = e
				}
			}
			if len(kept) == 0 {
				delete(pend, k)
			} else {
				pend[k] = kept
			}
			if !commit || last == nil {
				continue
			}
			// Kafka's rule: the newer record by log position wins, so a
			// plain commit after the transaction's is kept (and a replay,
			// which compares the same positions, agrees).
			o := last.o
			o.at = last.at
			if cur, ok := g.offsets[k]; !ok || cur.at < last.at {
				g.offsets[k] = o
			}
			key := string(offsetKey(id, k.topic, k.partition))
			if pos, ok := ps.pos[key]; !ok || (pos.at >= 0 && pos.at < last.at) {
				ps.written[key] = last.value
				ps.tok++
				ps.pos[key] = keyPos{tok: ps.tok, at: last.at}
			}
		}
		if len(pend) == 0 {
			delete(g.txn, pid)
			delete(c.txnGroups[pid], id)
		}
		// A group that only held this transaction's offsets, now
		// aborted, has nothing a replay would find.
		c.maybeForgetLocked(g)
	}
	if len(c.txnGroups[pid]) == 0 {
		delete(c.txnGroups, pid)
	}
}

// addPendingLocked adds e to producer pid's pending offsets of k.
func (c *Coordinator) addPendingLocked(g *group, pid int64, k tp, e *txnOffset) {
	if g.txn == nil {
		g.txn = map[int64]map[tp][]*txnOffset{}
	}
	m := g.txn[pid]
	if m == nil {
		m = map[tp][]*txnOffset{}
		g.txn[pid] = m
	}
	m[k] = append(m[k], e)
	if c.txnGroups[pid] == nil {
		c.txnGroups[pid] = map[string]bool{}
	}
	c.txnGroups[pid][g.id] = true
}

// removePendingLocked drops e from producer pid's pending offsets of k
// (its batch was refused); e nil drops them all (a tombstone).
func (c *Coordinator) removePendingLocked(g *group, pid int64, k tp, e *txnOffset) {
	m := g.txn[pid]
	if m == nil {
		return
	}
	if e == nil {
		delete(m, k)
	} else if i := slices.Index(m[k], e); i >= 0 {
		m[k] = slices.Delete(m[k], i, i+1)
		if len(m[k]) == 0 {
			delete(m, k)
		}
	}
	if len(m) == 0 {
		delete(g.txn, pid)
		delete(c.txnGroups[pid], g.id)
		if len(c.txnGroups[pid]) == 0 {
			delete(c.txnGroups, pid)
		}
	}
}

// dropPendingLocked drops every producer's pending offset of the offset
// key a tombstone is appended for.
func (c *Coordinator) dropPendingLocked(key []byte) {
	if len(key) < 2 || key[0] != 0 || key[1] > 1 {
		return
	}
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(key); err != nil {
		return
	}
	g := c.groups[k.Group]
	if g == nil {
		return
	}
	t := tp{k.Topic, k.Partition}
	for pid := range g.txn {
		c.removePendingLocked(g, pid, t, nil)
	}
}

// hasPending reports whether a producer has a pending offset of k.
func (g *group) hasPending(k tp) bool {
	for _, m := range g.txn {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}

// heldKeysLocked are the offset keys of partition p with pending
// transactional offsets: a snapshot does not restate them.
func (c *Coordinator) heldKeysLocked(p int32) map[string]bool {
	held := map[string]bool{}
	for pid := range c.txnGroups {
		for id := range c.txnGroups[pid] {
			g := c.groups[id]
			if g == nil || c.partition(id) != p {
				continue
			}
			for k := range g.txn[pid] {
				held[string(offsetKey(id, k.topic, k.partition))] = true
			}
		}
	}
	return held
}

// pinnedStartLocked is where the log start may move after a snapshot
// whose records start at first: no later than the records a replay still
// needs from before the snapshot, the held keys' committed records and
// every pending transactional offset. Records appended after the
// snapshot are at or after first (or not yet placed, at -1).
func (c *Coordinator) pinnedStartLocked(p int32, held map[string]bool, first int64) int64 {
	start := first
	pin := func(at int64) {
		if at >= 0 && at < start {
			start = at
		}
	}
	ps := c.parts[p]
	for k := range held {
		if pos, ok := ps.pos[k]; ok {
			pin(pos.at)
		}
	}
	for pid := range c.txnGroups {
		for id := range c.txnGroups[pid] {
			if g := c.groups[id]; g != nil && c.partition(id) == p {
				for _, list := range g.txn[pid] {
					for _, e := range list {
						pin(e.at)
					}
				}
			}
		}
	}
	return start
}
