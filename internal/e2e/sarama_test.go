package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// TestSarama runs IBM's sarama, the other widely used Go client, against a
// broker as its users configure it: an idempotent producer with each
// codec, a consumer group that commits and resumes, offsets by time, and
// the admin calls. Sarama picks request versions from its configured Kafka
// version (clamped to what ApiVersions advertises), so the oldest version
// with headers and idempotence, its default and its newest are each run.
func TestSarama(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "", t.TempDir())
	for _, v := range []sarama.KafkaVersion{sarama.V0_11_0_0, sarama.DefaultVersion, sarama.MaxVersion} {
		t.Run(v.String(), func(t *testing.T) {
			testSarama(t, b.addr, v)
		})
	}
}

func saramaConfig(v sarama.KafkaVersion) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = v
	cfg.ClientID = "vigil-e2e-sarama"
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Idempotent = true
	cfg.Producer.Retry.Max = 5
	cfg.Net.MaxOpenRequests = 1 // sarama's rule for an idempotent producer
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	return cfg
}

func testSarama(t *testing.T, addr string, v sarama.KafkaVersion) {
	cfg := saramaConfig(v)
	topic := "sarama-" + v.String()
	const partitions = 3

	admin, err := sarama.NewClusterAdmin([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sarama admin: %v", err)
	}
	defer admin.Close()
	retention := "86400000"
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{
		NumPartitions: partitions, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": &retention},
	}, false); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false)
	if !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		t.Fatalf("CreateTopic of an existing topic: got %v, want %v", err, sarama.ErrTopicAlreadyExists)
	}
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		t.Fatalf("DescribeConfig: %v", err)
	}
	if got := configValue(entries, "retention.ms"); got != retention {
		t.Fatalf("DescribeConfig retention.ms = %q, want %q", got, retention)
	}

	// Produce: every codec this version may send, each record with a key,
	// a header and a timestamp of its own.
	codecs := []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy, sarama.CompressionLZ4}
	if v.IsAtLeast(sarama.V2_1_0_0) {
		codecs = append(codecs, sarama.CompressionZSTD)
	}
	const perCodec = 600
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	type sent struct {
		key, value, header string
		ts                 time.Time
	}
	want := map[int32][]sent{}
	offsets := map[int32]int64{}
	n := 0
	for _, codec := range codecs {
		pcfg := saramaConfig(v)
		pcfg.Producer.Compression = codec
		pcfg.Producer.Flush.Messages = 50 // batches of many records, so the codec has work
		pcfg.Producer.Flush.Frequency = 5 * time.Millisecond
		producer, err := sarama.NewAsyncProducer([]string{addr}, pcfg)
		if err != nil {
			t.Fatalf("producer (%s): %v", codec, err)
		}
		for i := 0; i < perCodec; i++ {
			producer.Input() <- &sarama.ProducerMessage{
				Topic:     topic,
				Key:       sarama.StringEncoder(fmt.Sprintf("k%d", n+i)),
				Value:     sarama.StringEncoder(fmt.Sprintf("%s value %d", codec, n+i)),
				Headers:   []sarama.RecordHeader{{Key: []byte("codec"), Value: []byte(codec.String())}},
				Timestamp: base.Add(time.Duration(n+i) * time.Millisecond),
				Metadata:  n + i,
			}
		}
		for i := 0; i < perCodec; i++ {
			select {
			case m := <-producer.Successes():
				j := m.Metadata.(int)
				if m.Offset < offsets[m.Partition] {
					t.Fatalf("%s: partition %d acknowledged offset %d after %d", codec, m.Partition, m.Offset, offsets[m.Partition])
				}
				want[m.Partition] = append(want[m.Partition], sent{
					key: fmt.Sprintf("k%d", j), value: fmt.Sprintf("%s value %d", codec, j),
					header: codec.String(), ts: base.Add(time.Duration(j) * time.Millisecond),
				})
				offsets[m.Partition] = m.Offset + 1
			case perr := <-producer.Errors():
				t.Fatalf("%s produce: %v", codec, perr.Err)
			case <-time.After(30 * time.Second):
				t.Fatalf("%s: %d of %d records acknowledged after 30s", codec, i, perCodec)
			}
		}
		if err := producer.Close(); err != nil {
			t.Fatalf("close producer (%s): %v", codec, err)
		}
		n += perCodec
	}
	// The acknowledged offsets per partition are 0..n-1 with no gap: one
	// producer at a time, max.in.flight 1, in acknowledgement order.
	total := 0
	for p, recs := range want {
		if offsets[p] != int64(len(recs)) {
			t.Fatalf("partition %d: %d records acknowledged, last offset %d", p, len(recs), offsets[p]-1)
		}
		total += len(recs)
	}
	if total != n {
		t.Fatalf("%d records acknowledged, want %d", total, n)
	}

	// Consume with a group; every record comes back in order per partition.
	group := topic + "-group"
	got := consumeSarama(t, addr, cfg, group, topic, n)
	for p, recs := range want {
		if len(got[p]) != len(recs) {
			t.Fatalf("partition %d: consumed %d records, want %d", p, len(got[p]), len(recs))
		}
		for i, w := range recs {
			m := got[p][i]
			if m.Offset != int64(i) || string(m.Key) != w.key || string(m.Value) != w.value || !m.Timestamp.Equal(w.ts) ||
				len(m.Headers) != 1 || string(m.Headers[0].Key) != "codec" || string(m.Headers[0].Value) != w.header {
				t.Fatalf("partition %d record %d: got offset %d key %q value %q ts %v headers %d; want key %q value %q ts %v header %q",
					p, i, m.Offset, m.Key, m.Value, m.Timestamp, len(m.Headers), w.key, w.value, w.ts, w.header)
			}
		}
	}

	// The group's committed offsets are the ends of the partitions, and a
	// new session of the same group resumes there: it gets only what is
	// produced after.
	committed, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2}})
	if err != nil {
		t.Fatalf("ListConsumerGroupOffsets: %v", err)
	}
	for p := int32(0); p < partitions; p++ {
		blk := committed.GetBlock(topic, p)
		if blk == nil || blk.Err != sarama.ErrNoError || blk.Offset != offsets[p] {
			t.Fatalf("partition %d: committed %+v, want offset %d", p, blk, offsets[p])
		}
	}
	producer, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sync producer: %v", err)
	}
	p, off, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("after the commit")})
	producer.Close()
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	if off != offsets[p] {
		t.Fatalf("partition %d: new record at offset %d, want %d", p, off, offsets[p])
	}
	again := consumeSarama(t, addr, cfg, group, topic, 1)
	if len(again[p]) != 1 || again[p][0].Offset != off || string(again[p][0].Value) != "after the commit" {
		t.Fatalf("the group resumed with %v, want only offset %d of partition %d", again, off, p)
	}

	// Offsets by time: the first record at or after a timestamp, and the
	// partition's ends.
	client, err := sarama.NewClient([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer client.Close()
	for part, recs := range want {
		mid := len(recs) / 2
		byTime, err := client.GetOffset(topic, part, recs[mid].ts.UnixMilli())
		if err != nil {
			t.Fatalf("GetOffset by time: %v", err)
		}
		if byTime != int64(mid) {
			t.Fatalf("partition %d: offset for %v is %d, want %d", part, recs[mid].ts, byTime, mid)
		}
		oldest, err := client.GetOffset(topic, part, sarama.OffsetOldest)
		if err != nil || oldest != 0 {
			t.Fatalf("partition %d: oldest offset %d (%v), want 0", part, oldest, err)
		}
	}

	groups, err := admin.ListConsumerGroups()
	if err != nil {
		t.Fatalf("ListConsumerGroups: %v", err)
	}
	if groups[group] != "consumer" {
		t.Fatalf("ListConsumerGroups: %v has no consumer group %s", groups, group)
	}
	desc, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil || len(desc) != 1 || desc[0].Err != sarama.ErrNoError || desc[0].State != "Empty" {
		t.Fatalf("DescribeConsumerGroups: %+v (%v), want one Empty group", desc, err)
	}
	if v.IsAtLeast(sarama.V1_0_0_0) { // sarama refuses it to older versions itself
		if err := admin.CreatePartitions(topic, partitions+1, nil, false); err != nil {
			t.Fatalf("CreatePartitions: %v", err)
		}
		md, err := admin.DescribeTopics([]string{topic})
		if err != nil || len(md) != 1 || len(md[0].Partitions) != partitions+1 {
			t.Fatalf("DescribeTopics after CreatePartitions: %+v (%v), want %d partitions", md, err, partitions+1)
		}
	}
	if err := admin.DeleteTopic(topic); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	if err := admin.DeleteTopic(topic); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Fatalf("DeleteTopic of a deleted topic: got %v, want %v", err, sarama.ErrUnknownTopicOrPartition)
	}
}

