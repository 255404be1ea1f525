package mirror

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
)

// quotaKeys are the client quota keys the mirror copies: the byte rates.
// The source's others (request_percentage, controller_mutation_rate),
// which Vigil also enforces, and its ip entities are not copied yet
// (docs/migration.md).
var quotaKeys = map[string]bool{"producer_byte_rate": true, "consumer_byte_rate": true}

// syncQuotas copies, with CopyConfig.Quotas, the source's byte-rate
// quotas of users and client ids, so that a replay job or a noisy
// producer stays throttled after cutover.
//
// A quota (an entity's key) the mirror set (recorded in StateTopic, by
// this run or an earlier one) follows the source: changed as it changes
// there, removed on Vigil once removed there. Every other quota on Vigil
// is Vigil's own and never touched, including one for the same entity
// and key as the source's that was there before the mirror would have
// set it (whatever its value: the source's differing one is logged).
func (m *Mirror) syncQuotas(ctx context.Context) {
	if !m.cfg.Quotas {
		return
	}
	src, err := m.srcAdm.DescribeClientQuotas(ctx, false, nil)
	if err != nil {
		m.log.Warn("mirror: source quotas not described", "err", err)
		m.metrics.error("quotas")
		return
	}
	dst, err := m.dstAdm.DescribeClientQuotas(ctx, false, nil)
	if err != nil {
		m.log.Warn("mirror: destination quotas not described", "err", err)
		m.metrics.error("quotas")
		return
	}
	want, entities := quotaValues(src)
	have, _ := quotaValues(dst)
	ops := map[string][]kadm.AlterClientQuotaOp{}
	var changed []string
	var record, tombstone []stateEntry
	type quotaID struct{ entity, key string }
	var set []quotaID
	var forget []quotaID
	for _, e := range slices.Sorted(maps.Keys(want)) {
		for _, k := range slices.Sorted(maps.Keys(want[e])) {
			w := want[e][k]
			h, has := have[e][k]
			_, mine := m.quotasCopied[e][k]
			switch {
			case has && !mine:
				if last, ok := m.quotasLeftLogged[e+" "+k]; h != w && (!ok || last != w) {
					m.log.Warn("mirror: quota on Vigil left as set there (not the mirror's)", "entity", e, "key", k, "vigil", h, "source", w)
				}
				m.quotasLeftLogged[e+" "+k] = w
				continue
			case has && h == w:
				continue
			}
			ops[e] = append(ops[e], kadm.AlterClientQuotaOp{Key: k, Value: w})
			changed = append(changed, fmt.Sprintf("%s %s=%v", e, k, w))
			if v, ok := m.quotasCopied[e][k]; !ok || v != w {
				record = append(record, stateEntry{key: quotaStateKey(m.sourceName, entities[e], k), quota: &w})
			}
			set = append(set, quotaID{e, k})
		}
	}
	for _, e := range slices.Sorted(maps.Keys(m.quotasCopied)) {
		for _, k := range slices.Sorted(maps.Keys(m.quotasCopied[e])) {
			if _, ok := want[e][k]; ok {
				continue
			}
			if _, ok := have[e][k]; ok {
				ops[e] = append(ops[e], kadm.AlterClientQuotaOp{Key: k, Remove: true})
				changed = append(changed, fmt.Sprintf("%s %s removed", e, k))
			}
			forget = append(forget, quotaID{e, k})
			tombstone = append(tombstone, stateEntry{key: quotaStateKey(m.sourceName, m.quotasCopiedEntities[e], k), gone: true})
		}
	}
	// Recorded before set, forgotten after removed (state.go).
	if err := m.state.put(ctx, record); err != nil {
		m.log.Warn("mirror: quotas not synced: not recorded", "quotas", changed, "err", err)
		m.metrics.error("quotas")
		return
	}
	for _, q := range set {
		if m.quotasCopied[q.entity] == nil {
			m.quotasCopied[q.entity] = map[string]float64{}
		}
		m.quotasCopied[q.entity][q.key] = want[q.entity][q.key]
		m.quotasCopiedEntities[q.entity] = entities[q.entity]
	}
	if len(ops) > 0 {
		var entries []kadm.AlterClientQuotaEntry
		for _, e := range slices.Sorted(maps.Keys(ops)) {
			ent, ok := entities[e]
			if !ok {
				ent = m.quotasCopiedEntities[e]
			}
			entries = append(entries, kadm.AlterClientQuotaEntry{Entity: ent, Ops: ops[e]})
		}
		res, err := m.dstAdm.AlterClientQuotas(ctx, entries)
		if err == nil {
			for _, r := range res {
				if r.Err != nil {
					err = fmt.Errorf("%s: %w %s", r.Entity, r.Err, r.ErrMessage)
					break
				}
			}
		}
		if err != nil {
			m.log.Warn("mirror: quotas not synced", "quotas", changed, "err", err)
			m.metrics.error("quotas")
			return
		}
		m.log.Info("mirror: quotas follow the source", "quotas", changed)
	}
	if err := m.state.put(ctx, tombstone); err != nil {
		m.log.Warn("mirror: removed quotas not forgotten", "quotas", len(forget), "err", err)
		m.metrics.error("quotas")
		return
	}
	for _, q := range forget {
		delete(m.quotasCopied[q.entity], q.key)
		if len(m.quotasCopied[q.entity]) == 0 {
			delete(m.quotasCopied, q.entity)
			delete(m.quotasCopiedEntities, q.entity)
		}
	}
}

// quotaValues are the quotas Vigil takes, by entity (its String), and
// the entities themselves.
func quotaValues(qs kadm.DescribedClientQuotas) (map[string]map[string]float64, map[string]kadm.ClientQuotaEntity) {
	vals, ents := map[string]map[string]float64{}, map[string]kadm.ClientQuotaEntity{}
	for _, q := range qs {
		ok := len(q.Entity) > 0
		for _, c := range q.Entity {
			ok = ok && (c.Type == "user" || c.Type == "client-id")
		}
		if !ok {
			continue
		}
		ent := sortedEntity(q.Entity)
		e := ent.String()
		for _, v := range q.Values {
			if quotaKeys[v.Key] {
				if vals[e] == nil {
					vals[e] = map[string]float64{}
				}
				vals[e][v.Key] = v.Value
			}
		}
		if vals[e] != nil {
			ents[e] = ent
		}
	}
	return vals, ents
}
