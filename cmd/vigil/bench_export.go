package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	vbench "github.com/vigilhq/vigil/bench"
	"github.com/vigilhq/vigil/internal/export"
)

func benchExport(fs *flag.FlagSet) benchRun {
	brokers := brokersFlag(fs)
	records := fs.Int("records", vbench.DefaultExportRecords, "OCSF events in the topic each run reads or delivers whole")
	partitions := fs.Int("partitions", vbench.DefaultExportPartitions, "partitions of the topic")
	rounds := fs.Int("rounds", vbench.DefaultRounds, "pairs of runs (plain consumer and export, interleaved); the medians are judged")
	inFlight := fs.Int("max-in-flight", export.DefaultMaxInFlight, fmt.Sprintf("the export job's max_in_flight: requests to _bulk at once (1 to %d)", export.MaxInFlightLimit))
	return func(ctx context.Context, log *slog.Logger, out io.Writer) error {
		// Zero means the default in ExportOptions: refuse it here rather
		// than run something else than asked.
		if *records < 1 || *partitions < 1 || *rounds < 1 {
			return errors.New("--records, --partitions and --rounds must be at least 1")
		}
		if *inFlight < 1 || *inFlight > export.MaxInFlightLimit {
			return fmt.Errorf("--max-in-flight %d: must be 1 to %d", *inFlight, export.MaxInFlightLimit)
		}
		_, err := vbench.RunExport(ctx, vbench.ExportOptions{Brokers: splitBrokers(*brokers), Records: *records,
			Partitions: *partitions, Rounds: *rounds, MaxInFlight: *inFlight, Logger: log, Out: out})
		return err
	}
}
