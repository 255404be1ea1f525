//go:build !linux

package readcache

// idleIO runs read: I/O priorities are Linux's.
func idleIO(read func()) { read() }
