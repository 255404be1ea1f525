package wal

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// reserve allocates f's blocks up to size without changing its length
// (FALLOC_FL_KEEP_SIZE), so that writes up to there need no new block and
// cannot fail for want of space. A full filesystem is reported as ErrFull;
// one that cannot preallocate reports errReserveUnsupported, and the WAL
// then writes as it would without a reservation.
func reserve(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, size)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOSPC), errors.Is(err, unix.EDQUOT):
		return fmt.Errorf("%w: reserve %d bytes for %s: %v", ErrFull, size, f.Name(), err)
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOSYS):
		return errReserveUnsupported
	}
	return fmt.Errorf("wal: reserve %d bytes for %s: %w", size, f.Name(), err)
}

// release gives back the blocks reserved past f's end, once no more is
// written to it. The end is the file's length, which in a reused file lies
// past what this use wrote (size): nothing inside it is touched. Best
// effort: they are only space.
func release(f *os.File, size, reserved int64) {
	if st, err := f.Stat(); err == nil {
		size = max(size, st.Size())
	}
	if reserved > size {
		unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, size, reserved-size)
	}
}
