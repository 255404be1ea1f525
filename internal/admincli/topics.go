package admincli

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const topicsUsage = `Usage:
  vigil topics list [flags]
  vigil topics describe TOPIC... [flags]  partitions (leader, offsets, size), configs and their source
  vigil topics create TOPIC... [--partitions N] [--replication-factor R] [--config k=v ...] [flags]
  vigil topics delete TOPIC... [flags]
  vigil topics alter-config TOPIC... [--set k=v ...] [--delete k ...] [flags]
  vigil topics hold TOPIC... [flags]      legal hold: refuse every deletion of the topics' data
  vigil topics release TOPIC... [flags]   lift the legal hold

` + commonUsage

func topicCommands() map[string]subcommand {
	return map[string]subcommand{
		"list": {args: "", setup: func(fs *flag.FlagSet) func(context.Context, *invocation) error {
			return func(ctx context.Context, inv *invocation) error {
				if len(inv.pos) > 0 {
					return usagef("unexpected argument %q", inv.pos[0])
				}
				return inv.admin(func(adm *kadm.Client) error {
					return newTopics(adm, inv.out).List(ctx)
				})
			}
		}},
		"describe": {args: "TOPIC...", setup: func(fs *flag.FlagSet) func(context.Context, *invocation) error {
			return func(ctx context.Context, inv *invocation) error {
				if err := needArgs(inv, "topic"); err != nil {
					return err
				}
				return inv.admin(func(adm *kadm.Client) error {
					return newTopics(adm, inv.out).Describe(ctx, dedupe(inv.pos)...)
				})
			}
		}},
		"create": {args: "TOPIC...", setup: func(fs *flag.FlagSet) func(context.Context, *invocation) error {
			partitions := fs.Int("partitions", -1, "partitions per topic (-1: the broker's default)")
			rf := fs.Int("replication-factor", -1, "replicas per partition (-1: the broker's default)")
			var configs listFlag
			fs.Var(&configs, "config", "topic config `key=value` (repeatable)")
			return func(ctx context.Context, inv *invocation) error {
				if err := needArgs(inv, "topic"); err != nil {
					return err
				}
				if *partitions == 0 || *partitions < -1 || *partitions > 1<<31-1 {
					return usagef("--partitions %d: want a positive number or -1", *partitions)
				}
				if *rf == 0 || *rf < -1 || *rf > 1<<15-1 {
					return usagef("--replication-factor %d: want a positive number or -1", *rf)
				}
				kvs, err := parseKVs("config", configs.vals)
				if err != nil {
					return err
				}
				return inv.admin(func(adm *kadm.Client) error {
					return newTopics(adm, inv.out).Create(ctx, int32(*partitions), int16(*rf), kvs, dedupe(inv.pos)...)
				})
			}
		}},
		"delete": {args: "TOPIC...", setup: func(fs *flag.FlagSet) func(context.Context, *invocation) error {
			return func(ctx context.Context, inv *invocation) error {
				if err := needArgs(inv, "topic"); err != nil {
					return err
				}
				return inv.admin(func(adm *kadm.Client) error {
					return newTopics(adm, inv.out).Delete(ctx, dedupe(inv.pos)...)
				})
			}
		}},
		"alter-config": {args: "TOPIC...", setup: func(fs *flag.FlagSet) func(context.Context, *invocation) error {
			var set, del listFlag
			fs.Var(&set, "set", "set config `key=value` (repeatable)")
			fs.Var(&del, "delete", "revert config `key` to the broker default (repeatable)")
			return func(ctx context.Context, inv *invocation) error {
				if err := needArgs(inv, "topic"); err != nil {
					return err
				}
				kvs, err := parseKVs("set", set.vals)
				if err != nil {
					return err
				}
				if len(kvs) == 0 && len(del.vals) == 0 {
					return usagef("nothing to change: give --set key=value or --delete key")
				}
				for _, k := range del.vals {
					if _, ok := kvs[k]; ok {
						return usagef("config %q is both set and deleted", k)
					}
				}
				return inv.admin(func(adm *kadm.Client) error {
					return newTopics(adm, inv.out).AlterConfig(ctx, kvs, dedupe(del.vals), dedupe(inv.pos)...)
				})
			}
		}},
		"hold":    holdCommand("true"),
		"release": holdCommand("false"),
	}
}

