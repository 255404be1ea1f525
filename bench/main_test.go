package bench

import (
	"os"
	"testing"
)

// TestMain lets the incident benchmark's children, which re-execute the
// test binary, run their roles instead of the tests.
func TestMain(m *testing.M) {
	RunChild()
	os.Exit(m.Run())
}
