package cost

import "fmt"

// kafkaTrafficFactor is a Kafka cluster's broker traffic per byte
// produced: the produce in, each follower's copy out of the leader and
// into the follower, and one copy out per consumer group.
func kafkaTrafficFactor(replicas, fanout int) float64 {
	return float64(2*replicas-1) + float64(fanout)
}

// kafka prices the workload on Kafka keeping Replicas copies on local
// block-storage disks, with rack-aware replica placement (each replica in
// another zone while zones last).
func kafka(in Inputs, d Derived) System {
	w, p, k := in.Workload, in.Prices, in.Kafka
	// A replay is read from the leader's disk and sent out once.
	traffic := d.WriteMiBPerSec*kafkaTrafficFactor(k.Replicas, w.Fanout) + d.ReplayMiBPerSec
	brokers := brokersFor(traffic, w.BrokerMiBPerSec, k.Replicas)
	s := System{
		Name:    fmt.Sprintf("Kafka, %d replicas", k.Replicas),
		Brokers: brokers,
		BrokersFormula: fmt.Sprintf("max(%d replicas, ceil((%s MiB/s x (2 x %d - 1 + %d fan-out) + %s MiB/s replay) / %s MiB/s per broker))",
			k.Replicas, num(d.WriteMiBPerSec), k.Replicas, w.Fanout, num(d.ReplayMiBPerSec), num(w.BrokerMiBPerSec)),
	}
	disk := float64(k.Replicas) * d.RetainedGB / (1 - k.DiskHeadroom)
	s.Terms = append(s.Terms, perGBMonth("disks", disk, p.BlockGBMonth,
		fmt.Sprintf("%d replicas x %s GB retained / (1 - %s headroom)", k.Replicas, num(d.RetainedGB), num(k.DiskHeadroom))))

	copies := crossZoneCopies(k.Replicas, w.Zones)
	s.Terms = append(s.Terms, crossZone("inter-zone: replication", copies*d.WrittenGBMonth, d,
		fmt.Sprintf("%s follower copies in other zones x %s GB written", num(copies), num(d.WrittenGBMonth))))

	// Producers always write to the leader. Consumers do too, unless they
	// fetch from a replica of their own zone; then only consumers of a
	// zone holding no replica cross.
	write := zoneShare{d.CrossZoneShare, fmt.Sprintf("(%d-1)/%d", w.Zones, w.Zones)}
	read := write
	if k.RackAwareFetch {
		without := w.Zones - min(k.Replicas, w.Zones)
		read = zoneShare{float64(without) / float64(w.Zones), fmt.Sprintf("%d zones without a replica / %d", without, w.Zones)}
	}
	s.Terms = append(s.Terms, clientCrossZone(d, w.Fanout, write, read)...)
	s.Terms = append(s.Terms, compute(brokers, p.InstanceHour))
	s.Total = total(s.Terms)
	return s
}

// crossZoneCopies is how many follower copies of each produced byte
// cross zones on average, when the replicas are spread as evenly as
// possible over min(replicas, zones) zones and the leader is any of them
// alike: replicas - sum(n_z^2) / replicas, n_z being the replicas in zone
// z (a leader in zone z has n_z - 1 followers beside it). 3 replicas: 2
// copies in 3 or more zones, 4/3 in 2 zones, 0 in one.
func crossZoneCopies(replicas, zones int) float64 {
	used := min(replicas, zones)
	each, extra := replicas/used, replicas%used
	var squares int
	for z := 0; z < used; z++ {
		n := each
		if z < extra {
			n++
		}
		squares += n * n
	}
	return float64(replicas) - float64(squares)/float64(replicas)
}
