package server

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDynamicBrokerConfigs: AlterConfigs and IncrementalAlterConfigs on
// a BROKER resource, as Kafka 3.9 answers them: dynamic configs Vigil
// ignores (a replication throttle, cleaner threads) and keys Kafka does
// not define are accepted, stored and described, per broker or as the
// cluster default; a value of the wrong type, a config Kafka cannot change
// at runtime, one Vigil's flags set, and another broker's id are
// INVALID_REQUEST (Kafka's code for broker configs) and change nothing.
func TestDynamicBrokerConfigs(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, time.Minute)
	cl := ts.client(t)
	id := strconv.Itoa(int(ts.cfg.NodeID))
	// Straight to the broker: kgo would route a request for a broker
	// resource to the broker it names, and there is no broker 7.
	br := cl.Broker(int(ts.cfg.NodeID))

	incremental := func(resource string, validateOnly bool, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) (int16, string) {
		t.Helper()
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		req.ValidateOnly = validateOnly
		req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: resource, Configs: ops}}
		kresp, err := br.Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		r := kresp.(*kmsg.IncrementalAlterConfigsResponse).Resources[0]
		return r.ErrorCode, deref(r.ErrorMessage)
	}
	set := func(name, value string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
		return kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: name, Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr(value)}
	}
	describe := func(resource string) map[string]kmsg.DescribeConfigsResponseResourceConfig {
		t.Helper()
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: resource}}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || resp.Resources[0].ErrorCode != 0 {
			t.Fatalf("describe broker %q: %v %+v", resource, err, resp)
		}
		out := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
		for _, c := range resp.Resources[0].Configs {
			out[c.Name] = c
		}
		return out
	}
	want := func(resource, name, value string, src kmsg.ConfigSource) {
		t.Helper()
		c, ok := describe(resource)[name]
		switch {
		case value == "" && ok:
			t.Errorf("broker %q: %s described as %q, want it absent", resource, name, deref(c.Value))
		case value != "" && (!ok || deref(c.Value) != value || c.Source != src):
			t.Errorf("broker %q: %s described as %q (present %v, source %v), want %q from %v", resource, name, deref(c.Value), ok, c.Source, value, src)
		}
	}

	// kafka-reassign-partitions --throttle sets these on each broker.
	if code, msg := incremental(id, false, set("leader.replication.throttled.rate", "1048576"), set("follower.replication.throttled.rate", "1048576")); code != 0 {
		t.Fatalf("set the replication throttles: %v %s", kerr.ErrorForCode(code), msg)
	}
	want(id, "leader.replication.throttled.rate", "1048576", kmsg.ConfigSourceDynamicBrokerConfig)
	if c := describe(id)["broker.id"]; deref(c.Value) != id {
		t.Errorf("the static configs went missing: broker.id %q", deref(c.Value))
	}
	// The cluster default, and a key Kafka does not define.
	if code, msg := incremental("", false, set("log.cleaner.threads", "2"), set("my.plugin.setting", "x")); code != 0 {
		t.Fatalf("set cluster defaults: %v %s", kerr.ErrorForCode(code), msg)
	}
	want("", "log.cleaner.threads", "2", kmsg.ConfigSourceDynamicDefaultBrokerConfig)
	want("", "my.plugin.setting", "x", kmsg.ConfigSourceDynamicDefaultBrokerConfig)
	want("", "leader.replication.throttled.rate", "", 0)
	want(id, "log.cleaner.threads", "2", kmsg.ConfigSourceDynamicDefaultBrokerConfig)
	// kadm's AlterBrokerConfigs (IncrementalAlterConfigs) with a DELETE.
	adm := kadm.NewClient(cl)
	if r, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "follower.replication.throttled.rate"}}, ts.cfg.NodeID); err != nil || r[0].Err != nil {
		t.Fatalf("delete a throttle: %v %+v", err, r)
	}
	want(id, "follower.replication.throttled.rate", "", 0)
	want(id, "leader.replication.throttled.rate", "1048576", kmsg.ConfigSourceDynamicBrokerConfig)
	// A validate-only change is checked and not stored.
	if code, _ := incremental(id, true, set("num.io.threads", "16")); code != 0 {
		t.Errorf("validate-only num.io.threads: %v", kerr.ErrorForCode(code))
	}
	want(id, "num.io.threads", "", 0)

	// AlterConfigs replaces the broker's whole set.
	alter := kmsg.NewPtrAlterConfigsRequest()
	alter.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: id,
		Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "num.io.threads", Value: kmsg.StringPtr("16")}}}}
	if resp, err := alter.RequestWith(ctx, cl); err != nil || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("AlterConfigs num.io.threads: %v %+v", err, resp)
	}
	want(id, "num.io.threads", "16", kmsg.ConfigSourceDynamicBrokerConfig)
	want(id, "leader.replication.throttled.rate", "", 0)

	for _, bad := range []struct{ resource, name, value, says string }{
		{id, "num.io.threads", "many", "not an integer"},
		{id, "log.retention.ms", "1000", "--retention-ms"},
		{"", "message.max.bytes", "1000", "--max-message-bytes"},
		{id, "log.cleanup.policy", "compact", "cleanup.policy"},
		{id, "broker.id", "5", "not dynamic"},
		{id, "log.message.format.version", "2.8", "not dynamic"},
		{id, "min.insync.replicas", "0", "outside"},
		{"7", "num.io.threads", "4", "unexpected broker id"},
		{"x", "num.io.threads", "4", "must be an integer"},
	} {
		code, msg := incremental(bad.resource, false, set(bad.name, bad.value))
		if code != kerr.InvalidRequest.Code || !strings.Contains(msg, bad.says) {
			t.Errorf("IncrementalAlterConfigs broker %q %s=%s: %v %q, want INVALID_REQUEST saying %q", bad.resource, bad.name, bad.value, kerr.ErrorForCode(code), msg, bad.says)
		}
		alter.Resources[0].ResourceName = bad.resource
		alter.Resources[0].Configs = []kmsg.AlterConfigsRequestResourceConfig{{Name: bad.name, Value: kmsg.StringPtr(bad.value)}}
		if resp, err := br.Request(ctx, alter); err != nil || resp.(*kmsg.AlterConfigsResponse).Resources[0].ErrorCode != kerr.InvalidRequest.Code {
			t.Errorf("AlterConfigs broker %q %s=%s: %v %+v, want INVALID_REQUEST", bad.resource, bad.name, bad.value, err, resp)
		}
	}
	want(id, "num.io.threads", "16", kmsg.ConfigSourceDynamicBrokerConfig)
	if _, ok := describe(id)["min.insync.replicas"]; ok {
		t.Errorf("a refused change was stored")
	}
	// vigil.draining still needs a cluster.
	if code, _ := incremental(id, false, set("vigil.draining", "true")); code != kerr.InvalidRequest.Code {
		t.Errorf("vigil.draining without a cluster: %v, want INVALID_REQUEST", kerr.ErrorForCode(code))
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
