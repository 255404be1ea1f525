package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/config"
)

// ---------------------------------------------------------------------------
// Test harness: an in-process broker on a random port.

type testServer struct {
	t       *testing.T
	srv     *Server
	cfg     config.Broker
	addr    string
	serveCh chan error
	closed  bool
}

func testConfig(t *testing.T, dataDir string) config.Broker {
	cfg := config.Default()
	cfg.AdminListen = "127.0.0.1:0" // never collide with a broker on the default port
	cfg.Listen = "127.0.0.1:0"
	cfg.Advertised = "127.0.0.1:0"
	cfg.DataDir = dataDir
	cfg.ObjectStore = filepath.Join(dataDir, "objects")
	cfg.WAL = "file"
	cfg.WALSync = true
	cfg.UploadInterval = 200 * time.Millisecond
	return cfg
}

func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("VIGIL_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

// tWriter sends log lines to t.Log, so they only show for failing tests.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startServer starts a broker over dataDir; mod may adjust the config.
func startServer(t *testing.T, dataDir string, mod func(*config.Broker)) *testServer {
	t.Helper()
	cfg := testConfig(t, dataDir)
	if mod != nil {
		mod(&cfg)
	}
	srv, err := Start(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	ts := &testServer{t: t, srv: srv, cfg: cfg, addr: srv.Addr().String(), serveCh: make(chan error, 1)}
	go func() { ts.serveCh <- srv.Serve() }()
	t.Cleanup(func() {
		if !ts.closed {
			ts.close()
		}
	})
	return ts
}

func (ts *testServer) close() {
	ts.t.Helper()
	ts.closed = true
	if err := ts.srv.Close(); err != nil {
		ts.t.Errorf("close server: %v", err)
	}
	select {
	case err := <-ts.serveCh:
		if err != nil {
			ts.t.Errorf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		ts.t.Errorf("Serve did not return after Close")
	}
}

func (ts *testServer) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(ts.addr),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.RetryTimeout(20 * time.Second),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (ts *testServer) admin(t *testing.T) *kadm.Client {
	return kadm.NewClient(ts.client(t))
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func createTopics(t *testing.T, ctx context.Context, adm *kadm.Client, partitions int32, configs map[string]*string, topics ...string) {
	t.Helper()
	resp, err := adm.CreateTopics(ctx, partitions, 1, configs, topics...)
	if err != nil {
		t.Fatalf("create topics %v: %v", topics, err)
	}
	if err := resp.Error(); err != nil {
		t.Fatalf("create topics %v: %v", topics, err)
	}
}

// ---------------------------------------------------------------------------
// Deterministic records: everything about record i is derived from i, so
// the consumer needs no copy of what was produced.

const (
	rtTopics     = 3
	rtPartitions = 12
)

var tsBase = time.Now().Add(-time.Hour).UnixMilli()

func recTopic(i int) int     { return i % rtTopics }
func recPartition(i int) int { return (i / rtTopics) % rtPartitions }

// recIndex is the inverse: the index of the k-th record of (topic, partition).
func recIndex(topic, partition int, k int64) int {
	return rtTopics*(rtPartitions*int(k)+partition) + topic
}

// recCount is how many of n records land in (topic, partition).
func recCount(n, topic, partition int) int64 {
	first := recIndex(topic, partition, 0)
	if first >= n {
		return 0
	}
	return int64((n-1-first)/(rtTopics*rtPartitions) + 1)
}

func recKey(dst []byte, i int) []byte {
	dst = append(dst, "key-"...)
	return strconv.AppendInt(dst, int64(i), 10)
}

// recValue varies in length (16..~100 bytes) and is compressible.
func recValue(dst []byte, i int) []byte {
	dst = append(dst, "value-"...)
	dst = strconv.AppendInt(dst, int64(i), 10)
	dst = append(dst, ':')
	n := i % 73
	for j := 0; j < n; j++ {
		dst = append(dst, byte('a'+(i+j)%26))
	}
	return dst
}

func recHeaderValue(dst []byte, i int) []byte {
	dst = append(dst, "h-"...)
	return strconv.AppendInt(dst, int64(i*7), 10)
}

func recTimestamp(i int) int64 { return tsBase + int64(i) }

func makeRecord(topics []string, i int) *kgo.Record {
	return &kgo.Record{
		Topic:     topics[recTopic(i)],
		Partition: int32(recPartition(i)),
		Key:       recKey(nil, i),
		Value:     recValue(nil, i),
		Headers:   []kgo.RecordHeader{{Key: "idx", Value: recHeaderValue(nil, i)}},
		Timestamp: time.UnixMilli(recTimestamp(i)),
	}
}

// produceAll produces records [from, to) asynchronously and waits.
func produceAll(t *testing.T, ctx context.Context, cl *kgo.Client, topics []string, from, to int) {
	t.Helper()
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := from; i < to; i++ {
		wg.Add(1)
		cl.Produce(ctx, makeRecord(topics, i), func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				if failed.Add(1) == 1 {
					firstErr.Store(fmt.Errorf("produce %s/%d: %w", r.Topic, r.Partition, err))
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d produces failed; first: %v", n, firstErr.Load())
	}
}

// consumeVerify consumes topics from the start until n records (the
// deterministic set [0, n)) have been read, and checks each one: offset,
// order, key, value, headers and timestamp.
func consumeVerify(t *testing.T, ctx context.Context, ts *testServer, topics []string, n int) {
	t.Helper()
	parts := map[string]map[int32]kgo.Offset{}
	topicIdx := map[string]int{}
	for ti, name := range topics {
		topicIdx[name] = ti
		parts[name] = map[int32]kgo.Offset{}
		for p := 0; p < rtPartitions; p++ {
			parts[name][int32(p)] = kgo.NewOffset().AtStart()
		}
	}
	cl := ts.client(t,
		kgo.ConsumePartitions(parts),
		kgo.FetchMaxBytes(16<<20),
		kgo.FetchMaxPartitionBytes(4<<20),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	defer cl.Close()

	var next [rtTopics][rtPartitions]int64
	var want [rtTopics][rtPartitions]int64
	for ti := range topics {
		for p := 0; p < rtPartitions; p++ {
			want[ti][p] = recCount(n, ti, p)
		}
	}
	var kbuf, vbuf, hbuf []byte
	got, errs := 0, 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before timeout: %v", got, n, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Errorf("fetch %s/%d: %v", topic, p, err)
			errs++
		})
		if errs > 0 {
			t.FailNow()
		}
		fs.EachRecord(func(r *kgo.Record) {
			if errs > 10 {
				return
			}
			ti, p := topicIdx[r.Topic], int(r.Partition)
			k := next[ti][p]
			next[ti][p]++
			got++
			fail := func(format string, args ...any) {
				errs++
				t.Errorf("%s/%d offset %d: "+format, append([]any{r.Topic, p, r.Offset}, args...)...)
			}
			if k >= want[ti][p] {
				fail("more records than produced (%d)", want[ti][p])
				return
			}
			if r.Offset != k {
				fail("record #%d has offset %d", k, r.Offset)
				return
			}
			i := recIndex(ti, p, k)
			kbuf, vbuf, hbuf = recKey(kbuf[:0], i), recValue(vbuf[:0], i), recHeaderValue(hbuf[:0], i)
			if !bytes.Equal(r.Key, kbuf) {
				fail("key %q, want %q", r.Key, kbuf)
			}
			if !bytes.Equal(r.Value, vbuf) {
				fail("value %q, want %q", r.Value, vbuf)
			}
			if len(r.Headers) != 1 || r.Headers[0].Key != "idx" || !bytes.Equal(r.Headers[0].Value, hbuf) {
				fail("headers %v, want idx=%q", r.Headers, hbuf)
			}
			if ms := r.Timestamp.UnixMilli(); ms != recTimestamp(i) {
				fail("timestamp %d, want %d", ms, recTimestamp(i))
			}
		})
		if errs > 0 {
			t.FailNow()
		}
	}
	for ti, name := range topics {
		for p := 0; p < rtPartitions; p++ {
			if next[ti][p] != want[ti][p] {
				t.Errorf("%s/%d: consumed %d records, want %d", name, p, next[ti][p], want[ti][p])
			}
		}
	}
}

// readFromStart reads n records of one partition from its start.
func readFromStart(t *testing.T, ctx context.Context, ts *testServer, topic string, partition int32, n int) []*kgo.Record {
	t.Helper()
	cl := ts.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().AtStart()}}))
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("read %d of %d records of %s/%d: %v", len(got), n, topic, partition, err)
		}
		got = append(got, fs.Records()...)
	}
	return got
}

