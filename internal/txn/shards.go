package txn

import "github.com/vigilhq/vigil/internal/shard"

// Shards are the coordinators one broker runs, by the __transaction_state
// partition each serves: a transactional id is coordinated where its
// partition (PartitionFor) is led. For(txnID) is nil where this broker
// does not coordinate the id (NOT_COORDINATOR).
type Shards = shard.Set[*Coordinator]

// NewShards builds the routing of a state log of the given partition
// count to byPart's coordinators (shard.New).
func NewShards(partitions int32, byPart map[int32]*Coordinator) *Shards {
	return shard.New(partitions, byPart)
}

// Single routes every transactional id to c, a coordinator of all
// partitions (a broker built without a server, and tests).
func Single(c *Coordinator) *Shards {
	byPart := make(map[int32]*Coordinator, len(c.parts))
	for p := range c.parts {
		byPart[int32(p)] = c
	}
	return NewShards(int32(len(c.parts)), byPart)
}
