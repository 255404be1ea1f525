//go:build !unix

package bench

import "time"

// cpuTime is unknown here; per-core figures fall back to wall-clock time.
func cpuTime() time.Duration { return 0 }
