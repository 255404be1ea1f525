package broker

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/internal/table/tablecfg"
)

// topicConfig describes one topic config the broker understands. Values
// not set on a topic fall back to the broker-wide default.
type topicConfig struct {
	name     string
	typ      kmsg.ConfigType
	doc      string
	def      func(b *Broker) string
	validate func(v string) error
	// ignored: Vigil stores and shows the value, and nothing in it
	// depends on it (noteIgnoredConfigs logs that once).
	ignored bool
}

// Kafka's defaults for the configs that have no broker flag here.
const (
	maxLong          = "9223372036854775807"
	timestampCreate  = "CreateTime"
	timestampAppend  = "LogAppendTime"
	noEffectShared   = " No effect in Vigil: the log lives in shared object storage, not in local segment files."
	noEffectReplicas = " No effect in Vigil: durability comes from the WAL and the object store, not from follower replicas."
)

// topicConfigs are the topic configs the broker accepts: those Vigil
// applies, and the rest of Kafka's topic configs, which tools and
// frameworks set as a matter of course (Kafka Streams on its internal
// topics, Connect, Terraform providers) and which a refusal would break.
// Every topic config Kafka 3.9 accepts is here, validated as Kafka 3.9
// validates it. Where one has no effect (ignored) its documentation says
// so and the broker logs the first time it is set.
//
// The table is built once, by New (topicConfigTable); the produce path
// looks configs up by name.
func topicConfigTable() []topicConfig {
	fixed := func(v string) func(*Broker) string { return func(*Broker) string { return v } }
	cfg := func(name string, typ kmsg.ConfigType, doc string, def func(*Broker) string, validate func(string) error) topicConfig {
		return topicConfig{name: name, typ: typ, doc: doc, def: def, validate: validate}
	}
	ig := func(name string, typ kmsg.ConfigType, doc string, def func(*Broker) string, validate func(string) error) topicConfig {
		return topicConfig{name: name, typ: typ, doc: doc, def: def, validate: validate, ignored: true}
	}
	return []topicConfig{
		// Applied.
		cfg("cleanup.policy", kmsg.ConfigTypeList, "delete: old segments are removed by retention. compact: the log cleaner keeps only the latest record of each key (records need a key), and retention deletes nothing. compact,delete: both.",
			fixed("delete"), validateCleanupPolicy),
		cfg("delete.retention.ms", kmsg.ConfigTypeLong, "On a compacted topic, how long a tombstone (a record with a null value), or a transaction marker whose data is gone, stays readable after the first cleaning that kept it (its batch's delete horizon, KIP-534), whatever its own timestamp.",
			fixed("86400000"), validateInt(0, 1<<63-1)),
		cfg("min.compaction.lag.ms", kmsg.ConfigTypeLong, "On a compacted topic, records newer than this are not cleaned.",
			fixed("0"), validateInt(0, 1<<63-1)),
		cfg("max.compaction.lag.ms", kmsg.ConfigTypeLong, "On a compacted topic, a partition whose oldest uncleaned segment is older than this is cleaned whatever its dirty ratio.",
			fixed(maxLong), validateInt(1, 1<<63-1)),
		cfg("min.cleanable.dirty.ratio", kmsg.ConfigTypeDouble, "On a compacted topic, the share of a partition's cleanable bytes written since it was last cleaned that starts a cleaning.",
			fixed("0.5"), validateRatio),
		cfg("max.message.bytes", kmsg.ConfigTypeInt, "Largest record batch size the broker accepts for this topic.",
			func(b *Broker) string { return strconv.Itoa(int(b.cfg.MaxMessageBytes)) }, validateInt(0, 1<<31-1)),
		cfg("retention.bytes", kmsg.ConfigTypeLong, "Per-partition size above which the oldest objects are deleted; -1 for no limit.",
			func(b *Broker) string { return strconv.FormatInt(b.cfg.RetentionBytes, 10) }, validateInt(-1, 1<<63-1)),
		cfg("retention.ms", kmsg.ConfigTypeLong, "Age above which records are deleted; -1 to keep them forever.",
			func(b *Broker) string { return strconv.FormatInt(b.cfg.RetentionMs, 10) }, validateInt(-1, 1<<63-1)),
		cfg(storage.LegalHoldConfig, kmsg.ConfigTypeBoolean, "true stops every deletion of this topic's data (retention, DeleteRecords, DeleteTopics) until set back to false.",
			fixed("false"), validateBool),
		cfg(storage.MirrorSourceConfig, kmsg.ConfigTypeString, "Set by vigil mirror on the topics it creates, naming the source cluster: the topic takes only the mirror's appends, at the source's offsets, and refuses produces; retention and the cleaner leave it to the source. Deleting it (vigil mirror promote) makes the topic an ordinary one.",
			fixed(""), func(string) error { return nil }),
		cfg(tablecfg.Enabled, kmsg.ConfigTypeBoolean, "true makes Vigil keep an Apache Iceberg table of this topic in the object store (docs/tables.md).",
			fixed("false"), validateBool),
		cfg(tablecfg.Format, kmsg.ConfigTypeString, "Format of the topic's lakehouse table: iceberg, the only one.",
			fixed(tablecfg.FormatIceberg), tablecfg.ValidateFormat),
		cfg(tablecfg.Columns, kmsg.ConfigTypeList, "OCSF attributes (dotted paths, comma-separated) given string columns of their own in the topic's lakehouse table beyond the base event's; adding one adds the column at the table's next commit.",
			fixed(""), func(v string) error { _, err := tablecfg.ParseColumns(v); return err }),
		cfg("message.timestamp.type", kmsg.ConfigTypeString, "CreateTime keeps the producer's timestamps; LogAppendTime sets each batch's timestamp to the time the broker appended it.",
			fixed(timestampCreate), validateOneOf(timestampCreate, timestampAppend)),
		cfg("message.timestamp.before.max.ms", kmsg.ConfigTypeLong, "With CreateTime, a batch holding a record timestamped more than this before the broker's clock is refused with INVALID_TIMESTAMP.",
			fixed(maxLong), validateInt(0, 1<<63-1)),
		cfg("message.timestamp.after.max.ms", kmsg.ConfigTypeLong, "With CreateTime, a batch holding a record timestamped more than this after the broker's clock is refused with INVALID_TIMESTAMP.",
			fixed(maxLong), validateInt(0, 1<<63-1)),
		cfg("message.timestamp.difference.max.ms", kmsg.ConfigTypeLong, "Deprecated in Kafka for the two above; accepted, and applied as both of them where they are not set.",
			fixed(maxLong), validateInt(0, 1<<63-1)),
		cfg("compression.type", kmsg.ConfigTypeString, "producer: batches are stored as the producer compressed them. uncompressed, gzip, snappy, lz4 or zstd: a produced batch in another codec is decompressed and compressed again in this one (at compression.gzip.level, compression.lz4.level or compression.zstd.level) before it is stored, as Kafka does; a batch already in this codec is stored as it came.",
			func(b *Broker) string { return b.cfg.CompressionType }, validateCompressionType),
		cfg("compression.gzip.level", kmsg.ConfigTypeInt, "Level of gzip recompression on produce when compression.type=gzip: -1 (the codec's default) or 1 to 9.",
			fixed(strconv.Itoa(batch.DefaultGzipLevel)), validateGzipLevel),
		cfg("compression.lz4.level", kmsg.ConfigTypeInt, "Level of lz4 recompression on produce when compression.type=lz4: 9, the default, is lz4's fast compressor, as in Kafka; 1 to 8 are pierrec/lz4's high-compression levels 1 to 8, and 10 to 17 its highest, 9.",
			fixed(strconv.Itoa(batch.DefaultLz4Level)), validateInt(1, 17)),
		cfg("compression.zstd.level", kmsg.ConfigTypeInt, "Level of zstd recompression on produce when compression.type=zstd, mapped onto klauspost/compress's four speeds: below 3 fastest, 3 to 5 default, 6 to 9 better, 10 and above best.",
			fixed(strconv.Itoa(batch.DefaultZstdLevel)), validateInt(-131072, 22)),

		// Accepted, stored and shown; nothing in Vigil depends on them
		// (docs/configuration.md#kafka-configs-vigil-ignores).
		ig("min.insync.replicas", kmsg.ConfigTypeInt, "An acks=all produce is answered once its batch is durable in the WAL."+noEffectReplicas,
			fixed("1"), validateInt(1, 1<<31-1)),
		ig("unclean.leader.election.enable", kmsg.ConfigTypeBoolean, "A new leader always recovers every acknowledged record."+noEffectReplicas,
			fixed("false"), validateBool),
		ig("leader.replication.throttled.replicas", kmsg.ConfigTypeList, "Replication throttling."+noEffectReplicas,
			fixed(""), validateThrottledReplicas),
		ig("follower.replication.throttled.replicas", kmsg.ConfigTypeList, "Replication throttling."+noEffectReplicas,
			fixed(""), validateThrottledReplicas),
		ig("segment.bytes", kmsg.ConfigTypeInt, "Segment objects are cut by the broker's --segment-bytes."+noEffectShared,
			fixed("1073741824"), validateInt(14, 1<<31-1)),
		ig("segment.ms", kmsg.ConfigTypeLong, "Segment objects are cut by the broker's --upload-interval."+noEffectShared,
			fixed("604800000"), validateInt(1, 1<<63-1)),
		ig("segment.jitter.ms", kmsg.ConfigTypeLong, "Segment roll jitter."+noEffectShared,
			fixed("0"), validateInt(0, 1<<63-1)),
		ig("segment.index.bytes", kmsg.ConfigTypeInt, "Offset index size."+noEffectShared,
			fixed("10485760"), validateInt(4, 1<<31-1)),
		ig("index.interval.bytes", kmsg.ConfigTypeInt, "Offset index density."+noEffectShared,
			fixed("4096"), validateInt(0, 1<<31-1)),
		ig("file.delete.delay.ms", kmsg.ConfigTypeLong, "Deleted objects wait the broker's --object-delete-delay."+noEffectShared,
			fixed("60000"), validateInt(0, 1<<63-1)),
		ig("preallocate", kmsg.ConfigTypeBoolean, "Segment file preallocation."+noEffectShared,
			fixed("false"), validateBool),
		ig("flush.messages", kmsg.ConfigTypeLong, "Every acknowledged batch is already fsynced in the WAL."+noEffectShared,
			fixed(maxLong), validateInt(1, 1<<63-1)),
		ig("flush.ms", kmsg.ConfigTypeLong, "Every acknowledged batch is already fsynced in the WAL."+noEffectShared,
			fixed(maxLong), validateInt(0, 1<<63-1)),
		ig("remote.storage.enable", kmsg.ConfigTypeBoolean, "Tiered storage: every Vigil topic's log is in the object store already."+noEffectShared,
			fixed("false"), validateBool),
		ig("local.retention.ms", kmsg.ConfigTypeLong, "Tiered storage's local retention."+noEffectShared,
			fixed("-2"), validateInt(-2, 1<<63-1)),
		ig("local.retention.bytes", kmsg.ConfigTypeLong, "Tiered storage's local retention."+noEffectShared,
			fixed("-2"), validateInt(-2, 1<<63-1)),
		ig("message.downconversion.enable", kmsg.ConfigTypeBoolean, "Vigil serves record batches v2 only (Fetch v4 and later) and never down-converts.",
			fixed("true"), validateBool),
		ig("message.format.version", kmsg.ConfigTypeString, "Deprecated since Kafka 3.0 (KIP-724), which then writes record format v2 whatever it says; Vigil stores v2 only. A Kafka version from 0.8.0 to 3.9 is accepted, as Kafka 3.9 accepts it.",
			fixed("3.0-IV1"), validateMessageFormatVersion),
		ig("remote.log.copy.disable", kmsg.ConfigTypeBoolean, "Tiered storage's copy to remote storage (Kafka 3.9, KIP-950)."+noEffectShared,
			fixed("false"), validateBool),
		ig("remote.log.delete.on.disable", kmsg.ConfigTypeBoolean, "Tiered storage's deletion of remote data when it is disabled (Kafka 3.9, KIP-950)."+noEffectShared,
			fixed("false"), validateBool),
	}
}

