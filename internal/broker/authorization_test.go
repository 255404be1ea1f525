package broker

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"math"
	"net"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/acl"
	"github.com/vigilhq/vigil/internal/kwire"
	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/principal"
)

// produceBench is a broker, a connection as its reader goroutine sees it,
// and a one-partition acks=0 produce request: what the reader goroutine
// does for every produce (validate, authorize, append), without the wait
// for the WAL.
type produceBench struct {
	b   *Broker
	c   *conn
	h   header
	req *kmsg.ProduceRequest
	raw []byte // the batch; each run appends a copy
}

func newProduceBench(tb testing.TB, authz string) *produceBench {
	tb.Helper()
	b := fuzzBroker(tb)
	who := principal.Anonymous
	switch authz {
	case "none":
	case "acl", "acl-super":
		a, err := acl.New(acl.Config{SuperUsers: []string{"User:admin"}})
		if err != nil {
			tb.Fatal(err)
		}
		// A realistic set: the producer's literal ALLOW among others'.
		a.SetBindings([]acl.Binding{
			{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: "fuzz", PatternType: kmsg.ACLResourcePatternTypeLiteral,
				Principal: "User:producer", Host: "*", Operation: kmsg.ACLOperationWrite, Permission: kmsg.ACLPermissionTypeAllow},
			{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: "fu", PatternType: kmsg.ACLResourcePatternTypePrefixed,
				Principal: "User:reader", Host: "*", Operation: kmsg.ACLOperationRead, Permission: kmsg.ACLPermissionTypeAllow},
			{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: "*", PatternType: kmsg.ACLResourcePatternTypeLiteral,
				Principal: "User:*", Host: "10.0.0.9", Operation: kmsg.ACLOperationAll, Permission: kmsg.ACLPermissionTypeDeny},
		})
		b.SetSecurity(Security{ACLs: a})
		who = "User:producer"
		if authz == "acl-super" {
			who = "User:admin"
		}
	default:
		tb.Fatalf("authorizer %q", authz)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	c := &conn{b: b, ctx: ctx, cancel: cancel, log: b.log, api: "Produce",
		auth: authState{principal: who, host: "127.0.0.1"}}

	rec := kmsg.Record{Key: []byte("k"), Value: []byte("value")}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1)
	rb := kmsg.RecordBatch{Magic: 2, PartitionLeaderEpoch: -1, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: 1, Records: rec.AppendTo(nil)}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))

	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks, req.TimeoutMillis = 0, 5000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "fuzz", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0}}}}
	return &produceBench{b: b, c: c, h: header{key: kmsg.Produce.Int16(), version: 9, clientID: "bench"}, req: req, raw: raw}
}

// run handles one produce of a fresh copy of the batch (the log keeps
// the request's bytes, so they are never reused).
func (p *produceBench) run(buf []byte) {
	copy(buf, p.raw)
	p.req.Topics[0].Partitions[0].Records = buf
	if respond := p.b.handleProduce(p.c, p.h, p.req); respond != nil {
		panic("acks=0 produce answered")
	}
}

// TestAuthorizationAddsNoAllocations: authorizing a produce, with no
// authorizer or with one, makes no garbage: the produce path allocates as
// much as it does without authorization.
func TestAuthorizationAddsNoAllocations(t *testing.T) {
	count := func(authz string) float64 {
		p := newProduceBench(t, authz)
		bufs := make([][]byte, 0, 256)
		for range 256 {
			bufs = append(bufs, make([]byte, len(p.raw)))
		}
		i := 0
		p.run(bufs[len(bufs)-1]) // warm: the partition's first append
		// The broker's own goroutines (the WAL's, the uploader's) allocate
		// now and then, and AllocsPerRun counts every goroutine's: the
		// least of a few measures is the handler's own.
		least := math.Inf(1)
		for range 3 { // 180 runs, each on a buffer of its own
			least = min(least, testing.AllocsPerRun(60, func() {
				p.run(bufs[i])
				i++
			}))
		}
		return least
	}
	none := count("none")
	for _, authz := range []string{"acl", "acl-super"} {
		if got := count(authz); got != none {
			t.Errorf("produce with authorizer %s: %v allocations, without one %v", authz, got, none)
		}
	}
	// The checks themselves.
	p := newProduceBench(t, "acl")
	if n := testing.AllocsPerRun(100, func() {
		p.c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, "fuzz")
		p.c.allowedQuiet(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, "fuzz")
	}); n != 0 {
		t.Errorf("an allowed check: %v allocations", n)
	}
}

