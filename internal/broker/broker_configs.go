package broker

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Dynamic broker configs: AlterConfigs and IncrementalAlterConfigs on a
// BROKER resource, as Kafka 3.9's ConfigAdminManager preprocesses them.
//
//   - The resource is the cluster default ("") or this broker's id; any
//     other name is INVALID_REQUEST. (vigil.draining, drain.go, is the
//     exception: it names the broker it drains.)
//   - A key Kafka does not define is accepted and stored, as Kafka stores
//     it (custom configs of plugins). Every other refusal is
//     INVALID_REQUEST, Kafka's code for broker configs (KAFKA-13609), not
//     INVALID_CONFIG: a value of the wrong type for a key Kafka defines,
//     and a key that Kafka cannot change at runtime.
//   - Vigil runs on its flags: the configs its flags set (retention,
//     message.max.bytes, ...) and the broker defaults of the topic configs
//     it applies per topic (log.cleanup.policy, log.message.timestamp.*,
//     ...) are refused, since Kafka would apply a change Vigil would not.
//     Every other config is stored, shown by DescribeConfigs, and logged
//     once as having no effect (docs/configuration.md#broker-configs).
//
// The stored configs live in the broker's memory, under dynCfgs's lock:
// they change nothing, so a restart forgets them rather than the metadata
// store keeping them, and each broker of a cluster keeps its own.

// dynamicBrokerConfigs are the stored dynamic broker configs, by resource
// name ("" for the cluster default, else a broker id).
type dynamicBrokerConfigs struct {
	mu  sync.Mutex
	set map[string]map[string]string
}

func (d *dynamicBrokerConfigs) get(resource string) map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.set[resource])
}

// update applies next to a resource's configs under the lock; an error
// from next stores nothing.
func (d *dynamicBrokerConfigs) update(resource string, next func(map[string]string) (map[string]string, error)) (before, after map[string]string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	before = maps.Clone(d.set[resource])
	after, err = next(maps.Clone(before))
	if err != nil {
		return nil, nil, err
	}
	if d.set == nil {
		d.set = map[string]map[string]string{}
	}
	if len(after) == 0 {
		delete(d.set, resource)
	} else {
		d.set[resource] = after
	}
	return before, after, nil
}

// brokerConfigRefused says why a broker config cannot be changed at
// runtime, for the keys Vigil's flags set and the broker defaults of
// topic configs Vigil applies; "" for the others.
func brokerConfigRefused(name string) string {
	switch name {
	case "broker.id", "broker.rack", "num.partitions", "auto.create.topics.enable", "socket.request.max.bytes",
		"node.id", "process.roles", "log.dirs", "log.dir", "log.message.format.version":
		return "it is set at start (vigil serve flags, a config file or VIGIL_* variables), as in Kafka, where it is not dynamic either"
	case "listeners", "advertised.listeners", "listener.security.protocol.map":
		return "Vigil takes its listeners from its flags (--listen, --advertised) at start"
	case "log.retention.ms", "log.retention.minutes", "log.retention.hours", "log.retention.bytes", "message.max.bytes":
		return "Vigil takes the default retention and batch size of its topics from its flags (--retention-ms, --retention-bytes, --max-message-bytes); set a topic's own retention.ms, retention.bytes or max.message.bytes to change one topic"
	case "compression.type":
		return "Vigil takes the default compression.type of its topics from its flag --compression-type; set a topic's own compression.type to change one topic"
	case "log.cleanup.policy", "log.cleaner.delete.retention.ms", "log.cleaner.min.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms",
		"log.cleaner.min.cleanable.ratio", "log.message.timestamp.type", "log.message.timestamp.difference.max.ms",
		"log.message.timestamp.before.max.ms", "log.message.timestamp.after.max.ms",
		"compression.gzip.level", "compression.lz4.level", "compression.zstd.level":
		return "Vigil applies this config per topic, with Kafka's default where a topic does not set it, and has no broker-wide default to change; set the topic config " + topicSynonym(name) + " on the topics instead"
	}
	return ""
}

// topicSynonym is the topic config a broker default stands for.
func topicSynonym(name string) string {
	switch name {
	case "log.cleaner.delete.retention.ms":
		return "delete.retention.ms"
	case "log.cleaner.min.compaction.lag.ms":
		return "min.compaction.lag.ms"
	case "log.cleaner.max.compaction.lag.ms":
		return "max.compaction.lag.ms"
	case "log.cleaner.min.cleanable.ratio":
		return "min.cleanable.dirty.ratio"
	}
	return strings.TrimPrefix(name, "log.")
}

