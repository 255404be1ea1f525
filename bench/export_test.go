package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/export/exporttest"
	"github.com/vigilhq/vigil/internal/export/receiver"
)

// TestRunExportTiny runs the export comparison on a small topic and checks
// that it runs end to end: both sides read every record in child
// processes, the rounds alternate, VictoriaLogs stored every exported
// record, and every figure and the verdict are printed (not what the
// ratio is). Options it cannot honour are refused.
func TestRunExportTiny(t *testing.T) {
	for name, o := range map[string]ExportOptions{
		"negative records":    {Records: -1},
		"negative partitions": {Partitions: -1},
		"negative rounds":     {Rounds: -1},
	} {
		if _, err := RunExport(context.Background(), o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if testing.Short() {
		t.Skip("runs a broker and VictoriaLogs for several seconds")
	}
	exporttest.Need(t, "victoria-logs", receiver.VictoriaInstall)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	const records, rounds = 3000, 2
	res, err := RunExport(ctx, ExportOptions{Records: records, Partitions: 2, Rounds: rounds, Out: &out})
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("RunExport: %v", err)
	}
	if len(res.Rounds) != rounds {
		t.Fatalf("%d rounds, want %d", len(res.Rounds), rounds)
	}
	for i, rd := range res.Rounds {
		if rd.ExportFirst != (i%2 == 1) {
			t.Errorf("round %d: export first %v, want the first of each pair to alternate, consumer first", i+1, rd.ExportFirst)
		}
		for side, r := range map[string]ExportRun{"consumer": rd.Consumer, "export": rd.Export} {
			if r.Records != records || r.Bytes <= 0 || r.Elapsed <= 0 || r.CPU <= 0 || r.PerCore <= 0 || r.RecsPerSec <= 0 {
				t.Errorf("round %d, %s: %+v", i+1, side, r)
			}
		}
	}
	if res.Stored != records*rounds || res.Ratio <= 0 || res.ConsumerPerCore <= 0 || res.ExportPerCore <= 0 || res.RecordBytes < 400 {
		t.Errorf("result %+v", res)
	}
	for _, label := range []string{"receiver:      VictoriaLogs", "topic:", "round 1", "round 2", "ratio export / consumer:", "records/s per core",
		"receiver CPU", "medians of 2 runs", "ratio of medians:", "stored:            6000 documents", "export >= 0.20 x consumer per core:"} {
		if !strings.Contains(out.String(), label) {
			t.Errorf("output lacks %q", label)
		}
	}
	if !strings.Contains(out.String(), "PASS: ratio") && !strings.Contains(out.String(), "FAIL: ratio") {
		t.Error("output has no PASS/FAIL verdict")
	}
}
