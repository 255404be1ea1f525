package broker

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/storage"
)

// topicConfig describes one topic config the broker understands. Values
// not set on a topic fall back to the broker-wide default.
type topicConfig struct {
	name     string
	typ      kmsg.ConfigType
	doc      string
	def      func(b *Broker) string
	validate func(v string) error
}

func (b *Broker) topicConfigs() []topicConfig {
	return []topicConfig{
		{"cleanup.policy", kmsg.ConfigTypeList, "delete: old segments are removed by retention. compact is not available yet.",
			func(*Broker) string { return "delete" }, validateCleanupPolicy},
		{"max.message.bytes", kmsg.ConfigTypeInt, "Largest record batch size the broker accepts for this topic.",
			func(b *Broker) string { return strconv.Itoa(int(b.cfg.MaxMessageBytes)) }, validateInt(0, 1<<31-1)},
		{"retention.bytes", kmsg.ConfigTypeLong, "Per-partition size above which the oldest objects are deleted; -1 for no limit.",
			func(b *Broker) string { return strconv.FormatInt(b.cfg.RetentionBytes, 10) }, validateInt(-1, 1<<63-1)},
		{"retention.ms", kmsg.ConfigTypeLong, "Age above which records are deleted; -1 to keep them forever.",
			func(b *Broker) string { return strconv.FormatInt(b.cfg.RetentionMs, 10) }, validateInt(-1, 1<<63-1)},
		{storage.LegalHoldConfig, kmsg.ConfigTypeBoolean, "true stops every deletion of this topic's data (retention, DeleteRecords, DeleteTopics) until set back to false.",
			func(*Broker) string { return "false" }, validateBool},
	}
}

func (b *Broker) topicConfig(name string) (topicConfig, bool) {
	for _, c := range b.topicConfigs() {
		if c.name == name {
			return c, true
		}
	}
	return topicConfig{}, false
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

func validateCleanupPolicy(v string) error {
	for _, p := range strings.Split(v, ",") {
		switch strings.TrimSpace(p) {
		case "delete":
		case "compact":
			return fmt.Errorf("cleanup.policy=compact is not supported yet: Vigil does not compact topics by key; use delete")
		default:
			return fmt.Errorf("cleanup.policy %q: must be delete", p)
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
	c, _ := b.topicConfig(name)
	return c.def(b)
}

func (b *Broker) effectiveInt(configs map[string]string, name string) int64 {
	n, _ := strconv.ParseInt(b.effective(configs, name), 10, 64)
	return n
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
