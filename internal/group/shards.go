package group

import (
	"fmt"
	"maps"
	"slices"
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
// (PartitionFor) is led. A Shards value is never changed; a broker that
// gains or loses an offsets partition builds a new one. The nil *Shards
// coordinates nothing.
type Shards struct {
	partitions int32
	byPart     map[int32]*Coordinator
}

// NewShards builds the routing of an offsets log of the given partition
// count to byPart's coordinators (which it keeps; the caller must not
// change the map afterwards).
func NewShards(partitions int32, byPart map[int32]*Coordinator) *Shards {
	return &Shards{partitions: partitions, byPart: byPart}
}

// For returns the coordinator of groupID, or nil when this broker does not
// coordinate it (NOT_COORDINATOR).
func (s *Shards) For(groupID string) *Coordinator {
	if s == nil || s.partitions <= 0 {
		return nil
	}
	return s.byPart[PartitionFor(groupID, s.partitions)]
}

// ForPartition returns the coordinator of offsets partition p, or nil
// when this broker does not lead it: the one a transaction marker written
// to p is reported to (CompleteTxn).
func (s *Shards) ForPartition(p int32) *Coordinator {
	if s == nil {
		return nil
	}
	return s.byPart[p]
}

// All returns every coordinator once, in the order of the first
// partition each serves.
func (s *Shards) All() []*Coordinator {
	if s == nil {
		return nil
	}
	parts := make([]int32, 0, len(s.byPart))
	for p := range s.byPart {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	var out []*Coordinator
	for _, p := range parts {
		if c := s.byPart[p]; !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
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

// Map returns a copy of the coordinators by offsets partition (empty for
// the nil *Shards).
func (s *Shards) Map() map[int32]*Coordinator {
	out := map[int32]*Coordinator{}
	if s != nil {
		maps.Copy(out, s.byPart)
	}
	return out
}