// BenchmarkProduceHandler is the reader goroutine's share of a produce
// (validate, authorize, append) without an authorizer, with the ACL
// authorizer allowing a literal ACL, and for a super user.
func BenchmarkProduceHandler(b *testing.B) {
	for _, authz := range []string{"none", "acl", "acl-super"} {
		b.Run(authz, func(b *testing.B) {
			p := newProduceBench(b, authz)
			buf := make([]byte, len(p.raw)*b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				p.run(buf[i*len(p.raw) : (i+1)*len(p.raw)])
			}
		})
	}
}

// fakeLeader is another broker as the forward link sees it: it records
// the topics of every request forwarded to it and answers each with no
// error for every partition.
type fakeLeader struct {
	ln     net.Listener
	mu     sync.Mutex
	topics map[string][]string // API name -> topics forwarded
}

func newFakeLeader(t *testing.T) *fakeLeader {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeLeader{ln: ln, topics: map[string][]string{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(nc)
		}
	}()
	return f
}

func (f *fakeLeader) serve(nc net.Conn) {
	defer nc.Close()
	for {
		var size [4]byte
		if _, err := io.ReadFull(nc, size[:]); err != nil {
			return
		}
		frame := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(nc, frame); err != nil {
			return
		}
		key, version := int16(binary.BigEndian.Uint16(frame)), int16(binary.BigEndian.Uint16(frame[2:]))
		corr := frame[4:8]
		body := frame[8:]
		idLen := int16(binary.BigEndian.Uint16(body))
		body = body[2+max(idLen, 0):]
		req := kmsg.RequestForKey(key)
		req.SetVersion(version)
		if req.IsFlexible() {
			body, _ = kwire.SkipTags(body)
		}
		if err := req.ReadFrom(body); err != nil {
			return
		}
		var topics []string
		resp := req.ResponseKind()
		resp.SetVersion(version)
		switch r := req.(type) {
		case *kmsg.ProduceRequest:
			out := resp.(*kmsg.ProduceResponse)
			for _, rt := range r.Topics {
				topics = append(topics, rt.Topic)
				st := kmsg.ProduceResponseTopic{Topic: rt.Topic}
				for _, rp := range rt.Partitions {
					st.Partitions = append(st.Partitions, kmsg.ProduceResponseTopicPartition{Partition: rp.Partition, LogAppendTime: -1})
				}
				out.Topics = append(out.Topics, st)
			}
		case *kmsg.FetchRequest:
			out := resp.(*kmsg.FetchResponse)
			for _, rt := range r.Topics {
				topics = append(topics, rt.Topic)
				st := kmsg.FetchResponseTopic{Topic: rt.Topic}
				for _, rp := range rt.Partitions {
					st.Partitions = append(st.Partitions, kmsg.FetchResponseTopicPartition{Partition: rp.Partition, RecordBatches: []byte{}})
				}
				out.Topics = append(out.Topics, st)
			}
		case *kmsg.ListOffsetsRequest:
			out := resp.(*kmsg.ListOffsetsResponse)
			for _, rt := range r.Topics {
				topics = append(topics, rt.Topic)
				st := kmsg.ListOffsetsResponseTopic{Topic: rt.Topic}
				for _, rp := range rt.Partitions {
					st.Partitions = append(st.Partitions, kmsg.ListOffsetsResponseTopicPartition{Partition: rp.Partition})
				}
				out.Topics = append(out.Topics, st)
			}
		case *kmsg.OffsetForLeaderEpochRequest:
			out := resp.(*kmsg.OffsetForLeaderEpochResponse)
			for _, rt := range r.Topics {
				topics = append(topics, rt.Topic)
				st := kmsg.OffsetForLeaderEpochResponseTopic{Topic: rt.Topic}
				for _, rp := range rt.Partitions {
					st.Partitions = append(st.Partitions, kmsg.OffsetForLeaderEpochResponseTopicPartition{Partition: rp.Partition})
				}
				out.Topics = append(out.Topics, st)
			}
		}
		f.mu.Lock()
		f.topics[kmsg.NameForKey(key)] = append(f.topics[kmsg.NameForKey(key)], topics...)
		f.mu.Unlock()
		out := append([]byte{0, 0, 0, 0}, corr...)
		if resp.IsFlexible() {
			out = append(out, 0)
		}
		out = resp.AppendTo(out)
		binary.BigEndian.PutUint32(out, uint32(len(out)-4))
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}

func (f *fakeLeader) forwarded(api string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.topics[api]...)
}

