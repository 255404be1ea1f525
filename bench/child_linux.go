package bench

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// setChildAttrs has the kernel kill a child when its parent dies, even by
// SIGKILL, when no code of the parent runs to stop it.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// setNice gives every thread of this process the nice value n. Linux
// keeps nice per thread; threads started later inherit it from the thread
// that starts them, so once all have it, all will. The second pass covers
// a thread started during the first.
func setNice(n int) error {
	for range 2 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("set nice %d: %w", n, err)
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, n); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("set nice %d of thread %d: %w", n, tid, err)
			}
		}
	}
	return nil
}
