package group

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/batch"
)

// Record versions written, as current Kafka writes them: offset commit
// key v1 with value v3 (leader epoch, no expiry), group metadata key v2
// with value v3 (static member instance ids).
const (
	offsetKeyVersion   = 1
	offsetValueVersion = 3
	groupKeyVersion    = 2
	groupValueVersion  = 3
)

func offsetKey(groupID, topic string, partition int32) []byte {
	k := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: groupID, Topic: topic, Partition: partition}
	return k.AppendTo(nil)
}

func offsetRecord(groupID, topic string, partition int32, o offset) Record {
	v := kmsg.OffsetCommitValue{Version: offsetValueVersion, Offset: o.offset, LeaderEpoch: o.leaderEpoch,
		Metadata: o.metadata, CommitTimestamp: o.commitTs, ExpireTimestamp: -1}
	return Record{Key: offsetKey(groupID, topic, partition), Value: v.AppendTo(nil)}
}

func groupKey(groupID string) []byte {
	k := kmsg.GroupMetadataKey{Version: groupKeyVersion, Group: groupID}
	return k.AppendTo(nil)
}

// groupRecord is the group's metadata with the members' current assignments.
func (c *Coordinator) groupRecord(g *group) Record {
	assign := map[string][]byte{}
	for _, m := range g.members {
		assign[m.id] = m.assignment
	}
	return c.groupRecordWith(g, assign)
}

