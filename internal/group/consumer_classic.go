package group

import (
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Online migration between the classic and the consumer protocol, as
// Kafka 4.0 does it (group.consumer.migration.policy=bidirectional, its
// default): a consumer-protocol member joining a Stable classic group of
// consumers converts it into a consumer group whose classic members stay,
// keeping their generation as member epoch and their assignment; they go
// on through JoinGroup, SyncGroup and Heartbeat, and the coordinator's
// assignor now decides their partitions too. A classic member learns of a
// new assignment by REBALANCE_IN_PROGRESS on its heartbeat; its rejoin
// reports the partitions it still owns (in its subscription's owned
// partitions; an eager member owns none once it rejoins), which is how it
// reports revocations, and its SyncGroup returns its assignment. When the
// last consumer-protocol member leaves a group that still has classic
// members, the group converts back into a classic group and rebalances.

// classicInfo is what a member of a consumer group that speaks the
// classic protocol keeps of it.
type classicInfo struct {
	session   time.Duration
	protocols []protocol
}

// subscription decodes a classic member's consumer-protocol metadata:
// the first of its protocols that decodes, its topics and owned
// partitions.
func subscription(protos []protocol) (name string, md kmsg.ConsumerMemberMetadata, ok bool) {
	for _, p := range protos {
		var m kmsg.ConsumerMemberMetadata
		if err := m.ReadFrom(p.metadata); err == nil {
			return p.name, m, true
		}
	}
	return "", md, false
}

// upgradeLocked converts a Stable classic group of consumers into a
// consumer group keeping its members; it returns the records that make
// this durable, or an error when the group cannot be converted.
func (c *Coordinator) upgradeLocked(g *group) ([]Record, *kerr.Error, string) {
	if g.state != Stable || g.protocolType != "consumer" || len(g.pending) > 0 {
		return nil, kerr.GroupIDNotFound, "group " + g.id + " is a classic group that is not Stable or not of consumers; it cannot be converted"
	}
	cg := newConsumerGroup()
	cg.epoch, cg.assignEpoch = g.generation, g.generation
	for _, m := range g.ordered() {
		md, err := decodeMetadata(m.metadataFor(g.protocol))
		if err != nil {
			return nil, kerr.GroupIDNotFound, "group " + g.id + ": member " + m.id + " has a subscription that cannot be read"
		}
		var as kmsg.ConsumerMemberAssignment
		if len(m.assignment) > 0 {
			if err := as.ReadFrom(m.assignment); err != nil {
				return nil, kerr.GroupIDNotFound, "group " + g.id + ": member " + m.id + " has an assignment that cannot be read"
			}
		}
		cm := &cmember{id: m.id, instance: m.instanceID, clientID: m.clientID, host: m.host, rebalance: m.rebalance,
			epoch: g.generation, prevEpoch: g.generation, state: memberStable, assigned: pset{}, revoking: pset{}, target: pset{},
			since: map[tpart]int32{}, classic: &classicInfo{session: m.session, protocols: m.protocols}}
		cm.topics = slices.Compact(slices.Sorted(slices.Values(md.Topics)))
		for _, t := range as.Topics {
			id, _, ok := c.topics.TopicInfo(t.Topic)
			if !ok {
				continue
			}
			for _, p := range t.Partitions {
				tp := tpart{id, p}
				if _, taken := cg.owner[tp]; taken {
					continue
				}
				cm.assigned[tp], cm.target[tp] = struct{}{}, struct{}{}
				cm.since[tp] = g.generation
				cg.owner[tp] = m.id
			}
		}
		cg.members[m.id] = cm
		if cm.instance != "" {
			cg.statics[cm.instance] = m.id
		}
	}
	g.stopTimers()
	for _, m := range g.members {
		m.removed = true
	}
	g.members, g.instances = map[string]*member{}, map[string]string{}
	g.cons = cg
	g.protocol, g.leader = "", ""
	cg.meta, cg.names = c.subscriptionMeta(cg)
	recs := []Record{{Key: groupKey(g.id)}, c.consumerGroupRecord(g)}
	for _, m := range cg.members {
		c.touchConsumerLocked(g, m)
		recs = append(recs, consumerMemberRecord(g.id, m))
	}
	c.log.Info("classic group converted to a consumer group", "group", g.id, "members", len(cg.members), "epoch", cg.epoch)
	return recs, nil, ""
}

func decodeMetadata(b []byte) (kmsg.ConsumerMemberMetadata, error) {
	var md kmsg.ConsumerMemberMetadata
	err := md.ReadFrom(b)
	return md, err
}

// maybeDowngradeLocked converts g back into a classic group when only
// classic members are left, and starts a rebalance for them; it returns
// the records that make the conversion durable.
func (c *Coordinator) maybeDowngradeLocked(g *group) []Record {
	cg := g.cons
	if len(cg.members) == 0 {
		return nil
	}
	for _, m := range cg.members {
		if m.classic == nil {
			return nil
		}
	}
	recs := []Record{{Key: consumerGroupKey(g.id)}}
	g.cons = nil
	g.protocolType, g.generation = "consumer", cg.epoch
	g.members, g.instances = map[string]*member{}, map[string]string{}
	for _, id := range cg.memberIDs() {
		cm := cg.members[id]
		c.stopConsumerTimers(cm)
		recs = append(recs, Record{Key: consumerMemberKey(g.id, id)})
		g.nextOrder++
		m := &member{id: id, instanceID: cm.instance, clientID: cm.clientID, host: cm.host, session: cm.classic.session,
			rebalance: cm.rebalance, protocolType: "consumer", protocols: cm.classic.protocols, joinOrder: g.nextOrder,
			assignment: c.encodeAssignment(cg, cm.assigned)}
		g.members[id] = m
		if m.instanceID != "" {
			g.instances[m.instanceID] = id
		}
		c.startSessionLocked(g, m)
	}
	g.protocol = g.selectProtocol()
	g.leader = g.ordered()[0].id
	g.transition(Stable)
	recs = append(recs, c.groupRecord(g))
	c.log.Info("consumer group converted to a classic group", "group", g.id, "members", len(g.members), "generation", g.generation)
	// Its members rejoin through the classic protocol.
	c.maybePrepareRebalanceLocked(g)
	return recs
}

// encodeAssignment is a member's partitions as a classic consumer
// assignment (topic names).
func (c *Coordinator) encodeAssignment(cg *consumerGroup, s pset) []byte {
	as := kmsg.NewConsumerMemberAssignment()
	for _, tp := range byTopic(s) {
		name, ok := cg.names[tp.id]
		if !ok {
			continue
		}
		as.Topics = append(as.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: name, Partitions: tp.parts})
	}
	slices.SortFunc(as.Topics, func(a, b kmsg.ConsumerMemberAssignmentTopic) int {
		if a.Topic < b.Topic {
			return -1
		}
		if a.Topic > b.Topic {
			return 1
		}
		return 0
	})
	return as.AppendTo(nil)
}