// brokerConfigValidator returns the check of a dynamic broker config
// Kafka 3.9 defines that Vigil stores and ignores: the broker default of a
// topic config with the topic config's validator, the others by type;
// nil for a key it does not know, stored as it comes (as Kafka stores the
// keys it does not define).
func (b *Broker) brokerConfigValidator(name string) func(string) error {
	topic := map[string]string{
		"min.insync.replicas":               "min.insync.replicas",
		"unclean.leader.election.enable":    "unclean.leader.election.enable",
		"log.segment.bytes":                 "segment.bytes",
		"log.index.size.max.bytes":          "segment.index.bytes",
		"log.index.interval.bytes":          "index.interval.bytes",
		"log.flush.interval.messages":       "flush.messages",
		"log.segment.delete.delay.ms":       "file.delete.delay.ms",
		"log.preallocate":                   "preallocate",
		"log.message.downconversion.enable": "message.downconversion.enable",
		"log.local.retention.ms":            "local.retention.ms",
		"log.local.retention.bytes":         "local.retention.bytes",
	}
	if t, ok := topic[name]; ok {
		if c, ok := b.topicConfig(t); ok {
			return c.validate
		}
	}
	long := validateInt(-1<<63, 1<<63-1)
	switch name {
	case "log.roll.ms", "log.roll.jitter.ms", "log.flush.interval.ms", "log.cleaner.dedupe.buffer.size", "log.cleaner.backoff.ms",
		"producer.id.expiration.ms", "leader.replication.throttled.rate", "follower.replication.throttled.rate",
		"replica.alter.log.dirs.io.max.bytes.per.second", "remote.log.manager.copy.max.bytes.per.second",
		"remote.log.manager.fetch.max.bytes.per.second", "remote.log.index.file.cache.total.size.bytes":
		return long
	case "log.roll.hours", "log.roll.jitter.hours", "num.io.threads", "num.network.threads", "num.replica.fetchers",
		"num.recovery.threads.per.data.dir", "background.threads", "log.cleaner.threads", "log.cleaner.io.buffer.size",
		"max.connections", "max.connections.per.ip", "max.connection.creation.rate":
		return validateInt(-1<<31, 1<<31-1)
	case "log.cleaner.io.max.bytes.per.second", "log.cleaner.io.buffer.load.factor":
		return func(v string) error {
			if _, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
				return fmt.Errorf("%q is not a number", v)
			}
			return nil
		}
	case "transaction.partition.verification.enable":
		return validateBool
	}
	return nil
}

// checkBrokerConfigs validates a BROKER resource's new dynamic configs;
// the error goes back with INVALID_REQUEST.
func (b *Broker) checkBrokerConfigs(configs map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(configs)) {
		if why := brokerConfigRefused(name); why != "" {
			return fmt.Errorf("cannot change broker config %s at runtime: %s", name, why)
		}
		if name == DrainingConfig {
			return fmt.Errorf("%s names the broker it drains and is changed with IncrementalAlterConfigs alone", DrainingConfig)
		}
		if v := b.brokerConfigValidator(name); v != nil {
			if err := v(configs[name]); err != nil {
				return fmt.Errorf("invalid value for broker config %s: %v", name, err)
			}
		}
	}
	return nil
}

// brokerResource checks a BROKER resource name as Kafka does: the cluster
// default ("") or this broker's id.
func (b *Broker) brokerResource(name string) error {
	if name == "" {
		return nil
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return fmt.Errorf("node id must be an integer, but it is: %s", name)
	}
	if int32(id) != b.cfg.NodeID {
		return fmt.Errorf("unexpected broker id, expected %d, but received %s", b.cfg.NodeID, name)
	}
	return nil
}

// alterBrokerConfigs validates and stores a BROKER resource's dynamic
// configs computed by next from the current ones, returning a Kafka error
// code and message. Authorization is the caller's, after this validation,
// as Kafka preprocesses broker changes before authorizing them; apply is
// false for that first pass.
func (b *Broker) alterBrokerConfigs(resource string, validateOnly, apply bool, next func(cur map[string]string) (map[string]string, error)) (int16, string) {
	if err := b.brokerResource(resource); err != nil {
		return kerr.InvalidRequest.Code, err.Error()
	}
	check := func(cur map[string]string) (map[string]string, error) {
		if cur == nil {
			cur = map[string]string{}
		}
		cfg, err := next(cur)
		if err == nil {
			err = b.checkBrokerConfigs(cfg)
		}
		if err == nil && (validateOnly || !apply) {
			err = errValidateOnly
		}
		return cfg, err
	}
	before, after, err := b.dynCfgs.update(resource, check)
	switch {
	case err == errValidateOnly:
		return 0, ""
	case err != nil:
		return kerr.InvalidRequest.Code, err.Error()
	}
	what := "the cluster default"
	if resource != "" {
		what = "broker " + resource
	}
	b.log.Info("broker configs changed", "resource", what, "changes", configChanges(before, after))
	for _, name := range slices.Sorted(maps.Keys(after)) {
		if _, seen := b.ignoredLogged.LoadOrStore("broker:"+name, true); !seen {
			b.log.Info("broker config accepted and stored, but it has no effect in Vigil", "config", name, "value", after[name], "resource", what)
		}
	}
	return 0, ""
}

// dynamicBrokerConfigEntries are the stored dynamic configs DescribeConfigs
// shows for a broker resource: for the cluster default, its own; for this
// broker, its own over the cluster default's, each with its source.
func (b *Broker) dynamicBrokerConfigEntries(resource string) []kmsg.DescribeConfigsResponseResourceConfig {
	type entry struct {
		value  string
		source kmsg.ConfigSource
	}
	all := map[string]entry{}
	for k, v := range b.dynCfgs.get("") {
		all[k] = entry{v, kmsg.ConfigSourceDynamicDefaultBrokerConfig}
	}
	if resource != "" {
		for k, v := range b.dynCfgs.get(resource) {
			all[k] = entry{v, kmsg.ConfigSourceDynamicBrokerConfig}
		}
	}
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, k := range slices.Sorted(maps.Keys(all)) {
		v := all[k].value
		out = append(out, kmsg.DescribeConfigsResponseResourceConfig{Name: k, Value: &v, Source: all[k].source,
			ConfigType: kmsg.ConfigTypeString})
	}
	return out
}

// splitDraining separates an IncrementalAlterConfigs of a BROKER resource
// into its vigil.draining operations and the others.
func splitDraining(rr kmsg.IncrementalAlterConfigsRequestResource) (drain, rest kmsg.IncrementalAlterConfigsRequestResource) {
	drain, rest = rr, rr
	drain.Configs, rest.Configs = nil, nil
	for _, op := range rr.Configs {
		if op.Name == DrainingConfig {
			drain.Configs = append(drain.Configs, op)
		} else {
			rest.Configs = append(rest.Configs, op)
		}
	}
	return drain, rest
}
