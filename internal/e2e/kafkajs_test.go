package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestKafkaJS runs testdata/kafkajs/roundtrip.js: KafkaJS's admin client,
// an idempotent producer, a consumer group that commits and resumes, and
// offsets by time, against a broker. .ci/install installs KafkaJS (pinned in
// the folder's package-lock.json) with npm ci.
func TestKafkaJS(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: apt-get install -y nodejs npm, then npm ci --prefix internal/e2e/testdata/kafkajs (see .ci/install)")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "kafkajs"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kafkajs", "package.json")); err != nil {
		t.Fatalf("KafkaJS is not installed (%v): npm ci --prefix internal/e2e/testdata/kafkajs (see .ci/install)", err)
	}
	b := startBroker(t, "", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, node, filepath.Join(dir, "roundtrip.js"), b.addr, "kafkajs-roundtrip").CombinedOutput()
	if err != nil {
		t.Fatalf("node roundtrip.js: %v after %v (ctx: %v)\n%s", err, time.Since(start).Round(time.Millisecond), ctx.Err(), truncate(string(out), 20000))
	}
	t.Logf("roundtrip.js passed in %v:\n%s", time.Since(start).Round(time.Millisecond), out)
}
