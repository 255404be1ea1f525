package e2e

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

var recoveredLine = regexp.MustCompile(`msg="storage recovered".* wal=(\w+) wal_batches_replayed=(\d+)`)

// TestObjectWALCrashDurability is TestCrashDurability with `--wal object`:
// SIGKILL while an acks=all producer runs, restart, and every acknowledged
// record is read back exactly once at its acknowledged offset. The WAL
// lives only in the object store: nothing is written under DATA-DIR/wal,
// and the restart replays the tail from the chunk objects.
func TestObjectWALCrashDurability(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	b2 := crashDurability(t, dataDir, "--wal", "object", "--node-id", "3")

	if _, err := os.Stat(filepath.Join(dataDir, "wal")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("DATA-DIR/wal exists under --wal object (stat: %v)", err)
	}
	m := recoveredLine.FindStringSubmatch(b2.log())
	if m == nil {
		t.Fatalf("no storage recovered line in the restarted broker's log")
	}
	if m[1] != "object" {
		t.Errorf("restart recovered with wal=%s, want object", m[1])
	}
	// Usually a few batches; 0 only if the kill fell just after an upload
	// took everything durable, and then the check above still held.
	t.Logf("restart replayed %s batches from the object WAL", m[2])
}
