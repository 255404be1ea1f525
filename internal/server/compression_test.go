package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/config"
)

// storedBatch is one batch as a raw Fetch returned it, with its records.
type storedBatch struct {
	kmsg.RecordBatch
	records []kmsg.Record
}

// fetchBatches reads partition 0 of topic from offset 0 with raw Fetch
// requests (kgo's consumer would hide the batches' attributes) until it
// holds n records and has reached the high watermark, and returns its
// batches, data and control alike. The
// requests name the topic, so they are capped at Fetch v12 (v13 names
// topics by id).
func fetchBatches(t *testing.T, ctx context.Context, ts *testServer, topic string, n int) []storedBatch {
	t.Helper()
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(kmsg.Fetch.Int16(), 12)
	cl := ts.client(t, kgo.MaxVersions(versions))
	var out []storedBatch
	got, offset, hw := 0, int64(0), int64(-1)
	for got < n || offset < hw { // to the end: the last marker of a transaction follows its records
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 500, 1, 16<<20
		req.IsolationLevel = 0 // read_uncommitted: every batch, aborted ones too
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition, p.FetchOffset, p.PartitionMaxBytes = 0, offset, 16<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.Partitions = topic, []kmsg.FetchRequestTopicPartition{p}
		req.Topics = []kmsg.FetchRequestTopic{rt}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("fetch %s at %d: %v", topic, offset, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("fetch %s: answered %+v", topic, resp)
		}
		rp := resp.Topics[0].Partitions[0]
		if rp.ErrorCode != 0 {
			t.Fatalf("fetch %s at %d: %v", topic, offset, kerr.ErrorForCode(rp.ErrorCode))
		}
		hw = rp.HighWatermark
		hs, err := splitStored(rp.RecordBatches)
		if err != nil {
			t.Fatalf("fetch %s at %d: %v", topic, offset, err)
		}
		for _, raw := range hs {
			rb, recs, err := batch.Records(raw, kgo.DefaultDecompressor())
			if err != nil {
				t.Fatalf("fetch %s: stored batch does not decode: %v", topic, err)
			}
			out = append(out, storedBatch{rb, recs})
			if rb.Attributes&0x20 == 0 {
				got += len(recs)
			}
			offset = rb.FirstOffset + int64(rb.LastOffsetDelta) + 1
		}
		if ctx.Err() != nil {
			t.Fatalf("fetch %s: %d of %d records after the deadline", topic, got, n)
		}
	}
	return out
}

// splitStored cuts a fetch answer's records into whole batches, checking
// each one's CRC as a client does (batch.Split, but control batches too).
func splitStored(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) >= batch.HeaderLen {
		info, err := batch.Peek(b)
		if err != nil {
			return nil, err
		}
		if info.Size > len(b) {
			break // a partial batch at the end of the answer
		}
		raw := b[:info.Size]
		if info.Attributes&0x20 == 0 {
			if _, err := batch.Split(bytes.Clone(raw)); err != nil {
				return nil, fmt.Errorf("stored batch at %d: %w", info.BaseOffset, err)
			}
		}
		out = append(out, raw)
		b = b[info.Size:]
	}
	return out, nil
}

// jsonEvent is record i's value: a 1 KiB JSON event, alike enough from
// one record to the next that a codec has something to find.
func jsonEvent(i int) []byte {
	v := fmt.Sprintf(`{"seq":%d,"host":"web-%02d","user":"user%04d","action":"login","src_ip":"10.0.%d.%d","message":"`, i, i%17, i*37%5000, i%256, i*7%256)
	v += strings.Repeat(fmt.Sprintf("event %d accepted for user%04d; ", i, i*37%5000), 40)
	return []byte(v[:1022] + `"}`)
}

