package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/quota"
)

// throttle meters n bytes of a request against the client's quota and
// returns the throttle time for the response, muting the connection for
// as long. The user is the principal's name (ANONYMOUS without
// authentication), as Kafka's quotas match users.
func (b *Broker) throttle(c *conn, quotaKey string, h header, n int) int32 {
	if b.quotas == nil || n == 0 {
		return 0
	}
	d := b.quotas.Record(quotaKey, c.user(), h.clientID, n, time.Now())
	if d <= 0 {
		return 0
	}
	c.mute(d)
	return int32(d / time.Millisecond)
}

func quotaCode(err error) (int16, *string) {
	msg := err.Error()
	if errors.Is(err, quota.ErrInvalid) {
		return kerr.InvalidRequest.Code, &msg
	}
	return kerr.UnknownServerError.Code, &msg
}

// handleDescribeClientQuotas describes the quotas that match a filter.
//
// Authorization, as Kafka's handleDescribeClientQuotasRequest:
// DescribeConfigs on the cluster, else CLUSTER_AUTHORIZATION_FAILED with
// Kafka's message and null entries.
func (b *Broker) handleDescribeClientQuotas(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.DescribeClientQuotasRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	if !c.allowed(kmsg.ACLOperationDescribeConfigs, kmsg.ACLResourceTypeCluster, clusterResource) {
		resp.ErrorCode, resp.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, ptr(msgClusterAuthz)
		return func() kmsg.Response { return resp }
	}
	var filters []quota.Filter
	for _, f := range req.Components {
		qf := quota.Filter{Type: f.EntityType}
		switch f.MatchType {
		case kmsg.QuotasMatchTypeExact:
			qf.Match = "exact"
			if f.Match != nil {
				qf.Name = *f.Match
			}
		case kmsg.QuotasMatchTypeDefault:
			qf.Match = "default"
		default:
			qf.Match = "any"
		}
		filters = append(filters, qf)
	}
	ds, err := b.quotas.Describe(filters, req.Strict)
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = quotaCode(err)
		return func() kmsg.Response { return resp }
	}
	for _, d := range ds {
		var e kmsg.DescribeClientQuotasResponseEntry
		for _, comp := range d.Entity {
			e.Entity = append(e.Entity, kmsg.DescribeClientQuotasResponseEntryEntity{Type: comp.Type, Name: comp.Name})
		}
		for k, v := range d.Values {
			e.Values = append(e.Values, kmsg.DescribeClientQuotasResponseEntryValue{Key: k, Value: v})
		}
		resp.Entries = append(resp.Entries, e)
	}
	return func() kmsg.Response { return resp }
}

// handleAlterClientQuotas sets and removes quotas.
//
// Authorization, as Kafka's handleAlterClientQuotasRequest: AlterConfigs
// on the cluster, else every entry is answered CLUSTER_AUTHORIZATION_FAILED
// with Kafka's message, and nothing changes.
func (b *Broker) handleAlterClientQuotas(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.AlterClientQuotasRequest)
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	if !c.allowed(kmsg.ACLOperationAlterConfigs, kmsg.ACLResourceTypeCluster, clusterResource) {
		for _, re := range req.Entries {
			out := kmsg.AlterClientQuotasResponseEntry{ErrorCode: kerr.ClusterAuthorizationFailed.Code, ErrorMessage: ptr(msgClusterAuthz)}
			for _, e := range re.Entity {
				out.Entity = append(out.Entity, kmsg.AlterClientQuotasResponseEntryEntity{Type: e.Type, Name: e.Name})
			}
			resp.Entries = append(resp.Entries, out)
		}
		return func() kmsg.Response { return resp }
	}
	who := c.auth.principal
	return func() kmsg.Response {
		for _, re := range req.Entries {
			out := kmsg.AlterClientQuotasResponseEntry{}
			var comps []quota.Component
			for _, e := range re.Entity {
				out.Entity = append(out.Entity, kmsg.AlterClientQuotasResponseEntryEntity{Type: e.Type, Name: e.Name})
				comps = append(comps, quota.Component{Type: e.Type, Name: e.Name})
			}
			ent, err := quota.NewEntity(comps)
			if err == nil {
				ops := make([]quota.Op, len(re.Ops))
				for i, op := range re.Ops {
					ops[i] = quota.Op{Key: op.Key, Value: op.Value, Remove: op.Remove}
				}
				err = b.quotas.Alter(context.Background(), ent, ops, req.ValidateOnly)
			}
			if err != nil {
				out.ErrorCode, out.ErrorMessage = quotaCode(err)
				c.log.Info("client quota change refused", "entity", ent.Key(), "err", err)
			} else if !req.ValidateOnly {
				var ops []string
				for _, op := range re.Ops {
					if op.Remove {
						ops = append(ops, op.Key+" removed")
					} else {
						ops = append(ops, fmt.Sprintf("%s=%g", op.Key, op.Value))
					}
				}
				b.admin(who, "AlterClientQuotas", "quota of "+ent.Key()+": "+strings.Join(ops, ", "))
			}
			resp.Entries = append(resp.Entries, out)
		}
		return resp
	}
}
