package e2e

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// idemBatch builds an uncompressed batch of n records from producer pid,
// epoch 0, starting at sequence seq.
func idemBatch(pid int64, seq int32, n int) []byte {
	var recs []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte("idempotent")}
		body := r.AppendTo(nil)
		r.Length = int32(len(body) - 1)
		recs = append(recs, r.AppendTo(nil)...)
	}
	now := time.Now().UnixMilli()
	rb := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(n - 1),
		FirstTimestamp: now, MaxTimestamp: now, ProducerID: pid, ProducerEpoch: 0, FirstSequence: seq,
		NumRecords: int32(n), Records: recs}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

func idemProduceReq(topic string, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = -1
	req.TimeoutMillis = 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func endOffset(t *testing.T, ctx context.Context, adm *kadm.Client, topic string) int64 {
	t.Helper()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	o, ok := ends.Lookup(topic, 0)
	if !ok || o.Err != nil {
		t.Fatalf("end offset of %s/0: %+v", topic, o)
	}
	return o.Offset
}

// TestIdempotentRetryAfterCrash: the broker writes a batch to its WAL and
// is SIGKILLed before the client reads the response; the client retries
// the same request against the restarted broker and the log holds one
// copy. Once with the batch only in the WAL, once after it was uploaded,
// when the restart finds its producer state in the metadata store and the
// batch again in the WAL (only whole WAL files are trimmed) and must apply
// it once. Recovery from the metadata store alone (the WAL removed by a
// clean shutdown) is server.TestIdempotentProduce.
func TestIdempotentRetryAfterCrash(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		flags    []string
		uploaded bool
	}{
		{"in-wal", []string{"--upload-interval", "1h"}, false},
		{"uploaded", []string{"--upload-interval", "50ms", "--log-level", "debug"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := t.TempDir()
			const topic = "idem-crash"
			b := startBroker(t, "", dataDir, tc.flags...)
			createTopic(t, b.addr, topic, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()

			cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ipr := kmsg.NewPtrInitProducerIDRequest()
			ipr.ProducerID, ipr.ProducerEpoch = -1, -1
			ip, err := ipr.RequestWith(ctx, cl)
			if err != nil || ip.ErrorCode != 0 {
				t.Fatalf("InitProducerId: %v / code %d", err, ip.ErrorCode)
			}
			req := idemProduceReq(topic, idemBatch(ip.ProducerID, 0, 5))

			// Send the produce and never read the answer, as if the
			// connection died with the broker.
			nc, err := net.Dial("tcp", b.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("crash-test")).AppendRequest(nil, req, 1)
			if _, err := nc.Write(frame); err != nil {
				t.Fatal(err)
			}
			adm := kadm.NewClient(cl)
			for endOffset(t, ctx, adm, topic) != 5 {
				if ctx.Err() != nil {
					t.Fatal("the batch never became durable")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if tc.uploaded {
				for !strings.Contains(b.log(), "segment uploaded") {
					if ctx.Err() != nil {
						t.Fatal("the batch was never uploaded")
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			cl.Close()
			b.kill()

			b2 := startBroker(t, b.addr, dataDir, tc.flags...)
			cl2, err := kgo.NewClient(kgo.SeedBrokers(b2.addr))
			if err != nil {
				t.Fatal(err)
			}
			defer cl2.Close()
			resp, err := req.RequestWith(ctx, cl2)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != 0 || p.BaseOffset != 0 {
				t.Fatalf("retry after restart: code %d base %d; want success at the original offset 0", p.ErrorCode, p.BaseOffset)
			}
			adm2 := kadm.NewClient(cl2)
			if got := endOffset(t, ctx, adm2, topic); got != 5 {
				t.Fatalf("end offset %d after the retry, want 5 (one copy)", got)
			}
			// The producer carries on where it was.
			resp, err = idemProduceReq(topic, idemBatch(ip.ProducerID, 5, 2)).RequestWith(ctx, cl2)
			if err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 || resp.Topics[0].Partitions[0].BaseOffset != 5 {
				t.Fatalf("next batch after restart: %v %+v", err, resp)
			}
		})
	}
}
