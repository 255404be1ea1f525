// Package cost is the cost model behind `vigil cost`: what one workload
// costs per month on Vigil and, with the same inputs, on a Kafka cluster
// that keeps three replicas on local disks.
//
// The model is pure arithmetic over explicit inputs: a workload in the
// units an operator knows (GB ingested per day, days retained, how much of
// the history is replayed, how many consumer groups read live, how many
// zones), list prices, and the Vigil settings that decide how many
// requests it makes (the object WAL's flush interval, the segment upload
// interval and size, compaction). Each system's cost is a list of terms;
// each term carries its quantity, its unit price and the formula with the
// figures put in, so a reader can redo any line by hand. docs/cost.md
// explains every formula and every default price.
//
// Units: a GB is 2^30 bytes and a MiB 2^20 (as AWS bills storage and
// transfer); a month is 730 hours (AWS's convention for hourly prices),
// so 30 5/12 days. Amounts are US dollars. Workload volumes are what
// producers send before compression; CompressionRatio turns them into the
// bytes stored and moved, since both systems keep batches as producers
// compressed them.
package cost

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/readcache"
)

// Calendar and size units of the model.
const (
	HoursPerMonth   = 730
	SecondsPerMonth = HoursPerMonth * 3600
	DaysPerMonth    = HoursPerMonth / 24.0
	SecondsPerDay   = 86400
	GB              = 1 << 30
	MiB             = 1 << 20
)

// Workload is what the cluster has to carry.
type Workload struct {
	IngestGBPerDay   float64 `json:"ingest_gb_per_day"`  // what producers send, uncompressed
	RetentionDays    float64 `json:"retention_days"`     // how long records are kept
	ReplayFraction   float64 `json:"replay_fraction"`    // share of the retained data re-read per month (hunts, backfills, consumers far behind)
	Fanout           int     `json:"fanout"`             // consumer groups reading every record live
	Zones            int     `json:"zones"`              // availability zones clients and brokers are spread over
	CompressionRatio float64 `json:"compression_ratio"`  // uncompressed / compressed bytes of the producers' batches
	Partitions       int     `json:"partitions"`         // partitions of all topics together
	BrokerMiBPerSec  float64 `json:"broker_mib_per_sec"` // network traffic (in + out) one broker carries at the planned utilization
}

// Prices are unit list prices; Default's are AWS us-east-1 on-demand list
// prices, assumptions to override with the user's own (docs/cost.md).
type Prices struct {
	StorageGBMonth float64 `json:"storage_gb_month"` // object storage
	PutPer1000     float64 `json:"put_per_1000"`     // object PUT requests
	GetPer1000     float64 `json:"get_per_1000"`     // object GET requests
	InterZoneGB    float64 `json:"inter_zone_gb"`    // charged on each side: a GB that crosses zones costs twice this
	BlockGBMonth   float64 `json:"block_gb_month"`   // Kafka's provisioned disks
	InstanceHour   float64 `json:"instance_hour"`    // one broker's machine, the same for both systems
}

// Vigil holds the broker settings that decide its request counts: the
// defaults are those of `vigil serve` in a cluster on an s3:// store.
type Vigil struct {
	WALFlushInterval       time.Duration `json:"wal_flush_interval_ns"`
	WALFlushBytes          int64         `json:"wal_flush_bytes"`
	UploadInterval         time.Duration `json:"upload_interval_ns"`
	SegmentBytes           int64         `json:"segment_bytes"`
	CompactTargetBytes     int64         `json:"compact_target_bytes"` // 0: no compaction
	RetentionCheckInterval time.Duration `json:"retention_check_interval_ns"`
	ReadBlockBytes         int64         `json:"read_block_bytes"` // one GET per block a catch-up read needs
}

// Kafka describes the Kafka cluster compared against.
type Kafka struct {
	Replicas       int     `json:"replicas"`         // replication.factor
	DiskHeadroom   float64 `json:"disk_headroom"`    // share of each disk kept free
	RackAwareFetch bool    `json:"rack_aware_fetch"` // consumers fetch from a replica in their zone (KIP-392)
}

// Inputs is everything the model reads.
type Inputs struct {
	Workload Workload `json:"workload"`
	Prices   Prices   `json:"prices"`
	Vigil    Vigil    `json:"vigil"`
	Kafka    Kafka    `json:"kafka"`
}

