package readcache

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// Linux's I/O priority encoding (include/uapi/linux/ioprio.h).
const (
	ioprioWhoProcess = 1
	ioprioClassShift = 13
	ioprioClassIdle  = 3
)

// idleIO runs read with this thread's I/O priority in the idle class, so
// the block layer's scheduler (mq-deadline, bfq) serves the WAL's writes
// and flushes first. Cold object reads of a replay otherwise slowed WAL
// fdatasyncs from 0.2 ms to 10-28 ms on the development machine. The
// thread is pinned for the read so the priority applies to it and is
// restored before any other goroutine runs there. Best effort: where
// ioprio_get or ioprio_set fail, read runs as it is.
func idleIO(read func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev, _, errno := unix.Syscall(unix.SYS_IOPRIO_GET, ioprioWhoProcess, 0, 0)
	if errno != 0 {
		read()
		return
	}
	if _, _, errno := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, ioprioClassIdle<<ioprioClassShift); errno != 0 {
		read()
		return
	}
	defer unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, prev)
	read()
}
