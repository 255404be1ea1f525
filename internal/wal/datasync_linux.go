package wal

import (
	"os"

	"golang.org/x/sys/unix"
)

// datasync makes f's data and size durable without its timestamps, which
// in a reused file (no size change) spares the journal write of an fsync.
func datasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
