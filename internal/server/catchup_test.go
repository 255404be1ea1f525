package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/config"
)

// TestCatchupChunk checks that with catch-up pacing a fetch of cold data
// (in segment objects only) carries at most --catchup-chunk-bytes of it,
// however much the client asks for, that the same fetch without pacing
// carries what it asks for, and that a consumer still reads every record
// in order through the small answers.
func TestCatchupChunk(t *testing.T) {
	const (
		chunk      = 64 << 10
		partitions = 2
		perPart    = 400 // records of 1 KiB, in batches of about 8 KiB
	)
	for _, paced := range []bool{true, false} {
		t.Run(fmt.Sprintf("paced=%v", paced), func(t *testing.T) {
			ts := startServer(t, t.TempDir(), func(c *config.Broker) {
				c.TailCacheBytes = 0 // uploaded batches are read from objects
				c.UploadInterval = 20 * time.Millisecond
				c.CatchupPacing = paced
				c.CatchupChunkBytes = chunk
				c.CatchupMinRate = 1 << 30 // the cut, not the rate, is tested
			})
			ctx := testCtx(t, time.Minute)
			createTopics(t, ctx, ts.admin(t), partitions, nil, "cold")
			cl := ts.client(t, kgo.DefaultProduceTopic("cold"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.ProducerBatchMaxBytes(8<<10), kgo.ProducerBatchCompression(kgo.NoCompression()))
			value := make([]byte, 1000)
			for p := range int32(partitions) {
				for i := range perPart {
					v := append([]byte(fmt.Sprintf("%d-%06d-", p, i)), value...)
					cl.Produce(ctx, &kgo.Record{Partition: p, Value: v}, nil)
				}
			}
			if err := cl.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "upload", func() bool { return ts.srv.UploadBacklog() == 0 })

			rc := dialRaw(t, ts.addr)
			req := kmsg.NewPtrFetchRequest()
			req.SetVersion(12)
			req.ReplicaID, req.MaxBytes, req.SessionEpoch = -1, 50<<20, -1
			var parts []kmsg.FetchRequestTopicPartition
			for p := range int32(partitions) {
				parts = append(parts, kmsg.FetchRequestTopicPartition{Partition: p, FetchOffset: 0,
					PartitionMaxBytes: 4 << 20, CurrentLeaderEpoch: -1, LogStartOffset: -1})
			}
			req.Topics = []kmsg.FetchRequestTopic{{Topic: "cold", Partitions: parts}}
			resp := rc.roundTrip(req, -1).(*kmsg.FetchResponse)
			total := 0
			for _, p := range resp.Topics[0].Partitions {
				if p.ErrorCode != 0 {
					t.Fatalf("partition %d: error code %d", p.Partition, p.ErrorCode)
				}
				if p.HighWatermark != perPart {
					t.Fatalf("partition %d: high watermark %d, want %d", p.Partition, p.HighWatermark, perPart)
				}
				total += len(p.RecordBatches)
			}
			switch {
			case total == 0:
				t.Fatalf("the fetch returned no records")
			case paced && total > chunk:
				t.Fatalf("paced fetch carried %d bytes of cold data, more than the %d-byte chunk", total, chunk)
			case !paced && total < partitions*perPart*1000:
				t.Fatalf("unpaced fetch carried %d bytes, want all %d records of both partitions", total, partitions*perPart)
			}

			// A consumer reads everything, in order, through the answers.
			cons := ts.client(t, kgo.ConsumeTopics("cold"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			next := map[int32]int{}
			for seen := 0; seen < partitions*perPart; {
				fs := cons.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					t.Fatalf("consume: %v", err)
				}
				fs.EachRecord(func(r *kgo.Record) {
					want := fmt.Sprintf("%d-%06d-", r.Partition, next[r.Partition])
					if got := string(r.Value[:len(want)]); got != want || r.Offset != int64(next[r.Partition]) {
						t.Fatalf("partition %d offset %d: value %q, want %q at offset %d", r.Partition, r.Offset, got, want, next[r.Partition])
					}
					next[r.Partition]++
					seen++
				})
			}
		})
	}
}