// legalHoldConfig is Vigil's topic config for a legal hold; other
// clusters refuse it as an unknown config, which the result shows.
const legalHoldConfig = "vigil.legal.hold"

// holdCommand sets or clears a legal hold: while it is set the broker
// refuses every deletion of the topics' data (retention, DeleteRecords,
// DeleteTopics) with POLICY_VIOLATION.
func holdCommand(value string) subcommand {
	return subcommand{args: "TOPIC...", setup: func(fs *flag.FlagSet) func(context.Context, *invocation) error {
		return func(ctx context.Context, inv *invocation) error {
			if err := needArgs(inv, "topic"); err != nil {
				return err
			}
			return inv.admin(func(adm *kadm.Client) error {
				return newTopics(adm, inv.out).AlterConfig(ctx, map[string]string{legalHoldConfig: value}, nil, dedupe(inv.pos)...)
			})
		}
	}}
}

// Topics runs the topic commands against one cluster.
type Topics struct {
	adm *kadm.Client
	out *printer
}

// NewTopics writes results to w, as JSON when asJSON is set.
func NewTopics(adm *kadm.Client, w io.Writer, asJSON bool) *Topics {
	return newTopics(adm, newPrinter(w, asJSON))
}

func newTopics(adm *kadm.Client, out *printer) *Topics { return &Topics{adm: adm, out: out} }

type topicSummary struct {
	Topic             string `json:"topic"`
	ID                string `json:"id,omitempty"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	Internal          bool   `json:"internal,omitempty"`
}

// List shows every topic, internal ones included, since an operator wants
// the whole picture.
func (t *Topics) List(ctx context.Context) error {
	tds, err := t.adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	var out []topicSummary
	for _, td := range tds.Sorted() {
		if td.Err != nil {
			continue // only requested topics carry errors; this listed all
		}
		out = append(out, topicSummary{
			Topic:             td.Topic,
			ID:                topicID(td.ID),
			Partitions:        len(td.Partitions),
			ReplicationFactor: td.Partitions.NumReplicas(),
			Internal:          td.IsInternal,
		})
	}
	if t.out.json {
		if out == nil {
			out = []topicSummary{}
		}
		return t.out.encode(out)
	}
	rows := make([][]string, 0, len(out))
	for _, s := range out {
		name := s.Topic
		if s.Internal {
			name += " (internal)"
		}
		rows = append(rows, []string{name, itoa(s.Partitions), itoa(s.ReplicationFactor), s.ID})
	}
	return t.out.table([]string{"TOPIC", "PARTITIONS", "REPLICATION", "ID"}, rows)
}

type partitionInfo struct {
	Partition   int32    `json:"partition"`
	Leader      int32    `json:"leader"`
	LeaderEpoch int32    `json:"leader_epoch"`
	Replicas    []int32  `json:"replicas"`
	ISR         []int32  `json:"isr"`
	StartOffset int64    `json:"start_offset"`
	EndOffset   int64    `json:"end_offset"`
	SizeBytes   int64    `json:"size_bytes"` // the leader's log dir size; -1 if unknown
	Error       *jsonErr `json:"error,omitempty"`
}

type configInfo struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"`
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive,omitempty"`
}

type topicInfo struct {
	topicSummary
	PartitionDetails []partitionInfo `json:"partition_details,omitempty"`
	Configs          []configInfo    `json:"configs,omitempty"`
	Error            *jsonErr        `json:"error,omitempty"`
}

