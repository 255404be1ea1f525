package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

const python = "/usr/bin/python3"

// TestPython round-trips 1,000 messages through kafka-python and
// confluent-kafka (librdkafka) scripts in testdata.
func TestPython(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, module, script string }{
		{"kafka-python", "kafka", "kafka_python_roundtrip.py"},
		{"confluent-kafka", "confluent_kafka", "confluent_roundtrip.py"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if out, err := exec.Command(python, "-c", "import "+tc.module).CombinedOutput(); err != nil {
				t.Fatalf("%s cannot import %s (%v): %s; apt-get install -y python3-kafka python3-confluent-kafka (see .ci/install)", python, tc.module, err, out)
			}
			script, err := filepath.Abs(filepath.Join("testdata", tc.script))
			if err != nil {
				t.Fatal(err)
			}
			b := startBroker(t, "", t.TempDir())
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			start := time.Now()
			cmd := exec.CommandContext(ctx, python, script, b.addr, "py-"+tc.module)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s %s: %v after %v (ctx: %v)\n%s", python, tc.script, err, time.Since(start).Round(time.Millisecond), ctx.Err(), truncate(string(out), 20000))
			}
			t.Logf("%s passed in %v:\n%s", tc.script, time.Since(start).Round(time.Millisecond), out)
		})
	}
}
