package storage

import (
	"context"
	"errors"
	"testing"
)

// TestDeleteTopicID: a deletion by id takes the topic with that id only,
// never one created again under the name since, and the OnTopicDeleted
// hook hears of each topic deleted, once, before DeleteTopic returns.
func TestDeleteTopicID(t *testing.T) {
	e, closeAll := openEngine(t, t.TempDir())
	defer closeAll()
	ctx := context.Background()
	type dropped struct {
		name       string
		partitions int32
	}
	var heard []dropped
	e.OnTopicDeleted(func(_ context.Context, name string, partitions int32) {
		heard = append(heard, dropped{name, partitions})
	})

	first, err := e.CreateTopic(ctx, "x", 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteTopicID(ctx, "x", first.ID); err != nil {
		t.Fatalf("delete by its id: %v", err)
	}
	if len(heard) != 1 || heard[0] != (dropped{"x", 3}) {
		t.Fatalf("hook heard %v, want x with 3 partitions once", heard)
	}
	second, err := e.CreateTopic(ctx, "x", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if second.ID == first.ID {
		t.Fatalf("created again with the deleted topic's id %x", first.ID)
	}
	if err := e.DeleteTopicID(ctx, "x", first.ID); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("delete by the old id: %v, want ErrUnknownTopic", err)
	}
	if cur := e.Topic("x"); cur == nil || cur.ID != second.ID || e.TopicByID(first.ID) != nil {
		t.Fatalf("after a delete by the old id: topic %v, want the new one kept", cur)
	}
	if len(heard) != 1 {
		t.Fatalf("hook heard %v after a refused deletion", heard)
	}
	if err := e.DeleteTopic(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if len(heard) != 2 || heard[1] != (dropped{"x", 1}) {
		t.Fatalf("hook heard %v, want the new x with 1 partition second", heard)
	}
}
