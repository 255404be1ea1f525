//go:build race

package e2e

// raceEnabled makes TestMain build the broker with -race too, so data races
// in the broker under real client load show up in its log.
const raceEnabled = true