// topicConfigs lists the known topic configs, in the table's order.
func (b *Broker) topicConfigs() []topicConfig { return b.topicCfgs }

func (b *Broker) topicConfig(name string) (topicConfig, bool) {
	i, ok := b.topicCfgIndex[name]
	if !ok {
		return topicConfig{}, false
	}
	return b.topicCfgs[i], true
}

func validateInt(lo, hi int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		if n < lo || n > hi {
			return fmt.Errorf("%d is outside [%d, %d]", n, lo, hi)
		}
		return nil
	}
}

func validateBool(v string) error {
	if _, err := strconv.ParseBool(strings.TrimSpace(v)); err != nil {
		return fmt.Errorf("%q is not true or false", v)
	}
	return nil
}

func validateOneOf(values ...string) func(string) error {
	return func(v string) error {
		if !slices.Contains(values, strings.TrimSpace(v)) {
			return fmt.Errorf("%q is not one of %s", v, strings.Join(values, ", "))
		}
		return nil
	}
}

func validateRatio(v string) error {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		return fmt.Errorf("%q is not a number", v)
	}
	if f < 0 || f > 1 {
		return fmt.Errorf("%v is outside [0, 1]", f)
	}
	return nil
}

func validateGzipLevel(v string) error {
	if err := validateInt(-1, 9)(v); err != nil {
		return err
	}
	if strings.TrimSpace(v) == "0" {
		return fmt.Errorf("0 is not a gzip level: -1 (the default) or 1 to 9")
	}
	return nil
}

