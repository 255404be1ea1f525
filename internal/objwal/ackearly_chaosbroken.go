//go:build chaosbroken

package objwal

// ackBeforeCommit, in the deliberately broken build of the chaos harness
// only (go build -tags chaosbroken), answers every entry's callback
// before its chunk is put: a broker killed meanwhile loses writes it
// acknowledged, which the campaign's checker must report as lost. No
// release build sets this tag.
const ackBeforeCommit = true
