package batch

import "testing"

func TestProducerMarker(t *testing.T) {
	raw := BuildMarker(42, 3, true, 9, 1000)
	info, err := Peek(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !info.IsControl() || !info.IsTransactional() {
		t.Fatalf("marker attributes %#x", info.Attributes)
	}
	m, err := ProducerMarker(raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != 42 || m.Epoch != 3 || !m.Commit || m.CoordinatorEpoch != 9 {
		t.Fatalf("ProducerMarker = %+v", m)
	}
	data := BuildTxn([]KV{{Key: []byte("k"), Value: []byte("v")}}, 1000, 42, 3, 0)
	if _, err := ProducerMarker(data); err == nil {
		t.Fatal("a data batch parsed as a marker")
	}
	if info, _ := Peek(data); info.IsControl() || !info.Producer().Transactional {
		t.Fatalf("transactional data batch: attributes %#x", info.Attributes)
	}
}
