package cost

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/config"
)

// round is the hand-computed case most tests start from. Its figures are
// chosen so the arithmetic stays short:
//
//	stored    = 2400 GB/day / 2             = 1200 GB/day
//	written   = 1200 x 730 / 24             = 36,500 GB a month
//	retained  = 1200 x 10 days              = 12,000 GB
//	replayed  = 0.5 x 12,000                = 6,000 GB a month
//	write     = 1200 x 1024 MiB / 86,400 s  = 14.2222 MiB/s
//	replay    = 6000 x 1024 / 2,628,000 s   = 2.3379 MiB/s
//	month     = 730 h x 3600                = 2,628,000 s
func round() Inputs {
	return Inputs{
		Workload: Workload{IngestGBPerDay: 2400, RetentionDays: 10, ReplayFraction: 0.5, Fanout: 2, Zones: 3,
			CompressionRatio: 2, Partitions: 12, BrokerMiBPerSec: 100},
		Prices: Prices{StorageGBMonth: 0.02, PutPer1000: 0.005, GetPer1000: 0.0004, InterZoneGB: 0.01,
			BlockGBMonth: 0.1, InstanceHour: 0.2},
		Vigil: Vigil{WALFlushInterval: 10 * time.Millisecond, WALFlushBytes: 4 << 20, UploadInterval: 250 * time.Millisecond,
			SegmentBytes: 16 << 20, CompactTargetBytes: 64 << 20, RetentionCheckInterval: time.Minute, ReadBlockBytes: 1 << 20},
		Kafka: Kafka{Replicas: 3, DiskHeadroom: 0.25},
	}
}

func estimate(t *testing.T, in Inputs) Report {
	t.Helper()
	r, err := Estimate(in)
	if err != nil {
		t.Fatalf("Estimate: %v", err)
	}
	return r
}

// near compares within a millionth (relative), enough for sums of floats.
func near(got, want float64) bool {
	return math.Abs(got-want) <= 1e-6*math.Max(1, math.Abs(want))
}

// check compares a system's terms, by name, with want: quantity and
// dollars. Every term must be wanted.
func check(t *testing.T, s System, want map[string][2]float64) {
	t.Helper()
	compare(t, s, want, true)
}

// checkSome compares only the terms named in want.
func checkSome(t *testing.T, s System, want map[string][2]float64) {
	t.Helper()
	compare(t, s, want, false)
}

func compare(t *testing.T, s System, want map[string][2]float64, all bool) {
	t.Helper()
	seen := map[string]bool{}
	for _, term := range s.Terms {
		seen[term.Name] = true
		w, ok := want[term.Name]
		if !ok {
			if all {
				t.Errorf("%s: unexpected term %q (%v)", s.Name, term.Name, term.Monthly)
			}
			continue
		}
		if !near(term.Quantity, w[0]) || !near(term.Monthly, w[1]) {
			t.Errorf("%s %s: quantity %v, $%v; want %v, $%v (%s)", s.Name, term.Name, term.Quantity, term.Monthly, w[0], w[1], term.Formula)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s: no term %q", s.Name, name)
		}
	}
}

