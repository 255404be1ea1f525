package broker

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/storage"
)

// handleDeleteTopics deletes topics named by name, or (v6+) by topic id:
// then only the topic with that id, never one created again under its
// name meanwhile (UNKNOWN_TOPIC_ID). A deleted topic's name is free at
// once, as in KRaft; its groups' offsets go with it (storage's
// OnTopicDeleted).
//
// Authorization, as Kafka's handleDeleteTopicsRequest: Delete on each
// topic, else TOPIC_AUTHORIZATION_FAILED, before the existence check. A
// topic named by an id that exists needs Describe too, or it is refused
// without its name (ids are not secret, names are); an unknown id is
// UNKNOWN_TOPIC_ID.
func (b *Broker) handleDeleteTopics(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	req := r.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	targets := req.Topics
	if h.version < 6 {
		targets = nil
		for _, name := range req.TopicNames {
			targets = append(targets, kmsg.DeleteTopicsRequestTopic{Topic: &name})
		}
	}
	mq := b.mutationQuota(c, h, 5)
	for _, rt := range targets {
		st := kmsg.DeleteTopicsResponseTopic{Topic: rt.Topic, TopicID: rt.TopicID}
		var t *storage.Topic
		if rt.Topic != nil {
			if !c.allowed(kmsg.ACLOperationDelete, kmsg.ACLResourceTypeTopic, *rt.Topic) {
				st.ErrorCode = kerr.TopicAuthorizationFailed.Code
				resp.Topics = append(resp.Topics, st)
				continue
			}
			t = b.store.Topic(*rt.Topic)
		} else {
			t = b.store.TopicByID(rt.TopicID)
			if t != nil {
				name := t.Name
				switch {
				case !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, name):
					st.ErrorCode = kerr.TopicAuthorizationFailed.Code
				case !c.allowed(kmsg.ACLOperationDelete, kmsg.ACLResourceTypeTopic, name):
					st.Topic, st.ErrorCode = &name, kerr.TopicAuthorizationFailed.Code
				}
				if st.ErrorCode != 0 {
					resp.Topics = append(resp.Topics, st)
					continue
				}
			}
		}
		if t == nil {
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if rt.Topic == nil {
				st.ErrorCode = kerr.UnknownTopicID.Code
			}
			resp.Topics = append(resp.Topics, st)
			continue
		}
		name := t.Name
		st.Topic, st.TopicID = &name, t.ID
		if isInternalTopic(name) {
			st.ErrorCode = kerr.InvalidTopicException.Code
			msg := "cannot delete internal topic " + name
			st.ErrorMessage = &msg
			resp.Topics = append(resp.Topics, st)
			continue
		}
		// Counted: the deleted topic's partitions.
		if !mq.Record(len(t.Logs), time.Now()) {
			st.ErrorCode = kerr.ThrottlingQuotaExceeded.Code
			msg := kerr.ThrottlingQuotaExceeded.Description
			st.ErrorMessage = &msg
			resp.Topics = append(resp.Topics, st)
			continue
		}
		var err error
		if rt.Topic == nil {
			// By id: never the topic created again under the name since.
			err = b.store.DeleteTopicID(ctx, name, t.ID)
		} else {
			err = b.store.DeleteTopic(ctx, name)
		}
		if err == nil {
			b.admin(c.auth.principal, "DeleteTopics", "topic "+name)
		}
		if err != nil {
			switch {
			case errors.Is(err, storage.ErrUnknownTopic) && rt.Topic == nil:
				st.ErrorCode = kerr.UnknownTopicID.Code
			case errors.Is(err, storage.ErrUnknownTopic):
				st.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case errors.Is(err, storage.ErrLegalHold):
				c.log.Warn("delete topic refused", "topic", name, "reason", err)
				st.ErrorCode = kerr.PolicyViolation.Code
				msg := err.Error()
				st.ErrorMessage = &msg
			default:
				b.log.Error("delete topic", "topic", name, "err", err)
				st.ErrorCode = kerr.UnknownServerError.Code
				msg := err.Error()
				st.ErrorMessage = &msg
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	throttleMutations(c, h, mq, resp)
	return func() kmsg.Response { return resp }
}
