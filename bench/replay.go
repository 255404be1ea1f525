package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/server"
)

// ReplayOptions configures the replay benchmark.
type ReplayOptions struct {
	Bytes       int64 // record bytes to write, then replay
	Partitions  int
	RecordBytes int
	Logger      *slog.Logger
	Out         io.Writer
}

// ReplayResult holds the figures of one replay run.
type ReplayResult struct {
	CeilingMBps float64 // sequential read of the object files, no Kafka
	ReplayMBps  float64 // a consumer reading everything from the start
	Ratio       float64
	Hits        int64
	Misses      int64
	Prefetches  int64
}

// RunReplay writes Bytes of records through an in-process broker, restarts
// it so that everything is served from segment objects, and measures a
// consumer replaying all of it from the start, against the ceiling of
// reading the same object files sequentially in the same run.
func RunReplay(ctx context.Context, o ReplayOptions) (*ReplayResult, error) {
	if o.Bytes <= 0 || o.Partitions < 1 || o.RecordBytes < 1 {
		return nil, errors.New("need positive bytes, partitions and record bytes")
	}
	out, log := outputs(o.Out, o.Logger)
	dir, err := os.MkdirTemp("", "vigil-bench-replay-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg := config.Default()
	cfg.Listen, cfg.Advertised, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.DataDir = dir
	cfg.ObjectStore = filepath.Join(dir, "objects")
	cfg.RetentionMs = -1

	start := func() (*server.Server, chan error, error) {
		srv, err := server.Start(ctx, cfg, log)
		if err != nil {
			return nil, nil, err
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve() }()
		return srv, served, nil
	}
	srv, served, err := start()
	if err != nil {
		return nil, fmt.Errorf("start broker: %w", err)
	}
	topic := "vigil-bench-replay"
	fmt.Fprintf(out, "settings:      %d MiB of %d B records, %d partitions, in-process broker (data dir %s)\n",
		o.Bytes>>20, o.RecordBytes, o.Partitions, dir)
	if err := writeReplayData(ctx, srv.Addr().String(), topic, o); err != nil {
		srv.Close()
		return nil, err
	}
	// A clean restart uploads everything and drops the WAL: the replay
	// below reads only segment objects.
	if err := srv.Close(); err != nil {
		return nil, fmt.Errorf("close broker: %w", err)
	}
	<-served

	res := &ReplayResult{}
	if res.CeilingMBps, err = readFilesMBps(cfg.ObjectStore); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "\n[a] ceiling: sequential read of the segment object files from a cold page cache, no Kafka\n")
	fmt.Fprintf(out, "    throughput:            %.1f MB/s\n", res.CeilingMBps)

	if err := coldFiles(cfg.ObjectStore); err != nil {
		return nil, err
	}
	if srv, served, err = start(); err != nil {
		return nil, fmt.Errorf("restart broker: %w", err)
	}
	defer func() {
		srv.Close()
		<-served
	}()
	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr().String()), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(8<<20))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	t0 := time.Now()
	var got int64
	for got < o.Bytes {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		fs.EachRecord(func(r *kgo.Record) { got += int64(len(r.Value)) })
	}
	el := time.Since(t0)
	st := srv.ReadCacheStats()
	res.ReplayMBps = float64(got) / el.Seconds() / 1e6
	res.Ratio = res.ReplayMBps / res.CeilingMBps
	res.Hits, res.Misses, res.Prefetches = st.Hits, st.Misses, st.Prefetches
	fmt.Fprintf(out, "\n[b] replay: one franz-go consumer reads everything from the start (all from objects, cold page cache)\n")
	fmt.Fprintf(out, "    throughput:            %.1f MB/s (%.2f x ceiling) in %s\n", res.ReplayMBps, res.Ratio, el.Round(time.Millisecond))
	fmt.Fprintf(out, "    block cache:           %d hits, %d misses, %d prefetched\n", st.Hits, st.Misses, st.Prefetches)
	return res, nil
}

func writeReplayData(ctx context.Context, addr, topic string, o ReplayOptions) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, int32(o.Partitions), 1, nil, topic); err != nil {
		return fmt.Errorf("create %s: %w", topic, err)
	}
	value := make([]byte, o.RecordBytes)
	rand.Read(value)
	rec := &recorder{}
	for n := int64(0); n < o.Bytes; n += int64(o.RecordBytes) {
		cl.Produce(ctx, &kgo.Record{Value: value}, rec.promise(time.Now()))
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if rec.errs > 0 {
		return fmt.Errorf("write replay data: %d records failed, first: %w", rec.errs, rec.firstEr)
	}
	return nil
}

// segmentFiles lists the segment objects under dir.
func segmentFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".seg") {
			files = append(files, p)
		}
		return err
	})
	return files, err
}

// coldFiles drops the segment objects from the page cache, so the ceiling
// and the replay both read from the disk.
func coldFiles(dir string) error {
	files, err := segmentFiles(dir)
	if err != nil {
		return err
	}
	for _, p := range files {
		if err := dropCache(p); err != nil {
			return fmt.Errorf("drop page cache of %s: %w", p, err)
		}
	}
	return nil
}

// readFilesMBps reads every segment object under dir once, sequentially,
// from a cold page cache.
func readFilesMBps(dir string) (float64, error) {
	if err := coldFiles(dir); err != nil {
		return 0, err
	}
	files, err := segmentFiles(dir)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 1<<20)
	var n int64
	t0 := time.Now()
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return 0, err
		}
		for {
			k, err := f.Read(buf)
			n += int64(k)
			if err == io.EOF {
				break
			}
			if err != nil {
				f.Close()
				return 0, err
			}
		}
		f.Close()
	}
	return float64(n) / time.Since(t0).Seconds() / 1e6, nil
}
