package broker

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/internal/storage"
)

// TestProduceConfigLookupsDoNotAllocate: the lookups every produce request
// makes per topic (max.message.bytes, the timestamp policy, the cleanup
// policy, the compression target) make no garbage, however many topic
// configs the broker knows.
func TestProduceConfigLookupsDoNotAllocate(t *testing.T) {
	b := fuzzBroker(t)
	for _, configs := range []map[string]string{
		nil,
		{"retention.ms": "1000"},
		{"message.timestamp.type": "LogAppendTime", "message.timestamp.after.max.ms": "60000"},
		{"cleanup.policy": "compact, delete"},
		{"compression.type": "zstd", "compression.zstd.level": "19"},
		{"compression.type": "lz4"},
	} {
		allocs := testing.AllocsPerRun(100, func() {
			_ = b.effectiveInt(configs, "max.message.bytes")
			_ = b.timestampPolicy(configs)
			_, _ = storage.CleanupPolicy(configs)
			_, _ = b.compressionTarget(configs)
		})
		if allocs != 0 {
			t.Errorf("configs %v: %v allocations per produce-path lookup, want 0", configs, allocs)
		}
	}
}

// TestMessageFormatVersion: what Kafka 3.9 accepts for the deprecated
// message.format.version (MetadataVersion.fromVersionString), and what it
// refuses.
func TestMessageFormatVersion(t *testing.T) {
	for _, v := range []string{"0.8.0", "0.10.0.0", "0.10.0", "0.10.0-IV1", "0.11.0-IV2", "1.0", "2.8.1", "2.8-IV1", "3.0-IV1", "3.9", "3.9-IV0", "3.7-IV4"} {
		if err := validateMessageFormatVersion(v); err != nil {
			t.Errorf("%s refused: %v", v, err)
		}
	}
	for _, v := range []string{"", "banana", "0.10", "0.12.0", "3.10", "4.0", "3.9-IV1", "3.0-IV2", "0.9.0-IV0", "3.9-IVx", "3.9-IV00", "v2"} {
		if err := validateMessageFormatVersion(v); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
}

// TestIgnoredConfigsLoggedOnce: a config Vigil stores but does not act on
// is logged when set, once per config however many topics set it; a
// config Vigil applies is not.
func TestIgnoredConfigsLoggedOnce(t *testing.T) {
	b := fuzzBroker(t)
	var buf bytes.Buffer
	b.log = slog.New(slog.NewTextHandler(&buf, nil))
	for _, topic := range []string{"a", "b"} {
		b.noteIgnoredConfigs(topic, map[string]string{"message.format.version": "0.10.0.0", "retention.ms": "1000", "segment.bytes": "1048576"})
	}
	out := buf.String()
	for name, want := range map[string]int{"config=message.format.version": 1, "config=segment.bytes": 1, "config=retention.ms": 0} {
		if got := strings.Count(out, name+" "); got != want {
			t.Errorf("%s logged %d times, want %d:\n%s", name, got, want, out)
		}
	}
}