// checkRecords compares the data records of batches with n records
// produced by makeRecord-like rules: key k<i>, value jsonEvent(i), header
// h=i, timestamp ts0+i.
func checkRecords(t *testing.T, batches []storedBatch, n int, ts0 int64) {
	t.Helper()
	i := 0
	for _, b := range batches {
		if b.Attributes&0x20 != 0 {
			continue
		}
		for _, r := range b.records {
			off := b.FirstOffset + int64(r.OffsetDelta)
			if off != int64(i) || string(r.Key) != fmt.Sprint("k", i) || !bytes.Equal(r.Value, jsonEvent(i)) ||
				len(r.Headers) != 1 || string(r.Headers[0].Value) != fmt.Sprint(i) || batch.Timestamp(&b.RecordBatch, &r) != ts0+int64(i) {
				t.Fatalf("record %d: offset %d key %q header %v timestamp %d value %.40q; want offset %d, key k%d, header h=%d, timestamp %d",
					i, off, r.Key, r.Headers, batch.Timestamp(&b.RecordBatch, &r), r.Value, i, i, i, ts0+int64(i))
			}
			i++
		}
	}
	if i != n {
		t.Fatalf("read %d records, want %d", i, n)
	}
}

func produceEvents(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, from, to int, ts0 int64) {
	t.Helper()
	for i := from; i < to; i++ {
		r := &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint("k", i)), Value: jsonEvent(i), Timestamp: time.UnixMilli(ts0 + int64(i)),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(fmt.Sprint(i))}}}
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce %s: %v", r.Key, err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// codecsOf lists the codecs of the data batches.
func codecsOf(batches []storedBatch) []int8 {
	var out []int8
	for _, b := range batches {
		if b.Attributes&0x20 == 0 {
			out = append(out, int8(b.Attributes&7))
		}
	}
	return out
}

// TestRecompression: a topic whose compression.type names a codec stores
// every batch a franz-go producer sends in another codec in its own, as
// Kafka does: for each codec, uncompressed batches (zstd ones for the
// uncompressed topic) come back from a raw Fetch in the topic's codec,
// their CRCs valid, with every record's offset, key, value, header and
// timestamp as produced, and a consumer reads them. A compression.type
// =producer topic keeps the producer's codec, and the broker counts the
// bytes before and after on /metrics.
func TestRecompression(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, 2*time.Minute)
	adm := ts.admin(t)
	const n = 600
	ts0 := time.Now().Add(-time.Minute).UnixMilli()
	for i, c := range []struct {
		topicCodec string
		produced   kgo.CompressionCodec
		want       int8
	}{
		{"uncompressed", kgo.ZstdCompression(), batch.CodecNone},
		{"gzip", kgo.NoCompression(), batch.CodecGzip},
		{"snappy", kgo.NoCompression(), batch.CodecSnappy},
		{"lz4", kgo.NoCompression(), batch.CodecLz4},
		{"zstd", kgo.NoCompression(), batch.CodecZstd},
		{"zstd", kgo.Lz4Compression(), batch.CodecZstd},
		{"producer", kgo.NoCompression(), batch.CodecNone},
		{"producer", kgo.SnappyCompression(), batch.CodecSnappy},
	} {
		topic := fmt.Sprintf("recompress-%d-%s", i, c.topicCodec)
		t.Run(topic, func(t *testing.T) {
			createTopics(t, ctx, adm, 1, map[string]*string{"compression.type": kadm.StringPtr(c.topicCodec)}, topic)
			stats := ts.srv.Recompression()
			batches0, in0, out0 := stats.Batches.Load(), stats.BytesIn.Load(), stats.BytesOut.Load()
			cl := ts.client(t, kgo.ProducerBatchCompression(c.produced), kgo.ProducerLinger(10*time.Millisecond),
				kgo.ProducerBatchMaxBytes(64<<10), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			produceEvents(t, ctx, cl, topic, 0, n, ts0)
			batches := fetchBatches(t, ctx, ts, topic, n)
			codecs := codecsOf(batches)
			for i, got := range codecs {
				if got != c.want {
					t.Fatalf("batch %d of %d stored with codec %d, want %d (%s)", i, len(codecs), got, c.want, batch.CodecName(c.want))
				}
			}
			checkRecords(t, batches, n, ts0)
			if got := readFromStart(t, ctx, ts, topic, 0, n); string(got[n-1].Value) != string(jsonEvent(n-1)) {
				t.Errorf("consumer read %.40q last, want %.40q", got[n-1].Value, jsonEvent(n-1))
			}
			rebuilt, in, out := stats.Batches.Load()-batches0, stats.BytesIn.Load()-in0, stats.BytesOut.Load()-out0
			switch c.topicCodec {
			case "producer":
				if rebuilt != 0 {
					t.Errorf("%d batches recompressed on a compression.type=producer topic", rebuilt)
				}
			case "uncompressed":
				if rebuilt < int64(len(codecs)) || out <= in {
					t.Errorf("%d batches counted as recompressed (%d stored), %d bytes in, %d out: want every batch, larger", rebuilt, len(codecs), in, out)
				}
			default:
				// JSON compresses at least 2x from uncompressed, and zstd
				// does better than lz4.
				if rebuilt < int64(len(codecs)) || out >= in || (c.produced == kgo.NoCompression() && in <= 2*out) {
					t.Errorf("%d batches counted as recompressed (%d stored), %d bytes in, %d out: want every batch, smaller", rebuilt, len(codecs), in, out)
				}
			}
			t.Logf("%d batches, %d bytes as produced, %d stored", len(codecs), in, out)
		})
	}
	// The counters reach the admin listener's /metrics.
	_, body := httpGet(t, "http://"+ts.srv.AdminAddr()+"/metrics")
	stats := ts.srv.Recompression()
	for name, v := range map[string]int64{"vigil_recompressed_batches_total": stats.Batches.Load(),
		"vigil_recompress_in_bytes_total": stats.BytesIn.Load(), "vigil_recompress_out_bytes_total": stats.BytesOut.Load()} {
		_, rest, _ := strings.Cut(body, "\n"+name+" ")
		line, _, _ := strings.Cut(rest, "\n")
		if got, err := strconv.ParseFloat(line, 64); v == 0 || err != nil || got != float64(v) {
			t.Errorf("/metrics: %s %q, want %d", name, line, v)
		}
	}
}

