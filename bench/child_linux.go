package bench

import (
	"os/exec"
	"syscall"
)

// setChildAttrs has the kernel kill a child when its parent dies, even by
// SIGKILL, when no code of the parent runs to stop it.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
