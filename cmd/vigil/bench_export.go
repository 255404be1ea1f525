package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"

	vbench "github.com/vigilhq/vigil/bench"
)

func benchExport(fs *flag.FlagSet) benchRun {
	brokers := brokersFlag(fs)
	records := fs.Int("records", vbench.DefaultExportRecords, "OCSF events in the topic each run reads or delivers whole")
	partitions := fs.Int("partitions", vbench.DefaultExportPartitions, "partitions of the topic")
	rounds := fs.Int("rounds", vbench.DefaultRounds, "pairs of runs (plain consumer and export, interleaved); the medians are judged")
	return func(ctx context.Context, log *slog.Logger, out io.Writer) error {
		// Zero means the default in ExportOptions: refuse it here rather
		// than run something else than asked.
		if *records < 1 || *partitions < 1 || *rounds < 1 {
			return errors.New("--records, --partitions and --rounds must be at least 1")
		}
		_, err := vbench.RunExport(ctx, vbench.ExportOptions{Brokers: splitBrokers(*brokers), Records: *records,
			Partitions: *partitions, Rounds: *rounds, Logger: log, Out: out})
		return err
	}
}
