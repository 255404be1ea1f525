package server

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestKafkaDeprecatedTopicConfigs: the topic configs Kafka 3.9 accepts and
// Vigil ignores, the deprecated message.format.version among them, are
// accepted by CreateTopics, AlterConfigs and IncrementalAlterConfigs,
// stored, and described as set, with documentation saying they have no
// effect; a value Kafka 3.9 would refuse is INVALID_CONFIG from each API,
// and changes nothing.
func TestKafkaDeprecatedTopicConfigs(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, time.Minute)
	cl := ts.client(t)
	adm := kadm.NewClient(cl)
	const topic = "legacy"

	set := map[string]*string{
		"message.format.version":        kadm.StringPtr("0.10.0.0"),
		"remote.log.copy.disable":       kadm.StringPtr("false"),
		"remote.log.delete.on.disable":  kadm.StringPtr("true"),
		"message.downconversion.enable": kadm.StringPtr("false"),
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, set, topic); err != nil {
		t.Fatalf("create with Kafka 3.9's deprecated and tiered-storage configs: %v", err)
	}
	describe := func(name string) (string, kmsg.ConfigSource, string) {
		t.Helper()
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.IncludeDocumentation = true
		req.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: topic, ConfigNames: []string{name}}}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 || len(resp.Resources[0].Configs) != 1 {
			t.Fatalf("describe %s: %v %+v", name, err, resp)
		}
		c := resp.Resources[0].Configs[0]
		var doc string
		if c.Documentation != nil {
			doc = *c.Documentation
		}
		return *c.Value, c.Source, doc
	}
	for name, v := range set {
		if got, src, doc := describe(name); got != *v || src != kmsg.ConfigSourceDynamicTopicConfig || doc == "" {
			t.Errorf("%s: described %q (source %v, doc %q), want %q as set", name, got, src, doc, *v)
		}
	}
	if _, _, doc := describe("message.format.version"); !strings.Contains(doc, "Deprecated") {
		t.Errorf("message.format.version's documentation %q does not say it is deprecated", doc)
	}

	// AlterConfigs (the whole set) and IncrementalAlterConfigs (one
	// change) accept it too.
	alter := kmsg.NewPtrAlterConfigsRequest()
	alter.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: topic,
		Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "message.format.version", Value: kmsg.StringPtr("2.8-IV1")}}}}
	if resp, err := alter.RequestWith(ctx, cl); err != nil || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("AlterConfigs message.format.version=2.8-IV1: %v %+v", err, resp)
	}
	if got, _, _ := describe("message.format.version"); got != "2.8-IV1" {
		t.Errorf("after AlterConfigs: %q", got)
	}
	if got, src, _ := describe("remote.log.delete.on.disable"); got != "false" || src != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("AlterConfigs left remote.log.delete.on.disable at %q (%v), want the default", got, src)
	}
	if r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "message.format.version", Value: kadm.StringPtr("3.0-IV1")}}, topic); err != nil || r[0].Err != nil {
		t.Fatalf("IncrementalAlterConfigs message.format.version=3.0-IV1: %v %+v", err, r)
	}
	if got, _, _ := describe("message.format.version"); got != "3.0-IV1" {
		t.Errorf("after IncrementalAlterConfigs: %q", got)
	}

	// Values Kafka 3.9 refuses are refused by every API.
	for _, bad := range []struct{ name, value string }{{"message.format.version", "banana"}, {"message.format.version", "4.0"}, {"remote.log.copy.disable", "maybe"}} {
		if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{bad.name: &bad.value}, "refused"); !errors.Is(err, kerr.InvalidConfig) {
			t.Errorf("create with %s=%s: %v, want INVALID_CONFIG", bad.name, bad.value, err)
		}
		alter.Resources[0].Configs = []kmsg.AlterConfigsRequestResourceConfig{{Name: bad.name, Value: &bad.value}}
		if resp, err := alter.RequestWith(ctx, cl); err != nil || resp.Resources[0].ErrorCode != kerr.InvalidConfig.Code {
			t.Errorf("AlterConfigs %s=%s: %v %+v, want INVALID_CONFIG", bad.name, bad.value, err, resp)
		}
		if r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: bad.name, Value: &bad.value}}, topic); err != nil || !errors.Is(r[0].Err, kerr.InvalidConfig) {
			t.Errorf("IncrementalAlterConfigs %s=%s: %v %+v, want INVALID_CONFIG", bad.name, bad.value, err, r)
		}
	}
	if got, _, _ := describe("message.format.version"); got != "3.0-IV1" {
		t.Errorf("refused changes changed message.format.version to %q", got)
	}
}
