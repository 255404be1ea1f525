package elastic

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
// its request into that buffer. The first body, read after the second
// Deliver has returned, holds the first call's documents alone.
func TestBodyNotReusedWhileSent(t *testing.T) {
	s, err := New(Config{URL: "http://receiver.invalid:9200"})
	if err != nil {
		t.Fatal(err)
	}
	late := &exporttest.LateReader{Answer: `{"items":[]}`}
	s.client.Transport = late
	ctx := context.Background()
	for _, prefix := range []string{"A", "B"} {
		if err := s.Deliver(ctx, docsOf(prefix, 50), make([]export.Result, 50)); err != nil {
			t.Fatal(err)
		}
	}
	bodies := late.ReadAll()
	if len(bodies) != 2 {
		t.Fatalf("%d requests, want 2", len(bodies))
	}
	for i, prefix := range []string{"A", "B"} {
		other := []byte(`"_id":"` + map[string]string{"A": "B", "B": "A"}[prefix] + `-`)
		if n := bytes.Count(bodies[i], []byte(`"_id":"`+prefix+`-`)); n != 50 || bytes.Contains(bodies[i], other) {
			t.Errorf("request %d holds %d of its 50 documents (%q...): its buffer was rewritten before the transport read it", i+1, n, bodies[i][:min(len(bodies[i]), 80)])
		}
	}
}

func docsOf(prefix string, n int) []*export.Doc {
	out := make([]*export.Doc, n)
	for i := range out {
		v := fmt.Appendf(nil, `{"class_uid":1001,"time":1700000000000,"message":"%s %d"}`, prefix, i)
		out[i] = &export.Doc{Record: &kgo.Record{Value: v}, ID: fmt.Sprintf("%s-%d", prefix, i), ClassUID: 1001,
			ClassName: "File System Activity", Time: time.UnixMilli(1700000000000)}
	}
	return out
}
