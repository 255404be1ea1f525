package group

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// Consumer groups (KIP-848) persist in __consumer_offsets as records of
// their own kinds, beside the offsets they share with classic groups: one
// record per group (its epochs) and one per member (its subscription, its
// member epoch and assignment, its target). kmsg has no encoders for
// Kafka's own KIP-848 record types, so the kinds are Vigil's: key
// versions Kafka does not use, with a JSON value. A Kafka tool reading
// the topic skips them as unknown; a tombstone of a member removes it, a
// tombstone of the group leaves an empty group with its offsets.
const (
	consumerGroupKeyVersion  = 0x7601
	consumerMemberKeyVersion = 0x7602
)

// appendKeyString appends a string as Kafka's record keys do: int16
// length, bytes.
func appendKeyString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func readKeyString(b []byte) (string, []byte, error) {
	if len(b) < 2 {
		return "", nil, fmt.Errorf("short key")
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return "", nil, fmt.Errorf("short key string")
	}
	return string(b[2 : 2+n]), b[2+n:], nil
}

func consumerGroupKey(groupID string) []byte {
	b := binary.BigEndian.AppendUint16(nil, consumerGroupKeyVersion)
	return appendKeyString(b, groupID)
}

func consumerMemberKey(groupID, memberID string) []byte {
	b := binary.BigEndian.AppendUint16(nil, consumerMemberKeyVersion)
	b = appendKeyString(b, groupID)
	return appendKeyString(b, memberID)
}

// consumerGroupValue is the stored form of a consumer group.
type consumerGroupValue struct {
	Epoch       int32 `json:"epoch"`
	AssignEpoch int32 `json:"assignment_epoch"`
	// Meta fingerprints the subscribed topics the target was computed
	// for, so a topic created while no coordinator ran is noticed.
	Meta string `json:"subscription_metadata"`
}

// storedPart is one topic's partitions of a stored assignment.
type storedPart struct {
	TopicID    [16]byte `json:"topic_id"`
	Partitions []int32  `json:"partitions"`
	// Since is the member epoch each partition was given at (assigned
	// partitions only), parallel to Partitions.
	Since []int32 `json:"since,omitempty"`
}

// consumerMemberValue is the stored form of a member.
type consumerMemberValue struct {
	InstanceID  string       `json:"instance_id,omitempty"`
	RackID      string       `json:"rack_id,omitempty"`
	ClientID    string       `json:"client_id"`
	ClientHost  string       `json:"client_host"`
	Topics      []string     `json:"subscribed_topic_names,omitempty"`
	Regex       string       `json:"subscribed_topic_regex,omitempty"`
	Assignor    string       `json:"server_assignor,omitempty"`
	RebalanceMs int64        `json:"rebalance_timeout_ms"`
	Epoch       int32        `json:"member_epoch"`
	PrevEpoch   int32        `json:"previous_member_epoch"`
	State       int8         `json:"state"`
	Assigned    []storedPart `json:"assigned_partitions"`
	Revoking    []storedPart `json:"partitions_pending_revocation"`
	Target      []storedPart `json:"target_partitions"`
	// Classic is set for a member speaking the classic protocol.
	Classic *storedClassic `json:"classic,omitempty"`
}

// storedClassic is what a classic member of a consumer group keeps.
type storedClassic struct {
	SessionMs int64            `json:"session_timeout_ms"`
	Protocols []storedProtocol `json:"protocols"`
}

type storedProtocol struct {
	Name     string `json:"name"`
	Metadata []byte `json:"metadata"`
}

func (c *Coordinator) consumerGroupRecord(g *group) Record {
	v, _ := json.Marshal(consumerGroupValue{Epoch: g.cons.epoch, AssignEpoch: g.cons.assignEpoch, Meta: g.cons.meta})
	return Record{Key: consumerGroupKey(g.id), Value: v}
}

func storeSet(s pset, since map[tpart]int32) []storedPart {
	var out []storedPart
	for _, tp := range byTopic(s) {
		sp := storedPart{TopicID: tp.id, Partitions: tp.parts}
		if since != nil {
			sp.Since = make([]int32, len(tp.parts))
			for i, p := range tp.parts {
				sp.Since[i] = since[tpart{tp.id, p}]
			}
		}
		out = append(out, sp)
	}
	return out
}

func loadSet(parts []storedPart, since map[tpart]int32) pset {
	s := pset{}
	for _, sp := range parts {
		for i, p := range sp.Partitions {
			t := tpart{sp.TopicID, p}
			s[t] = struct{}{}
			if since != nil && i < len(sp.Since) {
				since[t] = sp.Since[i]
			}
		}
	}
	return s
}

