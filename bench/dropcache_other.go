//go:build !linux

package bench

// dropCache is a no-op where posix_fadvise is not available; the replay
// figures then compare warm reads.
func dropCache(string) error { return nil }
