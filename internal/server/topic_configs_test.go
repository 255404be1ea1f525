package server

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/batch"
)

// TestKafkaTopicConfigs: the topic configs that frameworks set as a matter
// of course (here those Kafka Streams gives its repartition topics, and
// what Terraform providers and Connect commonly add) create a topic and
// are shown as set; every other Kafka topic config is shown with its
// default; values Kafka would refuse are refused with INVALID_CONFIG.
func TestKafkaTopicConfigs(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, time.Minute)
	adm := ts.admin(t)

	set := map[string]*string{
		"cleanup.policy":                        kadm.StringPtr("delete"),
		"segment.bytes":                         kadm.StringPtr("52428800"),
		"retention.ms":                          kadm.StringPtr("-1"),
		"message.timestamp.type":                kadm.StringPtr("CreateTime"),
		"min.insync.replicas":                   kadm.StringPtr("2"),
		"unclean.leader.election.enable":        kadm.StringPtr("false"),
		"compression.type":                      kadm.StringPtr("producer"),
		"min.cleanable.dirty.ratio":             kadm.StringPtr("0.1"),
		"leader.replication.throttled.replicas": kadm.StringPtr("0:1,1:2"),
	}
	if _, err := adm.CreateTopic(ctx, 2, 1, set, "streams-repartition"); err != nil {
		t.Fatalf("create with the configs Kafka clients set: %v", err)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "streams-repartition")
	if err != nil {
		t.Fatal(err)
	}
	c, err := rc.On("streams-repartition", nil)
	if err != nil || c.Err != nil {
		t.Fatalf("describe: %v %v", err, c.Err)
	}
	got := map[string]kadm.Config{}
	for _, kv := range c.Configs {
		got[kv.Key] = kv
	}
	for name, v := range set {
		if kv, ok := got[name]; !ok || kv.MaybeValue() != *v || kv.Source != kmsg.ConfigSourceDynamicTopicConfig {
			t.Errorf("%s: described %q (source %v), want %q as set", name, kv.MaybeValue(), kv.Source, *v)
		}
	}
	for name, want := range map[string]string{
		"segment.ms": "604800000", "flush.messages": "9223372036854775807", "message.timestamp.after.max.ms": "9223372036854775807",
		"max.compaction.lag.ms": "9223372036854775807", "local.retention.ms": "-2", "compression.zstd.level": "3",
	} {
		if kv, ok := got[name]; !ok || kv.MaybeValue() != want || kv.Source != kmsg.ConfigSourceDefaultConfig {
			t.Errorf("%s: described %q (source %v), want the default %q", name, kv.MaybeValue(), kv.Source, want)
		}
	}

	for _, bad := range []struct{ name, value, says string }{
		{"compression.type", "brotli", "not one of uncompressed, gzip, snappy, lz4, zstd, producer"},
		{"message.timestamp.type", "WallClock", "CreateTime, LogAppendTime"},
		{"min.insync.replicas", "0", "outside"},
		{"segment.bytes", "big", "not an integer"},
		{"min.cleanable.dirty.ratio", "1.5", "outside"},
		{"compression.gzip.level", "0", "gzip level"},
		{"follower.replication.throttled.replicas", "all", "partition:broker"},
		{"no.such.config", "1", "unknown topic config"},
	} {
		_, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{bad.name: &bad.value}, "refused")
		var ke *kerr.Error
		if !errors.As(err, &ke) || ke != kerr.InvalidConfig {
			t.Errorf("create with %s=%s: %v, want INVALID_CONFIG", bad.name, bad.value, err)
			continue
		}
		// The reason reaches the client.
		var resp kadm.CreateTopicResponse
		resp, _ = adm.CreateTopic(ctx, 1, 1, map[string]*string{bad.name: &bad.value}, "refused")
		if !strings.Contains(resp.ErrMessage, bad.says) {
			t.Errorf("create with %s=%s: message %q lacks %q", bad.name, bad.value, resp.ErrMessage, bad.says)
		}
		// An alter is refused the same way and changes nothing.
		ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: bad.name, Value: &bad.value}}, "streams-repartition")
		if err != nil || len(ar) != 1 || !errors.Is(ar[0].Err, kerr.InvalidConfig) {
			t.Errorf("alter %s=%s: %v %+v, want INVALID_CONFIG", bad.name, bad.value, err, ar)
		}
	}
}

