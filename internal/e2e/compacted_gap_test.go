package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCompactedGapClients starts clients inside offsets the cleaner
// removed from the end of a batch: batch 0-7 keeps only offsets 0-4, so a
// fetch at 6 gets that batch with nothing at or after 6 in it, and the
// client must move on to offset 8 by the batch's last offset, as with a
// compacted topic on Kafka. kcat (librdkafka), kafka-python, sarama and
// franz-go each read from offset 6 and must get exactly offsets 8-10.
func TestCompactedGapClients(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "", t.TempDir(), "--retention-check-interval", "200ms", "--object-delete-delay", "1s")
	const topic = "gaps"
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(50*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression())) // Debian's kafka-python has no snappy
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createCompacted(t, b.addr, topic)
	// One batch of keys a-h (offsets 0-7), then one updating f-h (8-10).
	for _, keys := range []string{"abcdefgh", "fgh"} {
		var rs []*kgo.Record
		for _, k := range keys {
			rs = append(rs, &kgo.Record{Key: []byte{byte(k)}, Value: []byte(fmt.Sprintf("%c-%d", k, len(keys)))})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if rs[0].Offset+int64(len(rs))-1 != rs[len(rs)-1].Offset {
			t.Fatalf("records of one ProduceSync landed at %d..%d", rs[0].Offset, rs[len(rs)-1].Offset)
		}
	}
	want := "8 f f-3\n9 g g-3\n10 h h-3\n"
	// Wait for the cleaner: a read from the start then has 8 records.
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat not installed: apt-get install -y kcat (see .ci/install)")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := runCmd(t, 30*time.Second, kcat, "-b", b.addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%o\n")
		if strings.Count(string(out), "\n") == 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not cleaned after 30s: offsets read from the start:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}

	t.Run("kcat", func(t *testing.T) {
		out := runCmd(t, 30*time.Second, kcat, "-b", b.addr, "-C", "-t", topic, "-p", "0", "-o", "6", "-e", "-q", "-f", "%o %k %s\n")
		if string(out) != want {
			t.Fatalf("kcat from offset 6 read:\n%s\nwant:\n%s", out, want)
		}
	})
	t.Run("kafka-python", func(t *testing.T) {
		script := fmt.Sprintf(`
from kafka import KafkaConsumer, TopicPartition
c = KafkaConsumer(bootstrap_servers=%q, group_id=None, enable_auto_commit=False, consumer_timeout_ms=5000)
tp = TopicPartition(%q, 0)
c.assign([tp])
c.seek(tp, 6)
for r in c:
    print(r.offset, r.key.decode(), r.value.decode())
    if r.offset >= 10:
        break
`, b.addr, topic)
		out := runCmd(t, 60*time.Second, python, "-c", script)
		if string(out) != want {
			t.Fatalf("kafka-python from offset 6 read:\n%s\nwant:\n%s", out, want)
		}
	})
	t.Run("sarama", func(t *testing.T) {
		c, err := sarama.NewConsumer([]string{b.addr}, saramaConfig(sarama.DefaultVersion))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		pc, err := c.ConsumePartition(topic, 0, 6)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		var got strings.Builder
		for got.Len() < len(want) {
			select {
			case m := <-pc.Messages():
				fmt.Fprintf(&got, "%d %s %s\n", m.Offset, m.Key, m.Value)
			case <-time.After(10 * time.Second):
				t.Fatalf("sarama from offset 6 read %q in 10s, want %q", got.String(), want)
			}
		}
		if got.String() != want {
			t.Fatalf("sarama from offset 6 read:\n%s\nwant:\n%s", got.String(), want)
		}
	})
	t.Run("franz-go", func(t *testing.T) {
		c, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(6)}}))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var got strings.Builder
		for got.Len() < len(want) {
			fs := c.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) { fmt.Fprintf(&got, "%d %s %s\n", r.Offset, r.Key, r.Value) })
		}
		if got.String() != want {
			t.Fatalf("franz-go from offset 6 read:\n%s\nwant:\n%s", got.String(), want)
		}
	})
}
