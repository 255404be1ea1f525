package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"

	vbench "github.com/vigilhq/vigil/bench"
)

func benchTxn(fs *flag.FlagSet) benchRun {
	brokers := brokersFlag(fs)
	duration := fs.Duration("duration", vbench.DefaultTxnRunTime, "length of each run")
	txnDuration := fs.Duration("txn-duration", vbench.DefaultTxnDuration, "how long each transaction produces before it commits")
	rounds := fs.Int("rounds", vbench.DefaultRounds, "pairs of runs (idempotent and transactional, interleaved); the medians are judged")
	recordBytes := fs.Int("record-bytes", 1024, "record value size in bytes")
	partitions := fs.Int("partitions", 12, "partitions of each run's topic")
	txnVersion := fs.Int("txn-version", 0, "1: both producers capped at Produce v11, so the transactions use version 1 (AddPartitionsToTxn, the epoch kept) even where the brokers finalize 2; 0: the client's and the brokers' choice")
	return func(ctx context.Context, log *slog.Logger, out io.Writer) error {
		// Zero means the default in TxnOptions: refuse it here rather
		// than run something else than asked.
		switch {
		case *duration <= 0, *txnDuration <= 0:
			return errors.New("--duration and --txn-duration must be positive")
		case *rounds < 1:
			return errors.New("--rounds must be at least 1")
		}
		_, err := vbench.RunTxn(ctx, vbench.TxnOptions{Brokers: splitBrokers(*brokers), Duration: *duration, TxnDuration: *txnDuration,
			Rounds: *rounds, RecordBytes: *recordBytes, Partitions: *partitions, TxnVersion: *txnVersion, Logger: log, Out: out})
		return err
	}
}