func (c *Coordinator) groupRecordWith(g *group, assign map[string][]byte) Record {
	v := kmsg.GroupMetadataValue{Version: groupValueVersion, ProtocolType: g.protocolType, Generation: g.generation,
		CurrentStateTimestamp: time.Now().UnixMilli()}
	if g.protocol != "" {
		p := g.protocol
		v.Protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	for _, m := range g.ordered() {
		vm := kmsg.GroupMetadataValueMember{MemberID: m.id, ClientID: m.clientID, ClientHost: m.host,
			RebalanceTimeoutMillis: int32(m.rebalance / time.Millisecond), SessionTimeoutMillis: int32(m.session / time.Millisecond),
			Subscription: m.metadataFor(g.protocol), Assignment: assign[m.id]}
		if vm.Subscription == nil {
			vm.Subscription = []byte{}
		}
		if vm.Assignment == nil {
			vm.Assignment = []byte{}
		}
		if m.instanceID != "" {
			inst := m.instanceID
			vm.InstanceID = &inst
		}
		v.Members = append(v.Members, vm)
	}
	return Record{Key: groupKey(g.id), Value: v.AppendTo(nil)}
}

// loaded is what a replay learns about one group.
type loaded struct {
	meta    *kmsg.GroupMetadataValue
	offsets map[tp]offset
	txn     map[int64]map[tp][]*txnOffset
}

// replayed is one offsets partition as a replay leaves it, by key bytes:
// the committed records (plain ones, and transactional ones whose
// producer's commit marker came) with their positions, and the
// transactional ones still pending, by producer id.
type replayed struct {
	written map[string][]byte
	pos     map[string]int64
	pending map[int64]map[string]pendingRec
	records int
	lastKey []byte
}

type pendingRec struct {
	value []byte
	at    int64
}

// replayPartition reads partition p of the offsets log with Kafka's
// loading rules for transactions (GroupMetadataManager.doLoadGroupsAndOffsets,
// OffsetMetadataManager.replay and replayEndTransactionMarker): offset
// records of a transactional batch are pending for their producer; its
// commit marker makes each the committed one unless a newer record (by
// position) of the key was committed, an abort marker drops them; a
// tombstone drops the key's pending records of every producer.
func (c *Coordinator) replayPartition(ctx context.Context, p int32) (*replayed, error) {
	r := &replayed{written: map[string][]byte{}, pos: map[string]int64{}, pending: map[int64]map[string]pendingRec{}}
	err := c.olog.ReplayBatches(ctx, p, func(rb kmsg.RecordBatch, recs []kmsg.Record, _ int64) error {
		r.records += len(recs)
		if rb.Attributes&attrControl != 0 {
			m, err := batch.ParseMarker(rb, recs)
			pend := r.pending[rb.ProducerID]
			delete(r.pending, rb.ProducerID)
			if err != nil || !m.Commit {
				return nil // an abort (or a control record of no known kind)
			}
			for k, pr := range pend {
				if at, ok := r.pos[k]; !ok || at < pr.at {
					r.written[k], r.pos[k] = pr.value, pr.at
				}
			}
			return nil
		}
		txn := rb.Attributes&attrTransactional != 0
		for _, rec := range recs {
			off := rb.FirstOffset + int64(rec.OffsetDelta)
			if len(rec.Key) < 2 {
				return fmt.Errorf("offsets log partition %d offset %d: key of %d bytes", p, off, len(rec.Key))
			}
			k := string(rec.Key)
			if txn && isOffsetKey(rec.Key) {
				m := r.pending[rb.ProducerID]
				if m == nil {
					m = map[string]pendingRec{}
					r.pending[rb.ProducerID] = m
				}
				if rec.Value == nil {
					delete(m, k)
				} else {
					m[k] = pendingRec{value: rec.Value, at: off}
				}
				continue
			}
			r.lastKey = rec.Key
			if rec.Value == nil {
				delete(r.written, k)
				delete(r.pos, k)
				for _, m := range r.pending {
					delete(m, k)
				}
			} else {
				r.written[k], r.pos[k] = rec.Value, off
			}
		}
		return nil
	})
	return r, err
}

// Batch attribute bits (Kafka's RecordBatch attributes).
const (
	attrTransactional = 0x10
	attrControl       = 0x20
)

// isOffsetKey reports whether key is an offset commit key (versions 0, 1).
func isOffsetKey(key []byte) bool {
	return len(key) >= 2 && key[0] == 0 && key[1] <= 1
}

// decodeOffset reads an offset commit value.
func decodeOffset(value []byte, at int64) (offset, error) {
	var val kmsg.OffsetCommitValue
	if err := val.ReadFrom(value); err != nil {
		return offset{}, err
	}
	epoch := val.LeaderEpoch
	if val.Version < 3 {
		epoch = -1
	}
	return offset{offset: val.Offset, leaderEpoch: epoch, metadata: val.Metadata, commitTs: val.CommitTimestamp, at: at}, nil
}

// Load rebuilds groups, committed offsets and the pending offsets of
// open transactions by replaying every partition of the offsets log from
// its log start. Groups whose last metadata has members come back Stable
// with their generation, members and assignments (members that do not
// heartbeat within their session are removed, and a member that does
// keeps its generation, as after a Kafka coordinator move); groups
// without members come back Empty. Transactions without a marker keep
// their offsets pending until CompleteTxn.
func (c *Coordinator) Load(ctx context.Context) error {
	start := time.Now()
	byGroup := map[string]*loaded{}
	consumers := map[string]*loadedConsumer{}
	get := func(id string) *loaded {
		l := byGroup[id]
		if l == nil {
			l = &loaded{offsets: map[tp]offset{}}
			byGroup[id] = l
		}
		return l
	}
	total := 0
	for p := range c.parts {
		if !c.owns(int32(p)) {
			continue
		}
		r, err := c.replayPartition(ctx, int32(p))
		if err != nil {
			return fmt.Errorf("group: replay %s partition %d: %w", OffsetsTopic, p, err)
		}
		total += r.records
		ps := c.parts[p]
		ps.records += r.records
		if r.lastKey != nil {
			ps.lastKey = r.lastKey
		}
		for k, v := range r.written {
			ps.written[k] = v
			ps.pos[k] = keyPos{at: r.pos[k]}
			off := r.pos[k]
			switch binary.BigEndian.Uint16([]byte(k)) {
			case 0, 1:
				var key kmsg.OffsetCommitKey
				if err := key.ReadFrom([]byte(k)); err != nil {
					return fmt.Errorf("group: %s partition %d offset %d: offset commit key: %w", OffsetsTopic, p, off, err)
				}
				o, err := decodeOffset(v, off)
				if err != nil {
					return fmt.Errorf("group: %s partition %d offset %d: offset commit value: %w", OffsetsTopic, p, off, err)
				}
				get(key.Group).offsets[tp{key.Topic, key.Partition}] = o
			case 2:
				var key kmsg.GroupMetadataKey
				if err := key.ReadFrom([]byte(k)); err != nil {
					return fmt.Errorf("group: %s partition %d offset %d: group metadata key: %w", OffsetsTopic, p, off, err)
				}
				var val kmsg.GroupMetadataValue
				if err := val.ReadFrom(v); err != nil {
					return fmt.Errorf("group: %s partition %d offset %d: group metadata value: %w", OffsetsTopic, p, off, err)
				}
				get(key.Group).meta = &val
			default:
				// Consumer groups (KIP-848) have kinds of their own;
				// Kafka's other record kinds are not written by Vigil.
				ok, err := decodeConsumerRecord([]byte(k), v, consumers)
				if err != nil {
					return fmt.Errorf("group: %s partition %d offset %d: %w", OffsetsTopic, p, off, err)
				}
				if ok {
					get(consumerGroupName([]byte(k)))
				}
			}
		}
		for pid, m := range r.pending {
			for k, pr := range m {
				var key kmsg.OffsetCommitKey
				if err := key.ReadFrom([]byte(k)); err != nil {
					return fmt.Errorf("group: %s partition %d offset %d: offset commit key: %w", OffsetsTopic, p, pr.at, err)
				}
				o, err := decodeOffset(pr.value, pr.at)
				if err != nil {
					return fmt.Errorf("group: %s partition %d offset %d: offset commit value: %w", OffsetsTopic, p, pr.at, err)
				}
				l := get(key.Group)
				if l.txn == nil {
					l.txn = map[int64]map[tp][]*txnOffset{}
				}
				if l.txn[pid] == nil {
					l.txn[pid] = map[tp][]*txnOffset{}
				}
				l.txn[pid][tp{key.Topic, key.Partition}] = []*txnOffset{{o: o, value: pr.value, at: pr.at}}
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, l := range byGroup {
		if l.meta == nil && len(l.offsets) == 0 && len(l.txn) == 0 && (consumers[id] == nil || consumers[id].group == nil) {
			continue // deleted
		}
		g := newGroup(id)
		g.offsets = l.offsets
		g.txn = l.txn
		for pid := range l.txn {
			if c.txnGroups[pid] == nil {
				c.txnGroups[pid] = map[string]bool{}
			}
			c.txnGroups[pid][id] = true
		}
		if md := l.meta; md != nil {
			g.protocolType, g.generation = md.ProtocolType, md.Generation
			if md.Protocol != nil {
				g.protocol = *md.Protocol
			}
			if md.Leader != nil {
				g.leader = *md.Leader
			}
			for _, vm := range md.Members {
				g.nextOrder++
				m := &member{id: vm.MemberID, clientID: vm.ClientID, host: vm.ClientHost,
					session: ms(vm.SessionTimeoutMillis), rebalance: ms(vm.RebalanceTimeoutMillis),
					protocolType: md.ProtocolType, protocols: []protocol{{g.protocol, vm.Subscription}},
					assignment: vm.Assignment, joinOrder: g.nextOrder}
				if md.Version < 1 {
					m.rebalance = m.session
				}
				if vm.InstanceID != nil {
					m.instanceID = *vm.InstanceID
					g.instances[m.instanceID] = m.id
				}
				g.members[m.id] = m
				c.startSessionLocked(g, m)
			}
			if g.members[g.leader] == nil {
				g.leader = ""
			}
			if len(g.members) > 0 {
				g.transition(Stable)
			} else if md.Version >= 2 && md.CurrentStateTimestamp > 0 {
				// When it became Empty (the record written then), so
				// offset retention counts across restarts, as in Kafka.
				g.stateTs = md.CurrentStateTimestamp
			}
		}
		if l := consumers[id]; l != nil {
			c.restoreConsumerLocked(g, l)
		}
		c.groups[id] = g
	}
	for p := range c.parts {
		if c.owns(int32(p)) {
			c.maybeSnapshotLocked(int32(p))
		}
	}
	// The server says at Info what it loaded, once for all partitions.
	c.log.Debug("consumer groups loaded", "partitions", c.ownedDesc(), "groups", len(c.groups), "records_replayed", total, "took", time.Since(start))
	return nil
}
