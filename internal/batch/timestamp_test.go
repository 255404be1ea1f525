package batch

import (
	"errors"
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

// TestCheckTimestamps: bounds on both sides, records without a timestamp
// exempt, and bounds at the int64 limit never overflow.
func TestCheckTimestamps(t *testing.T) {
	dec := kgo.DefaultDecompressor()
	const now = 1_000_000
	for _, tc := range []struct {
		ts            int64
		before, after int64
		ok            bool
	}{
		{now, 0, 0, true},
		{now - 100, 100, 0, true},
		{now - 101, 100, 0, false},
		{now + 10, 100, 10, true},
		{now + 11, 100, 10, false},
		{-1, 0, 0, true}, // NO_TIMESTAMP
		{-1 << 62, 1<<63 - 1, 1<<63 - 1, true},
		{1 << 62, 1<<63 - 1, 1<<63 - 1, true},
	} {
		hs, err := Split(Build([]KV{{Value: []byte("v")}}, tc.ts))
		if err != nil {
			t.Fatal(err)
		}
		err = CheckTimestamps(&hs[0], dec, now, tc.before, tc.after)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrTimestamp)) {
			t.Errorf("timestamp %d within -%d/+%d of %d: %v", tc.ts, tc.before, tc.after, now, err)
		}
	}
}