// Default returns the documented defaults. IngestGBPerDay is left 0: there
// is no typical workload, so a caller must say what it has.
func Default() Inputs {
	broker := config.Default()
	return Inputs{
		Workload: Workload{
			// Vigil's default retention.ms.
			RetentionDays:    float64(broker.RetentionMs) / float64((24 * time.Hour).Milliseconds()),
			ReplayFraction:   0.1,
			Fanout:           3, // detect, enrich, export
			Zones:            3,
			CompressionRatio: 4, // JSON telemetry under lz4 or zstd; measure yours
			Partitions:       24,
			BrokerMiBPerSec:  100,
		},
		Prices: Prices{
			StorageGBMonth: 0.023,
			PutPer1000:     0.005,
			GetPer1000:     0.0004,
			InterZoneGB:    0.01,
			BlockGBMonth:   0.08,
			InstanceHour:   0.192, // m6i.xlarge
		},
		Vigil: Vigil{
			WALFlushInterval:       broker.WALFlushInterval,
			WALFlushBytes:          broker.WALFlushBytes,
			UploadInterval:         config.S3UploadInterval,
			SegmentBytes:           config.S3SegmentBytes,
			CompactTargetBytes:     broker.CompactTargetBytes,
			RetentionCheckInterval: broker.RetentionCheckInterval,
			ReadBlockBytes:         readcache.DefaultBlockBytes,
		},
		Kafka: Kafka{Replicas: 3, DiskHeadroom: 0.3},
	}
}

// Validate reports every input the model cannot use, each named as
// vigil cost's flag for it.
func (in Inputs) Validate() error {
	var errs []error
	positive := func(name string, v float64) {
		if !(v > 0) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("%s %v: must be a positive number", name, v))
		}
	}
	nonNegative := func(name string, v float64) {
		if !(v >= 0) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("%s %v: must be a number, 0 or more", name, v))
		}
	}
	atLeast := func(name string, v, min int) {
		if v < min {
			errs = append(errs, fmt.Errorf("%s %d: must be at least %d", name, v, min))
		}
	}
	w := in.Workload
	positive("ingest-gb-per-day", w.IngestGBPerDay)
	positive("retention-days", w.RetentionDays)
	if !(w.ReplayFraction >= 0 && w.ReplayFraction <= 1) {
		errs = append(errs, fmt.Errorf("replay-fraction %v: must be between 0 and 1 (the share of the retained data re-read in a month)", w.ReplayFraction))
	}
	atLeast("fanout", w.Fanout, 0)
	atLeast("zones", w.Zones, 1)
	if !(w.CompressionRatio >= 1) || math.IsInf(w.CompressionRatio, 0) {
		errs = append(errs, fmt.Errorf("compression-ratio %v: must be at least 1 (uncompressed / compressed bytes; 1 when producers do not compress)", w.CompressionRatio))
	}
	atLeast("partitions", w.Partitions, 1)
	positive("broker-mib-per-second", w.BrokerMiBPerSec)

	p := in.Prices
	nonNegative("price-storage-gb-month", p.StorageGBMonth)
	nonNegative("price-put-per-1000", p.PutPer1000)
	nonNegative("price-get-per-1000", p.GetPer1000)
	nonNegative("price-inter-zone-gb", p.InterZoneGB)
	nonNegative("price-block-gb-month", p.BlockGBMonth)
	nonNegative("price-instance-hour", p.InstanceHour)

	v := in.Vigil
	positive("wal-flush-interval", v.WALFlushInterval.Seconds())
	positive("wal-flush-bytes", float64(v.WALFlushBytes))
	positive("upload-interval", v.UploadInterval.Seconds())
	positive("segment-bytes", float64(v.SegmentBytes))
	nonNegative("compact-target-bytes", float64(v.CompactTargetBytes))
	positive("retention-check-interval", v.RetentionCheckInterval.Seconds())
	positive("read-block-bytes", float64(v.ReadBlockBytes))

	k := in.Kafka
	atLeast("kafka-replicas", k.Replicas, 1)
	if !(k.DiskHeadroom >= 0 && k.DiskHeadroom < 1) {
		errs = append(errs, fmt.Errorf("kafka-disk-headroom %v: must be at least 0 and below 1 (the share of each disk kept free)", k.DiskHeadroom))
	}
	return errors.Join(errs...)
}

// Term is one line of a system's monthly cost: Quantity units at Price
// each (per 1,000 for requests) make Monthly dollars.
type Term struct {
	Name     string  `json:"name"`
	Quantity float64 `json:"quantity"`
	Unit     string  `json:"unit"`
	Price    float64 `json:"price"`
	Per      string  `json:"per"`     // what Price is for: "GB-month", "1000 requests", ...
	Formula  string  `json:"formula"` // how Quantity follows from the inputs, with the figures
	Monthly  float64 `json:"monthly_usd"`
}

// System is one system's estimate.
type System struct {
	Name    string `json:"name"`
	Brokers int    `json:"brokers"`
	// BrokersFormula says how Brokers was chosen.
	BrokersFormula string  `json:"brokers_formula"`
	Terms          []Term  `json:"terms"`
	Total          float64 `json:"total_usd"`
}

