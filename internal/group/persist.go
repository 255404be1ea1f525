package group

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
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
}

// Load rebuilds groups and committed offsets by replaying every partition
// of the offsets log from its log start. Groups whose last metadata has
// members come back Stable with their generation, members and assignments
// (members that do not heartbeat within their session are removed, and a
// member that does keeps its generation, as after a Kafka coordinator
// move); groups without members come back Empty.
func (c *Coordinator) Load(ctx context.Context) error {
	start := time.Now()
	byGroup := map[string]*loaded{}
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
		ps := c.parts[p]
		err := c.olog.Replay(ctx, int32(p), func(off int64, r Record) error {
			total++
			ps.records++
			ps.lastKey = r.Key
			if r.Value == nil {
				delete(ps.written, string(r.Key))
			} else {
				ps.written[string(r.Key)] = r.Value
			}
			if len(r.Key) < 2 {
				return fmt.Errorf("offsets log partition %d offset %d: key of %d bytes", p, off, len(r.Key))
			}
			switch v := int16(binary.BigEndian.Uint16(r.Key)); v {
			case 0, 1:
				var k kmsg.OffsetCommitKey
				if err := k.ReadFrom(r.Key); err != nil {
					return fmt.Errorf("offsets log partition %d offset %d: offset commit key: %w", p, off, err)
				}
				l := get(k.Group)
				key := tp{k.Topic, k.Partition}
				if r.Value == nil {
					delete(l.offsets, key)
					return nil
				}
				var val kmsg.OffsetCommitValue
				if err := val.ReadFrom(r.Value); err != nil {
					return fmt.Errorf("offsets log partition %d offset %d: offset commit value: %w", p, off, err)
				}
				epoch := val.LeaderEpoch
				if val.Version < 3 {
					epoch = -1
				}
				l.offsets[key] = offset{offset: val.Offset, leaderEpoch: epoch, metadata: val.Metadata, commitTs: val.CommitTimestamp}
			case 2:
				var k kmsg.GroupMetadataKey
				if err := k.ReadFrom(r.Key); err != nil {
					return fmt.Errorf("offsets log partition %d offset %d: group metadata key: %w", p, off, err)
				}
				l := get(k.Group)
				if r.Value == nil {
					l.meta = nil
					return nil
				}
				var val kmsg.GroupMetadataValue
				if err := val.ReadFrom(r.Value); err != nil {
					return fmt.Errorf("offsets log partition %d offset %d: group metadata value: %w", p, off, err)
				}
				l.meta = &val
			default:
				// Kafka's other record kinds (e.g. consumer-protocol
				// records of KIP-848) are not written by Vigil; skip them.
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("group: replay %s partition %d: %w", OffsetsTopic, p, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, l := range byGroup {
		if l.meta == nil && len(l.offsets) == 0 {
			continue // deleted
		}
		g := newGroup(id)
		g.offsets = l.offsets
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
