package table

import (
	"context"
	"errors"
	"testing"

	"github.com/vigilhq/vigil/internal/objstore"
)

// overwriting is a store whose conditional create overwrites, as an
// S3-compatible service that ignores If-None-Match does.
type overwriting struct{ objstore.Store }

func (o overwriting) Create(ctx context.Context, key string, data []byte) error {
	return o.Put(ctx, key, data)
}

func TestCheckCreate(t *testing.T) {
	ctx := context.Background()
	dir, err := objstore.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := NewCatalog(ctx, dir, "file://"+dir.Root()).CheckCreate(ctx); err != nil {
		t.Errorf("a directory store: %v", err)
	}
	if err := NewCatalog(ctx, overwriting{dir}, "file://"+dir.Root()).CheckCreate(ctx); !errors.Is(err, ErrCreateNotAtomic) {
		t.Errorf("a store that overwrites: %v, want ErrCreateNotAtomic", err)
	}
	if objs, err := dir.List(ctx, Warehouse+"/"); err != nil || len(objs) != 0 {
		t.Errorf("the probes left %v (%v)", objs, err)
	}
}
