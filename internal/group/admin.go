package group

import (
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Listing is one group in ListGroups: Type is "classic" or "consumer"
// (KIP-848), and a consumer group's State is its consumer group state.
type Listing struct {
	Group, ProtocolType, State, Type string
}

// List returns the groups, sorted by id, whose state is in states (all if
// empty; matched case-insensitively as Kafka does).
func (c *Coordinator) List(states []string) []Listing {
	want := map[string]bool{}
	for _, s := range states {
		want[strings.ToLower(s)] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Listing
	for id, g := range c.groups {
		st, typ := g.state.String(), ClassicGroupType
		if g.cons != nil {
			st, typ = g.cons.stateString(), ConsumerGroupType
		}
		if len(want) > 0 && !want[strings.ToLower(st)] {
			continue
		}
		out = append(out, Listing{id, g.protocolType, st, typ})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}

// Describe fills one DescribeGroups entry. A group that does not exist is
// reported Dead with no error before v6 and with GROUP_ID_NOT_FOUND from
// v6 on (KIP-1043). Member metadata and assignments are only reported
// while the group is Stable, as in Kafka.
func (c *Coordinator) Describe(id string, v int16) kmsg.DescribeGroupsResponseGroup {
	out := kmsg.DescribeGroupsResponseGroup{Group: id, State: Dead.String(), Members: []kmsg.DescribeGroupsResponseGroupMember{}}
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[id]
	if g == nil {
		if v >= 6 {
			out.ErrorCode = kerr.GroupIDNotFound.Code
			msg := "group " + id + " not found"
			out.ErrorMessage = &msg
		}
		return out
	}
	if g.cons != nil {
		// Kafka 4.0 answers a consumer group in DescribeGroups v6+ as
		// not a classic group; older versions see its state and members.
		if v >= 6 {
			out.ErrorCode = kerr.GroupIDNotFound.Code
			msg := "group " + id + " is not a classic group"
			out.ErrorMessage = &msg
		}
		out.State, out.ProtocolType = g.cons.stateString(), ConsumerGroupType
		for _, mid := range g.cons.memberIDs() {
			m := g.cons.members[mid]
			dm := kmsg.DescribeGroupsResponseGroupMember{MemberID: m.id, ClientID: m.clientID, ClientHost: m.host,
				ProtocolMetadata: []byte{}, MemberAssignment: []byte{}}
			if m.instance != "" {
				inst := m.instance
				dm.InstanceID = &inst
			}
			out.Members = append(out.Members, dm)
		}
		return out
	}
	out.State, out.ProtocolType = g.state.String(), g.protocolType
	stable := g.state == Stable
	if stable {
		out.Protocol = g.protocol
	}
	for _, m := range g.ordered() {
		dm := kmsg.DescribeGroupsResponseGroupMember{MemberID: m.id, ClientID: m.clientID, ClientHost: m.host,
			ProtocolMetadata: []byte{}, MemberAssignment: []byte{}}
		if m.instanceID != "" {
			inst := m.instanceID
			dm.InstanceID = &inst
		}
		if stable {
			if md := m.metadataFor(g.protocol); md != nil {
				dm.ProtocolMetadata = md
			}
			if m.assignment != nil {
				dm.MemberAssignment = m.assignment
			}
		}
		out.Members = append(out.Members, dm)
	}
	return out
}

// Delete deletes groups that have no members (DeleteGroups): their
// metadata and offsets get tombstones in the offsets log. codes[i] is the
// error of ids[i]; the channel yields once the tombstones are durable.
func (c *Coordinator) Delete(ids []string) <-chan []int16 {
	ch := make(chan []int16, 1)
	codes := make([]int16, len(ids))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		for i := range codes {
			codes[i] = kerr.CoordinatorNotAvailable.Code
		}
		ch <- codes
		return ch
	}
	pending := 0
	for i, id := range ids {
		g := c.groups[id]
		switch {
		case id == "":
			codes[i] = kerr.InvalidGroupID.Code
			continue
		case g == nil || g.state == Dead:
			codes[i] = kerr.GroupIDNotFound.Code
			continue
		case g.state != Empty || len(g.members) > 0:
			codes[i] = kerr.NonEmptyGroup.Code
			continue
		}
		g.stopTimers()
		g.transition(Dead)
		delete(c.groups, id)
		recs := []Record{{Key: groupKey(id)}, {Key: consumerGroupKey(id)}}
		// Tombstones for every offset the log may hold for the group:
		// those applied and those still on their way to durability.
		keys := map[string]bool{}
		for k := range g.offsets {
			keys[string(offsetKey(id, k.topic, k.partition))] = true
		}
		// And the pending transactional offsets (Kafka's
		// deleteAllOffsets): a replay drops them at the tombstone.
		for pid, m := range g.txn {
			for k := range m {
				keys[string(offsetKey(id, k.topic, k.partition))] = true
			}
			delete(c.txnGroups[pid], id)
			if len(c.txnGroups[pid]) == 0 {
				delete(c.txnGroups, pid)
			}
		}
		g.txn = nil
		p := c.partition(id)
		for k := range c.parts[p].written {
			if isOffsetKeyOf(k, id) {
				keys[k] = true
			}
		}
		for k := range keys {
			recs = append(recs, Record{Key: []byte(k)})
		}
		pending++
		c.appendLocked(p, recs, func(err error) {
			if err != nil {
				c.log.Error("delete group", "group", id, "err", err)
				codes[i] = kerr.CoordinatorNotAvailable.Code
			}
			pending--
			if pending == 0 {
				ch <- codes
			}
		})
	}
	if pending == 0 {
		ch <- codes
	}
	return ch
}

// isOffsetKeyOf reports whether key is an offset commit key of group id.
func isOffsetKeyOf(key, id string) bool {
	var k kmsg.OffsetCommitKey
	if len(key) < 2 || (key[1] != 0 && key[1] != 1) || key[0] != 0 {
		return false
	}
	if err := k.ReadFrom([]byte(key)); err != nil {
		return false
	}
	return k.Group == id
}
