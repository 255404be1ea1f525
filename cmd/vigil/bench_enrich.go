package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"time"

	vbench "github.com/vigilhq/vigil/bench"
)

func benchEnrich(fs *flag.FlagSet) benchRun {
	data := fs.String("data", "../shared/data", "shared data: geoip/test-data and warninglists/lists")
	events := fs.String("events", "internal/parse/testdata", "ingest golden files (<parser>/*.golden.json): the events enriched")
	iocs := fs.Int("iocs", 1_000_000, "indicators loaded (every MISP warninglist, then synthetic ones)")
	duration := fs.Duration("duration", 3*time.Second, "length of each phase")
	rounds := fs.Int("rounds", 5, "rounds of the baseline and enrichment phases; the median is judged")
	workers := fs.Int("workers", 0, "enriching goroutines (0: GOMAXPROCS)")
	return func(_ context.Context, _ *slog.Logger, out io.Writer) error {
		_, err := vbench.RunEnrich(vbench.EnrichOptions{Data: *data, Events: *events, IOCs: *iocs, Duration: *duration,
			Rounds: *rounds, Workers: *workers, Out: out})
		return err
	}
}
