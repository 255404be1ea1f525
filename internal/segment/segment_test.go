package segment

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
)

func TestBuildGroupsPartitionsAndFooterRoundTrips(t *testing.T) {
	b := NewBuilder()
	b.Add("a", 1, []byte("a1-first"), 0, 4, 100)
	b.Add("b", 0, []byte("b0"), 10, 10, 50)
	b.Add("a", 1, []byte("a1-second"), 5, 9, 90)
	b.SetAborted("a", 1, []AbortedTxn{{ProducerID: 7, FirstOffset: -3, LastOffset: 8}})
	data, runs := b.Build()
	if len(runs) != 2 {
		t.Fatalf("runs = %d, want 2", len(runs))
	}
	a := runs[0]
	if a.Topic != "a" || a.FirstOffset != 0 || a.LastOffset != 9 || a.MaxTimestamp != 100 || len(a.Aborted) != 1 || runs[1].Aborted != nil {
		t.Errorf("run a = %+v", a)
	}
	if got := data[a.Position : a.Position+a.Size]; !bytes.Equal(got, []byte("a1-firsta1-second")) {
		t.Errorf("run a bytes = %q: a partition's batches must be contiguous and in order", got)
	}
	n, err := FooterLen(data[len(data)-TrailerLen:])
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseFooter(data[len(data)-TrailerLen-n : len(data)-TrailerLen])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(parsed, runs) {
		t.Errorf("footer %+v, want %+v", parsed, runs)
	}
	// A run without aborted transactions has no key for them: objects
	// written before transactions read the same.
	if bytes.Count(data, []byte(`"aborted"`)) != 1 {
		t.Errorf("footer %s: want one aborted index", data[len(data)-TrailerLen-n:len(data)-TrailerLen])
	}
	if _, err := FooterLen([]byte("garbage-trailer")[:TrailerLen]); err == nil {
		t.Error("a bad trailer must be refused")
	}
}

// TestBuildIntoReusesMemory: BuildInto lays out the same bytes as Build,
// in the given buffer when it is large enough, and allocates otherwise.
func TestBuildIntoReusesMemory(t *testing.T) {
	fill := func() *Builder {
		b := NewBuilder()
		for i := range 40 {
			b.Add(fmt.Sprintf("topic-with-a-long-name-%d", i%7), int32(i%5), bytes.Repeat([]byte{byte(i)}, 100+i), int64(i*10), int64(i*10+9), int64(i))
		}
		return b
	}
	want, wantRuns := fill().Build()
	if len(want) != cap(want) {
		t.Errorf("Build allocated %d bytes for a %d-byte object", cap(want), len(want))
	}
	big := make([]byte, 0, len(want)+100)
	got, runs := fill().BuildInto(big)
	if !bytes.Equal(got, want) || !reflect.DeepEqual(runs, wantRuns) {
		t.Fatal("BuildInto laid out a different object than Build")
	}
	if &got[:1][0] != &big[:1][0] {
		t.Error("BuildInto did not use a large enough buffer")
	}
	small, _ := fill().BuildInto(make([]byte, 10))
	if !bytes.Equal(small, want) {
		t.Fatal("BuildInto with a small buffer laid out a different object")
	}
}
