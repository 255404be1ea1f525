package catchup

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

func threadNice(t *testing.T) int {
	t.Helper()
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
	if err != nil {
		t.Fatalf("getpriority: %v", err)
	}
	return 20 - raw
}

// TestPriorityLowersAndRestores: Do runs its work at the nice value and
// gives the thread its old value back; while every slot is taken, Do runs
// its work as it is, at once.
func TestPriorityLowersAndRestores(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := threadNice(t)
	if before >= 15 {
		t.Skipf("the test runs at nice %d already", before)
	}
	p := NewPriority(15)
	var inside int
	p.Do(func() { inside = threadNice(t) })
	if inside != 15 {
		t.Errorf("nice inside Do: %d, want 15", inside)
	}
	if after := threadNice(t); after != before {
		t.Errorf("nice after Do: %d, want %d restored", after, before)
	}
	if len(p.slots) != 0 {
		t.Errorf("%d slots still held", len(p.slots))
	}

	for range cap(p.slots) {
		p.slots <- struct{}{}
	}
	p.Do(func() { inside = threadNice(t) })
	if inside != before {
		t.Errorf("nice inside Do with no slot free: %d, want %d (as it was)", inside, before)
	}

	var ran bool
	NewPriority(0).Do(func() { ran = true })
	if !ran {
		t.Error("a nil Priority did not run its work")
	}
}
