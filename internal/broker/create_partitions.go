package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/storage"
)

var errInvalidPartitions = errors.New("invalid partitions")

// handleCreatePartitions raises topics' partition counts.
//
// Authorization, as Kafka's handleCreatePartitionsRequest: Alter on each
// topic, else TOPIC_AUTHORIZATION_FAILED ("The topic authorization is
// failed.") before the existence check.
func (b *Broker) handleCreatePartitions(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	req := r.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	mq := b.mutationQuota(c, h, 3)
	for _, rt := range req.Topics {
		st := kmsg.CreatePartitionsResponseTopic{Topic: rt.Topic}
		fail := func(e *kerr.Error, msg string) {
			st.ErrorCode = e.Code
			st.ErrorMessage = &msg
		}
		if !c.allowed(kmsg.ACLOperationAlter, kmsg.ACLResourceTypeTopic, rt.Topic) {
			fail(kerr.TopicAuthorizationFailed, "The topic authorization is failed.")
			resp.Topics = append(resp.Topics, st)
			continue
		}
		t := b.store.Topic(rt.Topic)
		switch {
		case t == nil:
			fail(kerr.UnknownTopicOrPartition, fmt.Sprintf("topic %q does not exist", rt.Topic))
		case isInternalTopic(rt.Topic):
			// Groups are placed by a hash modulo the partition count.
			fail(kerr.InvalidPartitions, fmt.Sprintf("the partition count of %s is fixed", rt.Topic))
		case rt.Count <= int32(len(t.Logs)):
			fail(kerr.InvalidPartitions, fmt.Sprintf("topic %q has %d partitions; the new count %d must be larger", rt.Topic, len(t.Logs), rt.Count))
		case !mq.Record(int(rt.Count)-len(t.Logs), time.Now()):
			// Counted: the partitions added, for a validate-only request
			// too, as Kafka's KRaft controller does.
			fail(kerr.ThrottlingQuotaExceeded, kerr.ThrottlingQuotaExceeded.Description)
		case req.ValidateOnly:
		default:
			err := b.store.UpdateTopic(ctx, rt.Topic, func(mt *meta.Topic) error {
				if rt.Count <= mt.Partitions {
					return fmt.Errorf("%w: topic has %d partitions already", errInvalidPartitions, mt.Partitions)
				}
				mt.Partitions = rt.Count
				return nil
			})
			switch {
			case errors.Is(err, storage.ErrUnknownTopic):
				fail(kerr.UnknownTopicOrPartition, err.Error())
			case errors.Is(err, errInvalidPartitions):
				fail(kerr.InvalidPartitions, err.Error())
			case err != nil:
				b.log.Error("create partitions", "topic", rt.Topic, "err", err)
				fail(kerr.UnknownServerError, err.Error())
			default:
				b.admin(c.auth.principal, "CreatePartitions", fmt.Sprintf("topic %s: %d partitions", rt.Topic, rt.Count))
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	throttleMutations(c, h, mq, resp)
	return func() kmsg.Response { return resp }
}