// Describe shows partitions with their leaders, offsets and sizes, and every
// config with where its value comes from.
func (t *Topics) Describe(ctx context.Context, topics ...string) error {
	tds, err := t.adm.ListTopicsWithInternal(ctx, topics...)
	if err != nil {
		return fmt.Errorf("describe topics: %w", err)
	}
	var found []string
	for _, name := range topics {
		if td, ok := tds[name]; ok && td.Err == nil {
			found = append(found, name)
		}
	}
	var starts, ends kadm.ListedOffsets
	var cfgs kadm.ResourceConfigs
	if len(found) > 0 {
		if starts, err = t.adm.ListStartOffsets(ctx, found...); err != nil {
			return fmt.Errorf("list start offsets: %w", err)
		}
		if ends, err = t.adm.ListEndOffsets(ctx, found...); err != nil {
			return fmt.Errorf("list end offsets: %w", err)
		}
		if cfgs, err = t.adm.DescribeTopicConfigs(ctx, found...); err != nil {
			return fmt.Errorf("describe topic configs: %w", err)
		}
	}
	sizes := t.partitionSizes(ctx, tds, found)

	var infos []topicInfo
	failed := 0
	for _, name := range topics {
		td, ok := tds[name]
		info := topicInfo{topicSummary: topicSummary{Topic: name}}
		if !ok || td.Err != nil {
			err := td.Err
			if !ok {
				err = fmt.Errorf("topic missing from the metadata response")
			}
			info.Error = newJSONErr(err, "")
			infos = append(infos, info)
			failed++
			continue
		}
		info.ID = topicID(td.ID)
		info.Partitions = len(td.Partitions)
		info.ReplicationFactor = td.Partitions.NumReplicas()
		info.Internal = td.IsInternal
		for _, pd := range td.Partitions.Sorted() {
			pi := partitionInfo{
				Partition: pd.Partition, Leader: pd.Leader, LeaderEpoch: pd.LeaderEpoch,
				Replicas: nonNil(pd.Replicas), ISR: nonNil(pd.ISR), StartOffset: -1, EndOffset: -1, SizeBytes: -1,
				Error: newJSONErr(pd.Err, ""),
			}
			if n, ok := sizes[name][pd.Partition]; ok {
				pi.SizeBytes = n
			}
			if o, ok := starts.Lookup(name, pd.Partition); ok && o.Err == nil {
				pi.StartOffset = o.Offset
			}
			if o, ok := ends.Lookup(name, pd.Partition); ok {
				if o.Err == nil {
					pi.EndOffset = o.Offset
				} else if pi.Error == nil {
					pi.Error = newJSONErr(o.Err, "")
				}
			}
			info.PartitionDetails = append(info.PartitionDetails, pi)
		}
		if rc, err := cfgs.On(name, nil); err == nil {
			if rc.Err != nil {
				info.Error = newJSONErr(rc.Err, rc.ErrMessage)
				failed++
			}
			for _, c := range rc.Configs {
				info.Configs = append(info.Configs, configInfo{
					Name: c.Key, Value: c.Value, Source: configSource(c.Source), Sensitive: c.Sensitive,
				})
			}
			sort.Slice(info.Configs, func(i, j int) bool { return info.Configs[i].Name < info.Configs[j].Name })
		}
		infos = append(infos, info)
	}

	if err := describeAll(t.out, infos, t.printTopic); err != nil {
		return err
	}
	if failed > 0 {
		return failedf("%s of %d could not be described", plural(failed, "topic", "topics"), len(topics))
	}
	return nil
}

// partitionSizes asks every broker for its log dirs (DescribeLogDirs) and
// keeps, per partition, the size its leader reports. A cluster that does
// not answer (an old broker, no permission) leaves the sizes unknown
// rather than failing the describe.
func (t *Topics) partitionSizes(ctx context.Context, tds kadm.TopicDetails, topics []string) map[string]map[int32]int64 {
	if len(topics) == 0 {
		return nil
	}
	set := kadm.TopicsSet{}
	for _, name := range topics {
		for _, pd := range tds[name].Partitions {
			set.Add(name, pd.Partition)
		}
	}
	all, err := t.adm.DescribeAllLogDirs(ctx, set)
	if err != nil && len(all) == 0 {
		return nil
	}
	out := map[string]map[int32]int64{}
	all.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if tds[p.Topic].Partitions[p.Partition].Leader != p.Broker {
				return
			}
			if out[p.Topic] == nil {
				out[p.Topic] = map[int32]int64{}
			}
			out[p.Topic][p.Partition] += p.Size
		})
	})
	return out
}

