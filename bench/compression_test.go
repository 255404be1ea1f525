package bench

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestJSONRecords: the compression comparison's events are distinct,
// valid JSON objects of exactly the size asked for.
func TestJSONRecords(t *testing.T) {
	for _, size := range []int{512, 1024, 4096} {
		events := jsonRecords(size)
		seen := map[string]bool{}
		for i, ev := range events {
			var v map[string]any
			if len(ev) != size || json.Unmarshal(ev, &v) != nil || v["process"] == nil {
				t.Fatalf("size %d: event %d is %d bytes, valid JSON with a process: %v\n%s", size, i, len(ev), json.Valid(ev), ev)
			}
			seen[string(ev)] = true
		}
		if len(seen) != jsonEvents {
			t.Errorf("size %d: %d distinct events of %d", size, len(seen), jsonEvents)
		}
	}
}

// TestRunCompressionTiny runs the compression comparison briefly and
// checks that it runs end to end: both sides counted records, the zstd
// topics stored fewer bytes than were sent, and the figures are printed
// (not what the ratio is). Options it cannot honour are refused.
func TestRunCompressionTiny(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out strings.Builder
	res, err := RunCompression(ctx, CompressionOptions{Duration: 500 * time.Millisecond, Rounds: 1, Level: "1", Partitions: 2,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: &out})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	rd := res.Rounds[0]
	if rd.Producer.Acked == 0 || rd.Codec.Acked == 0 || rd.Producer.Errors+rd.Codec.Errors != 0 || res.Ratio <= 0 {
		t.Errorf("runs %+v, ratio %v", rd, res.Ratio)
	}
	if res.BytesIn == 0 || res.BytesOut*2 > res.BytesIn {
		t.Errorf("zstd topics stored %d bytes of %d sent: want less than half", res.BytesOut, res.BytesIn)
	}
	for _, want := range []string{"compression.zstd.level=1", "ratio of medians:", "bytes stored:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	for _, bad := range []CompressionOptions{{Codec: "brotli"}, {Codec: "snappy", Level: "3"}, {RecordBytes: 100}} {
		if _, err := RunCompression(ctx, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
