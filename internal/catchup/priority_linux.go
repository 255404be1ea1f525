package catchup

import "golang.org/x/sys/unix"

// lowerThread sets the calling thread's nice value to nice, unless it is
// already higher, and returns what restores it. Linux keeps nice per
// thread. Best effort: where getpriority or setpriority fail it reports
// false and changes nothing.
func lowerThread(nice int) (restore func(), ok bool) {
	tid := unix.Gettid()
	// The raw system call returns 20 - nice (1 to 40), never negative.
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		return nil, false
	}
	prev := 20 - raw
	if prev >= nice {
		return nil, false
	}
	if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil {
		return nil, false
	}
	return func() { unix.Setpriority(unix.PRIO_PROCESS, tid, prev) }, true
}
