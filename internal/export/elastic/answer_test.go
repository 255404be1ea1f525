package elastic

import (
	"errors"
	"testing"

	"github.com/vigilhq/vigil/internal/export"
)

// TestReadAnswer covers the _bulk answers the receivers in the other
// tests never give: an item refused, one throttled, a conflict on create,
// a short answer, a top-level error and a body that is not JSON.
func TestReadAnswer(t *testing.T) {
	s := &Sink{op: "create"}
	res := make([]export.Result, 5)
	err := s.readAnswer([]byte(`{"took":3,"errors":true,"items":[
		{"create":{"_id":"a","status":201}},
		{"create":{"_id":"b","status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}},
		{"create":{"_id":"c","status":400,"error":{"type":"mapper_parsing_exception","reason":"bad field"}}},
		{"create":{"_id":"d","status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}}]}`), res)
	if err != nil {
		t.Fatal(err)
	}
	want := []export.Result{
		{Outcome: export.Delivered},
		{Outcome: export.Delivered},
		{Outcome: export.Dead, Reason: "400 mapper_parsing_exception: bad field"},
		{Outcome: export.Retry, Reason: "429 es_rejected_execution_exception: queue full", Throttled: true},
		{Outcome: export.Retry, Reason: "no item in the _bulk answer"},
	}
	for i := range want {
		if res[i] != want[i] {
			t.Errorf("item %d: %+v, want %+v", i, res[i], want[i])
		}
	}
	// With op index a conflict is not a delivery.
	s.op = "index"
	if err := s.readAnswer([]byte(`{"items":[{"index":{"status":409}}]}`), res[:1]); err != nil || res[0].Outcome != export.Dead {
		t.Errorf("409 with op index: %+v %v", res[0], err)
	}
	var re *export.RequestError
	if err := s.readAnswer([]byte(`{"error":"disk full","items":[]}`), res); !errors.As(err, &re) || re.Status != 500 {
		t.Errorf("top-level error: %v", err)
	}
	if err := s.readAnswer([]byte(`<html>bad gateway</html>`), res); err == nil {
		t.Errorf("an answer that is not JSON was accepted")
	}
}
