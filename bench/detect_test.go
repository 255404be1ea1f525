package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRunDetectTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the whole SigmaHQ rule set")
	}
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("module root not found")
		}
		dir = filepath.Dir(dir)
	}
	data := filepath.Join(dir, "..", "shared", "data", "sigma")
	if _, err := os.Stat(data); err != nil {
		t.Fatalf("SigmaHQ data missing at %s (../shared/data/sigma beside the repo root): %v", data, err)
	}
	var out bytes.Buffer
	res, err := RunDetect(DetectOptions{Data: data, Duration: 300 * time.Millisecond, Out: &out})
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Loaded < 2000 || res.EventCount < 200 {
		t.Errorf("loaded %d rules, %d events: too few", res.Loaded, res.EventCount)
	}
	for _, p := range []DetectPhase{res.Windows, res.Hundred} {
		if p.Events == 0 || p.EventsPerSec <= 0 || p.PerCore <= 0 {
			t.Errorf("%s: no throughput: %+v", p.Name, p)
		}
		if p.RulesPerEvent <= 0 || p.RulesPerEvent > float64(p.Rules) {
			t.Errorf("%s: %.1f rules evaluated per event of %d", p.Name, p.RulesPerEvent, p.Rules)
		}
		if p.AllocsPerEvent > 1 {
			t.Errorf("%s: %.2f allocations per event", p.Name, p.AllocsPerEvent)
		}
		if p.MatchesPerEvt <= 0 {
			t.Errorf("%s: nothing matched", p.Name)
		}
	}
	if res.Hundred.Rules != 100 {
		t.Errorf("phase b has %d rules", res.Hundred.Rules)
	}
	for _, want := range []string{"per core:", "rules evaluated/event:", "prefilter:", "allocations/event:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