// validateThrottledReplicas accepts Kafka's forms: empty, "*", or
// partition:broker pairs separated by commas.
func validateThrottledReplicas(v string) error {
	v = strings.TrimSpace(v)
	if v == "" || v == "*" {
		return nil
	}
	for _, pair := range strings.Split(v, ",") {
		p, broker, ok := strings.Cut(strings.TrimSpace(pair), ":")
		_, perr := strconv.Atoi(p)
		_, berr := strconv.Atoi(broker)
		if !ok || perr != nil || berr != nil {
			return fmt.Errorf("%q: want *, or partition:broker pairs separated by commas", v)
		}
	}
	return nil
}

// formatVersionIVs is, for each Kafka version message.format.version
// names, how many inter-broker protocol variants ("-IV0", "-IV1", ...)
// Kafka 3.9's MetadataVersion defines for it; 0 for the versions named
// without one.
var formatVersionIVs = map[string]int{
	"0.8.0": 0, "0.8.1": 0, "0.8.2": 0, "0.9.0": 0,
	"0.10.0": 2, "0.10.1": 3, "0.10.2": 1, "0.11.0": 3,
	"1.0": 1, "1.1": 1, "2.0": 2, "2.1": 3, "2.2": 2, "2.3": 2, "2.4": 2, "2.5": 1, "2.6": 1, "2.7": 3, "2.8": 2,
	"3.0": 2, "3.1": 1, "3.2": 1, "3.3": 4, "3.4": 1, "3.5": 3, "3.6": 3, "3.7": 5, "3.8": 1, "3.9": 1,
}