func producer(ts *testServer, t *testing.T, codec kgo.CompressionCodec) *kgo.Client {
	return ts.client(t,
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerBatchMaxBytes(1<<20-1024),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(200_000),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
}

// ---------------------------------------------------------------------------
// 1. Round trip of every codec.

func TestRoundTripCodecs(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 20_000
	}
	// A small tail cache, so most fetches read segment objects.
	ts := startServer(t, t.TempDir(), func(c *config.Broker) { c.TailCacheBytes = 256 << 10 })
	adm := ts.admin(t)
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()},
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			ctx := testCtx(t, 10*time.Minute)
			topics := make([]string, rtTopics)
			for i := range topics {
				topics[i] = fmt.Sprintf("rt-%s-%d", c.name, i)
			}
			createTopics(t, ctx, adm, rtPartitions, nil, topics...)

			start := time.Now()
			cl := producer(ts, t, c.codec)
			produceAll(t, ctx, cl, topics, 0, n)
			cl.Close()
			produced := time.Since(start)

			// Every partition's end offset is exactly its record count.
			ends, err := adm.ListEndOffsets(ctx, topics...)
			if err != nil {
				t.Fatalf("list end offsets: %v", err)
			}
			for ti, name := range topics {
				for p := 0; p < rtPartitions; p++ {
					o, ok := ends.Lookup(name, int32(p))
					if !ok || o.Err != nil || o.Offset != recCount(n, ti, p) {
						t.Fatalf("%s/%d end offset %+v (found %v), want %d", name, p, o, ok, recCount(n, ti, p))
					}
				}
			}

			start = time.Now()
			consumeVerify(t, ctx, ts, topics, n)
			consumed := time.Since(start)
			t.Logf("codec %s: %d records produced in %v (%.0f rec/s), consumed and verified in %v (%.0f rec/s)",
				c.name, n, produced.Round(time.Millisecond), float64(n)/produced.Seconds(),
				consumed.Round(time.Millisecond), float64(n)/consumed.Seconds())
		})
	}
}

