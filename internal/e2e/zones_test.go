package e2e

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// zoneBytes is the cluster's zone byte counters, summed over brokers.
type zoneBytes struct {
	clientSame, clientCross, fwdSame, fwdCross float64
}

func (c *testCluster) zoneBytes(t *testing.T) zoneBytes {
	t.Helper()
	var z zoneBytes
	for _, b := range c.brokers {
		z.clientSame += b.metric(t, `vigil_zone_client_bytes_total{cross="false"}`)
		z.clientCross += b.metric(t, `vigil_zone_client_bytes_total{cross="true"}`)
		z.fwdSame += b.metric(t, `vigil_zone_forward_bytes_total{cross="false"}`)
		z.fwdCross += b.metric(t, `vigil_zone_forward_bytes_total{cross="true"}`)
	}
	return z
}

func (z zoneBytes) sub(o zoneBytes) zoneBytes {
	return zoneBytes{z.clientSame - o.clientSame, z.clientCross - o.clientCross, z.fwdSame - o.fwdSame, z.fwdCross - o.fwdCross}
}

// zoneMeter is a franz-go hook counting, on the client's side, the bytes
// it wrote to and read from brokers of its own zone and of others.
type zoneMeter struct {
	zone   string
	zoneOf map[string]string // broker host:port -> zone
	mu     sync.Mutex
	same   int64
	cross  int64
	byAPI  map[string]int64 // cross-zone bytes per API
}

func (m *zoneMeter) count(meta kgo.BrokerMetadata, key int16, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.zoneOf[net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))] == m.zone {
		m.same += int64(n)
		return
	}
	m.cross += int64(n)
	m.byAPI[kmsg.NameForKey(key)] += int64(n)
}

func (m *zoneMeter) OnBrokerWrite(meta kgo.BrokerMetadata, key int16, n int, _, _ time.Duration, _ error) {
	m.count(meta, key, n)
}

func (m *zoneMeter) OnBrokerRead(meta kgo.BrokerMetadata, key int16, n int, _, _ time.Duration, _ error) {
	m.count(meta, key, n)
}

