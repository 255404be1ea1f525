//go:build !linux

package catchup

// lowerThread does nothing where per-thread nice values are not known to
// Vigil: catch-up work runs at the process's priority.
func lowerThread(int) (func(), bool) { return nil, false }