// ---------------------------------------------------------------------------
// 2. Clean restart serves everything from objects.

func TestRestartServesFromObjects(t *testing.T) {
	n := 30_000
	if testing.Short() {
		n = 6_000
	}
	dir := t.TempDir()
	topics := []string{"restart-a", "restart-b", "restart-c"}

	ts := startServer(t, dir, nil)
	ctx := testCtx(t, 3*time.Minute)
	createTopics(t, ctx, ts.admin(t), rtPartitions, nil, topics...)
	cl := producer(ts, t, kgo.SnappyCompression())
	produceAll(t, ctx, cl, topics, 0, n)
	cl.Close()
	ts.close()

	walDir := filepath.Join(dir, "wal")
	if ents, err := os.ReadDir(walDir); err == nil && len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("WAL dir still holds %v after a clean close", names)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read WAL dir: %v", err)
	}
	objs := 0
	filepath.WalkDir(filepath.Join(dir, "objects"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			objs++
		}
		return nil
	})
	if objs == 0 {
		t.Fatalf("no objects were uploaded")
	}

	ts2 := startServer(t, dir, nil)
	consumeVerify(t, ctx, ts2, topics, n)

	// New produce continues at the next offset of each partition.
	cl2 := producer(ts2, t, kgo.NoCompression())
	extra := rtTopics * rtPartitions * 3
	for i := n; i < n+extra; i++ {
		r := makeRecord(topics, i)
		res := cl2.ProduceSync(ctx, r)
		if err := res.FirstErr(); err != nil {
			t.Fatalf("produce after restart: %v", err)
		}
		ti, p := recTopic(i), recPartition(i)
		// Records [0, i) of this partition come before it.
		wantOff := recCount(i, ti, p)
		if got := res[0].Record.Offset; got != wantOff {
			t.Fatalf("%s/%d: produce after restart got offset %d, want %d", r.Topic, p, got, wantOff)
		}
	}
	consumeVerify(t, ctx, ts2, topics, n+extra)
}

// ---------------------------------------------------------------------------
// 3. Bad input over raw TCP.

type rawConn struct {
	t    *testing.T
	nc   net.Conn
	r    *bufio.Reader
	fmtr *kmsg.RequestFormatter
	corr int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, r: bufio.NewReader(nc), fmtr: kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw-test"))}
}

func (c *rawConn) write(b []byte) error {
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.nc.Write(b)
	return err
}