// validateMessageFormatVersion accepts what Kafka 3.9's
// MetadataVersion.fromVersionString does: a version, with an IV suffix or
// not, where anything past three parts (0.x) or two (later) is ignored,
// so 0.10.0.0 and 2.8.1 are valid.
func validateMessageFormatVersion(v string) error {
	parts := strings.Split(v, ".")
	n := 2
	if strings.HasPrefix(v, "0.") {
		n = 3
	}
	key := v
	if len(parts) > n {
		key = strings.Join(parts[:n], ".")
	}
	version, iv, hasIV := strings.Cut(key, "-IV")
	ivs, ok := formatVersionIVs[version]
	if ok && hasIV {
		i, err := strconv.Atoi(iv)
		ok = err == nil && i >= 0 && i < ivs && iv == strconv.Itoa(i)
	}
	if !ok {
		return fmt.Errorf("%q is not a Kafka version (0.8.0 to 3.9, as 0.10.0, 2.8 or 3.0-IV1)", v)
	}
	return nil
}

func validateCompressionType(v string) error {
	if _, ok := batch.ParseCodec(v); ok || strings.TrimSpace(v) == "producer" {
		return nil
	}
	return fmt.Errorf("%q is not one of uncompressed, gzip, snappy, lz4, zstd, producer", v)
}

// compressionTarget is what a topic's compression.type asks of the
// produce path: ok=false for producer (store batches as they come), else
// the codec and level batches in another codec are recompressed to. It
// makes no garbage, being looked up on every produce.
func (b *Broker) compressionTarget(configs map[string]string) (t batch.Target, ok bool) {
	codec, ok := batch.ParseCodec(b.effective(configs, "compression.type"))
	if !ok {
		return batch.Target{}, false
	}
	t.Codec = codec
	switch codec {
	case batch.CodecGzip:
		t.Level = int(b.effectiveInt(configs, "compression.gzip.level"))
	case batch.CodecLz4:
		t.Level = int(b.effectiveInt(configs, "compression.lz4.level"))
	case batch.CodecZstd:
		t.Level = int(b.effectiveInt(configs, "compression.zstd.level"))
	}
	return t, true
}

