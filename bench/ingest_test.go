package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestIngestLoad checks the generated input: every syslog line and HTTP
// event is one OCSF event with a topic, and both syslog framings occur.
func TestIngestLoad(t *testing.T) {
	topics := map[int]string{3002: "auth", 1007: "proc", 4001: "net", 4002: "http", 4003: "dns", 6003: "api"}
	buf, frames, recs, err := syslogLoad(topics)
	if err != nil {
		t.Fatal(err)
	}
	if frames != len(recs) || frames == 0 {
		t.Fatalf("%d frames, %d records", frames, len(recs))
	}
	if lf := bytes.Count(buf, []byte("\n")); lf == 0 || lf == frames {
		t.Errorf("%d LF-framed of %d frames: want both framings", lf, frames)
	}
	bodies, hrecs, err := httpLoad(topics, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hrecs) != 10*len(bodies) {
		t.Errorf("%d bodies of 10 events made %d records", len(bodies), len(hrecs))
	}
	seen := map[string]bool{}
	for _, r := range append(recs, hrecs...) {
		seen[r.Topic] = true
		if len(r.Key) == 0 || len(r.Value) < 100 {
			t.Errorf("record without key or with a short value: %s %q", r.Key, r.Value)
		}
	}
	for _, topic := range topics {
		if !seen[topic] {
			t.Errorf("no bench event for topic %s", topic)
		}
	}
}

// TestRunIngestTiny runs the ingest benchmark briefly against an
// in-process broker: every figure is present and plausible, and nothing
// was dead-lettered or lost.
func TestRunIngestTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker and the ingest service for a few seconds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	res, err := RunIngest(ctx, IngestOptions{Duration: 500 * time.Millisecond, Conns: 2, Batch: 50, Out: &out})
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("RunIngest: %v", err)
	}
	if res.Cores < 1 {
		t.Errorf("cores %d", res.Cores)
	}
	for _, p := range []IngestPhase{res.Syslog, res.HTTP} {
		if p.Sent == 0 || p.Ingest.Count != p.Sent {
			t.Errorf("%s: %d of %d sent acknowledged", p.Name, p.Ingest.Count, p.Sent)
		}
		if p.DeadLettered != 0 || p.Lost != 0 {
			t.Errorf("%s: %d dead-lettered, %d lost", p.Name, p.DeadLettered, p.Lost)
		}
		for _, r := range []IngestRate{p.Ingest, p.Baseline} {
			if r.PerSec <= 0 || r.PerCore <= 0 || r.WallPerCore <= 0 || r.Elapsed <= 0 {
				t.Errorf("%s: rate not positive: %+v", p.Name, r)
			}
		}
		if p.Baseline.Count != p.Ingest.Count || p.BaselineErrors != 0 {
			t.Errorf("%s: baseline produced %d (%d errors), want %d", p.Name, p.Baseline.Count, p.BaselineErrors, p.Ingest.Count)
		}
		if p.ValueBytes < 200 || p.ValueBytes > 8000 {
			t.Errorf("%s: mean OCSF record of %.0f B", p.Name, p.ValueBytes)
		}
		if p.Ratio <= 0 || p.WallRatio <= 0 {
			t.Errorf("%s: ratios %.3f, %.3f", p.Name, p.Ratio, p.WallRatio)
		}
	}
	for _, want := range []string{"lines/s", "events/s", "per core:", "baseline raw produce:", "ingest / raw produce:", "0 dead-lettered, 0 lost", "GOMAXPROCS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
