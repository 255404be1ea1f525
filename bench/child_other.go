//go:build !linux

package bench

import (
	"fmt"
	"os/exec"
)

// setChildAttrs does nothing without Pdeathsig: a child still stops when
// its stdin ends, which a dying parent closes.
func setChildAttrs(*exec.Cmd) {}

// setNice is not available here: the reader competes as an equal.
func setNice(n int) error {
	return fmt.Errorf("nice %d: not supported on this system", n)
}