// Report is the model's answer: the inputs it used and both systems.
type Report struct {
	Inputs  Inputs  `json:"inputs"`
	Derived Derived `json:"derived"`
	Vigil   System  `json:"vigil"`
	Kafka   System  `json:"kafka"`
}

// Derived holds the workload figures both systems' terms start from.
type Derived struct {
	StoredGBPerDay  float64 `json:"stored_gb_per_day"`     // IngestGBPerDay / CompressionRatio
	WrittenGBMonth  float64 `json:"written_gb_month"`      // StoredGBPerDay x DaysPerMonth
	RetainedGB      float64 `json:"retained_gb"`           // StoredGBPerDay x RetentionDays
	ReplayedGBMonth float64 `json:"replayed_gb_month"`     // ReplayFraction x RetainedGB
	WriteMiBPerSec  float64 `json:"write_mib_per_sec"`     // StoredGBPerDay in MiB/s
	ReplayMiBPerSec float64 `json:"replay_mib_per_sec"`    // ReplayedGBMonth in MiB/s, averaged over the month
	CrossZoneShare  float64 `json:"cross_zone_share"`      // (Zones-1)/Zones: the share of client traffic whose leader is in another zone
	SecondsPerMonth float64 `json:"seconds_per_month"`     // 730 hours
	DaysPerMonth    float64 `json:"days_per_month"`        // 730 / 24
	HoursPerMonth   float64 `json:"hours_per_month"`       // 730
	BytesPerGB      float64 `json:"bytes_per_gb"`          // 2^30
	InterZonePerGB  float64 `json:"inter_zone_usd_per_gb"` // 2 x InterZoneGB: both sides pay
}

// Estimate validates in and prices the workload on both systems.
func Estimate(in Inputs) (Report, error) {
	if err := in.Validate(); err != nil {
		return Report{}, err
	}
	d := derive(in)
	return Report{Inputs: in, Derived: d, Vigil: vigil(in, d), Kafka: kafka(in, d)}, nil
}

func derive(in Inputs) Derived {
	w := in.Workload
	stored := w.IngestGBPerDay / w.CompressionRatio
	retained := stored * w.RetentionDays
	replayed := w.ReplayFraction * retained
	return Derived{
		StoredGBPerDay:  stored,
		WrittenGBMonth:  stored * DaysPerMonth,
		RetainedGB:      retained,
		ReplayedGBMonth: replayed,
		WriteMiBPerSec:  stored * GB / MiB / SecondsPerDay,
		ReplayMiBPerSec: replayed * GB / MiB / SecondsPerMonth,
		CrossZoneShare:  float64(w.Zones-1) / float64(w.Zones),
		SecondsPerMonth: SecondsPerMonth,
		DaysPerMonth:    DaysPerMonth,
		HoursPerMonth:   HoursPerMonth,
		BytesPerGB:      GB,
		InterZonePerGB:  2 * in.Prices.InterZoneGB,
	}
}

// total sums a system's terms.
func total(terms []Term) float64 {
	var t float64
	for _, x := range terms {
		t += x.Monthly
	}
	return t
}

// brokersFor is the broker count that carries trafficMiB (MiB/s in + out
// over the cluster) at perBroker each, and never fewer than floor.
func brokersFor(trafficMiB, perBroker float64, floor int) int {
	return max(floor, int(math.Ceil(trafficMiB/perBroker)))
}

// perGBMonth, perThousand and perUnit build the three kinds of term.
func perGBMonth(name string, gb, price float64, formula string) Term {
	return Term{Name: name, Quantity: gb, Unit: "GB-month", Price: price, Per: "GB-month", Formula: formula, Monthly: gb * price}
}

func perThousand(name string, requests, price float64, formula string) Term {
	return Term{Name: name, Quantity: requests, Unit: "requests", Price: price, Per: "1000 requests", Formula: formula, Monthly: requests / 1000 * price}
}

func crossZone(name string, gb float64, d Derived, formula string) Term {
	return Term{Name: name, Quantity: gb, Unit: "GB crossing zones", Price: d.InterZonePerGB, Per: "GB crossing (both sides)", Formula: formula, Monthly: gb * d.InterZonePerGB}
}

func compute(brokers int, price float64) Term {
	hours := float64(brokers) * HoursPerMonth
	return Term{Name: "compute", Quantity: hours, Unit: "broker-hours", Price: price, Per: "hour",
		Formula: fmt.Sprintf("%d brokers x %d h", brokers, HoursPerMonth), Monthly: hours * price}
}

// num prints a figure inside a formula: up to two decimals from 1 up, four
// significant digits below, trailing zeros dropped.
func num(v float64) string {
	var s string
	if math.Abs(v) >= 1 || v == 0 {
		s = strconv.FormatFloat(v, 'f', 2, 64)
	} else {
		s = strconv.FormatFloat(v, 'g', 4, 64)
	}
	if strings.Contains(s, ".") && !strings.ContainsAny(s, "e") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
