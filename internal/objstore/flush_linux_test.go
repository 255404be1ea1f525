package objstore

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteDirect: a page-aligned buffer's whole pages go to the file with
// O_DIRECT and the caller is told how many; unaligned memory writes none.
func TestWriteDirect(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 3<<20+100) // a large allocation starts on a page
	for i := range data {
		data[i] = byte(i * 7)
	}
	n, err := writeDirect(p, data)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Skip("the test directory's filesystem refuses O_DIRECT")
	}
	if want := len(data) &^ (directAlign - 1); n != want {
		t.Fatalf("wrote %d bytes directly, want %d", n, want)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data[:n]) {
		t.Fatal("file does not hold the directly written bytes")
	}
	if n, err := writeDirect(p, data[1:]); err != nil || n != 0 {
		t.Fatalf("unaligned memory: wrote %d bytes directly (err %v), want 0", n, err)
	}
}
