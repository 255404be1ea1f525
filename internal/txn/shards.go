package txn

import (
	"maps"
	"slices"
)

// Shards are the coordinators one broker runs, by the __transaction_state
// partition each serves: a transactional id is coordinated where its
// partition (PartitionFor) is led. A Shards value is never changed; a
// broker that gains or loses a partition builds a new one. The nil *Shards
// coordinates nothing.
type Shards struct {
	partitions int32
	byPart     map[int32]*Coordinator
}

// NewShards builds the routing of a state log of the given partition
// count to byPart's coordinators (which it keeps; the caller must not
// change the map afterwards).
func NewShards(partitions int32, byPart map[int32]*Coordinator) *Shards {
	return &Shards{partitions: partitions, byPart: byPart}
}

// For returns the coordinator of txnID, or nil when this broker does not
// coordinate it (NOT_COORDINATOR).
func (s *Shards) For(txnID string) *Coordinator {
	if s == nil || s.partitions <= 0 {
		return nil
	}
	return s.byPart[PartitionFor(txnID, s.partitions)]
}

// Partitions is the partition count of the state log (0 for nil).
func (s *Shards) Partitions() int32 {
	if s == nil {
		return 0
	}
	return s.partitions
}

// All returns every coordinator once, in the order of the first
// partition each serves.
func (s *Shards) All() []*Coordinator {
	if s == nil {
		return nil
	}
	var out []*Coordinator
	for _, p := range slices.Sorted(maps.Keys(s.byPart)) {
		if c := s.byPart[p]; !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
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

// Map returns a copy of the coordinators by partition (empty for nil).
func (s *Shards) Map() map[int32]*Coordinator {
	out := map[int32]*Coordinator{}
	if s != nil {
		maps.Copy(out, s.byPart)
	}
	return out
}
