package readcache

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

func ioprio(t *testing.T) uintptr {
	t.Helper()
	p, _, errno := unix.Syscall(unix.SYS_IOPRIO_GET, ioprioWhoProcess, 0, 0)
	if errno != 0 {
		t.Skipf("ioprio_get: %v", errno)
	}
	return p
}

// TestIdleIO: the read runs in the idle class, and the thread gets its
// own priority back afterwards.
func TestIdleIO(t *testing.T) {
	runtime.LockOSThread() // the same thread before, during and after
	defer runtime.UnlockOSThread()
	before := ioprio(t)
	var during uintptr
	ran := false
	idleIO(func() {
		ran = true
		during = ioprio(t)
	})
	if !ran {
		t.Fatal("read did not run")
	}
	if during>>ioprioClassShift != ioprioClassIdle {
		t.Errorf("I/O priority during the read %#x, want the idle class", during)
	}
	if after := ioprio(t); after != before {
		t.Errorf("I/O priority after the read %#x, want %#x as before", after, before)
	}
}