func configValue(entries []sarama.ConfigEntry, name string) string {
	for _, e := range entries {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// consumeSarama runs one session of a sarama consumer group until it has n
// records, marks and commits them, and returns them by partition.
func consumeSarama(t *testing.T, addr string, cfg *sarama.Config, group, topic string, n int) map[int32][]*sarama.ConsumerMessage {
	t.Helper()
	cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
	if err != nil {
		t.Fatalf("consumer group: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := &saramaHandler{want: n, got: map[int32][]*sarama.ConsumerMessage{}, done: cancel}
	errs := make(chan error, 1)
	go func() {
		for {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil {
				errs <- err
				return
			}
			if ctx.Err() != nil {
				errs <- nil
				return
			}
		}
	}()
	select {
	case err := <-errs:
		if err != nil {
			t.Fatalf("consume: %v", err)
		}
	case err := <-cg.Errors():
		t.Fatalf("consumer group: %v", err)
	}
	if err := cg.Close(); err != nil {
		t.Fatalf("close consumer group: %v", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n != n {
		t.Fatalf("consumed %d records in a minute, want %d", h.n, n)
	}
	return h.got
}

type saramaHandler struct {
	want int
	done context.CancelFunc

	mu  sync.Mutex
	n   int
	got map[int32][]*sarama.ConsumerMessage
}

func (h *saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.mu.Lock()
		h.got[m.Partition] = append(h.got[m.Partition], m)
		h.n++
		last := h.n == h.want
		h.mu.Unlock()
		s.MarkMessage(m, "")
		if last {
			// Commit before the session ends, so the offsets are there
			// whatever the order of shutdown.
			s.Commit()
			h.done()
		}
	}
	return nil
}
