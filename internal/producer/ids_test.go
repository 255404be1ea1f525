package producer

import (
	"context"
	"sync"
	"testing"
)

// memAllocator is an Allocator in memory, as the metadata stores keep it.
type memAllocator struct {
	mu   sync.Mutex
	next int64
}

func (m *memAllocator) AllocateProducerIDs(_ context.Context, n int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	first := m.next
	m.next += n
	return first, nil
}

// TestIDsAbove: after Above(id), every id handed out is greater than id,
// whether id lies in the block held, beyond it or below it, and ids are
// never handed out twice.
func TestIDsAbove(t *testing.T) {
	ctx := context.Background()
	store := &memAllocator{}
	ids := NewIDs(store)
	seen := map[int64]bool{}
	next := func() int64 {
		t.Helper()
		id, err := ids.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			t.Fatalf("id %d handed out twice", id)
		}
		seen[id] = true
		return id
	}
	if id := next(); id != 0 {
		t.Fatalf("first id %d, want 0", id)
	}
	for _, above := range []int64{5, 999, 1_000_000, 3, 7_000_000_000_000_000_000} {
		if err := ids.Above(ctx, above); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if id := next(); id <= above {
				t.Fatalf("id %d after Above(%d)", id, above)
			}
		}
	}
	if err := ids.Above(ctx, 1<<63-1); err == nil {
		t.Fatal("Above the largest id: no error")
	}
}