func consumerMemberRecord(groupID string, m *cmember) Record {
	v := consumerMemberValue{InstanceID: m.instance, RackID: m.rack, ClientID: m.clientID, ClientHost: m.host,
		Topics: m.topics, Regex: m.regex, Assignor: m.assignor, RebalanceMs: m.rebalance.Milliseconds(),
		Epoch: m.epoch, PrevEpoch: m.prevEpoch, State: int8(m.state),
		Assigned: storeSet(m.assigned, m.since), Revoking: storeSet(m.revoking, nil), Target: storeSet(m.target, nil)}
	if m.classic != nil {
		v.Classic = &storedClassic{SessionMs: m.classic.session.Milliseconds()}
		for _, p := range m.classic.protocols {
			v.Classic.Protocols = append(v.Classic.Protocols, storedProtocol{p.name, p.metadata})
		}
	}
	b, _ := json.Marshal(v)
	return Record{Key: consumerMemberKey(groupID, m.id), Value: b}
}

// loadedConsumer is what a replay learns about one consumer group.
type loadedConsumer struct {
	group   *consumerGroupValue
	members map[string]*consumerMemberValue
}

// decodeConsumerRecord reads a consumer group record of the replay into
// byGroup; ok is false when key is of another kind.
func decodeConsumerRecord(key, value []byte, byGroup map[string]*loadedConsumer) (bool, error) {
	if len(key) < 2 {
		return false, nil
	}
	kind := binary.BigEndian.Uint16(key)
	if kind != consumerGroupKeyVersion && kind != consumerMemberKeyVersion {
		return false, nil
	}
	gid, rest, err := readKeyString(key[2:])
	if err != nil {
		return true, err
	}
	l := byGroup[gid]
	if l == nil {
		l = &loadedConsumer{members: map[string]*consumerMemberValue{}}
		byGroup[gid] = l
	}
	if kind == consumerGroupKeyVersion {
		var v consumerGroupValue
		if err := json.Unmarshal(value, &v); err != nil {
			return true, fmt.Errorf("consumer group %s: %w", gid, err)
		}
		l.group = &v
		return true, nil
	}
	mid, _, err := readKeyString(rest)
	if err != nil {
		return true, err
	}
	var v consumerMemberValue
	if err := json.Unmarshal(value, &v); err != nil {
		return true, fmt.Errorf("consumer group %s member %s: %w", gid, mid, err)
	}
	if v.Regex != "" {
		if _, err := regexp.Compile(v.Regex); err != nil {
			return true, fmt.Errorf("consumer group %s member %s: regex: %w", gid, mid, err)
		}
	}
	l.members[mid] = &v
	return true, nil
}

// restoreConsumerLocked rebuilds a consumer group from its records: its
// members keep their epochs and assignments, so they go on heartbeating
// as if the coordinator had not moved, and those that do not are removed
// at their session timeout. Members without a group record (it was
// tombstoned after them) are dropped.
func (c *Coordinator) restoreConsumerLocked(g *group, l *loadedConsumer) {
	if l.group == nil {
		return
	}
	cg := newConsumerGroup()
	cg.epoch, cg.assignEpoch = l.group.Epoch, l.group.AssignEpoch
	g.cons = cg
	g.protocolType, g.protocol, g.leader, g.generation = ConsumerGroupType, "", "", 0
	for id, v := range l.members {
		m := &cmember{id: id, instance: v.InstanceID, rack: v.RackID, clientID: v.ClientID, host: v.ClientHost,
			topics: v.Topics, assignor: v.Assignor, rebalance: time.Duration(v.RebalanceMs) * time.Millisecond,
			epoch: v.Epoch, prevEpoch: v.PrevEpoch, state: memberState(v.State), since: map[tpart]int32{}}
		m.setRegex(v.Regex)
		if v.Classic != nil {
			m.classic = &classicInfo{session: time.Duration(v.Classic.SessionMs) * time.Millisecond}
			for _, p := range v.Classic.Protocols {
				m.classic.protocols = append(m.classic.protocols, protocol{p.Name, p.Metadata})
			}
		}
		m.assigned = loadSet(v.Assigned, m.since)
		m.revoking = loadSet(v.Revoking, nil)
		m.target = loadSet(v.Target, nil)
		cg.members[id] = m
		if m.instance != "" {
			cg.statics[m.instance] = id
		}
		for t := range m.assigned {
			cg.owner[t] = id
		}
		for t := range m.revoking {
			cg.owner[t] = id
		}
		c.touchConsumerLocked(g, m)
	}
	// Compared again at the first heartbeat: a topic created while no
	// coordinator served the group bumps the epoch then.
	cg.meta = l.group.Meta
	_, cg.names = c.subscriptionMeta(cg)
	if len(cg.members) > 0 {
		g.transition(Stable)
	}
}

// consumerGroupName is the group id of a consumer group record's key.
func consumerGroupName(key []byte) string {
	gid, _, _ := readKeyString(key[2:])
	return gid
}
