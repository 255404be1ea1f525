//go:build unix

package scorecard

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// checkProcess refuses a pid that is not a running process this one may
// signal, and names it (from /proc where there is one).
func checkProcess(pid int) (string, error) {
	if pid == os.Getpid() {
		return "", fmt.Errorf("pid %d is the scorecard itself", pid)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return "", fmt.Errorf("pid %d is not a running process", pid)
		}
		return "", fmt.Errorf("pid %d may not be signalled by the scorecard: %w", pid, err)
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "?", nil // no procfs: the signal test above is all there is
	}
	// "pid (comm) state ...": comm may hold spaces and parentheses.
	s := string(raw)
	i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if i < 0 || j < i || j+2 >= len(s) {
		return "?", nil
	}
	name := s[i+1 : j]
	switch s[j+2] {
	case 'Z', 'X':
		return name, fmt.Errorf("pid %d (%s) has exited and is not reaped: not a running process", pid, name)
	case 'T', 't':
		return name, fmt.Errorf("pid %d (%s) is already stopped", pid, name)
	}
	return name, nil
}

// The signals the failure recovery probe sends.
const (
	sigStop = "SIGSTOP"
	sigCont = "SIGCONT"
	sigKill = "SIGKILL"
)

func sendSignal(pid int, sig string) error {
	s := map[string]syscall.Signal{sigStop: syscall.SIGSTOP, sigCont: syscall.SIGCONT, sigKill: syscall.SIGKILL}[sig]
	if err := syscall.Kill(pid, s); err != nil {
		return fmt.Errorf("send %s to pid %d: %w", sig, pid, err)
	}
	return nil
}
