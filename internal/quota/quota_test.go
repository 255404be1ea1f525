package quota

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// mapStore is the quota package's view of the metadata store, kept in a
// map: these tests are about resolution and rate arithmetic; the real
// store's conformance is metatest.
type mapStore map[string]map[string]float64

func (m mapStore) ClientQuotas(context.Context) (map[string]map[string]float64, error) {
	out := map[string]map[string]float64{}
	for k, v := range m {
		out[k] = v
	}
	return out, nil
}

func (m mapStore) SetClientQuotas(_ context.Context, e string, q map[string]float64) error {
	if len(q) == 0 {
		delete(m, e)
	} else {
		m[e] = q
	}
	return nil
}

func str(s string) *string { return &s }

func alter(t *testing.T, m *Manager, cs []Component, ops ...Op) {
	t.Helper()
	e, err := NewEntity(cs)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Alter(context.Background(), e, ops, false); err != nil {
		t.Fatal(err)
	}
}

func TestPrecedence(t *testing.T) {
	st := mapStore{}
	m, err := Open(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	alter(t, m, []Component{{Type: ClientID}}, Op{Key: ProducerByteRate, Value: 1})
	alter(t, m, []Component{{Type: ClientID, Name: str("c/1")}}, Op{Key: ProducerByteRate, Value: 2})
	alter(t, m, []Component{{Type: User, Name: str("alice")}}, Op{Key: ProducerByteRate, Value: 3})
	alter(t, m, []Component{{Type: User, Name: str("alice")}, {Type: ClientID, Name: str("c/1")}}, Op{Key: ProducerByteRate, Value: 4})
	for _, c := range []struct {
		user, client string
		want         float64
	}{
		{"alice", "c/1", 4}, {"alice", "other", 3}, {"bob", "c/1", 2}, {"bob", "other", 1},
	} {
		if _, _, _, got := m.resolve(ProducerByteRate, c.user, c.client); got != c.want {
			t.Errorf("resolve(%s, %s) = %v, want %v", c.user, c.client, got, c.want)
		}
	}
	if _, _, _, got := m.resolve(ConsumerByteRate, "alice", "c/1"); got != 0 {
		t.Errorf("consumer quota resolved to %v with none set", got)
	}
	// Stored under canonical keys, reloaded identically.
	if _, ok := st["client-id=c%2F1/user=alice"]; !ok {
		t.Errorf("stored keys %v lack the canonical client-id=c%%2F1/user=alice", st)
	}
	m2, err := Open(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, got := m2.resolve(ProducerByteRate, "alice", "c/1"); got != 4 {
		t.Errorf("after reload resolve = %v, want 4", got)
	}
	// Removing the last quota of an entity removes the entity.
	alter(t, m, []Component{{Type: ClientID}}, Op{Key: ProducerByteRate, Remove: true})
	if _, ok := st["client-id"]; ok {
		t.Errorf("entity with no quotas left is still stored: %v", st)
	}
}

func TestInvalid(t *testing.T) {
	m, _ := Open(context.Background(), mapStore{})
	e, _ := NewEntity([]Component{{Type: ClientID, Name: str("x")}})
	for _, op := range []Op{{Key: "consumer_byte_rates", Value: 10}, {Key: ControllerMutationRate, Value: 0}, {Key: ConnectionCreationRate, Value: 10}, {Key: RequestPercentage, Value: 0}, {Key: ProducerByteRate, Value: 0}, {Key: ProducerByteRate, Value: -5}} {
		if err := m.Alter(context.Background(), e, []Op{op}, false); !errors.Is(err, ErrInvalid) {
			t.Errorf("Alter(%+v) = %v, want ErrInvalid", op, err)
		}
	}
	for _, cs := range [][]Component{
		{{Type: IP, Name: str("host.example")}},
		{{Type: IP, Name: str("")}},
		{{Type: IP, Name: str("1.2.3.4")}, {Type: User}},
	} {
		if _, err := NewEntity(cs); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewEntity(%+v): %v, want ErrInvalid", cs, err)
		}
	}
	ip, err := NewEntity([]Component{{Type: IP, Name: str("::ffff:1.2.3.4")}})
	if err != nil || ip.Key() != "ip=1.2.3.4" {
		t.Errorf("ip entity: %v %q, want the canonical address", err, ip.Key())
	}
	for _, op := range []Op{{Key: ProducerByteRate, Value: 10}, {Key: ConnectionCreationRate, Value: 1.5}, {Key: ConnectionCreationRate, Value: 1 << 40}} {
		if err := m.Alter(context.Background(), ip, []Op{op}, false); !errors.Is(err, ErrInvalid) {
			t.Errorf("Alter(ip, %+v) = %v, want ErrInvalid", op, err)
		}
	}
	if _, err := NewEntity([]Component{{Type: User}, {Type: User}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("duplicate type: %v, want ErrInvalid", err)
	}
}

func TestDescribeFilters(t *testing.T) {
	m, _ := Open(context.Background(), mapStore{})
	alter(t, m, []Component{{Type: ClientID}}, Op{Key: ProducerByteRate, Value: 1})
	alter(t, m, []Component{{Type: ClientID, Name: str("a")}}, Op{Key: ProducerByteRate, Value: 2})
	alter(t, m, []Component{{Type: User, Name: str("u")}, {Type: ClientID, Name: str("a")}}, Op{Key: ProducerByteRate, Value: 3})
	count := func(fs []Filter, strict bool) int {
		d, err := m.Describe(fs, strict)
		if err != nil {
			t.Fatal(err)
		}
		return len(d)
	}
	if n := count([]Filter{{Type: ClientID, Match: "exact", Name: "a"}}, false); n != 2 {
		t.Errorf("client-id=a non-strict: %d entities, want 2", n)
	}
	if n := count([]Filter{{Type: ClientID, Match: "exact", Name: "a"}}, true); n != 1 {
		t.Errorf("client-id=a strict: %d, want 1", n)
	}
	if n := count([]Filter{{Type: ClientID, Match: "default"}}, false); n != 1 {
		t.Errorf("client-id default: %d, want 1", n)
	}
	if n := count([]Filter{{Type: ClientID, Match: "any"}}, true); n != 2 {
		t.Errorf("client-id any strict: %d, want 2", n)
	}
}

func TestThrottle(t *testing.T) {
	m, _ := Open(context.Background(), mapStore{})
	alter(t, m, []Component{{Type: ClientID}}, Op{Key: ProducerByteRate, Value: 1000})
	now := time.Unix(1_700_000_000, 0)
	// 10,000 bytes over the 10 s minimum window is exactly the limit.
	if d := m.Record(ProducerByteRate, Anonymous, "a", 10_000, now); d != 0 {
		t.Fatalf("at the limit: throttled %v", d)
	}
	// 10,000 more: 20,000 B / 10 s = 2x the limit -> 10 s to get back.
	if d := m.Record(ProducerByteRate, Anonymous, "a", 10_000, now); d != 10*time.Second {
		t.Fatalf("at twice the limit: throttle %v, want 10s", d)
	}
	// Another client has its own meter under the default quota.
	if d := m.Record(ProducerByteRate, Anonymous, "b", 100, now); d != 0 {
		t.Fatalf("other client throttled %v", d)
	}
	// Eleven seconds later the old samples have left the window.
	if d := m.Record(ProducerByteRate, Anonymous, "a", 100, now.Add(12*time.Second)); d != 0 {
		t.Fatalf("after the window: throttled %v", d)
	}
}

func TestAdmitConnection(t *testing.T) {
	m, _ := Open(context.Background(), mapStore{})
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	now := time.Unix(1000, 0)
	if d := m.AdmitConnection(a, now); d != 0 {
		t.Fatalf("no quota: throttled %v", d)
	}
	alter(t, m, []Component{{Type: IP, Name: str("10.0.0.1")}}, Op{Key: ConnectionCreationRate, Value: 2})
	alter(t, m, []Component{{Type: IP}}, Op{Key: ConnectionCreationRate, Value: 100})
	// Measured over at least ten seconds: 20 connections at once fit 2/s.
	for i := range 20 {
		if d := m.AdmitConnection(a, now); d != 0 {
			t.Fatalf("connection %d throttled %v", i, d)
		}
	}
	// Refused connections are not counted: each further one is held the
	// same time, bounded by a second.
	for range 5 {
		if d := m.AdmitConnection(a, now); d != 500*time.Millisecond {
			t.Fatalf("over the rate: held %v, want 500ms", d)
		}
	}
	// Another address falls under the default ip quota, metered apart.
	for i := range 50 {
		if d := m.AdmitConnection(b, now); d != 0 {
			t.Fatalf("default ip: connection %d throttled %v", i, d)
		}
	}
	// Once the window has slid past the burst, connections are served again.
	if d := m.AdmitConnection(a, now.Add(12*time.Second)); d != 0 {
		t.Fatalf("after the window: throttled %v", d)
	}
}

func TestRecordRequestTime(t *testing.T) {
	m, _ := Open(context.Background(), mapStore{})
	alter(t, m, []Component{{Type: ClientID, Name: str("busy")}}, Op{Key: RequestPercentage, Value: 50})
	now := time.Unix(1000, 0)
	// 50% of a thread over the ten-second window: five seconds of handling.
	if d := m.RecordRequestTime(Anonymous, "busy", 4*time.Second, now); d != 0 {
		t.Fatalf("within quota: throttled %v", d)
	}
	if d := m.RecordRequestTime(Anonymous, "busy", 2*time.Second, now); d != time.Second {
		t.Fatalf("over quota: throttled %v, want Kafka's bound of one second", d)
	}
	if d := m.RecordRequestTime(Anonymous, "other", time.Minute, now); d != 0 {
		t.Fatalf("client without quota: throttled %v", d)
	}
}

// slowStore answers ClientQuotas with what its map held when the read
// began, after read is closed: a read an Alter overtakes.
type slowStore struct {
	mapStore
	began, read chan struct{}
}

func (s slowStore) ClientQuotas(ctx context.Context) (map[string]map[string]float64, error) {
	q, _ := s.mapStore.ClientQuotas(ctx)
	close(s.began)
	<-s.read
	return q, nil
}

// TestReload: a reload takes what another broker stored, and one that an
// Alter here overtook keeps the Alter's quota.
func TestReload(t *testing.T) {
	st := mapStore{}
	m, _ := Open(context.Background(), st)
	client := []Component{{Type: ClientID, Name: str("replay")}}
	// Another broker sharing the store.
	st["client-id=replay"] = map[string]float64{ConsumerByteRate: 100}
	if err := m.reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d, _ := m.Describe(nil, false); len(d) != 1 || d[0].Values[ConsumerByteRate] != 100 {
		t.Fatalf("after a reload: %+v, want the other broker's quota", d)
	}

	slow := slowStore{mapStore: st, began: make(chan struct{}), read: make(chan struct{})}
	m.store = slow
	done := make(chan error)
	go func() { done <- m.reload(context.Background()) }()
	<-slow.began
	alter(t, m, client, Op{Key: ConsumerByteRate, Value: 200})
	close(slow.read)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d, _ := m.Describe(nil, false); len(d) != 1 || d[0].Values[ConsumerByteRate] != 200 {
		t.Fatalf("a reload read before an Alter replaced it: %+v, want 200", d)
	}
}

// TestMutation: controller_mutation_rate is Kafka's token bucket, full
// (11 s of the rate) at first; strict refuses once it is overdrawn,
// accepting the mutation that overdraws it; permissive accepts all and
// throttles for the overdraft.
func TestMutation(t *testing.T) {
	m, _ := Open(context.Background(), mapStore{})
	alter(t, m, []Component{{Type: ClientID, Name: str("c")}}, Op{Key: ControllerMutationRate, Value: 2})
	now := time.Unix(1000, 0)

	q := m.Mutation("u", "c", true)
	if !q.Record(20, now) || !q.Record(5, now) { // 22 of credit: the second overdraws to -3
		t.Fatal("mutations within the credit refused")
	}
	if q.Throttle(now) != 0 {
		t.Fatalf("throttled %v before any refusal", q.Throttle(now))
	}
	if q.Record(1, now) {
		t.Fatal("strict mutation accepted with the bucket overdrawn")
	}
	if got := q.Throttle(now); got != 1500*time.Millisecond {
		t.Fatalf("throttle %v, want 1.5s (3 partitions at 2/s)", got)
	}
	if got := q.Throttle(now.Add(time.Second)); got != 500*time.Millisecond {
		t.Fatalf("throttle a second later %v, want 0.5s", got)
	}
	// 1.5 s later the bucket is back at zero: accepted again.
	if !m.Mutation("u", "c", true).Record(4, now.Add(1500*time.Millisecond)) {
		t.Fatal("refused once the bucket refilled")
	}

	p := m.Mutation("u", "c", false) // bucket at -4
	if !p.Record(2, now.Add(1500*time.Millisecond)) {
		t.Fatal("permissive mutation refused")
	}
	if got := p.Throttle(now.Add(1500 * time.Millisecond)); got != 3*time.Second {
		t.Fatalf("permissive throttle %v, want 3s (6 partitions at 2/s)", got)
	}
	// Another client has no quota.
	other := m.Mutation("u", "d", true)
	if !other.Record(1000, now) || !other.Record(1, now) || other.Throttle(now) != 0 {
		t.Fatal("client without a quota metered")
	}
	var none *Mutation
	if !none.Record(1, now) || none.Throttle(now) != 0 {
		t.Fatal("nil Mutation refused")
	}
}
