package batch

import (
	"bytes"
	"strings"
	"testing"
)

// TestBuild: a built batch passes the produce path's validation and
// decodes back to the same keys, values (a nil value stays a tombstone)
// and timestamp, also with keys long enough for two-byte length varints.
func TestBuild(t *testing.T) {
	recs := []KV{
		{Key: []byte("k1"), Value: []byte("v1")},
		{Key: []byte("k2")},
		{Key: []byte(strings.Repeat("k", 300)), Value: []byte(strings.Repeat("v", 70000))},
	}
	raw := Build(recs, 1234)
	hs, err := Split(raw)
	if err != nil {
		t.Fatalf("Split of a built batch: %v", err)
	}
	if len(hs) != 1 || hs[0].NumRecords != 3 || hs[0].ProducerID != -1 || hs[0].MaxTimestamp != 1234 {
		t.Fatalf("header: %+v", hs[0].RecordBatch)
	}
	_, got, err := Records(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if !bytes.Equal(r.Key, recs[i].Key) || !bytes.Equal(r.Value, recs[i].Value) || (r.Value == nil) != (recs[i].Value == nil) {
			t.Errorf("record %d: %q=%q", i, r.Key, r.Value)
		}
	}
}
