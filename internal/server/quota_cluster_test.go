package server

import (
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterQuotasShared: a quota altered through one broker of a
// cluster applies on the other within the poll, and so does its removal:
// DescribeClientQuotas, answered from each broker's own copy, shows it on
// broker 2 after AlterClientQuotas reached broker 1 alone.
func TestClusterQuotasShared(t *testing.T) {
	cluster := startCluster(t, 2, func(int32) string { return "" })
	// A connection to each broker: requests reach the broker asked.
	conns := map[int32]net.Conn{1: dialBroker(t, cluster.brokers[0].addr), 2: dialBroker(t, cluster.brokers[1].addr)}
	alter := func(remove bool) {
		req := kmsg.NewPtrAlterClientQuotasRequest()
		e := kmsg.NewAlterClientQuotasRequestEntry()
		c := kmsg.NewAlterClientQuotasRequestEntryEntity()
		c.Type, c.Name = "client-id", kmsg.StringPtr("replay-job")
		e.Entity = append(e.Entity, c)
		op := kmsg.NewAlterClientQuotasRequestEntryOp()
		op.Key, op.Value, op.Remove = "consumer_byte_rate", 1<<20, remove
		e.Ops = append(e.Ops, op)
		req.Entries = append(req.Entries, e)
		resp := roundTrip(t, conns[1], req).(*kmsg.AlterClientQuotasResponse)
		if code := resp.Entries[0].ErrorCode; code != 0 {
			t.Fatalf("AlterClientQuotas on broker 1 (remove %v): error %d", remove, code)
		}
	}
	describe := func(broker int32) (float64, bool) {
		req := kmsg.NewPtrDescribeClientQuotasRequest()
		comp := kmsg.NewDescribeClientQuotasRequestComponent()
		comp.EntityType, comp.MatchType, comp.Match = "client-id", 0, kmsg.StringPtr("replay-job")
		req.Components = append(req.Components, comp)
		resp := roundTrip(t, conns[broker], req).(*kmsg.DescribeClientQuotasResponse)
		for _, e := range resp.Entries {
			for _, v := range e.Values {
				if v.Key == "consumer_byte_rate" {
					return v.Value, true
				}
			}
		}
		return 0, false
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !ok(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("broker 2: %s not seen within 15s", what)
			}
		}
	}
	alter(false)
	if v, ok := describe(1); !ok || v != 1<<20 {
		t.Fatalf("broker 1 describes %v (%v) right after its own alter, want %d", v, ok, 1<<20)
	}
	start := time.Now()
	waitFor("the quota", func() bool { v, ok := describe(2); return ok && v == 1<<20 })
	t.Logf("broker 2 had broker 1's quota after %v", time.Since(start).Round(time.Millisecond))
	alter(true)
	waitFor("the quota's removal", func() bool { _, ok := describe(2); return !ok })
}
