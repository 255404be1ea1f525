package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/internal/export/exporttest"
)

func TestScorecardUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-h"}, 0, "Usage: vigil scorecard"},
		{[]string{"extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--output", "report.txt"}, 2, "want a file ending in .md, .json or .html"},
		{[]string{"--zones", "2"}, 2, "--zones is a workload flag of the cost model: give --ingest-gb-per-day too"},
		{[]string{"--ingest-gb-per-day", "-1"}, 2, "--ingest-gb-per-day -1: must be a positive number"},
		{[]string{"--timeout", "5s", "--probe-timeout", "10s"}, 2, "--probe-timeout 10s: must be positive and at most --timeout 5s"},
		{[]string{"--sasl-username", "alice"}, 2, "--sasl-username with --security-protocol PLAINTEXT"},
		{[]string{"--allow-faults"}, 2, "--allow-faults needs --fault-pids"},
		{[]string{"--fault-pids", "1234"}, 2, "need --allow-faults"},
		{[]string{"--fault-pause", "3s"}, 2, "need --allow-faults"},
		{[]string{"--allow-faults", "--fault-pids", "12a"}, 2, `--fault-pids: "12a" is not a process id`},
		{[]string{"--allow-faults", "--fault-pids", "1234", "--fault-signal", "term"}, 2, `fault signal "term": want stop or kill`},
		{[]string{"--allow-faults", "--fault-pids", "1234", "--fault-pause", "1s"}, 2, "fault pause 1s: must be at least 2s"},
	} {
		var out, errOut bytes.Buffer
		code := run(append([]string{"scorecard"}, tc.args...), &out, &errOut)
		if code != tc.code || !strings.Contains(out.String()+errOut.String(), tc.want) {
			t.Errorf("vigil scorecard %s: exit %d, want %d with %q\n%s%s", strings.Join(tc.args, " "), code, tc.code, tc.want, out.String(), errOut.String())
		}
	}
}

// TestScorecardCostFromFlags runs the command against a broker with a
// workload: the JSON report carries the cost model's totals.
func TestScorecardCostFromFlags(t *testing.T) {
	addr := exporttest.StartBroker(t)
	path := filepath.Join(t.TempDir(), "report.json")
	var out, errOut bytes.Buffer
	if code := run([]string{"scorecard", "--brokers", addr, "--output", path, "--ingest-gb-per-day", "50", "--zones", "1"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut.String())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Cost struct {
			Workload struct {
				IngestGBPerDay float64 `json:"ingest_gb_per_day"`
				Zones          int     `json:"zones"`
			} `json:"workload"`
			Vigil float64 `json:"vigil_total_usd"`
			Kafka float64 `json:"kafka_total_usd"`
		} `json:"cost"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Cost.Workload.IngestGBPerDay != 50 || rep.Cost.Workload.Zones != 1 || rep.Cost.Vigil <= 0 || rep.Cost.Kafka <= 0 {
		t.Errorf("cost in the report: %+v", rep.Cost)
	}
	if out.Len() != 0 {
		t.Errorf("stdout with --output: %q", out.String())
	}
}