func (t *Topics) printTopic(info topicInfo) error {
	if info.Error != nil && info.PartitionDetails == nil {
		return t.out.line("Topic: %s\tError: %s", info.Topic, info.Error.Message)
	}
	if err := t.out.line("Topic: %s\tID: %s\tPartitions: %d\tReplication: %d",
		info.Topic, info.ID, info.Partitions, info.ReplicationFactor); err != nil {
		return err
	}
	rows := make([][]string, 0, len(info.PartitionDetails))
	for _, p := range info.PartitionDetails {
		errCell := ""
		if p.Error != nil {
			errCell = p.Error.Message
		}
		rows = append(rows, []string{itoa(p.Partition), itoa(p.Leader), itoa(p.LeaderEpoch),
			joinInts(p.Replicas), joinInts(p.ISR), offsetText(p.StartOffset), offsetText(p.EndOffset), sizeText(p.SizeBytes), errCell})
	}
	if err := t.out.table([]string{"PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "START", "END", "SIZE", "ERROR"}, rows); err != nil {
		return err
	}
	if info.Error != nil {
		return t.out.line("Configs: %s", info.Error.Message)
	}
	t.out.line("")
	rows = rows[:0]
	for _, c := range info.Configs {
		v := "<null>"
		switch {
		case c.Sensitive:
			v = "<sensitive>"
		case c.Value != nil:
			v = *c.Value
		}
		rows = append(rows, []string{c.Name, v, c.Source})
	}
	return t.out.table([]string{"CONFIG", "VALUE", "SOURCE"}, rows)
}

type topicResult struct {
	Topic             string   `json:"topic"`
	ID                string   `json:"id,omitempty"`
	Partitions        *int32   `json:"partitions,omitempty"`
	ReplicationFactor *int16   `json:"replication_factor,omitempty"`
	OK                bool     `json:"ok"`
	Error             *jsonErr `json:"error,omitempty"`
}

// Create makes each topic; partitions and rf of -1 take the broker's
// defaults (KIP-464), which Vigil and Kafka 2.4+ both honour.
func (t *Topics) Create(ctx context.Context, partitions int32, rf int16, configs map[string]string, topics ...string) error {
	var cfg map[string]*string
	if len(configs) > 0 {
		cfg = make(map[string]*string, len(configs))
		for k, v := range configs {
			cfg[k] = kadm.StringPtr(v)
		}
	}
	resps, err := t.adm.CreateTopics(ctx, partitions, rf, cfg, topics...)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	results := make([]topicResult, 0, len(topics))
	for _, name := range topics {
		r, ok := resps[name]
		res := topicResult{Topic: name}
		if res.Error = answerError(ok, r.Err, r.ErrMessage, "topic"); res.Error == nil {
			res.OK, res.ID = true, topicID(r.ID)
			if r.NumPartitions > 0 {
				res.Partitions = &r.NumPartitions
			}
			if r.ReplicationFactor > 0 {
				res.ReplicationFactor = &r.ReplicationFactor
			}
		}
		results = append(results, res)
	}
	return t.report(results, "created", "could not be created", func(r topicResult) []string {
		p, rf := "-", "-"
		if r.Partitions != nil {
			p = itoa(*r.Partitions)
		}
		if r.ReplicationFactor != nil {
			rf = itoa(*r.ReplicationFactor)
		}
		return []string{r.Topic, p, rf}
	}, "PARTITIONS", "REPLICATION")
}

// Delete removes each topic and reports each outcome separately: one
// unknown topic must not hide that the others were deleted.
func (t *Topics) Delete(ctx context.Context, topics ...string) error {
	resps, err := t.adm.DeleteTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("delete topics: %w", err)
	}
	results := make([]topicResult, 0, len(topics))
	for _, name := range topics {
		r, ok := resps[name]
		res := topicResult{Topic: name}
		if res.Error = answerError(ok, r.Err, r.ErrMessage, "topic"); res.Error == nil {
			res.OK, res.ID = true, topicID(r.ID)
		}
		results = append(results, res)
	}
	return t.report(results, "deleted", "could not be deleted", func(r topicResult) []string { return []string{r.Topic} })
}