// TestRecompressionKeepsSameCodec: a batch already in the topic's codec
// is stored byte for byte as the producer compressed it, whatever level
// it used (Kafka compares the codec alone), and one in another codec that
// would exceed max.message.bytes once rebuilt is refused with
// MESSAGE_TOO_LARGE, as Kafka checks the size again after recompressing.
func TestRecompressionKeepsSameCodec(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, time.Minute)
	adm := ts.admin(t)
	createTopics(t, ctx, adm, 1, map[string]*string{"compression.type": kadm.StringPtr("zstd"), "compression.zstd.level": kadm.StringPtr("19")}, "same-codec")
	createTopics(t, ctx, adm, 1, map[string]*string{"compression.type": kadm.StringPtr("uncompressed"), "max.message.bytes": kadm.StringPtr("8000")}, "grows")
	cl := ts.client(t)

	var body []byte
	for i := range 20 {
		r := kmsg.Record{OffsetDelta: int32(i), Value: jsonEvent(i)}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		body = r.AppendTo(body)
	}
	// zstd at its fastest: the topic's level 19 would compress otherwise.
	comp, err := kgo.DefaultCompressor(kgo.ZstdCompression().WithLevel(1))
	if err != nil {
		t.Fatal(err)
	}
	zbody, _ := comp.Compress(new(bytes.Buffer), body)
	raw := encodeBatch(batch.CodecZstd, 20, bytes.Clone(zbody))
	if len(raw) > 8000 || len(body) <= 8000 {
		t.Fatalf("test data: %d bytes compressed, %d not: want the first under 8000 and the second over", len(raw), len(body))
	}
	for _, topic := range []string{"same-codec", "grows"} {
		req := produceReq(topic, 0, -1, bytes.Clone(raw))
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		sp := resp.Topics[0].Partitions[0]
		switch topic {
		case "same-codec":
			if sp.ErrorCode != 0 {
				t.Fatalf("produce to %s: %v", topic, kerr.ErrorForCode(sp.ErrorCode))
			}
			stored := fetchBatches(t, ctx, ts, topic, 20)
			if len(stored) != 1 || !bytes.Equal(stored[0].Records, zbody) {
				t.Errorf("the zstd batch was rewritten in a zstd topic (%d batches)", len(stored))
			}
		case "grows":
			if sp.ErrorCode != kerr.MessageTooLarge.Code || sp.ErrorMessage == nil || !strings.Contains(*sp.ErrorMessage, "once recompressed as uncompressed") {
				t.Errorf("produce to %s: %v %v, want MESSAGE_TOO_LARGE naming the recompression", topic, kerr.ErrorForCode(sp.ErrorCode), sp.ErrorMessage)
			}
			end, err := adm.ListEndOffsets(ctx, topic)
			if o, _ := end.Lookup(topic, 0); err != nil || o.Offset != 0 {
				t.Errorf("end offset of %s %+v %v, want 0: nothing stored", topic, o, err)
			}
		}
	}
}

