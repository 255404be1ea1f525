package group

import "slices"

// The server-side assignors of consumer groups (KIP-848), named as
// Kafka's: each maps the members (sorted ids) and the topics each
// subscribes to onto a target assignment.

// assignUniform is Kafka's "uniform" assignor: every member gets the same
// number of partitions, give or take one, among those it subscribes to,
// and a partition stays with its previous target owner whenever that
// keeps the balance, so a rebalance moves as few partitions as it can.
func assignUniform(ids []string, subs map[string][]topicMeta, prev map[string]pset) map[string]pset {
	out := make(map[string]pset, len(ids))
	for _, id := range ids {
		out[id] = pset{}
	}
	// Who may own each partition, and the partitions in a fixed order.
	eligible := map[[16]byte][]string{}
	var topics []topicMeta
	for _, id := range ids {
		for _, t := range subs[id] {
			if _, seen := eligible[t.id]; !seen {
				topics = append(topics, t)
			}
			eligible[t.id] = append(eligible[t.id], id)
		}
	}
	slices.SortFunc(topics, func(a, b topicMeta) int {
		if a.name < b.name {
			return -1
		}
		if a.name > b.name {
			return 1
		}
		return 0
	})
	var parts []tpart
	for _, t := range topics {
		for p := range t.partitions {
			parts = append(parts, tpart{t.id, p})
		}
	}
	if len(parts) == 0 || len(ids) == 0 {
		return out
	}
	// The quota of a member: its fair share among the members sharing
	// its topics. With one subscription for all (the usual case) it is
	// ceil(partitions / members); with different subscriptions it bounds
	// what stickiness may keep, and the rest goes to the least loaded.
	quota := func(id string) int {
		n := 0
		for _, t := range subs[id] {
			n += int(t.partitions)
		}
		members := 1
		for _, other := range ids {
			if other != id && sharesTopic(subs[id], subs[other]) {
				members++
			}
		}
		return (n + members - 1) / members
	}
	quotas := make(map[string]int, len(ids))
	for _, id := range ids {
		quotas[id] = quota(id)
	}
	// Exact balance for a shared subscription: the first total%members
	// members (by current load, then id) may hold one more.
	base := len(parts) / len(ids)
	extra := len(parts) % len(ids)
	homogeneous := true
	for _, id := range ids[1:] {
		if !sameTopics(subs[id], subs[ids[0]]) {
			homogeneous = false
		}
	}
	var unassigned []tpart
	// Stickiness: keep previous owners up to the balanced share.
	keepCap := func(id string) int {
		if homogeneous {
			return base + 1
		}
		return quotas[id]
	}
	for _, t := range parts {
		kept := false
		for _, id := range eligible[t.id] {
			if prev[id].has(t) && len(out[id]) < keepCap(id) {
				out[id][t] = struct{}{}
				kept = true
				break
			}
		}
		if !kept {
			unassigned = append(unassigned, t)
		}
	}
	if homogeneous {
		// At most extra members may sit at base+1: trim the rest.
		over := 0
		for _, id := range ids {
			if len(out[id]) > base {
				over++
			}
		}
		for _, id := range ids {
			if over <= extra {
				break
			}
			if len(out[id]) > base {
				for t := range out[id] {
					delete(out[id], t)
					unassigned = append(unassigned, t)
					break
				}
				over--
			}
		}
		slices.SortFunc(unassigned, cmpTpart)
	}
	for _, t := range unassigned {
		best := ""
		for _, id := range eligible[t.id] {
			if best == "" || len(out[id]) < len(out[best]) {
				best = id
			}
		}
		out[best][t] = struct{}{}
	}
	return out
}

func cmpTpart(a, b tpart) int {
	if c := slices.Compare(a.id[:], b.id[:]); c != 0 {
		return c
	}
	return int(a.p - b.p)
}

func sharesTopic(a, b []topicMeta) bool {
	for _, x := range a {
		for _, y := range b {
			if x.id == y.id {
				return true
			}
		}
	}
	return false
}

func sameTopics(a, b []topicMeta) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].id != b[i].id {
			return false
		}
	}
	return true
}

// assignRange is Kafka's "range" assignor: for each topic, its members in
// id order get contiguous ranges of partitions, the first
// partitions%members one more; members subscribed to the same topics get
// the same partition numbers of each (co-partitioning).
func assignRange(ids []string, subs map[string][]topicMeta) map[string]pset {
	out := make(map[string]pset, len(ids))
	byTopicID := map[[16]byte][]string{}
	metas := map[[16]byte]topicMeta{}
	for _, id := range ids {
		out[id] = pset{}
		for _, t := range subs[id] {
			byTopicID[t.id] = append(byTopicID[t.id], id)
			metas[t.id] = t
		}
	}
	for tid, members := range byTopicID {
		n := int(metas[tid].partitions)
		per, extra := n/len(members), n%len(members)
		p := 0
		for i, id := range members {
			k := per
			if i < extra {
				k++
			}
			for j := 0; j < k; j++ {
				out[id][tpart{tid, int32(p)}] = struct{}{}
				p++
			}
		}
	}
	return out
}
