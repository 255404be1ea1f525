package shard

import (
	"fmt"
	"maps"
	"slices"
	"testing"
)

func TestPartitionMatchesJava(t *testing.T) {
	// Values of Java's Utils.abs(String.hashCode()) % n: "polygenelubricants"
	// hashes to Integer.MIN_VALUE, whose abs Kafka takes as 0; the emoji is
	// two UTF-16 code units.
	for _, tc := range []struct {
		id   string
		n    int32
		want int32
	}{
		{"hello", 50, 22}, {"Aa", 50, 12}, {"BB", 50, 12}, {"polygenelubricants", 50, 0},
		{"console-consumer-1", 50, 24}, {"groupé", 50, 6}, {"g😀", 50, 32}, {"g😀", 16, 10}, {"", 16, 0},
	} {
		if got := Partition(tc.id, tc.n); got != tc.want {
			t.Errorf("Partition(%q, %d) = %d, want %d", tc.id, tc.n, got, tc.want)
		}
	}
}

func TestSet(t *testing.T) {
	type coord struct{ name string }
	a, b := &coord{"a"}, &coord{"b"}
	// a serves partitions 0 and 2, b partition 3; 1 is led elsewhere.
	s := New(4, map[int32]*coord{2: a, 0: a, 3: b})
	want := map[int32]*coord{0: a, 1: nil, 2: a, 3: b}
	seen := map[int32]bool{}
	for i := range 100 {
		k := fmt.Sprint("group-", i)
		p := Partition(k, 4)
		seen[p] = true
		if got := s.For(k); got != want[p] {
			t.Errorf("For(%s) in partition %d = %v, want %v", k, p, got, want[p])
		}
	}
	if len(seen) != 4 {
		t.Errorf("100 keys fell in partitions %v only", seen)
	}
	if got := s.ForPartition(3); got != b {
		t.Errorf("ForPartition(3) = %v, want b", got)
	}
	if got := s.All(); !slices.Equal(got, []*coord{a, b}) {
		t.Errorf("All = %v, want [a b]", got)
	}
	m := s.Map()
	m[1] = b // a copy: the set does not change
	if s.ForPartition(1) != nil || s.Partitions() != 4 || len(s.Map()) != 3 {
		t.Errorf("the set changed through its Map copy: %v", s.Map())
	}
	var none *Set[*coord]
	if none.For("x") != nil || none.ForPartition(0) != nil || none.All() != nil || none.Partitions() != 0 || len(none.Map()) != 0 {
		t.Error("the nil set coordinates something")
	}
	if got := slices.Sorted(maps.Keys(New(0, map[int32]*coord{0: a}).Map())); !slices.Equal(got, []int32{0}) || New(0, map[int32]*coord{0: a}).For("x") != nil {
		t.Error("a set of a log with no partitions routes a key")
	}
}