// configValue is the value of the config named key among configs.
func configValue(configs []kadm.Config, key string) string {
	for _, kv := range configs {
		if kv.Key == key {
			return kv.MaybeValue()
		}
	}
	return ""
}

// finishBatch sets an encoded batch's length and CRC-32C.
func finishBatch(raw []byte) []byte {
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// encodeBatch wraps records (already compressed with codec) into a
// magic-v2 batch with a valid CRC and no producer.
func encodeBatch(codec int8, n int, records []byte) []byte {
	rb := kmsg.RecordBatch{Magic: 2, PartitionLeaderEpoch: -1, Attributes: int16(codec), LastOffsetDelta: int32(n - 1),
		FirstTimestamp: time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli(), ProducerID: -1, ProducerEpoch: -1,
		FirstSequence: -1, NumRecords: int32(n), Records: records}
	return finishBatch(rb.AppendTo(nil))
}

// TestRecompressionIdempotentAndTransactional: recompressed batches keep
// what idempotence and transactions rest on. An idempotent producer's
// batches are stored in zstd with its producer id, epoch and contiguous
// sequences, and a batch sent again is answered with its first offset,
// not stored twice; a transactional producer's committed transaction is
// read by a read_committed consumer and its aborted one is not, its
// batches stored in zstd with the transactional bit, the markers left as
// the broker writes them.
func TestRecompressionIdempotentAndTransactional(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, 2*time.Minute)
	adm := ts.admin(t)
	zstd := map[string]*string{"compression.type": kadm.StringPtr("zstd")}
	createTopics(t, ctx, adm, 1, zstd, "recompress-idem", "recompress-txn")
	ts0 := time.Now().Add(-time.Minute).UnixMilli()

	// Idempotent (franz-go's default), uncompressed.
	const n = 400
	idem := ts.client(t, kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(32<<10), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceEvents(t, ctx, idem, "recompress-idem", 0, n, ts0)
	batches := fetchBatches(t, ctx, ts, "recompress-idem", n)
	if len(batches) < 3 {
		t.Fatalf("%d batches: want several, to check sequences across them", len(batches))
	}
	seq := int32(0)
	for i, b := range batches {
		if b.Attributes&7 != int16(batch.CodecZstd) || b.ProducerID < 0 || b.ProducerID != batches[0].ProducerID ||
			b.ProducerEpoch != batches[0].ProducerEpoch || b.FirstSequence != seq {
			t.Fatalf("batch %d: codec %d, producer %d epoch %d sequence %d; want zstd, producer %d epoch %d sequence %d",
				i, b.Attributes&7, b.ProducerID, b.ProducerEpoch, b.FirstSequence, batches[0].ProducerID, batches[0].ProducerEpoch, seq)
		}
		seq += b.NumRecords
	}
	checkRecords(t, batches, n, ts0)

	// The same idempotent batch twice, raw: the retry is recognised after
	// recompression, answered with the first offset and not stored again.
	var body []byte
	for i := range 5 {
		r := kmsg.Record{OffsetDelta: int32(i), Value: jsonEvent(i)}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		body = r.AppendTo(body)
	}
	rb := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: 4, FirstTimestamp: ts0, MaxTimestamp: ts0,
		ProducerID: batches[0].ProducerID, ProducerEpoch: batches[0].ProducerEpoch, FirstSequence: seq, NumRecords: 5, Records: body}
	raw := finishBatch(rb.AppendTo(nil))
	var bases []int64
	for range 2 {
		resp, err := produceReq("recompress-idem", 0, -1, bytes.Clone(raw)).RequestWith(ctx, idem)
		if err != nil {
			t.Fatal(err)
		}
		sp := resp.Topics[0].Partitions[0]
		if sp.ErrorCode != 0 {
			t.Fatalf("raw idempotent produce: %v", kerr.ErrorForCode(sp.ErrorCode))
		}
		bases = append(bases, sp.BaseOffset)
	}
	end, err := adm.ListEndOffsets(ctx, "recompress-idem")
	if o, _ := end.Lookup("recompress-idem", 0); err != nil || bases[0] != n || bases[1] != n || o.Offset != n+5 {
		t.Errorf("duplicate batch answered at %v, end offset %+v (%v); want %d twice and end %d", bases, o, err, n, n+5)
	}

	// Transactional, uncompressed: one transaction committed, one aborted.
	txn := ts.client(t, kgo.TransactionalID("recompress-txn"), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(32<<10))
	for _, commit := range []bool{true, false} {
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		from := 0
		if !commit {
			from = 100
		}
		produceEvents(t, ctx, txn, "recompress-txn", from, from+100, ts0)
		if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	// EndTransaction returns once the outcome is decided; the markers
	// follow: wait for both (200 records and 2 markers).
	for {
		end, err := adm.ListEndOffsets(ctx, "recompress-txn")
		if o, _ := end.Lookup("recompress-txn", 0); err == nil && o.Offset == 202 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the transactions' markers were not written: end offset %+v %v", end, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	batches = fetchBatches(t, ctx, ts, "recompress-txn", 200)
	markers := 0
	for i, b := range batches {
		switch {
		case b.Attributes&0x20 != 0:
			markers++
			if b.Attributes&7 != 0 {
				t.Errorf("marker %d compressed (codec %d)", i, b.Attributes&7)
			}
		case b.Attributes&7 != int16(batch.CodecZstd) || b.Attributes&0x10 == 0 || b.ProducerID < 0:
			t.Errorf("transactional batch %d: attributes %#x producer %d, want zstd, transactional, with a producer id", i, b.Attributes, b.ProducerID)
		}
	}
	if markers != 2 {
		t.Errorf("%d markers stored, want 2 (a commit and an abort)", markers)
	}
	rc := ts.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"recompress-txn": {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	var got []*kgo.Record
	for len(got) < 100 {
		fs := rc.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("read_committed: %v", err)
		}
		got = append(got, fs.Records()...)
	}
	// The aborted records are past the committed ones: one more poll must
	// return nothing of them.
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	got = append(got, rc.PollFetches(pctx).Records()...)
	if len(got) != 100 {
		t.Fatalf("read_committed read %d records, want the 100 committed", len(got))
	}
	for i, r := range got {
		if !bytes.Equal(r.Value, jsonEvent(i)) {
			t.Fatalf("read_committed record %d: %.40q, want %.40q", i, r.Value, jsonEvent(i))
		}
	}
}

// TestRecompressionAlterConfigs: the codec follows the topic's config as
// it changes: batches produced under compression.type=producer,
// then lz4, gzip (AlterConfigs), and the default again (the config
// deleted with IncrementalAlterConfigs) are stored in those codecs in
// turn; DescribeConfigs shows each setting.
func TestRecompressionAlterConfigs(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, time.Minute)
	adm := ts.admin(t)
	const topic = "recompress-alter"
	createTopics(t, ctx, adm, 1, nil, topic)
	cl := ts.client(t, kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ts0 := time.Now().Add(-time.Minute).UnixMilli()
	describe := func() string {
		rc, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		c, err := rc.On(topic, nil)
		if err != nil {
			t.Fatal(err)
		}
		return configValue(c.Configs, "compression.type")
	}
	steps := []struct {
		set  *string // nil: delete the topic's own value
		want int8
	}{
		{kadm.StringPtr("producer"), batch.CodecNone},
		{kadm.StringPtr("lz4"), batch.CodecLz4},
		{kadm.StringPtr("gzip"), batch.CodecGzip},
		{nil, batch.CodecNone},
	}
	var want []int8
	for i, s := range steps {
		var err error
		var shown string
		if s.set != nil {
			var ar kadm.AlterConfigsResponses
			ar, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "compression.type", Value: s.set}}, topic)
			if err == nil {
				err = ar[0].Err
			}
			shown = *s.set
		} else {
			var ar kadm.AlterConfigsResponses
			ar, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "compression.type"}}, topic)
			if err == nil {
				err = ar[0].Err
			}
			shown = "producer" // the broker's default
		}
		if err != nil {
			t.Fatalf("step %d: alter: %v", i, err)
		}
		if got := describe(); got != shown {
			t.Errorf("step %d: described compression.type=%q, want %q", i, got, shown)
		}
		// Each step's records are one synchronous produce: one batch.
		recs := make([]*kgo.Record, 10)
		for j := range recs {
			k := i*10 + j
			recs[j] = &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint("k", k)), Value: jsonEvent(k), Timestamp: time.UnixMilli(ts0 + int64(k)),
				Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(fmt.Sprint(k))}}}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("step %d: produce: %v", i, err)
		}
		want = append(want, s.want)
	}
	batches := fetchBatches(t, ctx, ts, topic, 10*len(steps))
	if got := codecsOf(batches); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("codecs of the stored batches %v, want %v (none, lz4, gzip, none)", got, want)
	}
	checkRecords(t, batches, 10*len(steps), ts0)
}

