package broker

import (
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleIncrementalAlterConfigs changes topic configs, dynamic broker
// configs (broker_configs.go) and a cluster broker's drain mark
// (drain.go).
//
// Authorization, as Kafka's handleIncrementalAlterConfigsRequest:
// AlterConfigs on a topic, else TOPIC_AUTHORIZATION_FAILED; on the cluster
// for a broker or broker logger resource, else CLUSTER_AUTHORIZATION_FAILED
// (no message). A broker resource's change is validated first, as Kafka
// preprocesses broker changes before authorizing them.
func (b *Broker) handleIncrementalAlterConfigs(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		res := kmsg.IncrementalAlterConfigsResponseResource{ResourceType: rr.ResourceType, ResourceName: rr.ResourceName}
		if rr.ResourceType == kmsg.ConfigResourceTypeBroker {
			code, msg := b.incrementalAlterBroker(c, rr, req.ValidateOnly)
			res.ErrorCode = code
			if msg != "" {
				res.ErrorMessage = &msg
			}
			resp.Resources = append(resp.Resources, res)
			continue
		}
		if e, _ := configsAuthz(c, kmsg.ACLOperationAlterConfigs, rr.ResourceType, rr.ResourceName); e != nil {
			res.ErrorCode = e.Code
			resp.Resources = append(resp.Resources, res)
			continue
		}
		code, msg := b.alterTopicConfigs(c.auth.principal, "IncrementalAlterConfigs", rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(cur map[string]string) (map[string]string, error) {
			if cur == nil {
				cur = map[string]string{}
			}
			for _, op := range rr.Configs {
				tc, known := b.topicConfig(op.Name)
				if !known {
					return nil, fmt.Errorf("unknown topic config %q (supported: %s)", op.Name, strings.Join(b.topicConfigNames(), ", "))
				}
				switch op.Op {
				case kmsg.IncrementalAlterConfigOpSet:
					if op.Value == nil {
						return nil, fmt.Errorf("SET of %s without a value", op.Name)
					}
					cur[op.Name] = *op.Value
				case kmsg.IncrementalAlterConfigOpDelete:
					delete(cur, op.Name)
				case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
					if tc.typ != kmsg.ConfigTypeList {
						return nil, fmt.Errorf("%s is not a list config; APPEND and SUBTRACT apply to lists only", op.Name)
					}
					if op.Value == nil {
						return nil, fmt.Errorf("%s of %s without a value", op.Op, op.Name)
					}
					list := splitList(b.effective(cur, op.Name))
					for _, v := range splitList(*op.Value) {
						i := slices.Index(list, v)
						if op.Op == kmsg.IncrementalAlterConfigOpAppend && i < 0 {
							list = append(list, v)
						} else if op.Op == kmsg.IncrementalAlterConfigOpSubtract && i >= 0 {
							list = slices.Delete(list, i, i+1)
						}
					}
					cur[op.Name] = strings.Join(list, ",")
				default:
					return nil, fmt.Errorf("unknown config operation %d on %s", op.Op, op.Name)
				}
			}
			return cur, nil
		})
		res.ErrorCode = code
		if msg != "" {
			res.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, res)
	}
	return func() kmsg.Response { return resp }
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// incrementalAlterBroker changes a BROKER resource: its vigil.draining
// operations go to the drain mark, the others to the stored dynamic
// configs. Both are validated before authorization and applied after.
func (b *Broker) incrementalAlterBroker(c *conn, rr kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) (int16, string) {
	drain, rest := splitDraining(rr)
	next := func(cur map[string]string) (map[string]string, error) {
		for _, op := range rest.Configs {
			switch op.Op {
			case kmsg.IncrementalAlterConfigOpSet:
				if op.Value == nil {
					return nil, fmt.Errorf("null value not supported for %s", op.Name)
				}
				cur[op.Name] = *op.Value
			case kmsg.IncrementalAlterConfigOpDelete:
				delete(cur, op.Name)
			case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
				if op.Name != "metric.reporters" {
					return nil, fmt.Errorf("%s is not a list config; APPEND and SUBTRACT apply to lists only", op.Name)
				}
				if op.Value == nil {
					return nil, fmt.Errorf("null value not supported for %s", op.Name)
				}
				list := splitList(cur[op.Name])
				for _, v := range splitList(*op.Value) {
					i := slices.Index(list, v)
					if op.Op == kmsg.IncrementalAlterConfigOpAppend && i < 0 {
						list = append(list, v)
					} else if op.Op == kmsg.IncrementalAlterConfigOpSubtract && i >= 0 {
						list = slices.Delete(list, i, i+1)
					}
				}
				cur[op.Name] = strings.Join(list, ",")
			default:
				return nil, fmt.Errorf("unknown config operation %d on %s", op.Op, op.Name)
			}
		}
		return cur, nil
	}
	var ch drainChange
	if len(drain.Configs) > 0 {
		var code int16
		var msg string
		if ch, code, msg = b.parseBrokerDraining(drain); code != 0 {
			return code, msg
		}
	}
	// A request with only vigil.draining may name any broker of the
	// cluster; the other configs are this broker's or the cluster
	// default's.
	others := len(rest.Configs) > 0 || len(drain.Configs) == 0
	if others {
		if code, msg := b.alterBrokerConfigs(rest.ResourceName, validateOnly, false, next); code != 0 {
			return code, msg
		}
	}
	if e, _ := configsAuthz(c, kmsg.ACLOperationAlterConfigs, rr.ResourceType, rr.ResourceName); e != nil {
		return e.Code, ""
	}
	if len(drain.Configs) > 0 {
		if code, msg := b.alterBrokerDraining(ch, validateOnly); code != 0 {
			return code, msg
		}
	}
	if others {
		return b.alterBrokerConfigs(rest.ResourceName, validateOnly, true, next)
	}
	return 0, ""
}
