package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/internal/cost"
)

// TestCostDocExample runs the command of docs/cost.md's worked example and
// compares its output with the page, so the page shows what the command
// prints.
func TestCostDocExample(t *testing.T) {
	page, err := os.ReadFile("../../docs/cost.md")
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	_, block, ok := strings.Cut(string(page), "<!-- cost example: begin -->\n```console\n")
	if ok {
		block, _, ok = strings.Cut(block, "```\n<!-- cost example: end -->")
	}
	if !ok {
		t.Fatal("docs/cost.md has no example block between its markers")
	}
	command, want, _ := strings.Cut(block, "\n")
	args, ok := strings.CutPrefix(command, "$ vigil ")
	if !ok {
		t.Fatalf("example command %q is not a vigil command", command)
	}
	var out, errOut bytes.Buffer
	if code := run(strings.Fields(args), &out, &errOut); code != 0 {
		t.Fatalf("%s: exit %d: %s", command, code, errOut.String())
	}
	if out.String() != want {
		t.Errorf("%s prints:\n%s\ndocs/cost.md shows:\n%s", command, out.String(), want)
	}
}

// TestCostJSON checks that every kind of flag reaches the model and that
// the JSON holds the inputs, the terms and the totals.
func TestCostJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	args := []string{"cost", "--output", "json", "--ingest-gb-per-day", "2400", "--compression-ratio", "2",
		"--retention-days", "10", "--replay-fraction", "0.5", "--fanout", "2", "--zones", "3", "--partitions", "12",
		"--price-storage-gb-month", "0.02", "--price-block-gb-month", "0.1", "--price-instance-hour", "0.2",
		"--wal-flush-interval", "10ms", "--kafka-disk-headroom", "0.25", "--kafka-rack-aware-fetch"}
	if code := run(args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var r cost.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("decode %s: %v", out.String(), err)
	}
	w := r.Inputs.Workload
	if w.IngestGBPerDay != 2400 || w.Fanout != 2 || w.Partitions != 12 || r.Inputs.Vigil.WALFlushInterval.Milliseconds() != 10 ||
		!r.Inputs.Kafka.RackAwareFetch || r.Inputs.Prices.PutPer1000 != 0.005 {
		t.Errorf("inputs as read: %+v", r.Inputs)
	}
	// internal/cost's round case, by hand: 3 x 100/s x 2,628,000 s WAL
	// chunks = 788,400,000 PUTs = $3,942; Kafka's consumers cross no zone
	// with rack-aware fetch, so its total is 8,238 - 973.33 - 80.
	terms := map[string]cost.Term{}
	for _, term := range r.Vigil.Terms {
		terms[term.Name] = term
	}
	if wal := terms["WAL chunk PUTs"]; wal.Quantity != 788400000 || math.Abs(wal.Monthly-3942) > 1e-6 || wal.Formula == "" {
		t.Errorf("WAL term %+v", wal)
	}
	if want := 8238 - 73000.0*2/3*0.02 - 80; math.Abs(r.Kafka.Total-want) > 1e-6 {
		t.Errorf("Kafka total %v, want %v", r.Kafka.Total, want)
	}
	if math.Abs(r.Vigil.Total-6373.7488) > 1e-6 {
		t.Errorf("Vigil total %v, want 6373.7488", r.Vigil.Total)
	}
}

func TestCostBadInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string // in stderr, or in stdout for -h
	}{
		{nil, 2, "--ingest-gb-per-day is required"},
		{[]string{"--ingest-gb-per-day", "-5"}, 2, "--ingest-gb-per-day -5: must be a positive number"},
		{[]string{"--ingest-gb-per-day", "100", "--zones", "0"}, 2, "--zones 0: must be at least 1"},
		{[]string{"--ingest-gb-per-day", "100", "--replay-fraction", "1.5"}, 2, "--replay-fraction 1.5: must be between 0 and 1"},
		{[]string{"--ingest-gb-per-day", "100", "--fanout", "-1", "--retention-days", "0"}, 2, "--retention-days 0: must be a positive number; --fanout -1: must be at least 0"},
		{[]string{"--ingest-gb-per-day", "100", "--compression-ratio", "0.25"}, 2, "--compression-ratio 0.25: must be at least 1"},
		{[]string{"--ingest-gb-per-day", "100", "--price-put-per-1000", "-1"}, 2, "--price-put-per-1000 -1"},
		{[]string{"--ingest-gb-per-day", "100", "--wal-flush-interval", "0s"}, 2, "--wal-flush-interval 0"},
		{[]string{"--ingest-gb-per-day", "100", "--kafka-disk-headroom", "1"}, 2, "--kafka-disk-headroom 1"},
		{[]string{"--ingest-gb-per-day", "lots"}, 2, "invalid value"},
		{[]string{"--ingest-gb-per-day", "100", "--output", "yaml"}, 2, `--output "yaml": want text or json`},
		{[]string{"--ingest-gb-per-day", "100", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--no-such-flag"}, 2, "flag provided but not defined"},
		{[]string{"-h"}, 0, "--ingest-gb-per-day"},
	} {
		var out, errOut bytes.Buffer
		code := run(append([]string{"cost"}, c.args...), &out, &errOut)
		got := errOut.String()
		if c.code == 0 {
			got = out.String()
		}
		if code != c.code || !strings.Contains(got, c.want) {
			t.Errorf("vigil cost %s: exit %d, output %q; want exit %d and %q", strings.Join(c.args, " "), code, got, c.code, c.want)
		}
		if c.code != 0 && out.Len() > 0 {
			t.Errorf("vigil cost %s: printed a report on bad input: %s", strings.Join(c.args, " "), out.String())
		}
	}
}
