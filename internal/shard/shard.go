// Package shard routes a key (a group id, a transactional id) to the
// coordinator of the partition of an internal log that holds its state
// (__consumer_offsets, __transaction_state), as Kafka routes it: a
// broker runs one coordinator per partition it leads, and a client's
// FindCoordinator lands on the leader of the key's partition.
package shard

import (
	"maps"
	"slices"
	"unicode/utf16"
)

// Partition is the partition of key in a log of partitions partitions:
// Kafka's Utils.abs(key.hashCode()) % partitions, with Java's String
// hash over UTF-16 code units, so that a key maps where Kafka maps it
// (the partition a client's FindCoordinator is answered from must be
// the one its state is in).
func Partition(key string, partitions int32) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(key)) {
		h = 31*h + int32(u)
	}
	if h == -1<<31 {
		h = 0 // Utils.abs(Integer.MIN_VALUE) is 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}

// Set is the coordinators one broker runs, by the partition each
// serves. A Set is never changed; a broker that gains or loses a
// partition builds a new one. The nil *Set coordinates nothing.
type Set[C comparable] struct {
	partitions int32
	byPart     map[int32]C
}

// New builds the routing of a log of the given partition count to
// byPart's coordinators (which it keeps; the caller must not change the
// map afterwards).
func New[C comparable](partitions int32, byPart map[int32]C) *Set[C] {
	return &Set[C]{partitions: partitions, byPart: byPart}
}

// For returns the coordinator of key, or the zero C when this broker
// does not coordinate it (NOT_COORDINATOR).
func (s *Set[C]) For(key string) C {
	var zero C
	if s == nil || s.partitions <= 0 {
		return zero
	}
	return s.byPart[Partition(key, s.partitions)]
}

// ForPartition returns the coordinator of partition p, or the zero C
// when this broker does not lead it.
func (s *Set[C]) ForPartition(p int32) C {
	var zero C
	if s == nil {
		return zero
	}
	return s.byPart[p]
}

// Partitions is the partition count of the log (0 for nil).
func (s *Set[C]) Partitions() int32 {
	if s == nil {
		return 0
	}
	return s.partitions
}

// All returns every coordinator once, in the order of the first
// partition each serves.
func (s *Set[C]) All() []C {
	if s == nil {
		return nil
	}
	var out []C
	for _, p := range slices.Sorted(maps.Keys(s.byPart)) {
		if c := s.byPart[p]; !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// Map returns a copy of the coordinators by partition (empty for nil).
func (s *Set[C]) Map() map[int32]C {
	out := map[int32]C{}
	if s != nil {
		maps.Copy(out, s.byPart)
	}
	return out
}
