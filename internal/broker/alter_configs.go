package broker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/storage"
)

// handleAlterConfigs replaces a topic's or a broker resource's whole
// config set: configs not named revert to their defaults, as the
// (non-incremental) API defines. Broker resources follow
// broker_configs.go.
//
// Authorization, as Kafka's handleAlterConfigsRequest: AlterConfigs on a
// topic, else TOPIC_AUTHORIZATION_FAILED (no message); on the cluster for
// a broker resource, else CLUSTER_AUTHORIZATION_FAILED, after the change
// is validated (Kafka preprocesses broker changes before authorizing
// them). Other types are refused with INVALID_REQUEST.
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
		next := func(map[string]string) (map[string]string, error) {
			next := map[string]string{}
			for _, kv := range rr.Configs {
				if kv.Value == nil {
					return nil, fmt.Errorf("config %s has a null value", kv.Name)
				}
				next[kv.Name] = *kv.Value
			}
			return next, nil
		}
		var code int16
		var msg string
		if rr.ResourceType == kmsg.ConfigResourceTypeBroker {
			code, msg = b.alterBrokerConfigs(rr.ResourceName, req.ValidateOnly, false, next)
			if code == 0 {
				if e, _ := configsAuthz(c, kmsg.ACLOperationAlterConfigs, rr.ResourceType, rr.ResourceName); e != nil {
					code = e.Code
				} else {
					code, msg = b.alterBrokerConfigs(rr.ResourceName, req.ValidateOnly, true, next)
				}
			}
		} else {
			code, msg = b.alterTopicConfigs(c.auth.principal, "AlterConfigs", rr.ResourceType, rr.ResourceName, req.ValidateOnly, next)
		}
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
// who and api name the change in the audit trail.
func (b *Broker) alterTopicConfigs(who, api string, typ kmsg.ConfigResourceType, name string, validateOnly bool, next func(cur map[string]string) (map[string]string, error)) (int16, string) {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
	default:
		return kerr.InvalidRequest.Code, fmt.Sprintf("config resource type %d is not supported", typ)
	}
	t := b.store.Topic(name)
	if t == nil {
		return kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("topic %q does not exist", name)
	}
	if name == AuditTopic {
		// Its hold and retention are what make it evidence.
		return kerr.PolicyViolation.Code, "the configs of the audit trail " + AuditTopic + " are fixed"
	}
	var invalid error
	var before, after map[string]string
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
		before, after = mt.Configs, cfg
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
	b.admin(who, api, "topic "+name+": "+configChanges(before, after))
	b.noteIgnoredConfigs(name, after)
	return 0, ""
}

// errValidateOnly aborts the metadata update of a validate-only request.
var errValidateOnly = fmt.Errorf("validate only")

// configChanges describes what changed between two config sets, naming
// the legal hold in words (setting or lifting one is what an
// investigation looks for).
func configChanges(before, after map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if v, ok := before[k]; !ok || v != after[k] {
			parts = append(parts, k+"="+after[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(before)) {
		if _, ok := after[k]; !ok {
			parts = append(parts, k+" reverted to default")
		}
	}
	switch {
	case before[storage.LegalHoldConfig] != "true" && after[storage.LegalHoldConfig] == "true":
		parts = append(parts, "legal hold set")
	case before[storage.LegalHoldConfig] == "true" && after[storage.LegalHoldConfig] != "true":
		parts = append(parts, "legal hold released")
	}
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, ", ")
}
