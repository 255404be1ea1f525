package objstore

import (
	"os"

	"golang.org/x/sys/unix"
)

// flushRange writes back one range of f's page cache and waits for it.
// Put calls it per chunk so that an object is flushed to disk in small
// steps: one fsync of a large file keeps the device busy long enough to
// stall the WAL's small fsyncs behind it (produce latency).
func flushRange(f *os.File, off, n int64) error {
	return unix.SyncFileRange(int(f.Fd()), off, n,
		unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
}
