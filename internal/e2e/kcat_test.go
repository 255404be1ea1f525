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
	t.Parallel()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		// A missing client must fail, not pass quietly: .ci/install installs it.
		t.Fatal("kcat not installed: apt-get install -y kcat (see .ci/install)")
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

// TestKcatCompacted writes four rounds of updates to 100 keys of a
// compacted topic with kcat (lz4), lets the broker's cleaner run, and
// reads the topic back with kcat (librdkafka): once cleaned, exactly the
// newest value of each key, at the offset it was written at, across the
// offsets the cleaner removed.
func TestKcatCompacted(t *testing.T) {
	t.Parallel()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat not installed: apt-get install -y kcat (see .ci/install)")
	}
	b := startBroker(t, "", t.TempDir(), "--retention-check-interval", "200ms", "--object-delete-delay", "1s")
	const topic, keys, rounds = "kcat-compacted", 100, 4
	createCompacted(t, b.addr, topic)
	for r := range rounds {
		var lines bytes.Buffer
		for k := range keys {
			fmt.Fprintf(&lines, "key-%03d:round %d of key %d\n", k, r, k)
		}
		file := filepath.Join(t.TempDir(), "round.txt")
		if err := os.WriteFile(file, lines.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		runCmd(t, 60*time.Second, kcat, "-b", b.addr, "-P", "-t", topic, "-K:", "-l", "-X", "acks=all", "-X", "compression.codec=lz4", file)
	}

	want := map[string]string{}
	for k := range keys {
		// One partition, written in order: key k's last write is at
		// offset (rounds-1)*keys + k.
		want[fmt.Sprint((rounds-1)*keys+k)] = fmt.Sprintf("key-%03d round %d of key %d", k, rounds-1, k)
	}
	deadline := time.Now().Add(60 * time.Second)
	var got []string
	for {
		out := runCmd(t, 60*time.Second, kcat, "-b", b.addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%o %k %s\n")
		got = strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if len(got) == keys || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(got) != keys {
		t.Fatalf("kcat read %d records from the compacted topic after 60s, want %d (one per key)", len(got), keys)
	}
	for _, line := range got {
		off, rest, _ := strings.Cut(line, " ")
		if want[off] != rest {
			t.Fatalf("kcat read %q: at offset %s want %q", line, off, want[off])
		}
		delete(want, off)
	}
	if !strings.Contains(b.log(), "cleaned compacted partition") {
		t.Errorf("the broker logged no cleaning")
	}
}
