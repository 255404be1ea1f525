package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	vbench "github.com/vigilhq/vigil/bench"
)

// BenchmarkClusterProduce runs `vigil bench produce` against a cluster of
// three broker processes on one etcd and a real S3-compatible server, on
// the object WAL, and prints its figures (produce MB/s, latency
// percentiles, end-to-end latency). The ceiling it compares with is this
// machine's local fsync path, so the ratio shows what the object WAL
// costs. Run it once:
//
//	go test -run '^$' -bench ClusterProduce -benchtime 1x ./internal/e2e/
//
// VIGIL_BENCH_DURATION sets each phase's length (default 4s).
func BenchmarkClusterProduce(b *testing.B) {
	d := 4 * time.Second
	if v := os.Getenv("VIGIL_BENCH_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			b.Fatalf("VIGIL_BENCH_DURATION: %v", err)
		}
	}
	c := newTestCluster(b, true)
	for id := int32(1); id <= 3; id++ {
		c.start(id, fmt.Sprintf("zone-%d", id%2))
	}
	b.ResetTimer()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		fmt.Fprintf(os.Stdout, "three brokers, etcd, versitygw (S3) on loopback; --wal object --wal-flush-interval 5ms (default)\n")
		_, err := vbench.Run(ctx, vbench.Options{Brokers: c.seeds(), Duration: d, RecordBytes: 1024, Partitions: 12, Acks: "all", Out: os.Stdout})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
}
