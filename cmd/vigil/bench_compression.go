package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"

	vbench "github.com/vigilhq/vigil/bench"
)

func benchCompression(fs *flag.FlagSet) benchRun {
	duration := fs.Duration("duration", vbench.DefaultTxnRunTime, "length of each run")
	rounds := fs.Int("rounds", vbench.DefaultRounds, "pairs of runs (compression.type producer and the codec, interleaved); the medians are compared")
	codec := fs.String("codec", "zstd", "compression.type of the recompressing topic: uncompressed, gzip, snappy, lz4 or zstd")
	level := fs.String("level", "", "compression.<codec>.level of the recompressing topic (empty: Kafka's default: gzip -1, lz4 9, zstd 3)")
	recordBytes := fs.Int("record-bytes", 1024, "size of each JSON event in bytes")
	partitions := fs.Int("partitions", 12, "partitions of each run's topic")
	return func(ctx context.Context, log *slog.Logger, out io.Writer) error {
		// Zero means the default in CompressionOptions: refuse it here
		// rather than run something else than asked.
		switch {
		case *duration <= 0:
			return errors.New("--duration must be positive")
		case *rounds < 1:
			return errors.New("--rounds must be at least 1")
		}
		_, err := vbench.RunCompression(ctx, vbench.CompressionOptions{Duration: *duration, Rounds: *rounds, Codec: *codec, Level: *level,
			RecordBytes: *recordBytes, Partitions: *partitions, Logger: log, Out: out})
		return err
	}
}