// TestRecompressionBrokerDefault: --compression-type is the default of
// every topic that sets none (DescribeConfigs shows it, on the topic and
// the broker), a topic's own compression.type=producer overrides it, and
// the broker-level compression.type and levels are refused at runtime
// (INVALID_REQUEST), since the flag and the topics set them.
func TestRecompressionBrokerDefault(t *testing.T) {
	ts := startServer(t, t.TempDir(), func(c *config.Broker) { c.CompressionType = "lz4" })
	ctx := testCtx(t, time.Minute)
	adm := ts.admin(t)
	createTopics(t, ctx, adm, 1, nil, "default-lz4")
	createTopics(t, ctx, adm, 1, map[string]*string{"compression.type": kadm.StringPtr("producer")}, "own-producer")
	cl := ts.client(t, kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ts0 := time.Now().Add(-time.Minute).UnixMilli()
	for topic, want := range map[string]int8{"default-lz4": batch.CodecLz4, "own-producer": batch.CodecNone} {
		produceEvents(t, ctx, cl, topic, 0, 50, ts0)
		batches := fetchBatches(t, ctx, ts, topic, 50)
		for _, got := range codecsOf(batches) {
			if got != want {
				t.Errorf("%s: a batch stored with codec %d, want %d", topic, got, want)
			}
		}
		checkRecords(t, batches, 50, ts0)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "default-lz4")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := rc.On("default-lz4", nil); err != nil || configValue(c.Configs, "compression.type") != "lz4" {
		t.Errorf("topic default not shown as lz4: %v %v", err, configValue(c.Configs, "compression.type"))
	}
	bc, err := adm.DescribeBrokerConfigs(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := bc.On("0", nil); err != nil || configValue(c.Configs, "compression.type") != "lz4" {
		t.Errorf("broker compression.type not shown as lz4: %v %q", err, configValue(c.Configs, "compression.type"))
	}
	for _, name := range []string{"compression.type", "compression.zstd.level"} {
		v := "3"
		if name == "compression.type" {
			v = "zstd"
		}
		ar, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: name, Value: &v}})
		if err == nil && len(ar) == 1 {
			err = ar[0].Err
		}
		if !errors.Is(err, kerr.InvalidRequest) {
			t.Errorf("broker config %s=%s: %v, want INVALID_REQUEST", name, v, err)
		}
	}
}