// send writes req at its set version and returns the correlation id.
func (c *rawConn) send(req kmsg.Request) int32 {
	c.t.Helper()
	c.corr++
	if err := c.write(c.fmtr.AppendRequest(nil, req, c.corr)); err != nil {
		c.t.Fatalf("write %s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return c.corr
}

// readFrame reads one response frame.
func (c *rawConn) readFrame() ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var sz [4]byte
	if _, err := io.ReadFull(c.r, sz[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint32(sz[:]))
	_, err := io.ReadFull(c.r, buf)
	return buf, err
}

// roundTrip sends req and decodes the response into resp (whose version
// is set to the request's unless the caller set respVersion >= 0).
func (c *rawConn) roundTrip(req kmsg.Request, respVersion int16) kmsg.Response {
	c.t.Helper()
	corr := c.send(req)
	frame, err := c.readFrame()
	if err != nil {
		c.t.Fatalf("read %s response: %v", kmsg.NameForKey(req.Key()), err)
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != corr {
		c.t.Fatalf("correlation id %d, want %d", got, corr)
	}
	body := frame[4:]
	resp := req.ResponseKind()
	if respVersion < 0 {
		respVersion = req.GetVersion()
	}
	resp.SetVersion(respVersion)
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		body = body[1:] // empty response header tags
	}
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("decode %s response: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

// expectClosed asserts the broker closes the connection.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	_, err := c.r.Read(b[:])
	if err == nil {
		c.t.Fatalf("connection still open: read a byte")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("connection not closed by the broker within 10s")
	}
}

func (c *rawConn) apiVersionsOK() {
	c.t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "raw-test", "1.0"
	resp := c.roundTrip(req, -1).(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		c.t.Fatalf("ApiVersions: error %d, %d keys", resp.ErrorCode, len(resp.ApiKeys))
	}
}

// encodeRecord encodes one record with its length prefix.
func encodeRecord(delta int32, key, value []byte) []byte {
	r := kmsg.Record{OffsetDelta: delta, Key: key, Value: value, TimestampDelta64: 0}
	body := r.AppendTo(nil) // with Length 0: a 1-byte prefix
	r.Length = int32(len(body) - 1)
	return r.AppendTo(nil)
}

// makeBatch builds a valid uncompressed v2 batch of n records, each
// valueSize bytes of value.
func makeBatch(n int, valueSize int) []byte {
	var recs []byte
	for i := 0; i < n; i++ {
		recs = append(recs, encodeRecord(int32(i), []byte("k"+strconv.Itoa(i)), bytes.Repeat([]byte{'v'}, valueSize))...)
	}
	now := time.Now().UnixMilli()
	rb := kmsg.RecordBatch{
		FirstOffset:          0,
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(n - 1),
		FirstTimestamp:       now,
		MaxTimestamp:         now,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(n),
		Records:              recs,
	}
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	crc := crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli))
	binary.BigEndian.PutUint32(raw[17:], crc)
	return raw
}

func produceReq(topic string, partition int32, acks int16, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = acks
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func (c *rawConn) produce(topic string, partition int32, acks int16, records []byte) kmsg.ProduceResponseTopicPartition {
	c.t.Helper()
	resp := c.roundTrip(produceReq(topic, partition, acks, records), -1).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		c.t.Fatalf("produce response shape: %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	var wantCode int16
	if want != nil {
		wantCode = want.Code
	}
	if got != wantCode {
		t.Errorf("%s: error code %d (%v), want %d (%v)", what, got, kerr.ErrorForCode(got), wantCode, want)
	}
}

func TestBadInput(t *testing.T) {
	ts := startServer(t, t.TempDir(), func(c *config.Broker) {
		c.AutoCreateTopics = false
		c.MaxRequestBytes = 1 << 20
	})
	ctx := testCtx(t, time.Minute)
	adm := ts.admin(t)
	createTopics(t, ctx, adm, 2, nil, "bad-input")
	createTopics(t, ctx, adm, 1, map[string]*string{"max.message.bytes": kadm.StringPtr("2000")}, "small-messages")

	good := dialRaw(t, ts.addr)
	good.apiVersionsOK()

	t.Run("oversized frame", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		var sz [4]byte
		binary.BigEndian.PutUint32(sz[:], uint32(ts.cfg.MaxRequestBytes)+1)
		if err := c.write(sz[:]); err != nil {
			t.Fatal(err)
		}
		c.expectClosed()
		good.apiVersionsOK()

		// A negative size is as bad.
		c2 := dialRaw(t, ts.addr)
		c2.write([]byte{0xff, 0xff, 0xff, 0xf0, 0, 1, 2, 3})
		c2.expectClosed()
		// And one too small to hold a header.
		c3 := dialRaw(t, ts.addr)
		c3.write([]byte{0, 0, 0, 4, 0, 18, 0, 0})
		c3.expectClosed()
		good.apiVersionsOK()
	})

	t.Run("truncated frame", func(t *testing.T) {
		for i := 0; i < 5; i++ {
			c := dialRaw(t, ts.addr)
			frame := c.fmtr.AppendRequest(nil, produceReq("bad-input", 0, -1, makeBatch(3, 10)), 1)
			if err := c.write(frame[:len(frame)/2+i]); err != nil {
				t.Fatal(err)
			}
			c.nc.Close()
		}
		good.apiVersionsOK()
		// Nothing of the truncated produces was appended.
		ends, err := adm.ListEndOffsets(ctx, "bad-input")
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := ends.Lookup("bad-input", 0); o.Offset != 0 {
			t.Errorf("end offset %d after truncated produces, want 0", o.Offset)
		}
	})

	t.Run("garbage body", func(t *testing.T) {
		// Unknown API key: the connection is closed.
		c := dialRaw(t, ts.addr)
		c.write([]byte{0, 0, 0, 10, 0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0, 0})
		c.expectClosed()
		// A Metadata v1 whose body is cut short: closed too.
		c2 := dialRaw(t, ts.addr)
		c2.write([]byte{0, 0, 0, 13, 0, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0})
		c2.expectClosed()
		// A produce of an unsupported version: closed.
		c3 := dialRaw(t, ts.addr)
		req := produceReq("bad-input", 0, -1, makeBatch(1, 1))
		req.SetVersion(2)
		c3.send(req)
		c3.expectClosed()
		good.apiVersionsOK()
	})

	t.Run("valid batch is accepted", func(t *testing.T) {
		sp := good.produce("bad-input", 1, -1, makeBatch(5, 20))
		wantCode(t, "valid produce", sp.ErrorCode, nil)
		if sp.BaseOffset != 0 {
			t.Errorf("base offset %d, want 0", sp.BaseOffset)
		}
		sp = good.produce("bad-input", 1, 1, makeBatch(2, 20))
		wantCode(t, "valid produce acks=1", sp.ErrorCode, nil)
		if sp.BaseOffset != 5 {
			t.Errorf("base offset %d, want 5", sp.BaseOffset)
		}
	})

	t.Run("corrupt CRC", func(t *testing.T) {
		b := makeBatch(3, 10)
		b[len(b)-1] ^= 0x01
		sp := good.produce("bad-input", 0, -1, b)
		wantCode(t, "corrupt CRC", sp.ErrorCode, kerr.CorruptMessage)
		// Corrupt the CRC field itself.
		b = makeBatch(3, 10)
		b[18] ^= 0xff
		sp = good.produce("bad-input", 0, -1, b)
		wantCode(t, "corrupt CRC field", sp.ErrorCode, kerr.CorruptMessage)
		// A batch length longer than the data.
		b = makeBatch(3, 10)
		binary.BigEndian.PutUint32(b[8:], uint32(len(b)))
		sp = good.produce("bad-input", 0, -1, b)
		wantCode(t, "overlong batch length", sp.ErrorCode, kerr.CorruptMessage)
		good.apiVersionsOK()
	})

	t.Run("unknown topic", func(t *testing.T) {
		sp := good.produce("no-such-topic", 0, -1, makeBatch(1, 10))
		wantCode(t, "missing topic", sp.ErrorCode, kerr.UnknownTopicOrPartition)
		sp = good.produce("bad-input", 7, -1, makeBatch(1, 10))
		wantCode(t, "missing partition", sp.ErrorCode, kerr.UnknownTopicOrPartition)
		sp = good.produce("bad-input", -1, -1, makeBatch(1, 10))
		wantCode(t, "negative partition", sp.ErrorCode, kerr.UnknownTopicOrPartition)
		// And no auto-creation happened.
		md := kmsg.NewPtrMetadataRequest()
		md.SetVersion(9)
		name := "no-such-topic"
		md.Topics = []kmsg.MetadataRequestTopic{{Topic: &name}}
		md.AllowAutoTopicCreation = true
		resp := good.roundTrip(md, -1).(*kmsg.MetadataResponse)
		if len(resp.Topics) != 1 {
			t.Fatalf("metadata: %d topics", len(resp.Topics))
		}
		wantCode(t, "metadata of missing topic", resp.Topics[0].ErrorCode, kerr.UnknownTopicOrPartition)
	})

	t.Run("ApiVersions v99", func(t *testing.T) {
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(99)
		resp := good.roundTrip(req, 0).(*kmsg.ApiVersionsResponse)
		wantCode(t, "ApiVersions v99", resp.ErrorCode, kerr.UnsupportedVersion)
		keys := map[int16]kmsg.ApiVersionsResponseApiKey{}
		for _, k := range resp.ApiKeys {
			keys[k.ApiKey] = k
		}
		for _, k := range []kmsg.Key{kmsg.Produce, kmsg.Fetch, kmsg.Metadata, kmsg.ApiVersions, kmsg.CreateTopics} {
			if _, ok := keys[k.Int16()]; !ok {
				t.Errorf("v0 ApiVersions answer lacks %s", kmsg.NameForKey(k.Int16()))
			}
		}
		if av := keys[kmsg.ApiVersions.Int16()]; av.MinVersion != 0 || av.MaxVersion < 3 {
			t.Errorf("ApiVersions range %d..%d", av.MinVersion, av.MaxVersion)
		}
		// The connection is still usable.
		good.apiVersionsOK()
	})

	t.Run("message too large", func(t *testing.T) {
		sp := good.produce("small-messages", 0, -1, makeBatch(1, 3000))
		wantCode(t, "batch over max.message.bytes", sp.ErrorCode, kerr.MessageTooLarge)
		sp = good.produce("small-messages", 0, -1, makeBatch(1, 1000))
		wantCode(t, "batch under max.message.bytes", sp.ErrorCode, nil)
	})

	t.Run("invalid acks", func(t *testing.T) {
		for _, acks := range []int16{2, -2, 5} {
			sp := good.produce("bad-input", 0, acks, makeBatch(1, 10))
			wantCode(t, fmt.Sprintf("acks=%d", acks), sp.ErrorCode, kerr.InvalidRequiredAcks)
		}
	})

	t.Run("acks=0 gets no response", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		c.send(produceReq("bad-input", 1, 0, makeBatch(1, 10)))
		c.apiVersionsOK() // the next response is ApiVersions', by correlation id
	})

	// Nothing bad was stored: partition 0 of bad-input is still empty and
	// partition 1 has exactly the accepted records.
	ends, err := adm.ListEndOffsets(ctx, "bad-input")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("bad-input", 0); o.Offset != 0 {
		t.Errorf("bad-input/0 end offset %d, want 0", o.Offset)
	}
	// Partition 1 has the 7 acknowledged records and, once the WAL has
	// taken it, the acks=0 one.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ends, err := adm.ListEndOffsets(ctx, "bad-input")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := ends.Lookup("bad-input", 1)
		if o.Offset == 8 {
			break
		}
		if o.Offset != 7 || time.Now().After(deadline) {
			t.Fatalf("bad-input/1 end offset %d, want 8", o.Offset)
		}
	}

	// A franz-go client still works after all that.
	cl := ts.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "bad-input", Partition: 0, Value: []byte("fine")}).FirstErr(); err != nil {
		t.Fatalf("franz-go produce after bad input: %v", err)
	}
}