// remoteLeaders is a cluster in which broker 2, of another zone, leads
// every partition.
type remoteLeaders struct{ addr string }

func (v remoteLeaders) LiveBrokers() []meta.BrokerInfo {
	return []meta.BrokerInfo{{ID: 0, Addr: "127.0.0.1:1", Zone: "a"}, {ID: 2, Addr: v.addr, Zone: "b"}}
}

func (v remoteLeaders) LeaderOf(topic string, p int32) (meta.Leader, bool) {
	return meta.Leader{Topic: topic, Partition: p, Broker: 2}, true
}

func (remoteLeaders) SetDraining(context.Context, int32, bool) error { return nil }

// TestDeniedPartitionsAreNotForwarded: a zone's broker authorizes a
// client's request before forwarding it to the leaders; a partition the
// client may not use is answered here and never reaches a leader, while
// the allowed ones are forwarded and answered by it.
func TestDeniedPartitionsAreNotForwarded(t *testing.T) {
	b := fuzzBroker(t)
	ctx := context.Background()
	if _, err := b.store.CreateTopic(ctx, "secret", 1, nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"fuzz", "secret"} {
		for _, l := range b.store.Topic(name).Logs {
			l.Fence() // another broker leads them
		}
	}
	leader := newFakeLeader(t)
	b.cfg.Zone = "a"
	if err := b.SetCluster(remoteLeaders{addr: leader.ln.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.fwd.Close() })
	a, err := acl.New(acl.Config{})
	if err != nil {
		t.Fatal(err)
	}
	allow := func(op kmsg.ACLOperation) acl.Binding {
		return acl.Binding{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: "fuzz", PatternType: kmsg.ACLResourcePatternTypeLiteral,
			Principal: "User:app", Host: "*", Operation: op, Permission: kmsg.ACLPermissionTypeAllow}
	}
	a.SetBindings([]acl.Binding{allow(kmsg.ACLOperationWrite), allow(kmsg.ACLOperationRead)})
	b.SetSecurity(Security{ACLs: a})
	cctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	c := &conn{b: b, ctx: cctx, cancel: cancel, log: b.log, auth: authState{principal: "User:app", host: "127.0.0.1"}}

	codes := func(topics map[string][]int16) map[string]int16 {
		out := map[string]int16{}
		for topic, cs := range topics {
			if len(cs) != 1 {
				t.Errorf("%s: %d partitions answered, want 1", topic, len(cs))
				continue
			}
			out[topic] = cs[0]
		}
		return out
	}
	h := func(key kmsg.Key, v int16) header {
		return header{key: key.Int16(), version: v, clientID: "app;zone=a"}
	}
	for _, tc := range []struct {
		api    string
		handle func() map[string][]int16
	}{
		{"Produce", func() map[string][]int16 {
			req := kmsg.NewPtrProduceRequest()
			req.SetVersion(9)
			req.Acks, req.TimeoutMillis = -1, 5000
			for _, topic := range []string{"fuzz", "secret"} {
				req.Topics = append(req.Topics, kmsg.ProduceRequestTopic{Topic: topic,
					Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: []byte("never parsed here")}}})
			}
			resp := b.handleProduce(c, h(kmsg.Produce, 9), req)().(*kmsg.ProduceResponse)
			out := map[string][]int16{}
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					out[rt.Topic] = append(out[rt.Topic], rp.ErrorCode)
				}
			}
			return out
		}},
		{"Fetch", func() map[string][]int16 {
			req := kmsg.NewPtrFetchRequest()
			req.SetVersion(12)
			req.ReplicaID, req.MaxBytes, req.SessionEpoch = -1, 1<<20, -1
			for _, topic := range []string{"fuzz", "secret"} {
				req.Topics = append(req.Topics, kmsg.FetchRequestTopic{Topic: topic,
					Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, CurrentLeaderEpoch: -1, LastFetchedEpoch: -1, PartitionMaxBytes: 1 << 20}}})
			}
			resp := b.handleFetch(c, h(kmsg.Fetch, 12), req)().(pooledFetch)
			defer resp.releaseBuffers()
			out := map[string][]int16{}
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					out[rt.Topic] = append(out[rt.Topic], rp.ErrorCode)
				}
			}
			return out
		}},
		{"ListOffsets", func() map[string][]int16 {
			req := kmsg.NewPtrListOffsetsRequest()
			req.SetVersion(7)
			req.ReplicaID = -1
			for _, topic := range []string{"fuzz", "secret"} {
				req.Topics = append(req.Topics, kmsg.ListOffsetsRequestTopic{Topic: topic,
					Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: 0, CurrentLeaderEpoch: -1, Timestamp: -1}}})
			}
			resp := b.handleListOffsets(c, h(kmsg.ListOffsets, 7), req)().(*kmsg.ListOffsetsResponse)
			out := map[string][]int16{}
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					out[rt.Topic] = append(out[rt.Topic], rp.ErrorCode)
				}
			}
			return out
		}},
		{"OffsetForLeaderEpoch", func() map[string][]int16 {
			req := kmsg.NewPtrOffsetForLeaderEpochRequest()
			req.SetVersion(4)
			req.ReplicaID = -1
			for _, topic := range []string{"fuzz", "secret"} {
				req.Topics = append(req.Topics, kmsg.OffsetForLeaderEpochRequestTopic{Topic: topic,
					Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{{Partition: 0, CurrentLeaderEpoch: -1, LeaderEpoch: 0}}})
			}
			resp := b.handleOffsetForLeaderEpoch(c, h(kmsg.OffsetForLeaderEpoch, 4), req)().(*kmsg.OffsetForLeaderEpochResponse)
			out := map[string][]int16{}
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					out[rt.Topic] = append(out[rt.Topic], rp.ErrorCode)
				}
			}
			return out
		}},
	} {
		got := codes(tc.handle())
		if got["fuzz"] != 0 || got["secret"] != kerr.TopicAuthorizationFailed.Code {
			t.Errorf("%s: answered %v, want fuzz 0 (forwarded) and secret TOPIC_AUTHORIZATION_FAILED", tc.api, got)
		}
		if fw := leader.forwarded(tc.api); len(fw) != 1 || fw[0] != "fuzz" {
			t.Errorf("%s: forwarded topics %v, want [fuzz]", tc.api, fw)
		}
	}
}

// BenchmarkAuthorizationCheck is one topic's check, as the produce path
// makes it per topic: without an authorizer, for a literal ALLOW, and for
// a super user.
func BenchmarkAuthorizationCheck(b *testing.B) {
	for _, authz := range []string{"none", "acl", "acl-super"} {
		b.Run(authz, func(b *testing.B) {
			p := newProduceBench(b, authz)
			b.ReportAllocs()
			for b.Loop() {
				if !p.c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, "fuzz") {
					b.Fatal("refused")
				}
			}
		})
	}
}
