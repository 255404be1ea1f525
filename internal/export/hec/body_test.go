package hec

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/export"
	"github.com/vigilhq/vigil/internal/export/exporttest"
)

// TestBodyNotReusedWhileSent: when Deliver returns, the transport may
// still be sending its request's body; the next Deliver must not write
// its events into that buffer. The first body, read after the second
// Deliver has returned, holds the first call's events alone.
func TestBodyNotReusedWhileSent(t *testing.T) {
	s, err := New(Config{URL: "http://receiver.invalid:8088", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	late := &exporttest.LateReader{Answer: `{"text":"Success","code":0}`}
	s.client.Transport = late
	for _, prefix := range []string{"A", "B"} {
		docs := make([]*export.Doc, 50)
		for i := range docs {
			docs[i] = &export.Doc{Record: &kgo.Record{Value: fmt.Appendf(nil, `{"message":"%s-%d"}`, prefix, i)},
				ID: fmt.Sprintf("%s-%d", prefix, i), ClassUID: -1, Time: time.UnixMilli(1700000000000)}
		}
		if err := s.Deliver(context.Background(), docs, make([]export.Result, 50)); err != nil {
			t.Fatal(err)
		}
	}
	bodies := late.ReadAll()
	if len(bodies) != 2 {
		t.Fatalf("%d requests, want 2", len(bodies))
	}
	for i, c := range []struct{ mine, other string }{{"A", "B"}, {"B", "A"}} {
		if n := bytes.Count(bodies[i], []byte(`"message":"`+c.mine+`-`)); n != 50 || bytes.Contains(bodies[i], []byte(`"message":"`+c.other+`-`)) {
			t.Errorf("request %d holds %d of its 50 events (%.80q): its buffer was rewritten before the transport read it", i+1, n, bodies[i])
		}
	}
}
