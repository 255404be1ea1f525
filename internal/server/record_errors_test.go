package server

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// rawBatch encodes records as one magic-v2 batch: keys[i] nil is a record
// without a key, and ts[i] its timestamp. Compressed with lz4 when lz4.
func rawBatch(t *testing.T, keys [][]byte, ts []int64, lz4 bool) []byte {
	t.Helper()
	var body []byte
	for i := range keys {
		r := kmsg.Record{OffsetDelta: int32(i), Key: keys[i], Value: []byte(fmt.Sprintf("value %d", i)), TimestampDelta64: ts[i] - ts[0]}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		body = r.AppendTo(body)
	}
	var attrs int16
	if lz4 {
		comp, err := kgo.DefaultCompressor(kgo.Lz4Compression())
		if err != nil {
			t.Fatal(err)
		}
		var codec kgo.CompressionCodecType
		body, codec = comp.Compress(new(bytes.Buffer), body)
		attrs = int16(codec)
	}
	rb := kmsg.RecordBatch{Magic: 2, PartitionLeaderEpoch: -1, Attributes: attrs, LastOffsetDelta: int32(len(keys) - 1),
		FirstTimestamp: ts[0], MaxTimestamp: slices.Max(ts), ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(keys)), Records: body}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// TestRecordErrors: a batch with bad records is refused whole, and from
// Produce v8 the answer names each bad record (KIP-467): 10 records
// without a key among 100 sent to a compacted topic come back as
// INVALID_RECORD with exactly their 10 indices, compressed or not; a bad
// timestamp makes the batch INVALID_TIMESTAMP, with the records of both
// kinds listed; before v8 only the code is answered; nothing of a refused
// batch is stored, and the same records with keys are then accepted.
func TestRecordErrors(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, time.Minute)
	adm := ts.admin(t)
	createTopics(t, ctx, adm, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "keyed")
	createTopics(t, ctx, adm, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact"),
		"message.timestamp.before.max.ms": kadm.StringPtr("3600000")}, "keyed-bounded")
	produce := func(version int16, topic string, raw []byte) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		// kgo sends a request at the highest version both sides know, so
		// the client caps Produce at the version under test.
		versions := kversion.Stable()
		versions.SetMaxKeyVersion(kmsg.Produce.Int16(), version)
		cl := ts.client(t, kgo.MaxVersions(versions))
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(version)
		req.Acks, req.TimeoutMillis = -1, 5000
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: raw}}}}
		resp, err := cl.Request(ctx, req)
		if err != nil {
			t.Fatalf("produce v%d: %v", version, err)
		}
		pr := resp.(*kmsg.ProduceResponse)
		if pr.GetVersion() != version || len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
			t.Fatalf("produce v%d: answered %+v", version, pr)
		}
		return pr.Topics[0].Partitions[0]
	}

	now := time.Now().UnixMilli()
	const n = 100
	var keys [][]byte
	var stamps []int64
	var bad []int32 // the keyless records: 10, spread through the batch
	for i := range n {
		stamps = append(stamps, now)
		if i%10 == 3 {
			keys = append(keys, nil)
			bad = append(bad, int32(i))
			continue
		}
		keys = append(keys, []byte(fmt.Sprintf("key-%d", i)))
	}
	for _, lz4 := range []bool{false, true} {
		p := produce(9, "keyed", rawBatch(t, keys, stamps, lz4))
		if p.ErrorCode != kerr.InvalidRecord.Code {
			t.Fatalf("lz4 %v: code %v, want INVALID_RECORD", lz4, kerr.ErrorForCode(p.ErrorCode))
		}
		var got []int32
		for _, e := range p.ErrorRecords {
			got = append(got, e.RelativeOffset)
			if e.ErrorMessage == nil || !strings.Contains(*e.ErrorMessage, "without key") {
				t.Errorf("record %d: message %v", e.RelativeOffset, e.ErrorMessage)
			}
		}
		if !slices.Equal(got, bad) {
			t.Errorf("lz4 %v: record errors at %v, want %v", lz4, got, bad)
		}
		if p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, "10 record errors") {
			t.Errorf("lz4 %v: error message %v", lz4, p.ErrorMessage)
		}
	}

	// Before v8 the response has no room for record errors.
	if p := produce(7, "keyed", rawBatch(t, keys, stamps, false)); p.ErrorCode != kerr.InvalidRecord.Code || len(p.ErrorRecords) != 0 || p.ErrorMessage != nil {
		t.Errorf("v7: code %v, %d record errors, message %v; want INVALID_RECORD alone", kerr.ErrorForCode(p.ErrorCode), len(p.ErrorRecords), p.ErrorMessage)
	}

	// A keyless record and a late one: the timestamp decides the code,
	// and both are listed.
	mixed := rawBatch(t, [][]byte{[]byte("a"), nil, []byte("c"), []byte("d")}, []int64{now, now, now - 2*3600_000, now}, false)
	p := produce(9, "keyed-bounded", mixed)
	var got []int32
	for _, e := range p.ErrorRecords {
		got = append(got, e.RelativeOffset)
	}
	if p.ErrorCode != kerr.InvalidTimestamp.Code || !slices.Equal(got, []int32{1, 2}) {
		t.Errorf("keyless and late: code %v, records %v; want INVALID_TIMESTAMP at [1 2]", kerr.ErrorForCode(p.ErrorCode), got)
	}

	ends, err := adm.ListEndOffsets(ctx, "keyed", "keyed-bounded")
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"keyed", "keyed-bounded"} {
		if o, _ := ends.Lookup(topic, 0); o.Offset != 0 {
			t.Errorf("%s ends at %d after refused batches, want 0", topic, o.Offset)
		}
	}
	for _, i := range bad {
		keys[i] = []byte("now keyed")
	}
	if p := produce(9, "keyed", rawBatch(t, keys, stamps, false)); p.ErrorCode != 0 || len(p.ErrorRecords) != 0 || p.BaseOffset != 0 {
		t.Errorf("all keyed: code %v, %d record errors, base offset %d", kerr.ErrorForCode(p.ErrorCode), len(p.ErrorRecords), p.BaseOffset)
	}
}
