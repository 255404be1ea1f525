package kwire

import (
	"bytes"
	"testing"
)

func TestSkipTags(t *testing.T) {
	rest := []byte("body")
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"none", append([]byte{0}, rest...), true},
		{"two tags", append([]byte{2, 0, 1, 'x', 5, 2, 'y', 'z'}, rest...), true},
		{"empty", nil, false},
		{"truncated tag", []byte{1}, false},
		{"value past the end", []byte{1, 0, 9, 'x'}, false},
	} {
		got, err := SkipTags(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tc.name, err)
		}
		if tc.ok && !bytes.Equal(got, rest) {
			t.Errorf("%s: rest %q, want %q", tc.name, got, rest)
		}
	}
}
