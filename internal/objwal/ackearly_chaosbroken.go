//go:build chaosbroken

package objwal

import "time"

// ackBeforeCommit, in the deliberately broken build of the chaos harness
// only (go build -tags chaosbroken), answers every entry's callback
// before its chunk is put: a broker killed meanwhile loses writes it
// acknowledged, which the campaign's checker must report as lost. No
// release build sets this tag.
const ackBeforeCommit = true

// brokenCommitDelay widens the broken build's window (acknowledged, not
// yet put) from a PUT's few milliseconds to a share of a second, so every
// kill of the campaign's proof lands inside one: left to the PUT's own
// time, a run of four kills once lost nothing and the proof failed.
const brokenCommitDelay = 300 * time.Millisecond
