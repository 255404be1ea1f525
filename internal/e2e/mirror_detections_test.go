package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/sigma/sigmatest"
)

// TestMirrorCompareDetectionsCLI runs the built `vigil mirror
// compare-detections` with kfake as the source and a vigil process as the
// destination, over SigmaHQ's regression events of its Windows
// process-creation rules: exit 0 and equal per-rule counts when both hold
// the same events; exit 1 and one line per finding of an event written to
// the destination only, naming its record and uid.
func TestMirrorCompareDetectionsCLI(t *testing.T) {
	t.Parallel()
	data := sigmatest.Data(t)
	rules := filepath.Join(data, "rules", "windows", "process_creation")
	dir := filepath.Join(data, "regression_data", "rules", "windows", "process_creation")
	folders, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(folders, func(i, j int) bool { return folders[i].Name() < folders[j].Name() })
	var events [][]byte
	for _, f := range folders {
		files, _ := filepath.Glob(filepath.Join(dir, f.Name(), "*.json"))
		for _, p := range files {
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if json.Compact(&b, raw) == nil {
				events = append(events, b.Bytes())
			}
		}
		if len(events) >= 21 {
			break
		}
	}
	extra, events := events[20], events[:20]

	src, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	srcAddr := src.ListenAddrs()[0]
	dst := startBroker(t, "", t.TempDir())
	at := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	produce := func(addr string, part int32, evs ...[]byte) {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var recs []*kgo.Record
		for i, ev := range evs {
			p := part
			if p < 0 {
				p = int32(i % 2)
			}
			recs = append(recs, &kgo.Record{Topic: "winlog", Partition: p, Value: ev, Timestamp: at.Add(time.Duration(i) * time.Millisecond)})
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", addr, err)
		}
	}
	for _, addr := range []string{srcAddr, dst.addr} {
		createTopic(t, addr, "winlog", 2)
		produce(addr, -1, events...)
	}

	run := func(args ...string) (stdout, stderr string, code int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, vigilBin, args...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exit):
			code = exit.ExitCode()
		default:
			t.Fatalf("vigil %s: %v", strings.Join(args, " "), err)
		}
		t.Logf("vigil %s: exit %d\nstdout:\n%sstderr:\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
		return out.String(), errOut.String(), code
	}
	compare := []string{"mirror", "compare-detections", "--source-brokers", srcAddr, "--brokers", dst.addr, "--topics", "winlog",
		"--rules", rules, "--progress-interval", "1ms"}

	out, errOut, code := run(compare...)
	counts := regexp.MustCompile(`(?m)^rule \S+ ".*": source (\d+), destination (\d+)$`).FindAllStringSubmatch(out, -1)
	if code != 0 || len(counts) < 5 || !strings.Contains(out, ": the findings match\n") {
		t.Errorf("the same events: exit %d, %d rule counts; want 0 and at least 5 rules", code, len(counts))
	}
	for _, c := range counts {
		if c[1] != c[2] {
			t.Errorf("rule count differs: %s", c[0])
		}
	}
	if !strings.Contains(errOut, "mirror compare-detections source: done: 20 events") || !strings.Contains(errOut, "mirror compare-detections destination: done: 20 events") {
		t.Errorf("stderr lacks the progress summary of each side")
	}

	produce(dst.addr, 1, extra) // offset 10 of partition 1
	out, _, code = run(append(compare, "--quiet")...)
	only := regexp.MustCompile(`(?m)^only on the destination: rule (\S+) ".*" at winlog/1 offset 10 \(\S+\): finding uid (\S+)$`).FindAllStringSubmatch(out, -1)
	if code != 1 || len(only) == 0 || strings.Contains(out, "only on the source:") || strings.Contains(out, "DIFFERS: rule") {
		t.Errorf("an extra event on the destination: exit %d, %d lines for it; want 1 and only its findings", code, len(only))
	}
	for _, m := range only {
		if m[2] != m[1]+":winlog:1:10" {
			t.Errorf("finding uid %s, want the rule and winlog:1:10", m[2])
		}
	}
	if n := len(regexp.MustCompile(`(?m)^only on `).FindAllString(out, -1)); n != len(only) {
		t.Errorf("%d lines on one side only, %d of them for the extra event", n, len(only))
	}
	if !strings.Contains(out, " DIFFERS\n") {
		t.Errorf("no rule count marked DIFFERS")
	}
}
