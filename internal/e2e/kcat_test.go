package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKcat lists metadata with kcat -L and round-trips 10,000 lines through
// kcat -P -l and kcat -C -e.
func TestKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		// A missing client must fail, not pass quietly: .ci/run installs it.
		t.Fatal("kcat not installed: apt-get install -y kcat (see .ci/run)")
	}
	b := startBroker(t, "", t.TempDir())
	const topic = "kcat-lines"
	createTopic(t, b.addr, topic, 3)

	start := time.Now()
	meta := string(runCmd(t, 30*time.Second, kcat, "-b", b.addr, "-L"))
	for _, want := range []string{"1 brokers:", "broker 0 at " + b.addr, `topic "` + topic + `" with 3 partitions:`} {
		if !strings.Contains(meta, want) {
			t.Errorf("kcat -L output lacks %q:\n%s", want, meta)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	var lines bytes.Buffer
	for i := 0; i < 10_000; i++ {
		fmt.Fprintf(&lines, "line %05d: the quick brown fox jumps over the lazy dog %d\n", i, i*i)
	}
	file := filepath.Join(t.TempDir(), "lines.txt")
	if err := os.WriteFile(file, lines.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	runCmd(t, 60*time.Second, kcat, "-b", b.addr, "-P", "-t", topic, "-l", "-X", "acks=all", file)

	out := runCmd(t, 60*time.Second, kcat, "-b", b.addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q")
	// Three partitions: compare as multisets, and check each partition's
	// order by reading partitions one at a time.
	got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	want := strings.Split(strings.TrimSuffix(lines.String(), "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("kcat -C returned %d lines, want %d", len(got), len(want))
	}
	count := map[string]int{}
	for _, l := range want {
		count[l]++
	}
	for _, l := range got {
		count[l]--
	}
	for l, n := range count {
		if n != 0 {
			t.Errorf("line %q: %+d copies too few", l, n)
		}
	}
	total := 0
	for p := 0; p < 3; p++ {
		out := runCmd(t, 60*time.Second, kcat, "-b", b.addr, "-C", "-t", topic, "-p", fmt.Sprint(p), "-o", "beginning", "-e", "-q")
		if len(out) == 0 {
			continue
		}
		pl := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		total += len(pl)
		for i := 1; i < len(pl); i++ {
			if pl[i-1] >= pl[i] { // lines sort in production order
				t.Errorf("partition %d: %q came before %q", p, pl[i-1], pl[i])
				break
			}
		}
	}
	if total != len(want) {
		t.Errorf("per-partition reads returned %d lines, want %d", total, len(want))
	}
	t.Logf("kcat round trip of %d lines took %v", len(want), time.Since(start).Round(time.Millisecond))
}
