package cluster

import (
	"fmt"
	"testing"

	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/storage"
)

func brokers(ids ...int32) []meta.BrokerInfo {
	var out []meta.BrokerInfo
	for _, id := range ids {
		out = append(out, meta.BrokerInfo{ID: id})
	}
	return out
}

func placeAll(m *Member, bs []meta.BrokerInfo, topics, parts int) map[storage.Partition]int32 {
	out := map[storage.Partition]int32{}
	for t := range topics {
		for p := range parts {
			tp := storage.Partition{Topic: fmt.Sprintf("t%d", t), Partition: int32(p)}
			out[tp] = m.owner(tp, bs)
		}
	}
	return out
}

// TestPlacementBalancedAndStable checks the rendezvous placement: every
// broker gets a fair share, adding a broker moves only partitions to the
// new broker, and removing one moves only its own partitions.
func TestPlacementBalancedAndStable(t *testing.T) {
	m := New(Config{BrokerID: 1}, nil, nil, nil)
	three := placeAll(m, brokers(1, 2, 3), 20, 30)
	counts := map[int32]int{}
	for _, b := range three {
		counts[b]++
	}
	for id := int32(1); id <= 3; id++ {
		if n := counts[id]; n < 150 || n > 250 { // 600 partitions, 200 each on average
			t.Errorf("broker %d owns %d of 600 partitions: %v", id, n, counts)
		}
	}
	four := placeAll(m, brokers(1, 2, 3, 4), 20, 30)
	moved := 0
	for tp, b := range four {
		if b != three[tp] {
			moved++
			if b != 4 {
				t.Errorf("%v moved from %d to %d, not to the new broker", tp, three[tp], b)
			}
		}
	}
	if moved < 100 || moved > 200 {
		t.Errorf("adding a 4th broker moved %d of 600 partitions, want about 150", moved)
	}
	two := placeAll(m, brokers(1, 3), 20, 30)
	for tp, b := range two {
		if three[tp] != 2 && b != three[tp] {
			t.Errorf("%v moved from %d to %d though its broker stayed", tp, three[tp], b)
		}
	}
}

func TestPlacementDraining(t *testing.T) {
	m := New(Config{BrokerID: 1}, nil, nil, nil)
	bs := brokers(1, 2, 3)
	bs[1].Draining = true
	for tp, b := range placeAll(m, bs, 5, 20) {
		if b == 2 {
			t.Errorf("%v placed on draining broker 2", tp)
		}
	}
	all := brokers(1, 2)
	all[0].Draining, all[1].Draining = true, true
	if b := m.owner(storage.Partition{Topic: "x", Partition: 0}, all); b != 1 && b != 2 {
		t.Errorf("with every broker draining, placed on %d", b)
	}
	// __consumer_offsets spreads like any topic: each broker coordinates
	// the groups of the partitions it leads.
	on := map[int32]int{}
	for p := int32(0); p < 16; p++ {
		on[m.owner(storage.Partition{Topic: "__consumer_offsets", Partition: p}, brokers(1, 2, 3))]++
	}
	if len(on) != 3 {
		t.Errorf("__consumer_offsets's 16 partitions placed on %v, want all three brokers", on)
	}
	if b := m.owner(storage.Partition{Topic: "x"}, nil); b != -1 {
		t.Errorf("no brokers: owner %d, want -1", b)
	}
}
