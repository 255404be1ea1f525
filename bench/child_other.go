//go:build !linux

package bench

import "os/exec"

// setChildAttrs does nothing without Pdeathsig: a child still stops when
// its stdin ends, which a dying parent closes.
func setChildAttrs(*exec.Cmd) {}
