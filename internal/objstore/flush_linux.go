package objstore

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

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

// directAlign is the alignment O_DIRECT needs of the memory, offset and
// length of a write on common Linux filesystems.
const directAlign = 4096

// writeDirect writes the largest aligned prefix of data to the start of
// the file at path with O_DIRECT, in flushChunk steps, and returns its
// length; Put writes the rest through the page cache. A large object
// (the uploader's, in page-aligned memory) then goes to the disk without
// being copied into the page cache, which at full ingest was the largest
// kernel cost of the local object store. It writes nothing (0, nil) when
// the memory is unaligned or the filesystem refuses O_DIRECT (tmpfs).
func writeDirect(path string, data []byte) (int, error) {
	n := len(data) &^ (directAlign - 1)
	if n == 0 || uintptr(unsafe.Pointer(unsafe.SliceData(data)))%directAlign != 0 {
		return 0, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		if errors.Is(err, unix.EINVAL) {
			return 0, nil
		}
		return 0, fmt.Errorf("open %s for direct writes: %w", path, err)
	}
	defer f.Close()
	for off := 0; off < n; off += flushChunk {
		chunk := data[off:min(off+flushChunk, n)]
		if _, err := f.WriteAt(chunk, int64(off)); err != nil {
			if off == 0 && errors.Is(err, unix.EINVAL) {
				return 0, nil // the filesystem's alignment is stricter
			}
			return 0, fmt.Errorf("direct write to %s: %w", path, err)
		}
	}
	return n, nil
}
