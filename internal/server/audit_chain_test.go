package server

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/audit"
	"github.com/vigilhq/vigil/internal/auditchain"
)

// TestAuditChainAcrossLeadership: two brokers on one etcd and object
// store each write the audit partitions they lead; when broker 1 stops,
// broker 2 takes its audit partitions over and goes on with their chains
// from broker 1's last records. Every partition verifies intact from
// offset 0, and some hold records of both brokers.
func TestAuditChainAcrossLeadership(t *testing.T) {
	if testing.Short() {
		t.Skip("a two-broker cluster")
	}
	c := startCluster(t, 2, func(int32) string { return "" })
	ctx := testCtx(t, 90*time.Second)
	adm := kadm.NewClient(c.client(t))
	// Both brokers lead audit partitions (the second takes its share
	// once it has joined).
	counts := leaders(t, ctx, adm, audit.Topic, map[int32]bool{1: true, 2: true})
	for len(counts) < 2 {
		time.Sleep(100 * time.Millisecond)
		counts = leaders(t, ctx, adm, audit.Topic, map[int32]bool{1: true, 2: true})
	}
	t.Logf("audit partitions per broker: %v", counts)

	written := int64(0)
	// oneByOne creates topics through broker b, one audit flush each, so
	// that b's trail moves on to its next audit partition every time.
	oneByOne := func(b *testServer, prefix string, n int) {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		badm := kadm.NewClient(cl)
		for i := range n {
			createTopics(t, ctx, badm, 1, nil, fmt.Sprintf("%s-%02d", prefix, i))
			written++
			for auditEnd(t, ctx, badm) < written {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	oneByOne(c.brokers[0], "one", 10)
	oneByOne(c.brokers[1], "two", 10)

	c.brokers[0].close()
	leaders(t, ctx, adm, audit.Topic, map[int32]bool{2: true})
	oneByOne(c.brokers[1], "after", audit.Partitions+2)

	// Every record of the audit topic, by partition, in offset order.
	cl := c.client(t, kgo.ConsumeTopics(audit.Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	parts := map[int32]*auditchain.Partition{}
	writers := map[int32]map[string]bool{}
	for n := int64(0); n < written; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d audit records", n, written)
		}
		fs.EachRecord(func(r *kgo.Record) {
			n++
			p := parts[r.Partition]
			if p == nil {
				p = auditchain.NewPartition(r.Partition, auditchain.NewHasher(nil))
				parts[r.Partition], writers[r.Partition] = p, map[string]bool{}
			}
			hs := make([]kmsg.Header, len(r.Headers))
			for i, h := range r.Headers {
				hs[i] = kmsg.Header{Key: h.Key, Value: h.Value}
			}
			p.Add(r.Offset, r.Key, r.Value, hs)
			var e struct {
				Device struct {
					UID string `json:"uid"`
				} `json:"device"`
			}
			json.Unmarshal(r.Value, &e)
			writers[r.Partition][e.Device.UID] = true
		})
	}
	both := 0
	for id, p := range parts {
		if !p.OK() || p.Start != 0 || p.Linked != p.Records {
			t.Errorf("partition %d: %d records, %d linked from %d, breaks %+v", id, p.Records, p.Linked, p.Start, p.Breaks)
		}
		if writers[id]["1"] && writers[id]["2"] {
			both++
		}
	}
	if both == 0 {
		t.Errorf("no audit partition written by both brokers: %v", writers)
	}
	t.Logf("%d audit records in %d partitions, %d written by both brokers: %v", written, len(parts), both, writers)
}

// auditEnd is how many records the audit topic holds; -1 while a
// partition has no leader (it is moving).
func auditEnd(t *testing.T, ctx context.Context, adm *kadm.Client) int64 {
	t.Helper()
	ends, err := adm.ListEndOffsets(ctx, audit.Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		if ctx.Err() != nil {
			t.Fatal(err)
		}
		return -1
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}