type alterResult struct {
	Topic   string            `json:"topic"`
	Set     map[string]string `json:"set,omitempty"`
	Deleted []string          `json:"deleted,omitempty"`
	OK      bool              `json:"ok"`
	Error   *jsonErr          `json:"error,omitempty"`
}

// AlterConfig changes only the named configs (IncrementalAlterConfigs);
// the legacy AlterConfigs would silently reset every config not named.
func (t *Topics) AlterConfig(ctx context.Context, set map[string]string, del []string, topics ...string) error {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var alters []kadm.AlterConfig
	for _, k := range keys {
		alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(set[k])})
	}
	for _, k := range del {
		alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	resps, err := t.adm.AlterTopicConfigs(ctx, alters, topics...)
	if err != nil {
		return fmt.Errorf("alter topic configs: %w", err)
	}
	byName := make(map[string]kadm.AlterConfigsResponse, len(resps))
	for _, r := range resps {
		byName[r.Name] = r
	}
	results := make([]alterResult, 0, len(topics))
	failed := 0
	for _, name := range topics {
		r, ok := byName[name]
		res := alterResult{Topic: name, Set: set, Deleted: del}
		res.Error = answerError(ok, r.Err, r.ErrMessage, "topic")
		res.OK = res.Error == nil
		if !res.OK {
			failed++
		}
		results = append(results, res)
	}
	if t.out.json {
		if err := t.out.encode(results); err != nil {
			return err
		}
	} else {
		rows := make([][]string, 0, len(results))
		for _, r := range results {
			for _, k := range keys {
				rows = append(rows, []string{r.Topic, k, "set " + set[k], resultText(r.OK, r.Error, "altered")})
			}
			for _, k := range del {
				rows = append(rows, []string{r.Topic, k, "delete (broker default)", resultText(r.OK, r.Error, "altered")})
			}
		}
		if err := t.out.table([]string{"TOPIC", "CONFIG", "CHANGE", "RESULT"}, rows); err != nil {
			return err
		}
	}
	if failed > 0 {
		return failedf("%s of %d could not be altered", plural(failed, "topic", "topics"), len(topics))
	}
	return nil
}

// report prints per-topic results and turns any failure into exit 1.
func (t *Topics) report(results []topicResult, okText, failText string, cells func(topicResult) []string, extraHeader ...string) error {
	failed := 0
	for _, r := range results {
		if !r.OK {
			failed++
		}
	}
	if t.out.json {
		if err := t.out.encode(results); err != nil {
			return err
		}
	} else {
		rows := make([][]string, 0, len(results))
		for _, r := range results {
			rows = append(rows, append(cells(r), resultText(r.OK, r.Error, okText)))
		}
		header := append(append([]string{"TOPIC"}, extraHeader...), "RESULT")
		if err := t.out.table(header, rows); err != nil {
			return err
		}
	}
	if failed > 0 {
		return failedf("%s of %d %s", plural(failed, "topic", "topics"), len(results), failText)
	}
	return nil
}

func resultText(ok bool, e *jsonErr, okText string) string {
	if ok || e == nil {
		return okText
	}
	return "error: " + e.Message
}

// topicID prints an id the way Kafka's own tools do (Uuid.toString:
// URL-safe base64 without padding), so ids can be compared across tools.
func topicID(id kadm.TopicID) string {
	if id == (kadm.TopicID{}) {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

func nonNil(v []int32) []int32 {
	if v == nil {
		return []int32{}
	}
	return v
}

func configSource(s kmsg.ConfigSource) string {
	switch s {
	case kmsg.ConfigSourceDynamicTopicConfig:
		return "topic"
	case kmsg.ConfigSourceDynamicBrokerConfig:
		return "dynamic-broker"
	case kmsg.ConfigSourceDynamicDefaultBrokerConfig:
		return "dynamic-default-broker"
	case kmsg.ConfigSourceStaticBrokerConfig:
		return "static-broker"
	case kmsg.ConfigSourceDefaultConfig:
		return "default"
	case kmsg.ConfigSourceDynamicBrokerLoggerConfig:
		return "broker-logger"
	default:
		return s.String()
	}
}