func validateCleanupPolicy(v string) error {
	for _, p := range strings.Split(v, ",") {
		switch strings.TrimSpace(p) {
		case "delete", "compact":
		default:
			return fmt.Errorf("cleanup.policy %q: must be delete, compact, or both", p)
		}
	}
	return nil
}

// checkTopicConfigs validates a set of topic configs; the error text goes
// back to the client with INVALID_CONFIG.
func (b *Broker) checkTopicConfigs(configs map[string]string) error {
	for k, v := range configs {
		c, ok := b.topicConfig(k)
		if !ok {
			return fmt.Errorf("unknown topic config %q (supported: %s)", k, strings.Join(b.topicConfigNames(), ", "))
		}
		if err := c.validate(v); err != nil {
			return fmt.Errorf("invalid value for %s: %v", k, err)
		}
	}
	return nil
}

// noteIgnoredConfigs logs, once per config and process, that a topic was
// given a config Vigil stores and shows but does not act on, so an
// operator who set it learns why nothing changed.
func (b *Broker) noteIgnoredConfigs(topic string, configs map[string]string) {
	for _, name := range slices.Sorted(maps.Keys(configs)) {
		c, ok := b.topicConfig(name)
		if !ok || !c.ignored {
			continue
		}
		if _, seen := b.ignoredLogged.LoadOrStore(name, true); !seen {
			b.log.Info("topic config accepted and stored, but it has no effect in Vigil", "config", name, "value", configs[name], "topic", topic, "why", c.doc)
		}
	}
}

func (b *Broker) topicConfigNames() []string {
	var out []string
	for _, c := range b.topicConfigs() {
		out = append(out, c.name)
	}
	slices.Sort(out)
	return out
}

// effective returns a topic's value for a config: its own or the default.
func (b *Broker) effective(configs map[string]string, name string) string {
	if v, ok := configs[name]; ok {
		return v
	}
	if i, ok := b.topicCfgIndex[name]; ok {
		return b.topicCfgDefaults[i]
	}
	return "" // not a known config: callers name known ones
}

func (b *Broker) effectiveInt(configs map[string]string, name string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(b.effective(configs, name)), 10, 64)
	return n
}

// timestampPolicy is what a topic's message.timestamp.* configs ask of
// the produce path.
type timestampPolicy struct {
	logAppend     bool  // stamp batches with the append time
	before, after int64 // create-time bounds around the broker's clock, in ms
}

func (b *Broker) timestampPolicy(configs map[string]string) timestampPolicy {
	if !hasTimestampConfig(configs) {
		return timestampPolicy{before: math.MaxInt64, after: math.MaxInt64}
	}
	p := timestampPolicy{logAppend: strings.TrimSpace(b.effective(configs, "message.timestamp.type")) == timestampAppend}
	// The deprecated single bound stands in for either of the two that is
	// not set, as in Kafka 3.6 to 3.9.
	diff := b.effectiveInt(configs, "message.timestamp.difference.max.ms")
	p.before, p.after = diff, diff
	if _, ok := configs["message.timestamp.before.max.ms"]; ok {
		p.before = b.effectiveInt(configs, "message.timestamp.before.max.ms")
	}
	if _, ok := configs["message.timestamp.after.max.ms"]; ok {
		p.after = b.effectiveInt(configs, "message.timestamp.after.max.ms")
	}
	return p
}

func hasTimestampConfig(configs map[string]string) bool {
	for k := range configs {
		if strings.HasPrefix(k, "message.timestamp.") {
			return true
		}
	}
	return false
}

// bounded reports whether create times must be checked against the clock.
func (p timestampPolicy) bounded() bool {
	return !p.logAppend && (p.before < math.MaxInt64 || p.after < math.MaxInt64)
}

var legalTopic = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// validTopicName applies Kafka's topic naming rules.
func validTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("topic name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is not allowed", name)
	case len(name) > 249:
		return fmt.Errorf("topic name is %d characters long; the limit is 249", len(name))
	case !legalTopic.MatchString(name):
		return fmt.Errorf("topic name %q contains characters other than ASCII letters, digits, '.', '_' and '-'", name)
	}
	return nil
}
