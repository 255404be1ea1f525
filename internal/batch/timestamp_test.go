package batch

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestSetLogAppendTime: the stamped batch still passes Split (its CRC was
// recomputed) and reads the append time for every record.
func TestSetLogAppendTime(t *testing.T) {
	hs, err := Split(Build([]KV{{Value: []byte("a")}, {Value: []byte("b")}}, 1000))
	if err != nil {
		t.Fatal(err)
	}
	SetLogAppendTime(&hs[0], 5000)
	again, err := Split(hs[0].Raw)
	if err != nil {
		t.Fatalf("the stamped batch no longer validates: %v", err)
	}
	if !again[0].IsLogAppendTime() || again[0].MaxTimestamp != 5000 {
		t.Fatalf("stamped batch: log append time %v, max timestamp %d", again[0].IsLogAppendTime(), again[0].MaxTimestamp)
	}
	rb, recs, err := Records(hs[0].Raw, kgo.DefaultDecompressor())
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if ts := Timestamp(&rb, &recs[i]); ts != 5000 {
			t.Errorf("record %d reads timestamp %d, want 5000", i, ts)
		}
	}
}
