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
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestConfluentRecordErrors runs testdata/confluent_record_errors.py:
// confluent-kafka (Debian's librdkafka) creates a compacted topic with the
// deprecated message.format.version, alters and describes it and has a bad
// value refused, sets and describes a broker's replication throttle and
// has log.retention.ms refused; then produces 100 messages of which 10
// have no key. The
// script checks the 10 fail with INVALID_RECORD and, as its librdkafka
// knows KIP-467 or not, the others with _INVALID_DIFFERENT_RECORD or with
// the batch; it resends the keyed ones and reads back exactly those.
func TestConfluentRecordErrors(t *testing.T) {
	t.Parallel()
	if out, err := exec.Command(python, "-c", "import confluent_kafka").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import confluent_kafka (%v): %s; apt-get install -y python3-confluent-kafka (see .ci/install)", python, err, out)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "confluent_record_errors.py"))
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, "", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, script, b.addr, "py-record-errors").CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v (ctx: %v)\n%s", script, err, ctx.Err(), truncate(string(out), 20000))
	}
	t.Logf("%s", out)
}

// Error codes in librdkafka's delivery reports.
const (
	rdInvalidRecord          = 87   // RD_KAFKA_RESP_ERR_INVALID_RECORD, the broker's
	rdInvalidDifferentRecord = -138 // RD_KAFKA_RESP_ERR__INVALID_DIFFERENT_RECORD, librdkafka's own
)

// TestRdkafkaRecordErrors: with a librdkafka that knows KIP-467 (2.12,
// the one node-rdkafka builds; Debian 12's 2.0.2 predates it), 100
// messages in one batch to a compacted topic, 10 of them without a key:
// exactly those 10 fail with INVALID_RECORD, named by the broker's
// RecordErrors, and the other 90 with _INVALID_DIFFERENT_RECORD; resent,
// those 90 are delivered, and the topic holds exactly them. (librdkafka
// 2.12 applies RecordErrors only when they name more than one record:
// with a single bad record it fails the whole batch with INVALID_RECORD.)
func TestRdkafkaRecordErrors(t *testing.T) {
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
	b := startBroker(t, "", t.TempDir())
	const topic, n = "rdkafka-record-errors", 100
	createTopicWith(t, b.addr, topic, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, filepath.Join(dir, "record_errors.js"), b.addr, topic).Output()
	if err != nil {
		t.Fatalf("node record_errors.js: %v (ctx: %v)\n%s", err, ctx.Err(), truncate(string(out), 20000))
	}
	var got struct {
		Librdkafka string
		First      map[string]any // a number, or a string for an error the script could not name
		Again      map[string]any
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("record_errors.js printed %q: %v", out, err)
	}
	t.Logf("librdkafka %s", got.Librdkafka)
	if len(got.First) != n {
		t.Fatalf("%d delivery reports, want %d: %v", len(got.First), n, got.First)
	}
	var invalid, different, want []int
	for i := range n {
		code, ok := got.First[strconv.Itoa(i)].(float64)
		switch {
		case !ok:
			t.Errorf("message %d: delivery report %v", i, got.First[strconv.Itoa(i)])
		case code == rdInvalidRecord:
			invalid = append(invalid, i)
		case code == rdInvalidDifferentRecord:
			different = append(different, i)
		case code != 0:
			t.Errorf("message %d failed with %v", i, code)
		}
		if i%10 == 3 {
			want = append(want, i)
		}
	}
	if !slices.Equal(invalid, want) {
		t.Errorf("INVALID_RECORD for %v, want exactly the keyless %v", invalid, want)
	}
	if len(different) != n-len(want) {
		t.Errorf("_INVALID_DIFFERENT_RECORD for %d messages, want the other %d (one batch)", len(different), n-len(want))
	}
	for i, code := range got.Again {
		if code != 0.0 {
			t.Errorf("resent message %s failed with %d", i, code)
		}
	}
	if len(got.Again) != len(different) {
		t.Errorf("%d messages resent, want %d", len(got.Again), len(different))
	}

	// The topic holds the 90 keyed messages, once each: nothing of the
	// refused batch was stored.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var keys []string
	for len(keys) < n-len(want) && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { keys = append(keys, string(r.Key)) })
	}
	var wantKeys []string
	for i := range n {
		if i%10 != 3 {
			wantKeys = append(wantKeys, fmt.Sprintf("key-%03d", i))
		}
	}
	slices.Sort(keys)
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("read %d records back (%v...), want the %d keyed ones", len(keys), keys[:min(len(keys), 5)], len(wantKeys))
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup(topic, 0); o.Offset != int64(len(wantKeys)) {
		t.Errorf("the topic ends at %d, want %d", o.Offset, len(wantKeys))
	}
}
