package mirror

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/vigilhq/vigil/internal/export/exporttest"
)

// TestMirrorQuotas: with Quotas on, the source's byte-rate quotas of
// users and client ids reach Vigil (other keys do not), a change or a
// removal there follows, and a quota set on Vigil alone stays, as does
// one Vigil had for the same entity and key before the mirror (same
// value or not). Then the mirror stops, quotas are removed on the
// source, and a new mirror removes on Vigil the one the first set (what
// it set is in StateTopic), not Vigil's own; verify of every topic
// leaves StateTopic, on Vigil alone, out.
func TestMirrorQuotas(t *testing.T) {
	c := startKfake(t)
	src, dst := strings.Join(c.ListenAddrs(), ","), exporttest.StartBroker(t)
	ctx := context.Background()
	fill(t, src, "q.events", 1, 10, nil)
	sadm, dadm := admin(t, src), admin(t, dst)
	entity := func(typ, name string) kadm.ClientQuotaEntity {
		return kadm.ClientQuotaEntity{{Type: typ, Name: kadm.StringPtr(name)}}
	}
	alter := func(adm *kadm.Client, e kadm.ClientQuotaEntity, ops ...kadm.AlterClientQuotaOp) {
		t.Helper()
		res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: e, Ops: ops}})
		if err == nil {
			for _, r := range res {
				if r.Err != nil {
					err = fmt.Errorf("%w %s", r.Err, r.ErrMessage)
				}
			}
		}
		if err != nil {
			t.Fatalf("alter quotas of %s: %v", e, err)
		}
	}
	alter(sadm, entity("user", "alice"), kadm.AlterClientQuotaOp{Key: "producer_byte_rate", Value: 1 << 20},
		kadm.AlterClientQuotaOp{Key: "request_percentage", Value: 50})
	alter(sadm, entity("client-id", "replay-job"), kadm.AlterClientQuotaOp{Key: "consumer_byte_rate", Value: 50 << 20})
	alter(sadm, entity("user", "bob"), kadm.AlterClientQuotaOp{Key: "producer_byte_rate", Value: 1000})
	alter(sadm, entity("user", "carol"), kadm.AlterClientQuotaOp{Key: "consumer_byte_rate", Value: 2000})
	alter(dadm, entity("user", "local"), kadm.AlterClientQuotaOp{Key: "consumer_byte_rate", Value: 1000})
	alter(dadm, entity("user", "bob"), kadm.AlterClientQuotaOp{Key: "producer_byte_rate", Value: 1000})
	alter(dadm, entity("user", "carol"), kadm.AlterClientQuotaOp{Key: "consumer_byte_rate", Value: 3000})

	withQuotas := func(c *CopyConfig) { c.Quotas = true }
	_, stop := runMirror(t, src, dst, `q\..*`, nil, nil, withQuotas)

	quotas := func() []string {
		qs, err := dadm.DescribeClientQuotas(ctx, false, nil)
		if err != nil {
			return nil
		}
		var out []string
		for _, q := range qs {
			var e []string
			for _, c := range q.Entity {
				e = append(e, c.String())
			}
			for _, v := range q.Values {
				out = append(out, fmt.Sprintf("%s %s=%v", strings.Join(e, ","), v.Key, v.Value))
			}
		}
		slices.Sort(out)
		return out
	}
	wait := func(what string, want []string) {
		t.Helper()
		waitList(t, what, "Vigil's quotas", quotas, want)
	}
	wait("the source's quotas on Vigil", []string{
		"client-id=replay-job consumer_byte_rate=5.24288e+07",
		"user=alice producer_byte_rate=1.048576e+06",
		"user=bob producer_byte_rate=1000",
		"user=carol consumer_byte_rate=3000",
		"user=local consumer_byte_rate=1000",
	})
	alter(sadm, entity("user", "alice"), kadm.AlterClientQuotaOp{Key: "producer_byte_rate", Remove: true},
		kadm.AlterClientQuotaOp{Key: "consumer_byte_rate", Value: 2 << 20})
	wait("the source's changes on Vigil", []string{
		"client-id=replay-job consumer_byte_rate=5.24288e+07",
		"user=alice consumer_byte_rate=2.097152e+06",
		"user=bob producer_byte_rate=1000",
		"user=carol consumer_byte_rate=3000",
		"user=local consumer_byte_rate=1000",
	})

	// Removed on the source while the mirror is stopped.
	stop()
	alter(sadm, entity("client-id", "replay-job"), kadm.AlterClientQuotaOp{Key: "consumer_byte_rate", Remove: true})
	alter(sadm, entity("user", "bob"), kadm.AlterClientQuotaOp{Key: "producer_byte_rate", Remove: true})
	alter(sadm, entity("user", "carol"), kadm.AlterClientQuotaOp{Key: "consumer_byte_rate", Remove: true})
	runMirror(t, src, dst, `q\..*`, nil, nil, withQuotas)
	wait("the quota removed while the mirror was stopped gone from Vigil", []string{
		"user=alice consumer_byte_rate=2.097152e+06",
		"user=bob producer_byte_rate=1000",
		"user=carol consumer_byte_rate=3000",
		"user=local consumer_byte_rate=1000",
	})

	// verify leaves the state topic, on Vigil only, out.
	sum, lines, err := verify(t, src, dst, `.*`, nil)
	if err != nil || sum.TopicsDiffer != 0 || slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, StateTopic) }) {
		t.Errorf("verify .*: %v, %d topics differ, lines %q", err, sum.TopicsDiffer, lines)
	}
}