// TestZoneRouting runs four brokers in zones a, a, b, b. A producer and a
// consumer whose client.id names zone a must be told only zone-a leaders
// and still write and read every record exactly once, in order, their
// requests for partitions led in zone b forwarded by the zone-a brokers.
// The same workload from a client that names no zone goes to the real
// leaders of both zones. It reports the cross-zone bytes of both runs.
func TestZoneRouting(t *testing.T) {
	c := newTestCluster(t, true)
	zoneOf := map[int32]string{1: "a", 2: "a", 3: "b", 4: "b"}
	for id := int32(1); id <= 4; id++ {
		c.start(id, zoneOf[id])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	newClient := func(seeds []string, opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(250 * time.Millisecond),
			kgo.RetryTimeout(60 * time.Second)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	adm := kadm.NewClient(newClient(c.seeds()))
	// Placement must see all four brokers before the topics are created,
	// or partitions would move under the workload.
	for {
		md, err := adm.Metadata(ctx)
		if err == nil && len(md.Brokers) == 4 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("four brokers never registered: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	const partitions = 12
	for _, topic := range []string{"zoned", "unzoned"} {
		if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
		real := leadersOf(t, ctx, adm, topic, nil)
		inB := 0
		for _, l := range real {
			if zoneOf[l] == "b" {
				inB++
			}
		}
		t.Logf("%s: real leaders %v (%d of %d partitions in zone b)", topic, real, inB, partitions)
		if inB == 0 {
			t.Fatalf("%s: no partition is led in zone b; the test would prove nothing", topic)
		}
	}

	zoneASeeds := []string{c.brokers[1].addr, c.brokers[2].addr}
	const clientA = "detect;zone=a"
	// A zone-a client is told only zone-a leaders.
	admA := kadm.NewClient(newClient(zoneASeeds, kgo.ClientID(clientA)))
	md, err := admA.Metadata(ctx, "zoned")
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 4 {
		t.Errorf("zone-a client told %d brokers, want all 4", len(md.Brokers))
	}
	for _, p := range md.Topics["zoned"].Partitions {
		if zoneOf[p.Leader] != "a" {
			t.Errorf("zone-a client told partition %d is led by broker %d (zone %q)", p.Partition, p.Leader, zoneOf[p.Leader])
		}
	}

	const n = 3000
	addrZone := map[string]string{}
	for id, b := range c.brokers {
		addrZone[b.addr] = zoneOf[id]
	}
	run := func(topic string, seeds []string, opts ...kgo.Opt) (zoneBytes, *zoneMeter) {
		before := c.zoneBytes(t)
		meter := &zoneMeter{zone: "a", zoneOf: addrZone, byAPI: map[string]int64{}}
		opts = append(opts, kgo.WithHooks(meter))
		prod := newClient(seeds, append([]kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerLinger(2 * time.Millisecond), kgo.RecordDeliveryTimeout(time.Minute)}, opts...)...)
		var mu sync.Mutex
		var failed []error
		for i := range n {
			v := fmt.Sprintf("%s-%06d", topic, i)
			prod.Produce(ctx, &kgo.Record{Key: []byte(v), Value: []byte(v)}, func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					failed = append(failed, err)
					mu.Unlock()
				}
			})
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if len(failed) > 0 {
			t.Fatalf("%s: %d produces failed, first: %v", topic, len(failed), failed[0])
		}
		cons := newClient(seeds, append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchMaxWait(250 * time.Millisecond)}, opts...)...)
		seen := map[string]bool{}
		last := map[int32]int{}
		for len(seen) < n && ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			fs.EachError(func(tp string, p int32, err error) { t.Logf("%s[%d]: fetch error: %v", tp, p, err) })
			fs.EachRecord(func(r *kgo.Record) {
				v := string(r.Value)
				if seen[v] {
					t.Errorf("%s read twice", v)
				}
				seen[v] = true
				i, _ := strconv.Atoi(v[strings.LastIndexByte(v, '-')+1:])
				if prev, ok := last[r.Partition]; ok && i <= prev {
					t.Errorf("partition %d: %s after record %d", r.Partition, v, prev)
				}
				last[r.Partition] = i
			})
		}
		if len(seen) != n {
			t.Fatalf("%s: read %d of %d records", topic, len(seen), n)
		}
		prod.Close()
		cons.Close()
		return c.zoneBytes(t).sub(before), meter
	}

	zoned, zm := run("zoned", zoneASeeds, kgo.ClientID(clientA))
	t.Logf("client %q, %d records produced and consumed: broker metrics: client bytes cross-zone %.0f, in-zone %.0f; forwarded bytes cross-zone %.0f, in-zone %.0f; client-side (hooks): cross-zone %d %v, in-zone %d",
		clientA, n, zoned.clientCross, zoned.clientSame, zoned.fwdCross, zoned.fwdSame, zm.cross, zm.byAPI, zm.same)
	// The broker counters count only clients that name a zone, so the
	// client without one is measured on its side: it sits in zone a and
	// talks to the real leaders in both zones.
	unzoned, um := run("unzoned", c.seeds(), kgo.ClientID("detect"))
	t.Logf("client %q (no zone, in zone a), %d records produced and consumed: broker metrics: client bytes cross-zone %.0f, in-zone %.0f (it names no zone); forwarded bytes cross-zone %.0f, in-zone %.0f; client-side (hooks): cross-zone %d %v, in-zone %d",
		"detect", n, unzoned.clientCross, unzoned.clientSame, unzoned.fwdCross, unzoned.fwdSame, um.cross, um.byAPI, um.same)
	// Every byte of the partitions' traffic stays in zone a. franz-go
	// still sends the requests any broker answers (InitProducerID, and
	// Metadata after the first) to a random broker of the complete
	// broker list, so a few hundred bytes of those may cross.
	for _, api := range []string{"Produce", "Fetch", "ListOffsets", "OffsetForLeaderEpoch"} {
		if zm.byAPI[api] != 0 {
			t.Errorf("zone-a client sent %s requests to zone b: %d bytes", api, zm.byAPI[api])
		}
	}
	if zoned.clientCross != float64(zm.cross) {
		t.Errorf("brokers counted %.0f cross-zone bytes of the zone-a client, the client %d", zoned.clientCross, zm.cross)
	}
	if zm.cross*20 > um.cross {
		t.Errorf("zone-a client crossed zones with %d bytes, the client without a zone with %d; want under 1/20 of it", zm.cross, um.cross)
	}
	if um.cross == 0 {
		t.Errorf("the client without a zone exchanged no bytes with zone b, though it leads partitions")
	}
	if zoned.fwdCross == 0 {
		t.Errorf("no bytes forwarded to zone b, though it leads partitions")
	}
}
