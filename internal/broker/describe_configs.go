package broker

import (
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// brokerConfigs are the broker settings shown by DescribeConfigs for a
// broker resource, under Kafka's names. They are static: set by flags
// (brokerConfigRefused refuses changing them).
func (b *Broker) brokerConfigs() []kmsg.DescribeConfigsResponseResourceConfig {
	kv := [][2]string{
		{"auto.create.topics.enable", strconv.FormatBool(b.cfg.AutoCreateTopics)},
		{"broker.id", strconv.Itoa(int(b.cfg.NodeID))},
		{"compression.type", b.cfg.CompressionType},
		{"log.retention.bytes", strconv.FormatInt(b.cfg.RetentionBytes, 10)},
		{"log.retention.ms", strconv.FormatInt(b.cfg.RetentionMs, 10)},
		{"message.max.bytes", strconv.Itoa(int(b.cfg.MaxMessageBytes))},
		{"num.partitions", strconv.Itoa(int(b.cfg.DefaultPartitions))},
		{"socket.request.max.bytes", strconv.Itoa(int(b.cfg.MaxRequestBytes))},
	}
	if b.cluster != nil {
		draining := false
		for _, br := range b.cluster.LiveBrokers() {
			if br.ID == b.cfg.NodeID {
				draining = br.Draining
			}
		}
		kv = append(kv, [2]string{"broker.rack", b.cfg.Zone}, [2]string{DrainingConfig, strconv.FormatBool(draining)})
	}
	out := make([]kmsg.DescribeConfigsResponseResourceConfig, 0, len(kv))
	for _, e := range kv {
		v := e[1]
		out = append(out, kmsg.DescribeConfigsResponseResourceConfig{Name: e[0], Value: &v, ReadOnly: true,
			Source: kmsg.ConfigSourceStaticBrokerConfig, ConfigType: kmsg.ConfigTypeString})
	}
	return out
}

// handleDescribeConfigs describes topic configs, and this broker's static
// settings with its stored dynamic configs (broker_configs.go); the
// cluster-default broker resource ("") has the latter alone, as in Kafka.
//
// Authorization, as Kafka's handleDescribeConfigsRequest: DescribeConfigs
// on a topic, else TOPIC_AUTHORIZATION_FAILED; on the cluster for a broker
// (or broker logger) resource, else CLUSTER_AUTHORIZATION_FAILED; both
// with Kafka's message and no configs, answered after the others.
func (b *Broker) handleDescribeConfigs(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	var denied []kmsg.DescribeConfigsResponseResource
	for _, rr := range req.Resources {
		res := kmsg.DescribeConfigsResponseResource{ResourceType: rr.ResourceType, ResourceName: rr.ResourceName}
		if e, msg := configsAuthz(c, kmsg.ACLOperationDescribeConfigs, rr.ResourceType, rr.ResourceName); e != nil {
			res.ErrorCode, res.ErrorMessage = e.Code, &msg
			denied = append(denied, res)
			continue
		}
		var all []kmsg.DescribeConfigsResponseResourceConfig
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t := b.store.Topic(rr.ResourceName)
			if t == nil {
				res.ErrorCode = kerr.UnknownTopicOrPartition.Code
				msg := fmt.Sprintf("topic %q does not exist", rr.ResourceName)
				res.ErrorMessage = &msg
				break
			}
			for _, tc := range b.topicConfigs() {
				v := b.effective(t.Configs, tc.name)
				_, set := t.Configs[tc.name]
				cfg := kmsg.DescribeConfigsResponseResourceConfig{Name: tc.name, Value: &v, IsDefault: !set,
					Source: kmsg.ConfigSourceDefaultConfig, ConfigType: tc.typ}
				if set {
					cfg.Source = kmsg.ConfigSourceDynamicTopicConfig
				}
				if req.IncludeSynonyms && set {
					cfg.ConfigSynonyms = append(cfg.ConfigSynonyms, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{
						Name: tc.name, Value: &v, Source: kmsg.ConfigSourceDynamicTopicConfig})
				}
				if req.IncludeDocumentation {
					doc := tc.doc
					cfg.Documentation = &doc
				}
				all = append(all, cfg)
			}
		case kmsg.ConfigResourceTypeBroker:
			switch rr.ResourceName {
			case "":
				// The cluster default, as Kafka describes it: its dynamic
				// configs only.
				all = b.dynamicBrokerConfigEntries("")
			case strconv.Itoa(int(b.cfg.NodeID)):
				all = append(b.brokerConfigs(), b.dynamicBrokerConfigEntries(rr.ResourceName)...)
			default:
				res.ErrorCode = kerr.InvalidRequest.Code
				msg := fmt.Sprintf("broker %q is not this broker (%d)", rr.ResourceName, b.cfg.NodeID)
				res.ErrorMessage = &msg
			}
		default:
			res.ErrorCode = kerr.InvalidRequest.Code
			msg := fmt.Sprintf("config resource type %d is not supported (topic and broker are)", rr.ResourceType)
			res.ErrorMessage = &msg
		}
		for _, cfg := range all {
			if rr.ConfigNames == nil || contains(rr.ConfigNames, cfg.Name) {
				res.Configs = append(res.Configs, cfg)
			}
		}
		resp.Resources = append(resp.Resources, res)
	}
	resp.Resources = append(resp.Resources, denied...)
	return func() kmsg.Response { return resp }
}

// configsAuthz checks op (DescribeConfigs or AlterConfigs) on a config
// resource as Kafka does: a topic on itself, a broker or broker logger on
// the cluster. It returns the error and Kafka's message for a refusal,
// nil for a permitted resource or one of a type Kafka does not authorize
// (refused later as unsupported).
func configsAuthz(c *conn, op kmsg.ACLOperation, typ kmsg.ConfigResourceType, name string) (*kerr.Error, string) {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		if !c.allowed(op, kmsg.ACLResourceTypeTopic, name) {
			return kerr.TopicAuthorizationFailed, msgTopicAuthz
		}
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
		if !c.allowed(op, kmsg.ACLResourceTypeCluster, clusterResource) {
			return kerr.ClusterAuthorizationFailed, msgClusterAuthz
		}
	}
	return nil, ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