// classicJoinLocked is a JoinGroup to a consumer group with members: the
// member joins (or rejoins) as a classic member, reconciles with the
// partitions its metadata says it still owns, and is answered at once
// with its member epoch as generation; it is never the leader, and its
// SyncGroup returns its assignment.
func (c *Coordinator) classicJoinLocked(g *group, req *kmsg.JoinGroupRequest, j joinReq, ch chan *kmsg.JoinGroupResponse) {
	cg := g.cons
	fail := func(e *kerr.Error, id string) { ch <- joinError(req.Version, e, id) }
	if j.ptype != "consumer" {
		fail(kerr.InconsistentGroupProtocol, req.MemberID)
		return
	}
	name, md, ok := subscription(j.protos)
	if !ok {
		fail(kerr.InconsistentGroupProtocol, req.MemberID)
		return
	}
	var m *cmember
	id := req.MemberID
	if j.instance != "" {
		if oldID, held := cg.statics[j.instance]; held && oldID != id {
			old := cg.members[oldID]
			if old != nil && old.classic == nil && old.epoch != staticLeaveEpoch {
				fail(kerr.UnreleasedInstanceID, id)
				return
			}
			if id == "" {
				id = j.instance + "-" + uuid.NewString()
			}
			if old != nil {
				m = c.replaceStaticLocked848(g, old, id)
			}
		}
	}
	dirty := map[*cmember]bool{}
	bump := false
	if m == nil && id != "" {
		m = cg.members[id]
		if m == nil || m.classic == nil {
			fail(kerr.UnknownMemberID, id)
			return
		}
	}
	if m == nil {
		id = j.clientID + "-" + uuid.NewString()
		if j.instance != "" {
			id = j.instance + "-" + uuid.NewString()
		}
		m = &cmember{id: id, instance: j.instance, assigned: pset{}, revoking: pset{}, target: pset{}, since: map[tpart]int32{}}
		cg.members[id] = m
		if j.instance != "" {
			cg.statics[j.instance] = id
		}
		bump = true
	}
	if m.epoch == staticLeaveEpoch {
		m.epoch = m.prevEpoch
	}
	m.classic = &classicInfo{session: j.session, protocols: j.protos}
	m.clientID, m.host, m.rebalance = j.clientID, j.host, j.rebalance
	topics := slices.Compact(slices.Sorted(slices.Values(md.Topics)))
	subChanged := !slices.Equal(topics, m.topics)
	if subChanged {
		m.topics, bump = topics, true
	}
	dirty[m] = true
	c.touchConsumerLocked(g, m)
	if meta, names := c.subscriptionMeta(cg); bump || meta != cg.meta {
		cg.meta, cg.names, cg.metaAt = meta, names, time.Now()
		cg.epoch++
	}
	if cg.epoch > cg.assignEpoch {
		for _, mm := range c.computeTarget(cg) {
			dirty[mm] = true
		}
		cg.assignEpoch = cg.epoch
	}
	owned := pset{}
	for _, op := range md.OwnedPartitions {
		if tid, _, ok := c.topics.TopicInfo(op.Topic); ok {
			for _, p := range op.Partitions {
				owned[tpart{tid, p}] = struct{}{}
			}
		}
	}
	c.reconcile(cg, m, owned, subChanged)
	if m.state == memberUnrevoked {
		c.startRevokeTimerLocked(g, m)
	} else if m.revokeTimer != nil {
		m.revokeTimer.Stop()
		m.revokeTimer = nil
	}
	recs := []Record{c.consumerGroupRecord(g)}
	for mm := range dirty {
		if cg.members[mm.id] == mm {
			recs = append(recs, consumerMemberRecord(g.id, mm))
		}
	}
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = req.Version
	resp.Generation, resp.MemberID, resp.Protocol, resp.ProtocolType = m.epoch, m.id, &name, kmsg.StringPtr("consumer")
	resp.Members = []kmsg.JoinGroupResponseMember{}
	c.persistThen(g, recs, func(err error) {
		if err != nil {
			ch <- joinError(req.Version, kerr.CoordinatorNotAvailable, m.id)
			return
		}
		ch <- resp
	})
}

