package broker

import (
	"testing"

	"github.com/vigilhq/vigil/internal/storage"
)

// TestProduceConfigLookupsDoNotAllocate: the lookups every produce request
// makes per topic (max.message.bytes, the timestamp policy, the cleanup
// policy) make no garbage, however many topic configs the broker knows.
func TestProduceConfigLookupsDoNotAllocate(t *testing.T) {
	b := fuzzBroker(t)
	for _, configs := range []map[string]string{
		nil,
		{"retention.ms": "1000"},
		{"message.timestamp.type": "LogAppendTime", "message.timestamp.after.max.ms": "60000"},
		{"cleanup.policy": "compact, delete"},
	} {
		allocs := testing.AllocsPerRun(100, func() {
			_ = b.effectiveInt(configs, "max.message.bytes")
			_ = b.timestampPolicy(configs)
			_, _ = storage.CleanupPolicy(configs)
		})
		if allocs != 0 {
			t.Errorf("configs %v: %v allocations per produce-path lookup, want 0", configs, allocs)
		}
	}
}
