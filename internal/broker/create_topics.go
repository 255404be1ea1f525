package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/storage"
)

// handleCreateTopics creates topics. The replication factor is accepted
// and reported as 1: durability comes from the object store, not from
// replicas, so any factor a tool asks for is satisfied.
//
// Authorization, as Kafka's CreateTopics: Create on the cluster (asked
// quietly) or on each topic, else TOPIC_AUTHORIZATION_FAILED ("Authorization
// failed."), checked after the duplicate check and before any other. The
// partition count, replication factor and configs of a created topic are
// answered only with DescribeConfigs on it (asked quietly); without, they
// are -1, -1 and none, with the config error TOPIC_AUTHORIZATION_FAILED,
// and the topic id is still given (as Kafka's KRaft controller does).
func (b *Broker) handleCreateTopics(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	req := r.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	mq := b.mutationQuota(c, h, 6)
	clusterCreate := c.allowedQuiet(kmsg.ACLOperationCreate, kmsg.ACLResourceTypeCluster, clusterResource)
	for _, rt := range req.Topics {
		st := kmsg.CreateTopicsResponseTopic{Topic: rt.Topic, NumPartitions: -1, ReplicationFactor: -1}
		fail := func(e *kerr.Error, msg string) {
			st.ErrorCode = e.Code
			st.ErrorMessage = &msg
		}
		create := clusterCreate || c.allowed(kmsg.ACLOperationCreate, kmsg.ACLResourceTypeTopic, rt.Topic)
		describeConfigs := c.allowedQuiet(kmsg.ACLOperationDescribeConfigs, kmsg.ACLResourceTypeTopic, rt.Topic)
		partitions := rt.NumPartitions
		if len(rt.ReplicaAssignment) > 0 {
			partitions = int32(len(rt.ReplicaAssignment))
		} else if partitions == -1 {
			partitions = b.cfg.DefaultPartitions
		}
		configs := map[string]string{}
		var nullConfig string
		for _, kv := range rt.Configs {
			if kv.Value == nil {
				nullConfig = kv.Name
				continue
			}
			configs[kv.Name] = *kv.Value
		}
		if seen[rt.Topic] > 1 {
			fail(kerr.InvalidRequest, "topic named more than once in the request")
		} else if !create {
			fail(kerr.TopicAuthorizationFailed, "Authorization failed.")
		} else if err := validTopicName(rt.Topic); err != nil {
			fail(kerr.InvalidTopicException, err.Error())
		} else if partitions < 1 {
			fail(kerr.InvalidPartitions, fmt.Sprintf("number of partitions %d: must be at least 1", partitions))
		} else if rt.ReplicationFactor == 0 || rt.ReplicationFactor < -1 {
			fail(kerr.InvalidReplicationFactor, fmt.Sprintf("replication factor %d: must be positive or -1", rt.ReplicationFactor))
		} else if nullConfig != "" {
			fail(kerr.InvalidConfig, fmt.Sprintf("config %s has a null value", nullConfig))
		} else if err := b.checkTopicConfigs(configs); err != nil {
			fail(kerr.InvalidConfig, err.Error())
		} else if b.store.Topic(rt.Topic) != nil {
			fail(kerr.TopicAlreadyExists, fmt.Sprintf("topic %q already exists", rt.Topic))
		} else if !mq.Record(int(partitions), time.Now()) {
			// Last of the checks, and made for a validate-only request
			// too, as Kafka's KRaft controller does (its ZooKeeper mode
			// did not count those).
			fail(kerr.ThrottlingQuotaExceeded, kerr.ThrottlingQuotaExceeded.Description)
		} else if req.ValidateOnly {
			st.NumPartitions, st.ReplicationFactor = partitions, 1
		} else {
			t, err := b.store.CreateTopic(ctx, rt.Topic, partitions, configs)
			switch {
			case errors.Is(err, storage.ErrTopicExists):
				fail(kerr.TopicAlreadyExists, fmt.Sprintf("topic %q already exists", rt.Topic))
			case err != nil:
				b.log.Error("create topic", "topic", rt.Topic, "err", err)
				fail(kerr.UnknownServerError, err.Error())
			default:
				st.TopicID = t.ID
				st.NumPartitions, st.ReplicationFactor = partitions, 1
				what := fmt.Sprintf("topic %s, %d partitions", rt.Topic, partitions)
				if len(configs) > 0 {
					what += ": " + configChanges(nil, configs)
				}
				b.admin(c.auth.principal, "CreateTopics", what)
				b.noteIgnoredConfigs(rt.Topic, configs)
			}
		}
		if st.ErrorCode == 0 && !describeConfigs {
			st.NumPartitions, st.ReplicationFactor = -1, -1
			st.ConfigErrorCode = kerr.TopicAuthorizationFailed.Code
		} else if st.ErrorCode == 0 && h.version >= 5 {
			for _, tc := range b.topicConfigs() {
				v := b.effective(configs, tc.name)
				src := int8(kmsg.ConfigSourceDefaultConfig)
				if _, ok := configs[tc.name]; ok {
					src = int8(kmsg.ConfigSourceDynamicTopicConfig)
				}
				st.Configs = append(st.Configs, kmsg.CreateTopicsResponseTopicConfig{Name: tc.name, Value: &v, Source: src})
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	throttleMutations(c, h, mq, resp)
	return func() kmsg.Response { return resp }
}
