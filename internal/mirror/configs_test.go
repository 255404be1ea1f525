package mirror

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/export/exporttest"
)

// TestMirrorConfigSync: a mirror topic's configs follow its source
// topic's (set, changed, removed), Vigil's own vigil.* configs on it
// stay, and a promoted topic's configs are left alone.
func TestMirrorConfigSync(t *testing.T) {
	c := startKfake(t)
	src, dst := strings.Join(c.ListenAddrs(), ","), exporttest.StartBroker(t)
	sadm, dadm := admin(t, src), admin(t, dst)
	ctx := context.Background()
	alter := func(adm *kadm.Client, alters ...kadm.AlterConfig) {
		t.Helper()
		resps, err := adm.AlterTopicConfigs(ctx, alters, "cfg")
		if err == nil {
			var r kadm.AlterConfigsResponse
			if r, err = resps.On("cfg", nil); err == nil {
				err = r.Err
			}
		}
		if err != nil {
			t.Fatalf("alter configs of cfg: %v", err)
		}
	}
	fill(t, src, "cfg", 1, 10, nil)
	alter(sadm,
		kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("100000")},
		kadm.AlterConfig{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kadm.StringPtr("200000")})
	startMirror(t, src, dst, "cfg", nil, nil)

	// configs returns the topic's configs set on Vigil (DYNAMIC_TOPIC_CONFIG).
	configs := func() map[string]string {
		rcs, err := dadm.DescribeTopicConfigs(ctx, "cfg")
		if err != nil {
			return nil
		}
		rc, err := rcs.On("cfg", nil)
		if err != nil {
			return nil
		}
		out := map[string]string{}
		for _, c := range rc.Configs {
			if c.Source == kmsg.ConfigSourceDynamicTopicConfig && c.Value != nil {
				out[c.Key] = *c.Value
			}
		}
		return out
	}
	waitConfigs := func(what string, want map[string]string) {
		t.Helper()
		var got map[string]string
		exporttest.Wait(t, 30*time.Second, what, func() bool {
			got = configs()
			for k, v := range want {
				if v == "" {
					if _, ok := got[k]; ok {
						return false
					}
				} else if got[k] != v {
					return false
				}
			}
			return true
		})
	}
	waitConfigs("the topic created with the source's configs", map[string]string{"retention.ms": "100000", "max.message.bytes": "200000"})

	// A config of Vigil's own on the mirror topic.
	alter(dadm, kadm.AlterConfig{Op: kadm.SetConfig, Name: "vigil.legal.hold", Value: kadm.StringPtr("true")})
	alter(sadm,
		kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("200000")},
		kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.bytes", Value: kadm.StringPtr("1048576")},
		kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "max.message.bytes"})
	waitConfigs("the source's changes on Vigil", map[string]string{
		"retention.ms": "200000", "retention.bytes": "1048576", "max.message.bytes": "",
		"vigil.legal.hold": "true", MirrorSourceConfig: configs()[MirrorSourceConfig],
	})
	if configs()[MirrorSourceConfig] == "" {
		t.Fatal("the mirror mark is gone")
	}

	// Promoted: the topic's configs are Vigil's users' now.
	if err := Promote(ctx, []kgo.Opt{kgo.SeedBrokers(dst)}, "cfg"); err != nil {
		t.Fatal(err)
	}
	alter(sadm, kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("300000")})
	time.Sleep(time.Second) // five sync intervals
	if got := configs(); got["retention.ms"] != "200000" || got["vigil.legal.hold"] != "true" {
		t.Fatalf("configs of the promoted topic changed: %v", got)
	}
}
