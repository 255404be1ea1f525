package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"

	vbench "github.com/vigilhq/vigil/bench"
)

func benchTable(fs *flag.FlagSet) benchRun {
	brokers := brokersFlag(fs)
	records := fs.Int("records", vbench.DefaultTableRecords, "OCSF events in the topic each run reads or writes into a table whole")
	partitions := fs.Int("partitions", vbench.DefaultExportPartitions, "partitions of the topic")
	rounds := fs.Int("rounds", vbench.DefaultRounds, "pairs of runs (plain consumer and table, interleaved); the medians are judged")
	return func(ctx context.Context, log *slog.Logger, out io.Writer) error {
		if *records < 1 || *partitions < 1 || *rounds < 1 {
			return errors.New("--records, --partitions and --rounds must be at least 1")
		}
		_, err := vbench.RunTable(ctx, vbench.TableOptions{Brokers: splitBrokers(*brokers), Records: *records,
			Partitions: *partitions, Rounds: *rounds, Logger: log, Out: out})
		return err
	}
}
