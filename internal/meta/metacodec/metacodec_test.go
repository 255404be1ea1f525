package metacodec

import (
	"bytes"
	"testing"

	"github.com/vigilhq/vigil/internal/meta"
)

func TestSegmentValueVersions(t *testing.T) {
	seg := meta.Segment{Topic: "t", Partition: 3, Object: "segments/x.seg", Position: 7, Size: 90,
		FirstOffset: 1000, LastOffset: 1099, MaxTimestamp: 1_700_000_000_000}
	var key [SegmentKeyLen]byte
	PutSegmentKey(key[:], seg.Partition, seg.FirstOffset)

	// Without an aborted index: version 1, as before transactions.
	v1 := AppendSegmentValue(nil, &seg)
	if v1[0] != SegValueV1 {
		t.Fatalf("plain run encoded as version %d", v1[0])
	}
	got, err := DecodeSegment("t", key[:], v1)
	if err != nil || !meta.SameSegment(got, seg) || got.Aborted != nil {
		t.Fatalf("v1 round trip: %+v, %v", got, err)
	}

	// With one: version 2, a transaction begun before the run included.
	seg.Aborted = []meta.AbortedTxn{{ProducerID: 4, FirstOffset: 900, LastOffset: 1010}, {ProducerID: 1 << 40, FirstOffset: 1050, LastOffset: 1099}}
	v2 := AppendSegmentValue(nil, &seg)
	if v2[0] != SegValueV2 || !bytes.HasPrefix(v2[1:], v1[1:]) {
		t.Fatalf("run with aborted transactions: version %d, or the v1 fields changed", v2[0])
	}
	got, err = DecodeSegment("t", key[:], v2)
	if err != nil || !meta.SameSegment(got, seg) {
		t.Fatalf("v2 round trip: %+v, %v", got, err)
	}
	for n := len(v1); n < len(v2); n++ {
		if _, err := DecodeSegment("t", key[:], v2[:n]); err == nil {
			t.Fatalf("value cut at %d of %d bytes decoded", n, len(v2))
		}
	}
}
