package boltstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/meta/metatest"
)

func TestConformance(t *testing.T) {
	metatest.Run(t, func(t *testing.T) func() (meta.Store, error) {
		path := filepath.Join(t.TempDir(), "meta.db")
		return func() (meta.Store, error) { return Open(path) }
	})
}

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "meta.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestSecondOpenFailsWhileLocked(t *testing.T) {
	s, path := openTemp(t)
	start := time.Now()
	s2, err := Open(path)
	elapsed := time.Since(start)
	if err == nil {
		s2.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	if !strings.Contains(err.Error(), "metadata file locked by another process") {
		t.Fatalf("second Open err = %v, want a clear lock error", err)
	}
	if elapsed > 3*time.Second {
		t.Fatalf("second Open took %v to fail", elapsed)
	}
	// Once the holder closes, the file opens again.
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s3, err := Open(path)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s3.Close()
}

func TestClusterIDKafkaForm(t *testing.T) {
	s, _ := openTemp(t)
	id, err := s.ClusterID(t.Context())
	if err != nil {
		t.Fatalf("ClusterID: %v", err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if len(id) != 22 || err != nil || len(raw) != 16 {
		t.Fatalf("ClusterID %q is not 16 bytes in unpadded base64url (err %v)", id, err)
	}
}

func TestUpdateTopicRejectsRenameAndNewID(t *testing.T) {
	s, _ := openTemp(t)
	orig := meta.Topic{Name: "t", ID: [16]byte{1}, Partitions: 1}
	if err := s.CreateTopic(t.Context(), orig); err != nil {
		t.Fatal(err)
	}
	for name, fn := range map[string]func(*meta.Topic){
		"rename": func(tp *meta.Topic) { tp.Name = "u" },
		"new id": func(tp *meta.Topic) { tp.ID[0] = 2 },
	} {
		err := s.UpdateTopic(t.Context(), "t", func(tp *meta.Topic) error { fn(tp); tp.Partitions = 9; return nil })
		if err == nil {
			t.Fatalf("%s: UpdateTopic succeeded", name)
		}
	}
	ts, err := s.Topics(t.Context())
	if err != nil || len(ts) != 1 || ts[0].Name != "t" || ts[0].ID != orig.ID || ts[0].Partitions != 1 {
		t.Fatalf("Topics after rejected updates = %+v, %v", ts, err)
	}
}

func TestUpdateTopicReturnsFnErrorUnwrapped(t *testing.T) {
	s, _ := openTemp(t)
	if err := s.CreateTopic(t.Context(), meta.Topic{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	errFn := errors.New("invalid config")
	if err := s.UpdateTopic(t.Context(), "t", func(*meta.Topic) error { return errFn }); err != errFn {
		t.Fatalf("UpdateTopic err = %v, want fn's error itself", err)
	}
}

func TestReplaceSegmentsUnknownTopicIgnored(t *testing.T) {
	s, _ := openTemp(t)
	ghost := meta.Segment{Topic: "ghost", Object: "o", FirstOffset: 0, LastOffset: 1}
	if err := s.ReplaceSegments(t.Context(), []meta.Segment{ghost}, []meta.Segment{ghost}); err != nil {
		t.Fatalf("ReplaceSegments for a deleted topic: %v", err)
	}
	if all, err := s.AllSegments(t.Context()); err != nil || len(all) != 0 {
		t.Fatalf("AllSegments = %v, %v; want none", all, err)
	}
}

func TestErrorsCarryContext(t *testing.T) {
	s, _ := openTemp(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.CreateTopic(ctx, meta.Topic{Name: "t"})
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "boltstore: ") {
		t.Fatalf("canceled CreateTopic err = %v", err)
	}
	err = s.SetPartitionState(t.Context(), "missing", 3, meta.PartitionState{})
	if !errors.Is(err, meta.ErrUnknownTopic) || !strings.Contains(err.Error(), `"missing"/3`) {
		t.Fatalf("SetPartitionState err = %v, want ErrUnknownTopic naming the partition", err)
	}
}

func TestNegativeOffsetsSortNumerically(t *testing.T) {
	s, _ := openTemp(t)
	if err := s.CreateTopic(t.Context(), meta.Topic{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	var segs []meta.Segment
	for _, off := range []int64{5, -1, 0, -300} {
		segs = append(segs, meta.Segment{Topic: "t", Object: "o", FirstOffset: off, LastOffset: off})
	}
	if err := s.AddSegments(t.Context(), segs); err != nil {
		t.Fatal(err)
	}
	got, err := s.Segments(t.Context(), "t", 0)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for _, sg := range got {
		offs = append(offs, sg.FirstOffset)
	}
	if fmt.Sprint(offs) != "[-300 -1 0 5]" {
		t.Fatalf("FirstOffsets = %v, want [-300 -1 0 5]", offs)
	}
}

// BenchmarkAddSegments commits one upload's index (100 partitions of one
// topic, same object) per iteration: the cost is dominated by the single
// fsynced transaction, so per-segment cost falls with batch size.
func BenchmarkAddSegments(b *testing.B) {
	path := filepath.Join(b.TempDir(), "meta.db")
	s, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const perCall = 100
	if err := s.CreateTopic(ctx, meta.Topic{Name: "bench", Partitions: perCall}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	segs := make([]meta.Segment, perCall)
	var call int64
	for b.Loop() {
		obj := fmt.Sprintf("segments/%020d", call)
		for p := range segs {
			off := call * 1000
			segs[p] = meta.Segment{Topic: "bench", Partition: int32(p), Object: obj,
				Position: int64(p) * 65536, Size: 65536, FirstOffset: off, LastOffset: off + 999,
				MaxTimestamp: 1_700_000_000_000 + call}
		}
		if err := s.AddSegments(ctx, segs); err != nil {
			b.Fatal(err)
		}
		call++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(call*perCall), "ns/segment")
}
