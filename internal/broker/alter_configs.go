package broker

import (
	"context"
	"fmt"
	"maps"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/meta"
)

// handleAlterConfigs replaces a topic's whole config set: configs not
// named revert to their defaults, as the (non-incremental) API defines.
//
// Authorization, as Kafka's handleAlterConfigsRequest: AlterConfigs on a
// topic, else TOPIC_AUTHORIZATION_FAILED (no message). Broker resources
// (every broker config is static here) and other types are refused with
// INVALID_REQUEST before authorization, as Kafka's preprocessing refuses a
// change it cannot apply.
func (b *Broker) handleAlterConfigs(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		res := kmsg.AlterConfigsResponseResource{ResourceType: rr.ResourceType, ResourceName: rr.ResourceName}
		if rr.ResourceType == kmsg.ConfigResourceTypeTopic {
			if e, _ := configsAuthz(c, kmsg.ACLOperationAlterConfigs, rr.ResourceType, rr.ResourceName); e != nil {
				res.ErrorCode = e.Code
				resp.Resources = append(resp.Resources, res)
				continue
			}
		}
		code, msg := b.alterTopicConfigs(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(map[string]string) (map[string]string, error) {
			next := map[string]string{}
			for _, kv := range rr.Configs {
				if kv.Value == nil {
					return nil, fmt.Errorf("config %s has a null value", kv.Name)
				}
				next[kv.Name] = *kv.Value
			}
			return next, nil
		})
		res.ErrorCode = code
		if msg != "" {
			res.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, res)
	}
	return func() kmsg.Response { return resp }
}

// alterTopicConfigs validates and stores a topic's new config set computed
// by next from its current one. It returns a Kafka error code and message.
func (b *Broker) alterTopicConfigs(typ kmsg.ConfigResourceType, name string, validateOnly bool, next func(cur map[string]string) (map[string]string, error)) (int16, string) {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
	case kmsg.ConfigResourceTypeBroker:
		return kerr.InvalidRequest.Code, "broker configs are static in Vigil: set them with vigil serve flags, a config file or VIGIL_* variables"
	default:
		return kerr.InvalidRequest.Code, fmt.Sprintf("config resource type %d is not supported", typ)
	}
	t := b.store.Topic(name)
	if t == nil {
		return kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("topic %q does not exist", name)
	}
	var invalid error
	err := b.store.UpdateTopic(ctx, name, func(mt *meta.Topic) error {
		cfg, err := next(maps.Clone(mt.Configs))
		if err == nil {
			err = b.checkTopicConfigs(cfg)
		}
		if err != nil {
			invalid = err
			return err
		}
		if validateOnly {
			return errValidateOnly
		}
		mt.Configs = cfg
		return nil
	})
	switch {
	case invalid != nil:
		return kerr.InvalidConfig.Code, invalid.Error()
	case err == errValidateOnly:
		return 0, ""
	case err != nil:
		b.log.Error("alter configs", "topic", name, "err", err)
		return kerr.UnknownServerError.Code, err.Error()
	}
	b.log.Info("topic configs altered", "topic", name)
	return 0, ""
}

// errValidateOnly aborts the metadata update of a validate-only request.
var errValidateOnly = fmt.Errorf("validate only")
