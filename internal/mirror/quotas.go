package mirror

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
)

// quotaKeys are the client quota keys Vigil enforces (and takes); the
// source's others (request_percentage, controller_mutation_rate) and its
// ip entities are not copied.
var quotaKeys = map[string]bool{"producer_byte_rate": true, "consumer_byte_rate": true}

// syncQuotas copies, with CopyConfig.Quotas, the source's byte-rate
// quotas of users and client ids, so that a replay job or a noisy
// producer stays throttled after cutover. A quota removed on the source
// is removed on Vigil if this run copied it; quotas set on Vigil for
// other entities or keys are never touched.
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
	var entries []kadm.AlterClientQuotaEntry
	var changed []string
	for _, e := range slices.Sorted(maps.Keys(want)) {
		var ops []kadm.AlterClientQuotaOp
		for _, k := range slices.Sorted(maps.Keys(want[e])) {
			if v, ok := have[e][k]; !ok || v != want[e][k] {
				ops = append(ops, kadm.AlterClientQuotaOp{Key: k, Value: want[e][k]})
				changed = append(changed, fmt.Sprintf("%s %s=%v", e, k, want[e][k]))
			}
		}
		for _, k := range slices.Sorted(maps.Keys(m.quotasCopied[e])) {
			if _, ok := want[e][k]; !ok {
				if _, ok := have[e][k]; ok {
					ops = append(ops, kadm.AlterClientQuotaOp{Key: k, Remove: true})
					changed = append(changed, fmt.Sprintf("%s %s removed", e, k))
				}
			}
		}
		if len(ops) > 0 {
			entries = append(entries, kadm.AlterClientQuotaEntry{Entity: entities[e], Ops: ops})
		}
	}
	// Entities gone from the source altogether.
	for _, e := range slices.Sorted(maps.Keys(m.quotasCopied)) {
		if _, ok := want[e]; ok {
			continue
		}
		var ops []kadm.AlterClientQuotaOp
		for _, k := range slices.Sorted(maps.Keys(m.quotasCopied[e])) {
			if _, ok := have[e][k]; ok {
				ops = append(ops, kadm.AlterClientQuotaOp{Key: k, Remove: true})
				changed = append(changed, fmt.Sprintf("%s %s removed", e, k))
			}
		}
		if len(ops) > 0 {
			entries = append(entries, kadm.AlterClientQuotaEntry{Entity: m.quotasCopiedEntities[e], Ops: ops})
		}
	}
	if len(entries) > 0 {
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
	m.quotasCopied, m.quotasCopiedEntities = want, entities
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
		e := q.Entity.String()
		for _, v := range q.Values {
			if quotaKeys[v.Key] {
				if vals[e] == nil {
					vals[e] = map[string]float64{}
				}
				vals[e][v.Key] = v.Value
			}
		}
		if vals[e] != nil {
			ents[e] = q.Entity
		}
	}
	return vals, ents
}