func TestDerived(t *testing.T) {
	d := estimate(t, round()).Derived
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"stored GB/day", d.StoredGBPerDay, 1200},
		{"written GB/month", d.WrittenGBMonth, 36500},
		{"retained GB", d.RetainedGB, 12000},
		{"replayed GB/month", d.ReplayedGBMonth, 6000},
		{"write MiB/s", d.WriteMiBPerSec, 1200.0 * 1024 / 86400},
		{"replay MiB/s", d.ReplayMiBPerSec, 6000.0 * 1024 / 2628000},
		{"cross-zone share", d.CrossZoneShare, 2.0 / 3},
		{"inter-zone $/GB", d.InterZonePerGB, 0.02},
	} {
		if !near(c.got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestVigilTerms(t *testing.T) {
	r := estimate(t, round())
	// Brokers: (14.2222 x (3 + 2) + 2 x 2.3379) / 100 = 0.758 -> 1, below
	// the 3 zones.
	if r.Vigil.Brokers != 3 {
		t.Errorf("brokers %d, want 3 (%s)", r.Vigil.Brokers, r.Vigil.BrokersFormula)
	}
	check(t, r.Vigil, map[string][2]float64{
		// 12,000 GB x $0.02
		"object storage": {12000, 240},
		// Per broker 14.2222 / 3 = 4.74 MiB/s, far below 4 MiB per 10 ms,
		// so one chunk per interval: 3 x 100/s x 2,628,000 s = 788,400,000
		// PUTs; / 1000 x $0.005 = $3,942.
		"WAL chunk PUTs": {788400000, 3942},
		// 4.74 MiB/s is below 16 MiB per 250 ms: 3 x 4/s x 2,628,000 =
		// 31,536,000 PUTs = $157.68.
		"segment upload PUTs": {31536000, 157.68},
		// Passes: 2,628,000 / 60 = 43,800; x 12 partitions = 525,600.
		// By size: 36,500 GB x 1024 / 64 MiB = 584,000, the larger.
		// 584,000 / 1000 x $0.005 = $2.92.
		"compaction PUTs": {584000, 2.92},
		// 31,536,000 uploads x 12 partitions / 3 brokers = 126,144,000
		// entries, + 584,000 merged = 126,728,000 GETs x $0.0004/1000 =
		// $50.6912.
		"compaction GETs": {126728000, 50.6912},
		// 6,000 GB x 1024 blocks of 1 MiB = 6,144,000 GETs = $2.4576.
		"replay GETs": {6144000, 2.4576},
		// 2/3 x 36,500 = 24,333.33 GB x $0.02 = $486.67.
		"inter-zone: producers": {36500.0 * 2 / 3, 36500.0 * 2 / 3 * 0.02},
		// 2/3 x 2 groups x 36,500 = 48,666.67 GB x $0.02 = $973.33.
		"inter-zone: consumers": {73000.0 * 2 / 3, 73000.0 * 2 / 3 * 0.02},
		// 2/3 x 6,000 = 4,000 GB x $0.02 = $80.
		"inter-zone: replay": {4000, 80},
		// 3 x 730 h x $0.2 = $438.
		"compute": {2190, 438},
	})
	// 240 + 3942 + 157.68 + 2.92 + 50.6912 + 2.4576 + 486.6667 + 973.3333
	// + 80 + 438 = 6,373.7488
	if !near(r.Vigil.Total, 6373.7488) {
		t.Errorf("Vigil total %v, want 6373.7488", r.Vigil.Total)
	}
}

func TestKafkaTerms(t *testing.T) {
	r := estimate(t, round())
	// Brokers: (14.2222 x (2 x 3 - 1 + 2) + 2.3379) / 100 = 1.019 -> 2,
	// below the 3 replicas.
	if r.Kafka.Brokers != 3 {
		t.Errorf("brokers %d, want 3 (%s)", r.Kafka.Brokers, r.Kafka.BrokersFormula)
	}
	check(t, r.Kafka, map[string][2]float64{
		// 3 x 12,000 GB / (1 - 0.25) = 48,000 GB x $0.1 = $4,800.
		"disks": {48000, 4800},
		// 2 followers in other zones x 36,500 = 73,000 GB x $0.02 = $1,460.
		"inter-zone: replication": {73000, 1460},
		"inter-zone: producers":   {36500.0 * 2 / 3, 36500.0 * 2 / 3 * 0.02},
		"inter-zone: consumers":   {73000.0 * 2 / 3, 73000.0 * 2 / 3 * 0.02},
		"inter-zone: replay":      {4000, 80},
		"compute":                 {2190, 438},
	})
	// 4800 + 1460 + 486.6667 + 973.3333 + 80 + 438 = 8,238
	if !near(r.Kafka.Total, 8238) {
		t.Errorf("Kafka total %v, want 8238", r.Kafka.Total)
	}
}

// TestBrokersFromTraffic: at 10 MiB/s per broker the traffic, not the
// zones or the replicas, sets the broker counts.
func TestBrokersFromTraffic(t *testing.T) {
	in := round()
	in.Workload.BrokerMiBPerSec = 10
	r := estimate(t, in)
	// Vigil: 75.787 / 10 -> 8. Kafka: 101.89 / 10 -> 11.
	if r.Vigil.Brokers != 8 || r.Kafka.Brokers != 11 {
		t.Fatalf("brokers: Vigil %d, Kafka %d; want 8 and 11", r.Vigil.Brokers, r.Kafka.Brokers)
	}
	checkSome(t, r.Vigil, map[string][2]float64{
		// 8 brokers x 100/s x 2,628,000 = 2,102,400,000 PUTs = $10,512.
		"WAL chunk PUTs": {2102400000, 10512},
		// 8 x 4/s x 2,628,000 = 84,096,000 PUTs = $420.48.
		"segment upload PUTs": {84096000, 420.48},
	})
}

// TestWritersAreLeaders: a broker leading no partition puts nothing.
func TestWritersAreLeaders(t *testing.T) {
	in := round()
	in.Workload.Partitions = 2
	r := estimate(t, in)
	checkSome(t, r.Vigil, map[string][2]float64{
		// 2 leading brokers of 3: 2 x 100/s x 2,628,000 = 525,600,000 = $2,628.
		"WAL chunk PUTs": {525600000, 2628},
		// 2 x 4/s x 2,628,000 = 21,024,000 = $105.12.
		"segment upload PUTs": {21024000, 105.12},
		// max(2 x 43,800, 584,000) = 584,000 = $2.92.
		"compaction PUTs": {584000, 2.92},
		// 21,024,000 x 2 / 2 + 584,000 = 21,608,000 GETs = $8.6432.
		"compaction GETs": {21608000, 8.6432},
	})
}

// TestRequestsBySize: once a broker fills a chunk or an upload before its
// interval ends, requests follow the bytes.
func TestRequestsBySize(t *testing.T) {
	in := round()
	in.Vigil.WALFlushInterval = time.Second
	in.Vigil.WALFlushBytes = 1 << 20
	in.Vigil.UploadInterval = time.Minute
	in.Vigil.SegmentBytes = 2 << 20
	in.Vigil.RetentionCheckInterval = 100 * time.Millisecond
	r := estimate(t, in)
	checkSome(t, r.Vigil, map[string][2]float64{
		// 4.74 MiB/s per broker fills 1 MiB chunks 4.74 times a second,
		// more than once: the month's 36,500 GB x 1024 = 37,376,000 MiB
		// is 37,376,000 chunks = $186.88.
		"WAL chunk PUTs": {37376000, 186.88},
		// 2 MiB uploads: 18,688,000 = $93.44.
		"segment upload PUTs": {18688000, 93.44},
		// Passes: 2,628,000 / 0.1 = 26,280,000; x 12 = 315,360,000, more
		// than 584,000 by size; = $1,576.80.
		"compaction PUTs": {315360000, 1576.8},
		// 18,688,000 x 12 / 3 + 315,360,000 = 390,112,000 = $156.0448.
		"compaction GETs": {390112000, 156.0448},
	})
}

func TestNoCompaction(t *testing.T) {
	in := round()
	in.Vigil.CompactTargetBytes = 0
	for _, term := range estimate(t, in).Vigil.Terms {
		if strings.HasPrefix(term.Name, "compaction") {
			t.Errorf("compact-target-bytes 0 still prices %q", term.Name)
		}
	}
}

func TestCrossZoneCopies(t *testing.T) {
	for _, c := range []struct {
		replicas, zones int
		want            float64
	}{
		{3, 1, 0},       // all in one zone
		{3, 2, 4.0 / 3}, // zones of 2 and 1: 3 - (4 + 1) / 3
		{3, 3, 2},       // one per zone: 3 - 3 / 3
		{3, 5, 2},       // more zones than replicas
		{1, 3, 0},       // no followers
		{2, 3, 1},       // 2 - 2 / 2
		{4, 3, 2.5},     // zones of 2, 1, 1: 4 - (4 + 1 + 1) / 4
	} {
		if got := crossZoneCopies(c.replicas, c.zones); !near(got, c.want) {
			t.Errorf("%d replicas in %d zones: %v, want %v", c.replicas, c.zones, got, c.want)
		}
	}
}

func TestOneZone(t *testing.T) {
	in := round()
	in.Workload.Zones = 1
	r := estimate(t, in)
	for _, s := range []System{r.Vigil, r.Kafka} {
		for _, term := range s.Terms {
			if strings.HasPrefix(term.Name, "inter-zone") && term.Monthly != 0 {
				t.Errorf("%s in one zone: %s costs %v", s.Name, term.Name, term.Monthly)
			}
		}
	}
	// Vigil still keeps two brokers.
	if r.Vigil.Brokers != 2 {
		t.Errorf("Vigil in one zone: %d brokers, want 2", r.Vigil.Brokers)
	}
}

func TestRackAwareFetch(t *testing.T) {
	in := round()
	in.Kafka.RackAwareFetch = true
	checkSome(t, estimate(t, in).Kafka, map[string][2]float64{
		// Every zone of 3 holds a replica: nothing crosses.
		"inter-zone: consumers": {0, 0},
		"inter-zone: replay":    {0, 0},
	})
	in.Workload.Zones = 5
	checkSome(t, estimate(t, in).Kafka, map[string][2]float64{
		// 2 zones of 5 hold none: 2/5 x 2 x 36,500 = 29,200 GB = $584.
		"inter-zone: consumers": {29200, 584},
		// 2/5 x 6,000 = 2,400 GB = $48.
		"inter-zone: replay": {2400, 48},
	})
}

// TestWorkedExample checks the figures of docs/cost.md's worked example:
// 1000 GB/day, 30 days, everything else at its default.
func TestWorkedExample(t *testing.T) {
	in := Default()
	in.Workload.IngestGBPerDay = 1000
	in.Workload.RetentionDays = 30
	r := estimate(t, in)
	// stored 250 GB/day; written 250 x 730 / 24 = 7,604.17 GB;
	// retained 7,500 GB; replayed 750 GB.
	check(t, r.Vigil, map[string][2]float64{
		"object storage":        {7500, 172.5},          // 7,500 x $0.023
		"WAL chunk PUTs":        {1576800000, 7884},     // 3 x 200/s x 2,628,000
		"segment upload PUTs":   {31536000, 157.68},     // 3 x 4/s x 2,628,000
		"compaction PUTs":       {1051200, 5.256},       // 24 x 43,800
		"compaction GETs":       {253339200, 101.33568}, // 31,536,000 x 24 / 3 + 1,051,200
		"replay GETs":           {768000, 0.3072},       // 750 x 1024
		"inter-zone: producers": {7604.1666666 * 2 / 3, 101.3888888},
		"inter-zone: consumers": {7604.1666666 * 2, 304.1666666},
		"inter-zone: replay":    {500, 10},
		"compute":               {2190, 420.48}, // 3 x 730 x $0.192
	})
	check(t, r.Kafka, map[string][2]float64{
		"disks":                   {22500 / 0.7, 22500 / 0.7 * 0.08}, // 32,142.86 GB = $2,571.43
		"inter-zone: replication": {7604.1666666 * 2, 304.1666666},
		"inter-zone: producers":   {7604.1666666 * 2 / 3, 101.3888888},
		"inter-zone: consumers":   {7604.1666666 * 2, 304.1666666},
		"inter-zone: replay":      {500, 10},
		"compute":                 {2190, 420.48},
	})
	// Vigil 9,157.11; Kafka 3,711.63, as the page prints.
	if math.Round(r.Vigil.Total*100) != 915711 || math.Round(r.Kafka.Total*100) != 371163 {
		t.Errorf("totals: Vigil %.2f, Kafka %.2f; want 9157.11 and 3711.63", r.Vigil.Total, r.Kafka.Total)
	}
}

// TestDefaultsAreVigils: the request-count settings are vigil serve's
// own defaults on an s3:// store, not copies that could drift.
func TestDefaultsAreVigils(t *testing.T) {
	v, b := Default().Vigil, config.Default()
	if v.WALFlushInterval != b.WALFlushInterval || v.WALFlushBytes != b.WALFlushBytes ||
		v.UploadInterval != config.S3UploadInterval || v.SegmentBytes != config.S3SegmentBytes ||
		v.CompactTargetBytes != b.CompactTargetBytes || v.RetentionCheckInterval != b.RetentionCheckInterval {
		t.Errorf("Default().Vigil %+v differs from vigil serve's defaults", v)
	}
	if Default().Workload.RetentionDays != 7 {
		t.Errorf("default retention %v days, want retention.ms's 7", Default().Workload.RetentionDays)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Inputs)
	}{
		{"ingest-gb-per-day", func(in *Inputs) { in.Workload.IngestGBPerDay = 0 }},
		{"ingest-gb-per-day", func(in *Inputs) { in.Workload.IngestGBPerDay = math.NaN() }},
		{"retention-days", func(in *Inputs) { in.Workload.RetentionDays = -1 }},
		{"replay-fraction", func(in *Inputs) { in.Workload.ReplayFraction = 1.5 }},
		{"replay-fraction", func(in *Inputs) { in.Workload.ReplayFraction = -0.1 }},
		{"fanout", func(in *Inputs) { in.Workload.Fanout = -1 }},
		{"zones", func(in *Inputs) { in.Workload.Zones = 0 }},
		{"compression-ratio", func(in *Inputs) { in.Workload.CompressionRatio = 0.5 }},
		{"partitions", func(in *Inputs) { in.Workload.Partitions = 0 }},
		{"broker-mib-per-second", func(in *Inputs) { in.Workload.BrokerMiBPerSec = 0 }},
		{"price-put-per-1000", func(in *Inputs) { in.Prices.PutPer1000 = -0.005 }},
		{"price-instance-hour", func(in *Inputs) { in.Prices.InstanceHour = math.Inf(1) }},
		{"wal-flush-interval", func(in *Inputs) { in.Vigil.WALFlushInterval = 0 }},
		{"segment-bytes", func(in *Inputs) { in.Vigil.SegmentBytes = -1 }},
		{"compact-target-bytes", func(in *Inputs) { in.Vigil.CompactTargetBytes = -1 }},
		{"kafka-replicas", func(in *Inputs) { in.Kafka.Replicas = 0 }},
		{"kafka-disk-headroom", func(in *Inputs) { in.Kafka.DiskHeadroom = 1 }},
	} {
		in := round()
		c.edit(&in)
		_, err := Estimate(in)
		if err == nil || !strings.HasPrefix(err.Error(), c.name+" ") {
			t.Errorf("%s: error %v, want one naming it first", c.name, err)
		}
	}
	// Every bad input is reported, not just the first.
	in := round()
	in.Workload.Zones, in.Workload.Fanout = 0, -2
	if _, err := Estimate(in); err == nil || !strings.Contains(err.Error(), "zones 0") || !strings.Contains(err.Error(), "fanout -2") {
		t.Errorf("two bad inputs: %v", err)
	}
	if err := round().Validate(); err != nil {
		t.Errorf("round: %v", err)
	}
}

func TestFormatting(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{num(7604.1666), "7604.17"},
		{num(200), "200"},
		{num(0.29224), "0.2922"},
		{num(0), "0"},
		{money(9157.1099), "$9,157.11"},
		{money(0.3072), "$0.31"},
		{money(1234567.5), "$1,234,567.50"},
		{grouped(1576800000), "1,576,800,000"},
		{grouped(500), "500"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestReadingTheResult checks the figures docs/cost.md's *Reading the
// result* quotes: all at 30 days' retention, the other inputs default.
func TestReadingTheResult(t *testing.T) {
	for _, c := range []struct {
		gbPerDay     float64
		flush        time.Duration
		vigil, kafka float64 // cents
	}{
		// The worked example with a 50 ms flush: WAL 3 x 20/s x 2,628,000
		// = 157,680,000 PUTs = $788.40; 9,157.11 - 7,884 + 788.40.
		{1000, 50 * time.Millisecond, 206151, 371163},
		{3000, 0, 1033384, 1029393},
		{10000, 0, 1445327, 3333199},
	} {
		in := Default()
		in.Workload.IngestGBPerDay, in.Workload.RetentionDays = c.gbPerDay, 30
		if c.flush > 0 {
			in.Vigil.WALFlushInterval = c.flush
		}
		r := estimate(t, in)
		if math.Round(r.Vigil.Total*100) != c.vigil || math.Round(r.Kafka.Total*100) != c.kafka {
			t.Errorf("%v GB/day, flush %v: Vigil %.2f, Kafka %.2f; want %.2f and %.2f",
				c.gbPerDay, in.Vigil.WALFlushInterval, r.Vigil.Total, r.Kafka.Total, c.vigil/100, c.kafka/100)
		}
	}
}