// classicSyncLocked is a SyncGroup of a classic member of a consumer
// group: its assignment, the partitions it owns at its epoch.
func (c *Coordinator) classicSyncLocked(g *group, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	m := g.cons.members[req.MemberID]
	switch {
	case m == nil || m.classic == nil:
		return syncError(kerr.UnknownMemberID)
	case req.Generation != m.epoch:
		return syncError(kerr.IllegalGeneration)
	case req.ProtocolType != nil && *req.ProtocolType != "consumer":
		return syncError(kerr.InconsistentGroupProtocol)
	}
	c.touchConsumerLocked(g, m)
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.ProtocolType = kmsg.StringPtr("consumer")
	resp.Protocol = req.Protocol
	resp.MemberAssignment = c.encodeAssignment(g.cons, m.assigned)
	return resp
}

// classicHeartbeatLocked is a Heartbeat of a classic member of a
// consumer group: REBALANCE_IN_PROGRESS while it has not reached its
// target, so it rejoins to learn its next assignment.
func (c *Coordinator) classicHeartbeatLocked(g *group, req *kmsg.HeartbeatRequest) int16 {
	cg := g.cons
	m := cg.members[req.MemberID]
	switch {
	case m == nil || m.classic == nil:
		return kerr.UnknownMemberID.Code
	case req.Generation != m.epoch:
		return kerr.IllegalGeneration.Code
	}
	c.touchConsumerLocked(g, m)
	if cg.epoch > cg.assignEpoch {
		var recs []Record
		for _, mm := range c.computeTarget(cg) {
			recs = append(recs, consumerMemberRecord(g.id, mm))
		}
		cg.assignEpoch = cg.epoch
		recs = append(recs, c.consumerGroupRecord(g))
		c.persistThen(g, recs, func(error) {})
	}
	if m.epoch != cg.assignEpoch || m.state != memberStable || !m.assigned.equal(m.target) {
		if m.epoch != cg.assignEpoch {
			c.startRevokeTimerLocked(g, m) // it must rejoin in time
		}
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// classicLeaveLocked removes a member of a consumer group by LeaveGroup.
func (c *Coordinator) classicLeaveLocked(g *group, l LeaveMember) int16 {
	cg := g.cons
	id := l.MemberID
	if l.InstanceID != "" {
		cur, ok := cg.statics[l.InstanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID.Code
		case id != "" && id != cur:
			return kerr.FencedInstanceID.Code
		}
		id = cur
	}
	m := cg.members[id]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	c.removeConsumerMemberLocked(g, m, nil, func(error) {})
	return 0
}
