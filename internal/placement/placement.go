// Package placement decides which broker owns a key (a partition, or a
// partition for one zone's clients) by rendezvous hashing: every broker
// computes the same owner from the same list of brokers, no coordinator
// is needed, and a broker joining or leaving moves only the keys whose
// owner it is or becomes.
package placement

import (
	"hash/fnv"
	"strconv"

	"github.com/vigilhq/vigil/internal/meta"
)

// Owner returns the broker among those eligible with the highest score
// for key, or -1 if none is eligible.
func Owner(key string, brokers []meta.BrokerInfo, eligible func(meta.BrokerInfo) bool) int32 {
	best, bestScore := int32(-1), uint64(0)
	for _, b := range brokers {
		if !eligible(b) {
			continue
		}
		if s := score(key, b.ID); best < 0 || s > bestScore {
			best, bestScore = b.ID, s
		}
	}
	return best
}

// PartitionKey is the key of one partition.
func PartitionKey(topic string, partition int32) string {
	return topic + "/" + strconv.Itoa(int(partition))
}

func score(key string, broker int32) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(int(broker))))
	return mix(h.Sum64())
}

// mix spreads FNV's output (whose high bits vary little for short inputs
// differing in their last byte) over all 64 bits.
func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb93e185ec53b
	x ^= x >> 33
	return x
}
