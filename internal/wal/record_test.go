package wal

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecordHelpersMatchFile: what the file WAL writes decodes with
// DecodeRecord, and AppendRecord re-encodes it byte for byte, so the object
// WAL's chunks really use the file WAL's record format.
func TestRecordHelpersMatchFile(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, dir, Options{})
	const n = 50
	for i := range n {
		w.Append(testEntry(i), nil)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, fileName(1)))
	if err != nil {
		t.Fatal(err)
	}
	var again []byte
	for i, off := 0, 0; off < len(raw); i++ {
		seq, e, used, err := DecodeRecord(raw[off:])
		if err != nil {
			t.Fatalf("record %d at offset %d: %v", i, off, err)
		}
		want := testEntry(i)
		if seq != uint64(i+1) || e.Topic != want.Topic || e.Partition != want.Partition || !bytes.Equal(e.Data, want.Data) {
			t.Fatalf("record %d: seq %d %s/%d %d bytes, want seq %d %s/%d %d bytes", i, seq, e.Topic, e.Partition, len(e.Data),
				i+1, want.Topic, want.Partition, len(want.Data))
		}
		if int64(used) != RecordSize(want) {
			t.Fatalf("record %d: took %d bytes, RecordSize says %d", i, used, RecordSize(want))
		}
		if again, err = AppendRecord(again, seq, e); err != nil {
			t.Fatal(err)
		}
		off += used
		if off == len(raw) && i != n-1 {
			t.Fatalf("file ended after %d records, want %d", i+1, n)
		}
	}
	if !bytes.Equal(again, raw) {
		i := 0
		for i < min(len(again), len(raw)) && again[i] == raw[i] {
			i++
		}
		t.Fatalf("AppendRecord does not reproduce the file's bytes: %d vs %d bytes, first difference at %d", len(again), len(raw), i)
	}
}

func TestDecodeRecordDamage(t *testing.T) {
	good, err := AppendRecord(nil, 7, testEntry(3))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"short header", good[:5], "short record header"},
		{"bad magic", flip(1), "bad record magic"},
		{"short payload", good[:len(good)-1], "does not fit"},
		{"flipped data", flip(len(good) - 1), "checksum mismatch"},
		{"flipped seq", flip(headerSize), "checksum mismatch"},
	} {
		if _, _, _, err := DecodeRecord(tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := AppendRecord(nil, 1, Entry{Topic: strings.Repeat("t", 1<<16)}); err == nil {
		t.Errorf("AppendRecord accepted a 64 KiB topic name")
	}
}
