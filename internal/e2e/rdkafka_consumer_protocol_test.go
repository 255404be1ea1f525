package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRdkafkaConsumerProtocol: librdkafka 2.12 (node-rdkafka's; Debian's
// 2.0.2 has no group.protocol=consumer) consumes on the KIP-848 protocol
// with each server assignor while records are produced: a member, a
// second joining, the first leaving. Every record is processed, and none
// twice: each member commits what it processed before it consumes again.
func TestRdkafkaConsumerProtocol(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: apt-get install -y nodejs npm, then npm ci --prefix internal/e2e/testdata/rdkafka (see .ci/install)")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "rdkafka"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "node-rdkafka", "build", "Release", "node-librdkafka.node")); err != nil {
		t.Fatalf("node-rdkafka is not built (%v): npm ci --prefix internal/e2e/testdata/rdkafka (see .ci/install)", err)
	}
	b := startBroker(t, "", t.TempDir(), "--group-consumer-heartbeat-interval", "250ms")
	n := 4000
	if testing.Short() {
		n = 1500
	}
	for _, assignor := range []string{"uniform", "range"} {
		t.Run(assignor, func(t *testing.T) {
			topic := "rdkafka-848-" + assignor
			createTopic(t, b.addr, topic, 6)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			// Produce over a few seconds, so members join and leave
			// while records arrive.
			prodErr := make(chan error, 1)
			go func() {
				for i := 0; i < n; i += 100 {
					var rs []*kgo.Record
					for j := i; j < min(i+100, n); j++ {
						rs = append(rs, &kgo.Record{Value: []byte(strconv.Itoa(j))})
					}
					if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
						prodErr <- err
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
				prodErr <- nil
			}()
			out, err := exec.CommandContext(ctx, node, filepath.Join(dir, "consumer_protocol.js"), b.addr, topic, "rdkafka-848-"+assignor, assignor, strconv.Itoa(n)).Output()
			if perr := <-prodErr; perr != nil {
				t.Fatalf("produce: %v", perr)
			}
			var got struct {
				Librdkafka string
				Counts     map[string]int
				Events     []string
				Error      string
			}
			if jerr := json.Unmarshal(out, &got); jerr != nil {
				t.Fatalf("consumer_protocol.js: %v printed %q: %v", err, truncate(string(out), 4000), jerr)
			}
			if err != nil || got.Error != "" {
				t.Fatalf("consumer_protocol.js: %v: %s (events %v)", err, got.Error, got.Events)
			}
			dups := 0
			for i := range n {
				c := got.Counts[strconv.Itoa(i)]
				if c == 0 {
					t.Errorf("record %d never processed", i)
				}
				dups += max(c-1, 0)
			}
			if len(got.Counts) != n {
				t.Errorf("%d distinct values processed, want %d", len(got.Counts), n)
			}
			if !slices.ContainsFunc(got.Events, func(e string) bool {
				return strings.HasPrefix(e, "b: Local: Assign partitions ") && e != "b: Local: Assign partitions "
			}) {
				t.Errorf("the second member was never assigned partitions: %v", got.Events)
			}
			if dups != 0 {
				t.Errorf("%d records processed more than once", dups)
			}
			t.Logf("librdkafka %s, assignor %s: %d records, %d repeats; rebalances: %s", got.Librdkafka, assignor, n, dups, fmt.Sprint(got.Events))
		})
	}
}
