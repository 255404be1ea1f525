package cost

import (
	"fmt"
	"math"
)

// vigilMinBrokers is the fewest brokers priced: one broker's loss must
// leave a broker to take its partitions over.
const vigilMinBrokers = 2

// vigilTrafficFactor is the cluster's broker traffic per byte produced:
// the produce itself in, the WAL chunk and the segment upload out to the
// object store, and one copy out per consumer group. Compaction's
// rewrites are left out: they are a few percent once objects reach the
// target size.
func vigilTrafficFactor(fanout int) float64 { return 3 + float64(fanout) }

// vigil prices the workload on a Vigil cluster on an object store: the
// object WAL (a cluster requires it), segment uploads, compaction,
// catch-up reads, zone crossings and the brokers.
func vigil(in Inputs, d Derived) System {
	w, p, v := in.Workload, in.Prices, in.Vigil
	// A replay's bytes come in from the store and go out to the client.
	traffic := d.WriteMiBPerSec*vigilTrafficFactor(w.Fanout) + 2*d.ReplayMiBPerSec
	brokers := brokersFor(traffic, w.BrokerMiBPerSec, max(w.Zones, vigilMinBrokers))
	// A broker that leads no partition writes nothing.
	writers := min(brokers, w.Partitions)
	perWriter := d.WriteMiBPerSec * MiB / float64(writers) // bytes/s

	s := System{
		Name:    "Vigil",
		Brokers: brokers,
		BrokersFormula: fmt.Sprintf("max(%d zones, %d, ceil((%s MiB/s x (3 + %d fan-out) + 2 x %s MiB/s replay) / %s MiB/s per broker))",
			w.Zones, vigilMinBrokers, num(d.WriteMiBPerSec), w.Fanout, num(d.ReplayMiBPerSec), num(w.BrokerMiBPerSec)),
	}
	s.Terms = append(s.Terms, perGBMonth("object storage", d.RetainedGB, p.StorageGBMonth,
		fmt.Sprintf("%s GB/day x %s days retained", num(d.StoredGBPerDay), num(w.RetentionDays))))

	walRate := requestRate(v.WALFlushInterval.Seconds(), perWriter, float64(v.WALFlushBytes))
	walPuts := float64(writers) * walRate * SecondsPerMonth
	s.Terms = append(s.Terms, perThousand("WAL chunk PUTs", walPuts, p.PutPer1000,
		fmt.Sprintf("%d brokers x max(1 / %s wal-flush-interval, %s MiB/s per broker / %s MiB wal-flush-bytes) = %s/s each, x %d s",
			writers, v.WALFlushInterval, num(perWriter/MiB), num(float64(v.WALFlushBytes)/MiB), num(walRate), SecondsPerMonth)))

	uploadRate := requestRate(v.UploadInterval.Seconds(), perWriter, float64(v.SegmentBytes))
	uploads := float64(writers) * uploadRate * SecondsPerMonth
	s.Terms = append(s.Terms, perThousand("segment upload PUTs", uploads, p.PutPer1000,
		fmt.Sprintf("%d brokers x max(1 / %s upload-interval, %s MiB/s per broker / %s MiB segment-bytes) = %s/s each, x %d s",
			writers, v.UploadInterval, num(perWriter/MiB), num(float64(v.SegmentBytes)/MiB), num(uploadRate), SecondsPerMonth)))

	if v.CompactTargetBytes > 0 {
		passes := SecondsPerMonth / v.RetentionCheckInterval.Seconds()
		merges := math.Max(float64(w.Partitions)*passes, d.WrittenGBMonth*GB/float64(v.CompactTargetBytes))
		s.Terms = append(s.Terms, perThousand("compaction PUTs", merges, p.PutPer1000,
			fmt.Sprintf("max(%d partitions x %s retention checks, %s GB written / %s MiB compact-target-bytes)",
				w.Partitions, num(passes), num(d.WrittenGBMonth), num(float64(v.CompactTargetBytes)/MiB))))
		// Each upload holds one entry per partition its broker leads;
		// compaction reads each entry with one ranged GET, and each
		// merged object about once more when the next merge takes it in.
		entries := uploads * float64(w.Partitions) / float64(writers)
		s.Terms = append(s.Terms, perThousand("compaction GETs", entries+merges, p.GetPer1000,
			fmt.Sprintf("%s uploads x %d partitions / %d brokers + %s merged objects",
				num(uploads), w.Partitions, writers, num(merges))))
	}

	blocks := d.ReplayedGBMonth * GB / float64(v.ReadBlockBytes)
	s.Terms = append(s.Terms, perThousand("replay GETs", blocks, p.GetPer1000,
		fmt.Sprintf("%s GB replayed (%s x %s GB retained) / %s MiB blocks",
			num(d.ReplayedGBMonth), num(w.ReplayFraction), num(d.RetainedGB), num(float64(v.ReadBlockBytes)/MiB))))

	// Partitions are led evenly across zones, so a client reaches a leader
	// in another zone for CrossZoneShare of its bytes. Zone routing
	// (client.id zone=) moves that crossing onto the forwarding broker's
	// link to the leader; it does not remove it. The object store is
	// regional: WAL chunks, uploads and reads cross no zone.
	share := zoneShare{d.CrossZoneShare, fmt.Sprintf("(%d-1)/%d", w.Zones, w.Zones)}
	s.Terms = append(s.Terms, clientCrossZone(d, w.Fanout, share, share)...)
	s.Terms = append(s.Terms, compute(brokers, p.InstanceHour))
	s.Total = total(s.Terms)
	return s
}

// requestRate is how many requests per second a writer makes when it puts
// what waits every interval seconds, or sooner once limit bytes wait,
// while bytesPerSec keep arriving: the model assumes records arrive in
// every interval (a broker that receives nothing puts nothing), so this
// is the most a steady workload costs.
func requestRate(interval, bytesPerSec, limit float64) float64 {
	return math.Max(1/interval, bytesPerSec/limit)
}

// zoneShare is the share of some traffic that crosses zones, and why.
type zoneShare struct {
	share   float64
	formula string
}

// clientCrossZone prices what producers (write), and live consumers and
// replays (read), move across zones.
func clientCrossZone(d Derived, fanout int, write, read zoneShare) []Term {
	return []Term{
		crossZone("inter-zone: producers", write.share*d.WrittenGBMonth, d,
			fmt.Sprintf("%s x %s GB written", write.formula, num(d.WrittenGBMonth))),
		crossZone("inter-zone: consumers", read.share*float64(fanout)*d.WrittenGBMonth, d,
			fmt.Sprintf("%s x %d groups x %s GB written", read.formula, fanout, num(d.WrittenGBMonth))),
		crossZone("inter-zone: replay", read.share*d.ReplayedGBMonth, d,
			fmt.Sprintf("%s x %s GB replayed", read.formula, num(d.ReplayedGBMonth))),
	}
}
