package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestRunTinyObjectWAL runs the produce benchmark briefly with the
// in-process broker on the object WAL and checks it reports it and
// acknowledges everything.
func TestRunTinyObjectWAL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker for a few seconds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	res, err := Run(ctx, Options{Duration: time.Second, RecordBytes: 512, Partitions: 3, Acks: "all", Out: &out,
		WAL: "object", WALFlushInterval: 2 * time.Millisecond})
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !strings.Contains(out.String(), "broker WAL:    object (chunks in the local object store; flush interval 2ms") {
		t.Errorf("output does not name the object WAL")
	}
	if res.MaxLatency.N == 0 || res.PacedLatency.N == 0 || res.MaxErrors != 0 || res.PacedErrors != 0 {
		t.Errorf("max-rate %+v (%d errors), paced %+v (%d errors)", res.MaxLatency, res.MaxErrors, res.PacedLatency, res.PacedErrors)
	}
	// Every acknowledgement waited for a chunk Put.
	if res.PacedLatency.P50 < time.Millisecond {
		t.Errorf("paced p50 %s is below the flush interval: acknowledged before the chunk was put?", res.PacedLatency.P50)
	}

	if _, err := Run(ctx, Options{Brokers: []string{"127.0.0.1:1"}, Duration: time.Second, RecordBytes: 512, Partitions: 1, WAL: "object"}); err == nil {
		t.Errorf("WAL settings with --brokers accepted")
	}
}
