//go:build !chaosbroken

package objwal

// ackBeforeCommit is false in every real build: an entry's callback runs
// only once its chunk is durable. The chaos harness builds a deliberately
// broken broker with -tags chaosbroken (ackearly_chaosbroken.go) to prove
// its checker catches acknowledged writes that were lost.
const ackBeforeCommit = false

// brokenCommitDelay is the broken build's wait between acknowledging a
// chunk's entries and putting it; none here.
const brokenCommitDelay = 0
