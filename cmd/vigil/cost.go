package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/vigilhq/vigil/internal/cliflag"
	"github.com/vigilhq/vigil/internal/cost"
)

const costUsage = `Usage: vigil cost --ingest-gb-per-day N [flags]

Prints what a workload costs a month on a Vigil cluster (object store, WAL
chunk and upload PUTs, compaction and replay GETs, zone crossings,
brokers) and, with the same inputs, on Kafka keeping three replicas on
local disks, term by term with each formula's figures, and both totals.
Every price is a parameter; the defaults are AWS us-east-1 list prices,
assumptions to replace with your own. The formulas, the defaults and a
worked example: docs/cost.md.

Flags:
`

// costMain is `vigil cost`.
func costMain(args []string, stdout, stderr io.Writer) int {
	const name = "vigil cost"
	in := cost.Default()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stdout, costUsage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	}
	w, p, v, k := &in.Workload, &in.Prices, &in.Vigil, &in.Kafka
	fs.Float64Var(&w.IngestGBPerDay, "ingest-gb-per-day", 0, "GB (2^30 bytes) producers send a day, before compression (required)")
	fs.Float64Var(&w.RetentionDays, "retention-days", w.RetentionDays, "days records are kept (the default is Vigil's retention.ms)")
	fs.Float64Var(&w.ReplayFraction, "replay-fraction", w.ReplayFraction, "share of the retained data re-read a month (hunts, backfills, consumers far behind), 0 to 1")
	fs.IntVar(&w.Fanout, "fanout", w.Fanout, "consumer groups reading every record live")
	fs.IntVar(&w.Zones, "zones", w.Zones, "availability zones clients and brokers are spread over")
	fs.Float64Var(&w.CompressionRatio, "compression-ratio", w.CompressionRatio, "uncompressed / compressed bytes of the producers' batches (1: no compression)")
	fs.IntVar(&w.Partitions, "partitions", w.Partitions, "partitions of all topics together")
	fs.Float64Var(&w.BrokerMiBPerSec, "broker-mib-per-second", w.BrokerMiBPerSec, "network traffic (in + out, MiB/s) one broker carries at the planned utilization, both systems")

	fs.Float64Var(&p.StorageGBMonth, "price-storage-gb-month", p.StorageGBMonth, "object storage, USD per GB-month (S3 Standard)")
	fs.Float64Var(&p.PutPer1000, "price-put-per-1000", p.PutPer1000, "object PUT requests, USD per 1,000")
	fs.Float64Var(&p.GetPer1000, "price-get-per-1000", p.GetPer1000, "object GET requests, USD per 1,000")
	fs.Float64Var(&p.InterZoneGB, "price-inter-zone-gb", p.InterZoneGB, "inter-zone transfer, USD per GB charged on each side (a GB crossing costs twice this)")
	fs.Float64Var(&p.BlockGBMonth, "price-block-gb-month", p.BlockGBMonth, "Kafka's disks, USD per provisioned GB-month (gp3)")
	fs.Float64Var(&p.InstanceHour, "price-instance-hour", p.InstanceHour, "one broker's machine, USD per hour (m6i.xlarge on demand)")

	fs.DurationVar(&v.WALFlushInterval, "wal-flush-interval", v.WALFlushInterval, "Vigil's object WAL: one chunk PUT per interval while records arrive (vigil serve's flag)")
	fs.Int64Var(&v.WALFlushBytes, "wal-flush-bytes", v.WALFlushBytes, "Vigil's object WAL: largest chunk (vigil serve's flag)")
	fs.DurationVar(&v.UploadInterval, "upload-interval", v.UploadInterval, "Vigil: one segment upload per interval while records arrive (vigil serve's default on S3)")
	fs.Int64Var(&v.SegmentBytes, "segment-bytes", v.SegmentBytes, "Vigil: largest segment upload (vigil serve's default on S3)")
	fs.Int64Var(&v.CompactTargetBytes, "compact-target-bytes", v.CompactTargetBytes, "Vigil: compaction's largest object, 0: no compaction (vigil serve's flag)")
	fs.DurationVar(&v.RetentionCheckInterval, "retention-check-interval", v.RetentionCheckInterval, "Vigil: one compaction pass per interval (vigil serve's flag)")
	fs.Int64Var(&v.ReadBlockBytes, "read-block-bytes", v.ReadBlockBytes, "Vigil: bytes per GET of a catch-up read")

	fs.IntVar(&k.Replicas, "kafka-replicas", k.Replicas, "Kafka's replication factor")
	fs.Float64Var(&k.DiskHeadroom, "kafka-disk-headroom", k.DiskHeadroom, "share of each Kafka disk kept free")
	fs.BoolVar(&k.RackAwareFetch, "kafka-rack-aware-fetch", k.RackAwareFetch, "Kafka's consumers fetch from a replica in their zone (KIP-392, replica.selector.class)")

	output := fs.String("output", "text", "text, or json (the inputs, the derived figures and every term)")
	if ok, code := cliflag.Parse(fs, args, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		cliflag.Errorf(stderr, name, "unexpected argument %q", fs.Arg(0))
		return cliflag.ExitUsage
	}
	if *output != "text" && *output != "json" {
		cliflag.Errorf(stderr, name, "--output %q: want text or json", *output)
		return cliflag.ExitUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["ingest-gb-per-day"] {
		cliflag.Errorf(stderr, name, "--ingest-gb-per-day is required: the GB a day your producers send")
		return cliflag.ExitUsage
	}
	r, err := cost.Estimate(in)
	if err != nil {
		// Validate names each input as its flag, without the dashes.
		cliflag.Errorf(stderr, name, "--%s", strings.ReplaceAll(err.Error(), "\n", "; --"))
		return cliflag.ExitUsage
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(r)
	} else {
		err = cost.WriteText(stdout, r)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}
