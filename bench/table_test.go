package bench

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestRunTableTiny runs the table comparison on a small topic end to end:
// both sides read every record in child processes, the table's commits
// hold every record, and the figures and the verdict are printed (not
// what the ratio is). Options it cannot honour are refused.
func TestRunTableTiny(t *testing.T) {
	for name, o := range map[string]TableOptions{
		"negative records": {Records: -1},
		"negative rounds":  {Rounds: -1},
	} {
		if _, err := RunTable(context.Background(), o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if testing.Short() {
		t.Skip("runs a broker and child processes for several seconds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	res, err := RunTable(ctx, TableOptions{Records: 3000, Partitions: 2, Rounds: 1, Out: &out})
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("RunTable: %v", err)
	}
	if len(res.Rounds) != 1 || res.Rounds[0].Export.Records != 3000 || res.Rounds[0].Consumer.Records != 3000 || res.FileBytes <= 0 {
		t.Errorf("result: %+v", res)
	}
	for _, want := range []string{"records/s per core", "ratio of medians", fmt.Sprintf("table >= %.2f x consumer per core", TargetTableRatio)} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
