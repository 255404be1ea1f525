package batch

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestTxnBatches(t *testing.T) {
	dec := kgo.DefaultDecompressor()
	raw := BuildTxn([]KV{{Key: []byte("k"), Value: []byte("v")}, {Key: []byte("k2"), Value: []byte("v2")}}, 1000, 42, 3, 7)
	hs, err := Split(raw)
	if err != nil {
		t.Fatalf("a transactional batch fails validation: %v", err)
	}
	h := hs[0]
	if !h.IsTransactional() || h.IsControl() || h.ProducerID != 42 || h.ProducerEpoch != 3 || h.FirstSequence != 7 || h.NumRecords != 2 {
		t.Fatalf("transactional batch header: %+v", h.RecordBatch)
	}
	for _, commit := range []bool{true, false} {
		raw := BuildMarker(42, 4, commit, 9, 2000)
		hs, err := Split(raw)
		if err != nil {
			t.Fatalf("a marker fails validation: %v", err)
		}
		if !hs[0].IsTransactional() || !hs[0].IsControl() || hs[0].ProducerID != 42 || hs[0].ProducerEpoch != 4 || hs[0].FirstSequence != -1 {
			t.Fatalf("marker header: %+v", hs[0].RecordBatch)
		}
		rb, recs, err := Records(raw, dec)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ParseMarker(rb, recs)
		if err != nil || m.Commit != commit || m.CoordinatorEpoch != 9 {
			t.Fatalf("marker (commit %v): %+v, %v", commit, m, err)
		}
	}
	rb, recs, _ := Records(raw, dec)
	if _, err := ParseMarker(rb, recs); err == nil {
		t.Error("a data batch parsed as a marker")
	}
}