// ---------------------------------------------------------------------------
// 4. Admin APIs via kadm.

func TestAdmin(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, 2*time.Minute)
	cl := ts.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)

	t.Run("create", func(t *testing.T) {
		// Validate-only creates nothing.
		vr, err := adm.ValidateCreateTopics(ctx, 3, 1, map[string]*string{"retention.ms": kadm.StringPtr("3600000")}, "adm-validate")
		if err != nil || vr.Error() != nil {
			t.Fatalf("validate create: %v %v", err, vr.Error())
		}
		if r := vr["adm-validate"]; r.NumPartitions != 3 {
			t.Errorf("validate create partitions %d, want 3", r.NumPartitions)
		}
		td, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if td.Has("adm-validate") {
			t.Errorf("validate-only create made the topic")
		}

		r, err := adm.CreateTopic(ctx, 4, 3, map[string]*string{
			"retention.ms":      kadm.StringPtr("86400000"),
			"max.message.bytes": kadm.StringPtr("500000"),
		}, "adm-topic")
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if r.NumPartitions != 4 || r.ReplicationFactor != 1 {
			t.Errorf("create answered %d partitions, rf %d", r.NumPartitions, r.ReplicationFactor)
		}
		_, err = adm.CreateTopic(ctx, 4, 1, nil, "adm-topic")
		if !errors.Is(err, kerr.TopicAlreadyExists) {
			t.Errorf("duplicate create: %v, want TOPIC_ALREADY_EXISTS", err)
		}
		if _, err = adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact,delete")}, "adm-compact"); err != nil {
			t.Errorf("create compact,delete: %v", err)
		}
		_, err = adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("shred")}, "adm-shred")
		if !errors.Is(err, kerr.InvalidConfig) {
			t.Errorf("create cleanup.policy=shred: %v, want INVALID_CONFIG", err)
		}
		_, err = adm.CreateTopic(ctx, 1, 1, map[string]*string{"no.such.config": kadm.StringPtr("1")}, "adm-unknown-config")
		if !errors.Is(err, kerr.InvalidConfig) {
			t.Errorf("create with unknown config: %v, want INVALID_CONFIG", err)
		}
		_, err = adm.CreateTopic(ctx, 1, 1, nil, "bad/name")
		if !errors.Is(err, kerr.InvalidTopicException) {
			t.Errorf("create bad name: %v, want INVALID_TOPIC_EXCEPTION", err)
		}
		_, err = adm.CreateTopic(ctx, 0, 1, nil, "adm-zero")
		if !errors.Is(err, kerr.InvalidPartitions) {
			t.Errorf("create 0 partitions: %v, want INVALID_PARTITIONS", err)
		}
	})

	describe := func(t *testing.T, topic string) map[string]kadm.Config {
		t.Helper()
		rc, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatalf("describe configs: %v", err)
		}
		c, err := rc.On(topic, nil)
		if err != nil || c.Err != nil {
			t.Fatalf("describe configs %s: %v %v", topic, err, c.Err)
		}
		out := map[string]kadm.Config{}
		for _, kv := range c.Configs {
			out[kv.Key] = kv
		}
		return out
	}

	t.Run("configs", func(t *testing.T) {
		cfgs := describe(t, "adm-topic")
		check := func(name, want string, source kmsg.ConfigSource) {
			t.Helper()
			c, ok := cfgs[name]
			if !ok {
				t.Errorf("config %s missing", name)
				return
			}
			if c.MaybeValue() != want || c.Source != source {
				t.Errorf("config %s = %q (source %v), want %q (%v)", name, c.MaybeValue(), c.Source, want, source)
			}
		}
		check("retention.ms", "86400000", kmsg.ConfigSourceDynamicTopicConfig)
		check("max.message.bytes", "500000", kmsg.ConfigSourceDynamicTopicConfig)
		check("cleanup.policy", "delete", kmsg.ConfigSourceDefaultConfig)

		ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("7200000")}}, "adm-topic")
		if err != nil {
			t.Fatalf("alter: %v", err)
		}
		for _, r := range ar {
			if r.Err != nil {
				t.Fatalf("alter %s: %v", r.Name, r.Err)
			}
		}
		cfgs = describe(t, "adm-topic")
		check("retention.ms", "7200000", kmsg.ConfigSourceDynamicTopicConfig)
		check("max.message.bytes", "500000", kmsg.ConfigSourceDynamicTopicConfig)

		ar, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact,shred")}}, "adm-topic")
		if err != nil {
			t.Fatalf("alter compact,shred: %v", err)
		}
		if len(ar) != 1 || !errors.Is(ar[0].Err, kerr.InvalidConfig) {
			t.Errorf("alter cleanup.policy=compact,shred: %+v, want INVALID_CONFIG", ar)
		}
		ar, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("soon")}}, "adm-topic")
		if err != nil {
			t.Fatalf("alter bad value: %v", err)
		}
		if len(ar) != 1 || !errors.Is(ar[0].Err, kerr.InvalidConfig) {
			t.Errorf("alter retention.ms=soon: %+v, want INVALID_CONFIG", ar)
		}
		// Deleting a config reverts it to the default.
		ar, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "max.message.bytes"}}, "adm-topic")
		if err != nil || ar[0].Err != nil {
			t.Fatalf("alter delete: %v %+v", err, ar)
		}
		cfgs = describe(t, "adm-topic")
		check("max.message.bytes", strconv.Itoa(int(ts.cfg.MaxMessageBytes)), kmsg.ConfigSourceDefaultConfig)
		check("retention.ms", "7200000", kmsg.ConfigSourceDynamicTopicConfig)
		check("cleanup.policy", "delete", kmsg.ConfigSourceDefaultConfig)

		rc, err := adm.DescribeTopicConfigs(ctx, "adm-missing")
		if err == nil {
			if c, _ := rc.On("adm-missing", nil); !errors.Is(c.Err, kerr.UnknownTopicOrPartition) {
				t.Errorf("describe missing topic: %v", c.Err)
			}
		}
	})

	t.Run("partitions", func(t *testing.T) {
		cr, err := adm.CreatePartitions(ctx, 2, "adm-topic")
		if err != nil || cr.Error() != nil {
			t.Fatalf("create partitions: %v %v", err, cr.Error())
		}
		td, err := adm.ListTopics(ctx, "adm-topic")
		if err != nil {
			t.Fatal(err)
		}
		if n := len(td["adm-topic"].Partitions); n != 6 {
			t.Errorf("adm-topic has %d partitions after adding 2, want 6", n)
		}
		cr, err = adm.UpdatePartitions(ctx, 3, "adm-topic")
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(cr.Error(), kerr.InvalidPartitions) {
			t.Errorf("shrinking partitions: %v, want INVALID_PARTITIONS", cr.Error())
		}
		// The new partition takes records.
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "adm-topic", Partition: 5, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatalf("produce to new partition: %v", err)
		}
	})

	t.Run("offsets", func(t *testing.T) {
		createTopics(t, ctx, adm, 2, nil, "adm-offsets")
		base := time.Now().Add(-10 * time.Minute).UnixMilli()
		// Partition 0: 100 records with timestamps base, base+1000, ...; one
		// per request so each is its own batch. Partition 1 stays empty.
		var recs []*kgo.Record
		for i := 0; i < 100; i++ {
			ts := base + int64(i)*1000
			if i == 50 {
				ts = base + 500_000 // out of order: the max timestamp
			}
			recs = append(recs, &kgo.Record{Topic: "adm-offsets", Partition: 0, Value: []byte(strconv.Itoa(i)), Timestamp: time.UnixMilli(ts)})
		}
		for i := 0; i < 100; i += 10 {
			if err := cl.ProduceSync(ctx, recs[i:i+10]...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		lookup := func(lo kadm.ListedOffsets, err error, p int32) kadm.ListedOffset {
			t.Helper()
			if err != nil {
				t.Fatalf("list offsets: %v", err)
			}
			o, ok := lo.Lookup("adm-offsets", p)
			if !ok || o.Err != nil {
				t.Fatalf("list offsets p%d: %+v %v", p, o, ok)
			}
			return o
		}
		lookup0 := func(lo kadm.ListedOffsets, err error) kadm.ListedOffset {
			t.Helper()
			return lookup(lo, err, 0)
		}
		if o := lookup0(adm.ListStartOffsets(ctx, "adm-offsets")); o.Offset != 0 {
			t.Errorf("start offset %d, want 0", o.Offset)
		}
		if o := lookup0(adm.ListEndOffsets(ctx, "adm-offsets")); o.Offset != 100 {
			t.Errorf("end offset %d, want 100", o.Offset)
		}
		lo, err := adm.ListEndOffsets(ctx, "adm-offsets")
		if o := lookup(lo, err, 1); o.Offset != 0 {
			t.Errorf("empty partition end offset %d, want 0", o.Offset)
		}
		// By timestamp: the first record at or after the time.
		for _, c := range []struct {
			ms      int64
			off, ts int64
		}{
			{base - 5000, 0, base},
			{base, 0, base},
			{base + 1, 1, base + 1000},
			{base + 25_500, 26, base + 26_000},
			{base + 49_001, 50, base + 500_000}, // 50 carries the big timestamp
			{base + 60_000, 50, base + 500_000},
			{base + 99_000, 50, base + 500_000},
		} {
			o := lookup0(adm.ListOffsetsAfterMilli(ctx, c.ms, "adm-offsets"))
			if o.Offset != c.off || o.Timestamp != c.ts {
				t.Errorf("offset after %d (base%+d): offset %d ts %d, want %d ts %d", c.ms, c.ms-base, o.Offset, o.Timestamp, c.off, c.ts)
			}
		}
		// After every timestamp: Kafka answers offset -1 (kadm maps it to the end).
		lo, err = adm.ListOffsetsAfterMilli(ctx, base+600_000, "adm-offsets")
		if o := lookup(lo, err, 0); o.Offset != -1 && o.Offset != 100 {
			t.Errorf("offset after the last timestamp: %d, want -1 or the end", o.Offset)
		}
		if o := lookup0(adm.ListMaxTimestampOffsets(ctx, "adm-offsets")); o.Offset != 50 || o.Timestamp != base+500_000 {
			t.Errorf("max timestamp: offset %d ts %d, want 50 ts %d", o.Offset, o.Timestamp, base+500_000)
		}

		// Wait for an upload so the lookups above also work from objects.
		time.Sleep(3 * ts.cfg.UploadInterval)
		if o := lookup0(adm.ListOffsetsAfterMilli(ctx, base+25_500, "adm-offsets")); o.Offset != 26 {
			t.Errorf("offset by timestamp after upload: %d, want 26", o.Offset)
		}

		// DeleteRecords moves the start offset.
		dr, err := adm.DeleteRecords(ctx, kadm.Offsets{"adm-offsets": {0: {Topic: "adm-offsets", Partition: 0, At: 37}}})
		if err != nil || dr.Error() != nil {
			t.Fatalf("delete records: %v %v", err, dr.Error())
		}
		if r, _ := dr.Lookup("adm-offsets", 0); r.LowWatermark != 37 {
			t.Errorf("delete records low watermark %d, want 37", r.LowWatermark)
		}
		if o := lookup0(adm.ListStartOffsets(ctx, "adm-offsets")); o.Offset != 37 {
			t.Errorf("start offset after delete records %d, want 37", o.Offset)
		}
		// Beyond the end is refused.
		dr, err = adm.DeleteRecords(ctx, kadm.Offsets{"adm-offsets": {0: {Topic: "adm-offsets", Partition: 0, At: 500}}})
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(dr.Error(), kerr.OffsetOutOfRange) {
			t.Errorf("delete records past the end: %v, want OFFSET_OUT_OF_RANGE", dr.Error())
		}

		tds, err := adm.ListTopics(ctx, "adm-offsets")
		if err != nil || tds["adm-offsets"].Err != nil {
			t.Fatalf("list topics: %v %v", err, tds["adm-offsets"].Err)
		}
		fetchAt := func(off int64) kmsg.FetchResponseTopicPartition {
			t.Helper()
			req := kmsg.NewPtrFetchRequest()
			req.MaxWaitMillis = 100
			req.MaxBytes = 1 << 20
			req.SessionEpoch = -1
			rt := kmsg.NewFetchRequestTopic()
			// By name up to Fetch v12, by id from v13 (the version
			// franz-go picks).
			rt.Topic, rt.TopicID = "adm-offsets", tds["adm-offsets"].ID
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 0, off, 1<<20, -1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := cl.Broker(int(ts.cfg.NodeID)).Request(ctx, req)
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			fr := resp.(*kmsg.FetchResponse)
			if fr.ErrorCode != 0 || len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
				t.Fatalf("fetch response: %+v", fr)
			}
			return fr.Topics[0].Partitions[0]
		}
		sp := fetchAt(36)
		wantCode(t, "fetch below the start offset", sp.ErrorCode, kerr.OffsetOutOfRange)
		if sp.LogStartOffset != 37 {
			t.Errorf("log start offset in fetch %d, want 37", sp.LogStartOffset)
		}
		sp = fetchAt(37)
		wantCode(t, "fetch at the start offset", sp.ErrorCode, nil)
		if len(sp.RecordBatches) == 0 {
			t.Errorf("fetch at the start offset returned no data")
		}
		sp = fetchAt(101)
		wantCode(t, "fetch past the end", sp.ErrorCode, kerr.OffsetOutOfRange)

		// A consumer from the start sees exactly 37..99.
		cons := ts.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"adm-offsets": {0: kgo.NewOffset().AtStart()}}))
		next := int64(37)
		for next < 100 {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consume after delete records: %v", ctx.Err())
			}
			if err := fs.Err(); err != nil {
				t.Fatalf("consume after delete records: %v", err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset != next || string(r.Value) != strconv.Itoa(int(next)) {
					t.Fatalf("record at %d: offset %d value %q", next, r.Offset, r.Value)
				}
				next++
			})
		}
		if o := lookup0(adm.ListOffsetsAfterMilli(ctx, base, "adm-offsets")); o.Offset != 37 {
			t.Errorf("offset by timestamp below the start: %d, want 37", o.Offset)
		}
	})

	t.Run("delete", func(t *testing.T) {
		r, err := adm.DeleteTopic(ctx, "adm-topic")
		if err != nil || r.Err != nil {
			t.Fatalf("delete topic: %v %v", err, r.Err)
		}
		td, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if td.Has("adm-topic") {
			t.Errorf("deleted topic still listed")
		}
		_, err = adm.DeleteTopic(ctx, "adm-topic")
		if !errors.Is(err, kerr.UnknownTopicOrPartition) {
			t.Errorf("delete twice: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
		}
		// The name can be reused, and starts empty.
		createTopics(t, ctx, adm, 1, nil, "adm-topic")
		lo, err := adm.ListEndOffsets(ctx, "adm-topic")
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := lo.Lookup("adm-topic", 0); o.Offset != 0 {
			t.Errorf("recreated topic end offset %d, want 0", o.Offset)
		}
	})
}

