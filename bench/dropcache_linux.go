package bench

import (
	"os"

	"golang.org/x/sys/unix"
)

// dropCache asks the kernel to forget a file's cached pages, so a read
// measures the disk, not memory. Best effort: dirty pages stay.
func dropCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
