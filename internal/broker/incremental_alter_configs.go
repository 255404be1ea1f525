package broker

import (
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleIncrementalAlterConfigs changes topic configs and a cluster
// broker's drain mark (drain.go).
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
			ch, code, msg := b.parseBrokerDraining(rr)
			if code == 0 {
				if e, _ := configsAuthz(c, kmsg.ACLOperationAlterConfigs, rr.ResourceType, rr.ResourceName); e != nil {
					code = e.Code
				} else {
					code, msg = b.alterBrokerDraining(ch, req.ValidateOnly)
				}
			}
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
