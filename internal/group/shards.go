package group

import (
	"fmt"
	"slices"

	"github.com/vigilhq/vigil/internal/shard"
)

// owns reports whether the coordinator serves offsets partition p.
func (c *Coordinator) owns(p int32) bool {
	return c.cfg.Partitions == nil || slices.Contains(c.cfg.Partitions, p)
}

// ownedDesc names the partitions the coordinator serves, for logs.
func (c *Coordinator) ownedDesc() string {
	if c.cfg.Partitions == nil {
		return "all"
	}
	return fmt.Sprint(c.cfg.Partitions)
}

// Shards are the coordinators one broker runs, by the offsets-log
// partition each serves: a group is coordinated where its partition
// (PartitionFor) is led. For(groupID) is nil where this broker does not
// coordinate the group (NOT_COORDINATOR); ForPartition(p) is the
// coordinator a transaction marker written to offsets partition p is
// reported to (CompleteTxn).
type Shards = shard.Set[*Coordinator]

// NewShards builds the routing of an offsets log of the given partition
// count to byPart's coordinators (shard.New).
func NewShards(partitions int32, byPart map[int32]*Coordinator) *Shards {
	return shard.New(partitions, byPart)
}

// Single routes every group to c, a coordinator of all partitions (for
// a broker built without a server, as the fuzz test's; a server runs one
// coordinator per partition).
func Single(c *Coordinator) *Shards {
	byPart := make(map[int32]*Coordinator, len(c.parts))
	for p := range c.parts {
		byPart[int32(p)] = c
	}
	return NewShards(int32(len(c.parts)), byPart)
}
