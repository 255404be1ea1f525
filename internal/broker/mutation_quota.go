package broker

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/quota"
)

// mutationQuota starts metering a CreateTopics, CreatePartitions or
// DeleteTopics request against its client's controller_mutation_rate
// (KIP-599): strict (over the quota, a topic is refused with
// THROTTLING_QUOTA_EXCEEDED) from strictSince, the first version whose
// clients know that error; permissive before (accepted, then throttled).
func (b *Broker) mutationQuota(c *conn, h header, strictSince int16) *quota.Mutation {
	if b.quotas == nil {
		return nil
	}
	return b.quotas.Mutation(c.user(), h.clientID, h.version >= strictSince)
}

// throttleMutations sets the response's throttle time to the mutation
// quota's, if larger, and mutes the connection for as long, as Kafka
// throttles the channel whether the quota was strict or permissive.
func throttleMutations(c *conn, h header, q *quota.Mutation, resp kmsg.Response) {
	d := q.Throttle(time.Now())
	if d <= 0 {
		return
	}
	throttleFor(c, resp, d)
	c.log.Info("client over its controller_mutation_rate throttled", "client_id", h.clientID, "request", kmsg.NameForKey(h.key), "throttle", d)
}