// TestRecompressionLogAppendTime: on a LogAppendTime topic the rebuilt
// batch is stamped as a batch stored as it came is: the timestamp-type
// bit set and the append time as its max timestamp, which consumers read
// as every record's timestamp.
func TestRecompressionLogAppendTime(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, time.Minute)
	adm := ts.admin(t)
	createTopics(t, ctx, adm, 1, map[string]*string{"compression.type": kadm.StringPtr("zstd"),
		"message.timestamp.type": kadm.StringPtr("LogAppendTime")}, "recompress-appended")
	cl := ts.client(t, kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	before := time.Now().UnixMilli()
	produceEvents(t, ctx, cl, "recompress-appended", 0, 50, old)
	after := time.Now().UnixMilli()
	for _, b := range fetchBatches(t, ctx, ts, "recompress-appended", 50) {
		if b.Attributes&7 != int16(batch.CodecZstd) || b.Attributes&0x08 == 0 || b.MaxTimestamp < before || b.MaxTimestamp > after {
			t.Errorf("batch at %d: attributes %#x, max timestamp %d; want zstd, LogAppendTime, within [%d, %d]", b.FirstOffset, b.Attributes, b.MaxTimestamp, before, after)
		}
		for _, r := range b.records {
			if got := batch.Timestamp(&b.RecordBatch, &r); got != b.MaxTimestamp {
				t.Fatalf("record at %d read with timestamp %d, want the append time %d", b.FirstOffset+int64(r.OffsetDelta), got, b.MaxTimestamp)
			}
		}
	}
}
