package broker

import (
	"testing"

	"github.com/vigilhq/vigil/internal/meta"
)

func TestClientZone(t *testing.T) {
	for id, want := range map[string]string{
		"":                      "",
		"myapp":                 "",
		"myapp;zone=a":          "a",
		"zone=eu-1":             "eu-1",
		"myapp,zone=b,extra=1":  "b",
		"x=1; zone=c ;y=2":      "c",
		"myapp;zone=":           "",
		"myapp;notzone=a":       "",
		"myapp;zone=a;zone=b":   "a",
		"rack-zone=a;zone=east": "east",
	} {
		if got := clientZone(id); got != want {
			t.Errorf("clientZone(%q) = %q, want %q", id, got, want)
		}
	}
}

func TestRoutedLeader(t *testing.T) {
	brokers := []meta.BrokerInfo{
		{ID: 1, Zone: "a"}, {ID: 2, Zone: "a"}, {ID: 3, Zone: "b"}, {ID: 4, Zone: "b"}, {ID: 5, Zone: "a", Draining: true},
	}
	perBroker := map[int32]int{}
	for p := int32(0); p < 200; p++ {
		// A leader in zone b is stood in for by a non-draining zone-a
		// broker, the same one every time.
		got := routedLeader("t", p, 3, "a", brokers)
		if got != 1 && got != 2 {
			t.Fatalf("partition %d: routed to %d, want 1 or 2", p, got)
		}
		if again := routedLeader("t", p, 4, "a", brokers); again != got {
			t.Fatalf("partition %d: routed to %d, then %d", p, got, again)
		}
		perBroker[got]++
		// In-zone leaders, clients without a zone, zones without
		// brokers and leaderless partitions keep the real leader.
		for _, c := range []struct {
			leader int32
			zone   string
			want   int32
		}{{1, "a", 1}, {5, "a", 5}, {3, "", 3}, {3, "c", 3}, {-1, "a", -1}, {3, "b", 3}} {
			if got := routedLeader("t", p, c.leader, c.zone, brokers); got != c.want {
				t.Errorf("partition %d, leader %d, zone %q: routed to %d, want %d", p, c.leader, c.zone, got, c.want)
			}
		}
	}
	if perBroker[1] < 70 || perBroker[2] < 70 {
		t.Errorf("200 partitions spread %v over brokers 1 and 2; want each >= 70", perBroker)
	}
	// A zone-a broker joining takes partitions only for itself.
	with6 := append([]meta.BrokerInfo{{ID: 6, Zone: "a"}}, brokers...)
	moved := 0
	for p := int32(0); p < 200; p++ {
		before, after := routedLeader("t", p, 3, "a", brokers), routedLeader("t", p, 3, "a", with6)
		if before != after {
			moved++
			if after != 6 {
				t.Errorf("partition %d moved from %d to %d, not to the new broker", p, before, after)
			}
		}
	}
	t.Logf("broker 6 joined zone a: %d of 200 partitions moved to it", moved)
}