// TestPipelinedResponseNotHeldBack: a response is sent as soon as it is
// ready, not when the connection's queue drains. A produce pipelined ahead
// of a long-polling fetch on one connection is answered at once; before,
// it sat in the write buffer until the fetch's max wait ran out, and a
// producer with five requests in flight saw whole group commits added to
// its latency.
func TestPipelinedResponseNotHeldBack(t *testing.T) {
	ts := startServer(t, t.TempDir(), nil)
	ctx := testCtx(t, time.Minute)
	createTopics(t, ctx, ts.admin(t), 1, nil, "pipelined")
	c := dialRaw(t, ts.addr)

	const maxWait = 4 * time.Second
	fetch := kmsg.NewPtrFetchRequest()
	fetch.SetVersion(11)
	fetch.MaxWaitMillis = int32(maxWait / time.Millisecond)
	fetch.MinBytes = 1 << 20 // more than will arrive: the fetch waits out maxWait
	fetch.MaxBytes = 1 << 20
	fetch.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "pipelined"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 0, 1, 1<<20, -1
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)

	start := time.Now()
	c.corr++
	produceCorr := c.corr
	frames := c.fmtr.AppendRequest(nil, produceReq("pipelined", 0, 1, makeBatch(1, 100)), produceCorr)
	c.corr++
	fetchCorr := c.corr
	// AppendRequest writes the size at dst[0:4], so each frame gets its own.
	frames = append(frames, c.fmtr.AppendRequest(nil, fetch, fetchCorr)...)
	if err := c.write(frames); err != nil {
		t.Fatal(err)
	}
	frame, err := c.readFrame()
	if err != nil {
		t.Fatalf("read produce response: %v", err)
	}
	took := time.Since(start)
	if got := int32(binary.BigEndian.Uint32(frame)); got != produceCorr {
		t.Fatalf("first response has correlation id %d, want the produce's %d", got, produceCorr)
	}
	if took >= maxWait/2 {
		t.Fatalf("produce answered after %s: held back by the fetch pipelined behind it (max wait %s)", took, maxWait)
	}
	frame, err = c.readFrame()
	if err != nil {
		t.Fatalf("read fetch response: %v", err)
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != fetchCorr {
		t.Fatalf("second response has correlation id %d, want the fetch's %d", got, fetchCorr)
	}
	t.Logf("produce answered after %s, the fetch after %s", took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
