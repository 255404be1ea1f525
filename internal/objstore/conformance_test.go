package objstore_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/objstore/objstoretest"
	"github.com/vigilhq/vigil/internal/objstore/s3test"
)

func TestDirConformance(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		st, err := objstore.OpenDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

// TestS3Conformance runs the suite against a real S3-compatible server
// (versitygw), once at the root of a bucket and once under a key prefix
// that other keys of the bucket share, so the prefix is both added and
// stripped correctly.
func TestS3Conformance(t *testing.T) {
	srv := s3test.Start(t)
	var n atomic.Int64
	t.Run("BucketRoot", func(t *testing.T) {
		objstoretest.Run(t, func(t *testing.T) objstore.Store {
			bucket := srv.Bucket(fmt.Sprintf("root-%d", n.Add(1)))
			return srv.Open(t, bucket, "")
		})
	})
	t.Run("Prefix", func(t *testing.T) {
		bucket := srv.Bucket("shared")
		objstoretest.Run(t, func(t *testing.T) objstore.Store {
			i := n.Add(1)
			// A neighbour whose prefix extends ours ("vigil/c1" beside
			// "vigil/c10") must stay invisible.
			neighbour := srv.Open(t, bucket, fmt.Sprintf("vigil/c%d0", i))
			if err := neighbour.Put(t.Context(), "a/b2", []byte("neighbour")); err != nil {
				t.Fatalf("put into the neighbour prefix: %v", err)
			}
			return srv.Open(t, bucket, fmt.Sprintf("vigil/c%d", i))
		})
	})
}
