// Package sigmatest locates the SigmaHQ rules and regression events the
// tests of several packages run against.
package sigmatest

import (
	"os"
	"path/filepath"
	"testing"
)

// Data returns ../shared/data/sigma beside the module root (CI keeps the
// shared data next to the checkout), failing the test if it is missing.
func Data(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("module root (go.mod) not found above the working directory")
		}
		dir = parent
	}
	d := filepath.Join(dir, "..", "shared", "data", "sigma")
	if _, err := os.Stat(filepath.Join(d, "regression_data")); err != nil {
		t.Fatalf("SigmaHQ data missing: want it at %s (../shared/data/sigma beside the repo root): %v", d, err)
	}
	return d
}
