package e2e

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

// TestKafkaGo runs segmentio's kafka-go, a Go client with a protocol
// implementation of its own, against a broker: the admin calls, a writer
// with each codec and acks=all, a group reader that commits and resumes,
// and offsets by time.
func TestKafkaGo(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "", t.TempDir())
	addr := kafka.TCP(b.addr)
	client := &kafka.Client{Addr: addr, Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const topic, partitions = "kafka-go", 3

	created, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "86400000"}},
	}}})
	if err != nil || created.Errors[topic] != nil {
		t.Fatalf("CreateTopics: %v %v", err, created)
	}
	cfgs, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"retention.ms"},
	}}})
	if err != nil || len(cfgs.Resources) != 1 || len(cfgs.Resources[0].ConfigEntries) != 1 ||
		cfgs.Resources[0].ConfigEntries[0].ConfigValue != "86400000" {
		t.Fatalf("DescribeConfigs retention.ms: %+v (%v)", cfgs, err)
	}

	// Write with each codec; the record numbered n goes to partition n%3,
	// so each partition's expected order is known.
	type sent struct {
		key, value, header string
		ts                 time.Time
	}
	want := map[int][]sent{}
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	byKey := kafka.BalancerFunc(func(m kafka.Message, ps ...int) int {
		n, _ := strconv.Atoi(strings.TrimPrefix(string(m.Key), "k"))
		return ps[n%len(ps)]
	})
	n := 0
	for _, codec := range []compress.Compression{0, kafka.Gzip, kafka.Snappy, kafka.Lz4, kafka.Zstd} {
		name := "none"
		if codec != 0 {
			name = codec.String()
		}
		w := &kafka.Writer{
			Addr: addr, Topic: topic, Balancer: byKey, RequiredAcks: kafka.RequireAll,
			Compression: codec, BatchSize: 50, BatchTimeout: 5 * time.Millisecond,
		}
		var msgs []kafka.Message
		for i := 0; i < 300; i++ {
			msgs = append(msgs, kafka.Message{
				Key: []byte(fmt.Sprintf("k%d", n)), Value: []byte(fmt.Sprintf("%s value %d", name, n)),
				Headers: []kafka.Header{{Key: "codec", Value: []byte(name)}},
				Time:    base.Add(time.Duration(n) * time.Millisecond),
			})
			want[n%partitions] = append(want[n%partitions], sent{fmt.Sprintf("k%d", n), fmt.Sprintf("%s value %d", name, n), name, msgs[i].Time})
			n++
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("WriteMessages (%s): %v", name, err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("close writer (%s): %v", name, err)
		}
	}

	const group = "kafka-go-group"
	got := readGroup(ctx, t, b.addr, group, topic, n)
	for p, recs := range want {
		if len(got[p]) != len(recs) {
			t.Fatalf("partition %d: read %d records, want %d", p, len(got[p]), len(recs))
		}
		for i, w := range recs {
			m := got[p][i]
			if m.Offset != int64(i) || string(m.Key) != w.key || string(m.Value) != w.value ||
				!m.Time.Equal(w.ts) || len(m.Headers) != 1 || string(m.Headers[0].Value) != w.header {
				t.Fatalf("partition %d record %d: got offset %d key %q value %q time %v headers %v; want %+v", p, i, m.Offset, m.Key, m.Value, m.Time, m.Headers, w)
			}
		}
	}

	committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0, 1, 2}}})
	if err != nil {
		t.Fatalf("OffsetFetch: %v", err)
	}
	for _, c := range committed.Topics[topic] {
		if c.Error != nil || c.CommittedOffset != int64(len(want[c.Partition])) {
			t.Fatalf("partition %d: committed %d (%v), want %d", c.Partition, c.CommittedOffset, c.Error, len(want[c.Partition]))
		}
	}
	// A new session of the group resumes after the commit.
	w := &kafka.Writer{Addr: addr, Topic: topic, Balancer: byKey, RequiredAcks: kafka.RequireAll}
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k1"), Value: []byte("after the commit")}); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}
	w.Close()
	again := readGroup(ctx, t, b.addr, group, topic, 1)
	if m := again[1]; len(m) != 1 || m[0].Offset != int64(len(want[1])) || string(m[0].Value) != "after the commit" {
		t.Fatalf("the group resumed with %v, want only offset %d of partition 1", again, len(want[1]))
	}

	var reqs []kafka.OffsetRequest
	for p := 0; p < partitions; p++ {
		// Record 3*150+p, the 151st of partition p, was written at base+that.
		reqs = append(reqs, kafka.TimeOffsetOf(p, base.Add(time.Duration(3*150+p)*time.Millisecond)))
	}
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("ListOffsets: %v", err)
	}
	for _, po := range offs.Topics[topic] {
		if po.Error != nil || len(po.Offsets) != 1 {
			t.Fatalf("ListOffsets partition %d: %+v", po.Partition, po)
		}
		for off := range po.Offsets {
			if off != 150 {
				t.Fatalf("partition %d: offset by time %d, want 150", po.Partition, off)
			}
		}
	}

	groups, err := client.ListGroups(ctx, &kafka.ListGroupsRequest{})
	if err != nil || len(groups.Groups) != 1 || groups.Groups[0].GroupID != group {
		t.Fatalf("ListGroups: %+v (%v)", groups, err)
	}
	desc, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil || len(desc.Groups) != 1 || desc.Groups[0].GroupState != "Empty" {
		t.Fatalf("DescribeGroups: %+v (%v)", desc, err)
	}
	cp, err := client.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: partitions + 1}}})
	if err != nil || cp.Errors[topic] != nil {
		t.Fatalf("CreatePartitions: %+v (%v)", cp, err)
	}
	del, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	if err != nil || del.Errors[topic] != nil {
		t.Fatalf("DeleteTopics: %+v (%v)", del, err)
	}
	del, err = client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
	if err != nil || !errors.Is(del.Errors[topic], kafka.UnknownTopicOrPartition) {
		t.Fatalf("DeleteTopics of a deleted topic: %+v (%v), want %v", del, err, kafka.UnknownTopicOrPartition)
	}
}

// readGroup reads n records as one member of group, commits them and
// leaves, and returns them by partition.
func readGroup(ctx context.Context, t *testing.T, addr, group, topic string, n int) map[int][]kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{addr}, GroupID: group, GroupTopics: []string{topic},
		StartOffset: kafka.FirstOffset, HeartbeatInterval: 500 * time.Millisecond,
		MaxWait: 200 * time.Millisecond,
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	got := map[int][]kafka.Message{}
	var all []kafka.Message
	for len(all) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("FetchMessage after %d of %d records: %v", len(all), n, err)
		}
		got[m.Partition] = append(got[m.Partition], m)
		all = append(all, m)
	}
	if err := r.CommitMessages(ctx, all...); err != nil {
		t.Fatalf("CommitMessages: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("close reader: %v", err)
	}
	return got
}
