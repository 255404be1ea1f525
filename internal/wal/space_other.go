//go:build !linux

package wal

import "os"

// reserve cannot preallocate here; the WAL writes without a reservation.
func reserve(*os.File, int64) error { return errReserveUnsupported }

func release(*os.File, int64, int64) {}
