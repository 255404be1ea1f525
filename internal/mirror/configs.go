package mirror

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// syncConfigs makes each mirror topic's configs follow its source
// topic's: a config set or changed on the source is set on Vigil, one
// removed there is removed here, so that a topic promoted at cutover
// keeps the retention, cleanup policy and limits the source had then.
// Vigil's own configs (vigil.*: the mirror mark, tables, legal hold) are
// never touched, nor Confluent's (confluent.*), nor a topic no longer
// marked (promoted: its configs are its owners' now). One
// DescribeConfigs on each side covers every topic.
func (m *Mirror) syncConfigs(ctx context.Context) {
	copied := m.copiedTopics()
	if len(copied) == 0 {
		return
	}
	names := slices.Sorted(maps.Keys(copied))
	srcRCs, err := m.srcAdm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		m.log.Warn("mirror: source topic configs not described", "err", err)
		return
	}
	dstRCs, err := m.dstAdm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		m.log.Warn("mirror: destination topic configs not described", "err", err)
		return
	}
	for _, name := range names {
		src, err := srcRCs.On(name, nil)
		if err != nil {
			continue // deleted on the source, or not described this time
		}
		dst, err := dstRCs.On(name, nil)
		if err != nil {
			continue
		}
		if !marked(dst.Configs) {
			continue
		}
		want, have := mirroredConfigs(src.Configs), mirroredConfigs(dst.Configs)
		var alters []kadm.AlterConfig
		var changed []string
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if v, ok := have[k]; !ok || v != want[k] {
				alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(want[k])})
				changed = append(changed, k+"="+want[k])
			}
		}
		for _, k := range slices.Sorted(maps.Keys(have)) {
			if _, ok := want[k]; !ok {
				alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
				changed = append(changed, k+" removed")
			}
		}
		if len(alters) == 0 {
			continue
		}
		resps, err := m.dstAdm.AlterTopicConfigs(ctx, alters, name)
		if err == nil {
			var r kadm.AlterConfigsResponse
			if r, err = resps.On(name, nil); err == nil {
				err = r.Err
			}
		}
		if err != nil {
			m.log.Warn("mirror: topic configs not synced", "topic", name, "configs", changed, "err", err)
			m.metrics.error("configs")
			continue
		}
		m.log.Info("mirror: topic configs follow the source", "topic", name, "configs", changed)
	}
}

// mirroredConfigs are the configs set on a topic that a mirror topic
// takes from its source: those set on the topic itself
// (DYNAMIC_TOPIC_CONFIG), Vigil's and Confluent's left out.
func mirroredConfigs(cs []kadm.Config) map[string]string {
	out := map[string]string{}
	for _, c := range cs {
		if c.Source != kmsg.ConfigSourceDynamicTopicConfig || c.Value == nil ||
			strings.HasPrefix(c.Key, "vigil.") || strings.HasPrefix(c.Key, "confluent.") {
			continue
		}
		out[c.Key] = *c.Value
	}
	return out
}

// marked reports whether a topic's configs mark it a mirror topic.
func marked(cs []kadm.Config) bool {
	for _, c := range cs {
		if c.Key == MirrorSourceConfig && c.Value != nil && strings.TrimSpace(*c.Value) != "" {
			return true
		}
	}
	return false
}