// TestLogAppendTime: on a topic with message.timestamp.type=LogAppendTime
// the broker stamps each batch with the time it appended it, whatever the
// producer wrote; consumers read that time, the produce response carries
// it, and ListOffsets by time finds records by it.
func TestLogAppendTime(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, time.Minute)
	cl := ts.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"message.timestamp.type": kadm.StringPtr("LogAppendTime")}, "appended"); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

	// A raw produce, to see the response's LogAppendTime.
	before := time.Now().UnixMilli()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "appended", Partitions: []kmsg.ProduceRequestTopicPartition{{
		Partition: 0, Records: batch.Build([]batch.KV{{Value: []byte("a")}, {Value: []byte("b")}}, old.UnixMilli()),
	}}}}
	resp, err := cl.Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	after := time.Now().UnixMilli()
	if p.ErrorCode != 0 || p.LogAppendTime < before || p.LogAppendTime > after {
		t.Fatalf("produce answered error %d, LogAppendTime %d; want the append time in [%d, %d]", p.ErrorCode, p.LogAppendTime, before, after)
	}
	first := p.LogAppendTime

	time.Sleep(20 * time.Millisecond)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "appended", Value: []byte("c"), Timestamp: old}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	recs := readFromStart(t, ctx, ts, "appended", 0, 3)
	for _, r := range recs {
		if r.Attrs.TimestampType() != 1 {
			t.Errorf("offset %d: timestamp type %d, want 1 (LogAppendTime)", r.Offset, r.Attrs.TimestampType())
		}
		if r.Timestamp.Equal(old) || r.Timestamp.UnixMilli() < before {
			t.Errorf("offset %d: timestamp %v, want the broker's append time, not the producer's %v", r.Offset, r.Timestamp, old)
		}
	}
	if recs[0].Timestamp.UnixMilli() != first || recs[1].Timestamp.UnixMilli() != first {
		t.Errorf("the raw batch's records read %v and %v, want the answered append time %d", recs[0].Timestamp, recs[1].Timestamp, first)
	}
	third := recs[2].Timestamp.UnixMilli()
	if third <= first {
		t.Fatalf("the later batch's append time %d is not after the first's %d", third, first)
	}

	// By append time: the producer's old timestamps find nothing earlier.
	lo, err := adm.ListOffsetsAfterMilli(ctx, old.UnixMilli(), "appended")
	if err != nil {
		t.Fatal(err)
	}
	hi, err := adm.ListOffsetsAfterMilli(ctx, third, "appended")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lo.Lookup("appended", 0); o.Offset != 0 || o.Timestamp != first {
		t.Errorf("ListOffsets after %d: offset %d at %d, want 0 at %d", old.UnixMilli(), o.Offset, o.Timestamp, first)
	}
	if o, _ := hi.Lookup("appended", 0); o.Offset != 2 || o.Timestamp != third {
		t.Errorf("ListOffsets after %d: offset %d at %d, want 2 at %d", third, o.Offset, o.Timestamp, third)
	}
}

// TestTimestampBounds: with message.timestamp.before.max.ms and
// .after.max.ms, a batch holding a record stamped too far from the
// broker's clock is refused with INVALID_TIMESTAMP, compressed or not, and
// nothing of it is stored; the deprecated difference.max.ms bounds both
// sides where they are not set.
func TestTimestampBounds(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, time.Minute)
	adm := ts.admin(t)
	createWith := func(topic string, cfg map[string]string) {
		t.Helper()
		m := map[string]*string{}
		for k, v := range cfg {
			m[k] = kadm.StringPtr(v)
		}
		if _, err := adm.CreateTopic(ctx, 1, 1, m, topic); err != nil {
			t.Fatal(err)
		}
	}
	createWith("bounded", map[string]string{"message.timestamp.before.max.ms": "3600000", "message.timestamp.after.max.ms": "60000"})
	createWith("bounded-legacy", map[string]string{"message.timestamp.difference.max.ms": "60000"})

	now := time.Now()
	for codec, cc := range map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "zstd": kgo.ZstdCompression()} {
		cl := ts.client(t, kgo.ProducerBatchCompression(cc), kgo.DisableIdempotentWrite(), kgo.RecordRetries(0))
		for _, tc := range []struct {
			topic string
			at    time.Time
			ok    bool
		}{
			{"bounded", now, true},
			{"bounded", now.Add(-30 * time.Minute), true},
			{"bounded", now.Add(-2 * time.Hour), false},
			{"bounded", now.Add(10 * time.Minute), false},
			{"bounded-legacy", now.Add(-30 * time.Minute), false},
			{"bounded-legacy", now.Add(10 * time.Minute), false},
			{"bounded-legacy", now.Add(-10 * time.Second), true},
		} {
			// The out-of-range record rides in the middle of a batch of good ones.
			recs := []*kgo.Record{
				{Topic: tc.topic, Value: []byte("x"), Timestamp: now},
				{Topic: tc.topic, Value: []byte("y"), Timestamp: tc.at},
				{Topic: tc.topic, Value: []byte("z"), Timestamp: now},
			}
			err := cl.ProduceSync(ctx, recs...).FirstErr()
			if tc.ok && err != nil {
				t.Errorf("%s: %s at %v: %v", codec, tc.topic, tc.at.Sub(now).Round(time.Second), err)
			}
			if !tc.ok && !errors.Is(err, kerr.InvalidTimestamp) {
				t.Errorf("%s: %s at %v: %v, want INVALID_TIMESTAMP", codec, tc.topic, tc.at.Sub(now).Round(time.Second), err)
			}
		}
	}
	// Only the accepted batches were stored: 2 codecs x 2 batches x 3
	// records, and 2 x 1 x 3.
	ends, err := adm.ListEndOffsets(ctx, "bounded", "bounded-legacy")
	if err != nil {
		t.Fatal(err)
	}
	for topic, want := range map[string]int64{"bounded": 12, "bounded-legacy": 6} {
		if o, _ := ends.Lookup(topic, 0); o.Offset != want {
			t.Errorf("%s ends at %d, want %d", topic, o.Offset, want)
		}
	}
}
