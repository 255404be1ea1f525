package group

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Reconciliation of consumer groups (KIP-848): the subscribed topics as
// they are, the target assignment computed from them, and each member's
// next step towards its target.
// topicMeta is one subscribed topic as the assignor sees it.
type topicMeta struct {
	name       string
	id         [16]byte
	partitions int32
}

// resolve returns the existing topics m subscribes to, by name and by
// regex over all (the list read once per call through all).
func (c *Coordinator) resolve(m *cmember, all func() []string) []string {
	var out []string
	for _, t := range m.topics {
		if _, _, ok := c.topics.TopicInfo(t); ok {
			out = append(out, t)
		}
	}
	if m.re != nil {
		for _, t := range all() {
			if !internalTopic(t) && m.re.MatchString(t) && !slices.Contains(m.topics, t) && (m.canDescribe == nil || m.canDescribe(t)) {
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return out
}

// internalTopic: Kafka's internal topics are never assigned through a
// regex.
func internalTopic(t string) bool { return t == OffsetsTopic || t == "__transaction_state" }

// subscriptionMeta fingerprints the topics the members subscribe to.
func (c *Coordinator) subscriptionMeta(cg *consumerGroup) (string, map[[16]byte]string) {
	var names []string
	listed := false
	all := func() []string {
		if !listed {
			names, listed = c.topics.TopicNames(), true
		}
		return names
	}
	set := map[string]bool{}
	for _, m := range cg.members {
		for _, t := range c.resolve(m, all) {
			set[t] = true
		}
	}
	topics := slices.Sorted(maps.Keys(set))
	var b strings.Builder
	ids := map[[16]byte]string{}
	for _, t := range topics {
		id, n, ok := c.topics.TopicInfo(t)
		if !ok {
			continue
		}
		ids[id] = t
		fmt.Fprintf(&b, "%s/%x/%d;", t, id, n)
	}
	return b.String(), ids
}

// computeTarget runs the group's assignor and sets every member's target;
// it returns the members whose target changed.
func (c *Coordinator) computeTarget(cg *consumerGroup) []*cmember {
	var names []string
	listed := false
	all := func() []string {
		if !listed {
			names, listed = c.topics.TopicNames(), true
		}
		return names
	}
	ids := slices.Sorted(maps.Keys(cg.members))
	subs := make(map[string][]topicMeta, len(ids))
	metas := map[string]topicMeta{}
	for _, id := range ids {
		for _, t := range c.resolve(cg.members[id], all) {
			tm, ok := metas[t]
			if !ok {
				tid, n, exists := c.topics.TopicInfo(t)
				if !exists {
					continue
				}
				tm = topicMeta{t, tid, n}
				metas[t] = tm
			}
			subs[id] = append(subs[id], tm)
		}
	}
	prev := make(map[string]pset, len(ids))
	for _, id := range ids {
		prev[id] = cg.members[id].target
	}
	var target map[string]pset
	if groupAssignor(cg) == "range" {
		target = assignRange(ids, subs)
	} else {
		target = assignUniform(ids, subs, prev)
	}
	var changed []*cmember
	for _, id := range ids {
		m := cg.members[id]
		t := target[id]
		if t == nil {
			t = pset{}
		}
		if !t.equal(m.target) {
			m.target = t
			changed = append(changed, m)
		}
	}
	return changed
}

// groupAssignor is the assignor most members ask for (ties to the first
// in Kafka's default order), else the default.
func groupAssignor(cg *consumerGroup) string {
	votes := map[string]int{}
	for _, m := range cg.members {
		if m.assignor != "" {
			votes[m.assignor]++
		}
	}
	best, n := assignors[0], 0
	for _, a := range assignors {
		if votes[a] > n {
			best, n = a, votes[a]
		}
	}
	return best
}

// reconcile moves m towards its target, Kafka's CurrentAssignmentBuilder;
// owned is what the member reported owning (nil: not reported). It
// reports whether m changed.
func (c *Coordinator) reconcile(cg *consumerGroup, m *cmember, owned pset, subChanged bool) bool {
	if m.epoch == staticLeaveEpoch {
		return false
	}
	switch m.state {
	case memberStable:
		if m.epoch != cg.assignEpoch {
			return c.nextAssignment(cg, m)
		}
		if subChanged {
			return c.nextAssignment(cg, m)
		}
	case memberUnrevoked:
		if owned != nil {
			for t := range m.revoking {
				if owned.has(t) {
					return false // still owns some: wait
				}
			}
			return c.nextAssignment(cg, m)
		}
	case memberUnreleased:
		return c.nextAssignment(cg, m)
	}
	return false
}

// nextAssignment computes m's next step: revoke what the target no
// longer holds (keeping the epoch), else take every target partition
// that is free and move to the assignment epoch.
func (c *Coordinator) nextAssignment(cg *consumerGroup, m *cmember) bool {
	keep, revoke := pset{}, pset{}
	for t := range m.assigned {
		if m.target.has(t) {
			keep[t] = struct{}{}
		} else {
			revoke[t] = struct{}{}
		}
	}
	// Partitions m was revoking and reported gone are free now.
	for t := range m.revoking {
		if cg.owner[t] == m.id {
			delete(cg.owner, t)
		}
	}
	oldEpoch, oldState, oldAssigned, oldRevoking := m.epoch, m.state, m.assigned, m.revoking
	if len(revoke) > 0 {
		m.assigned, m.revoking, m.state = keep, revoke, memberUnrevoked
	} else {
		unreleased := false
		for t := range m.target {
			if keep.has(t) {
				continue
			}
			if o, ok := cg.owner[t]; ok && o != m.id {
				unreleased = true
				continue
			}
			keep[t] = struct{}{}
			if !oldAssigned.has(t) {
				m.since[t] = cg.assignEpoch
			}
		}
		m.assigned, m.revoking = keep, pset{}
		m.state = memberStable
		if unreleased {
			m.state = memberUnreleased
		}
		if m.epoch != cg.assignEpoch {
			m.prevEpoch, m.epoch = m.epoch, cg.assignEpoch
		}
	}
	for t := range m.since {
		if !m.assigned.has(t) && !m.revoking.has(t) {
			delete(m.since, t)
		}
	}
	for t := range m.assigned {
		cg.owner[t] = m.id
	}
	for t := range m.revoking {
		cg.owner[t] = m.id
	}
	return m.epoch != oldEpoch || m.state != oldState || !m.assigned.equal(oldAssigned) || !m.revoking.equal(oldRevoking)
}

// assignmentOf is a member's partitions in a heartbeat response.
func assignmentOf(s pset) *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
	for _, tp := range byTopic(s) {
		a.Topics = append(a.Topics, kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{TopicID: tp.id, Partitions: tp.parts})
	}
	if a.Topics == nil {
		a.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	}
	return &a
}

type topicParts struct {
	id    [16]byte
	parts []int32
}

// byTopic groups a set by topic id, each sorted, in id order.
func byTopic(s pset) []topicParts {
	m := map[[16]byte][]int32{}
	for t := range s {
		m[t.id] = append(m[t.id], t.p)
	}
	out := make([]topicParts, 0, len(m))
	for id, ps := range m {
		slices.Sort(ps)
		out = append(out, topicParts{id, ps})
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i].id[:]) < string(out[j].id[:]) })
	return out
}
