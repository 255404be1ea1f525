package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupClients: kcat -G, kafka-python and confluent-kafka (librdkafka)
// each join a consumer group, consume a 3-partition topic from the start
// and commit; the broker then holds their committed offsets at the end of
// every partition.
func TestGroupClients(t *testing.T) {
	t.Parallel()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat not installed: apt-get install -y kcat (see .ci/install)")
	}
	b := startBroker(t, "", t.TempDir())
	const topic, n = "group-clients", 300
	createTopic(t, b.addr, topic, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// kafka-python here has no snappy library: plain batches for all three.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("group message %d", i))}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		run  func(t *testing.T, group string) []byte
	}{
		{"kcat", func(t *testing.T, group string) []byte {
			// -e exits once every assigned partition is at its end; the
			// auto-commit of stored offsets happens on close.
			return runCmd(t, 90*time.Second, kcat, "-b", b.addr, "-G", group, "-X", "auto.offset.reset=earliest", "-e", "-q", topic)
		}},
		{"kafka-python", func(t *testing.T, group string) []byte {
			return runPython(t, "kafka", "kafka_python_group.py", b.addr, topic, group, fmt.Sprint(n))
		}},
		{"confluent-kafka", func(t *testing.T, group string) []byte {
			return runPython(t, "confluent_kafka", "confluent_group.py", b.addr, topic, group, fmt.Sprint(n))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			group := "g-" + tc.name
			out := tc.run(t, group)
			if tc.name == "kcat" {
				if got := strings.Count(string(out), "\n"); got != n {
					t.Errorf("kcat -G printed %d messages, want %d", got, n)
				}
			} else {
				t.Logf("%s", out)
			}
			committed, err := adm.FetchOffsets(ctx, group)
			if err != nil {
				t.Fatalf("fetch committed offsets of %s: %v", group, err)
			}
			for p := int32(0); p < 3; p++ {
				end, _ := ends.Lookup(topic, p)
				c, ok := committed.Lookup(topic, p)
				if !ok || c.Err != nil || c.At != end.Offset {
					t.Errorf("%s: committed offset of partition %d = %+v, want %d (the end)", group, p, c, end.Offset)
				}
			}
		})
	}
}

func runPython(t *testing.T, module, script string, args ...string) []byte {
	t.Helper()
	if out, err := exec.Command(python, "-c", "import "+module).CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import %s (%v): %s; apt-get install -y python3-kafka python3-confluent-kafka (see .ci/install)", python, module, err, out)
	}
	path, err := filepath.Abs(filepath.Join("testdata", script))
	if err != nil {
		t.Fatal(err)
	}
	return runCmd(t, 2*time.Minute, python, append([]string{path}, args...)...)
}
