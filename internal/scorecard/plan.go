package scorecard

import (
	"fmt"
	"math"
	"time"
)

// Records each probe writes. They are the plan the limits are printed
// from, and the budget refuses a write beyond them.
const (
	roundTripRecords  = 100
	groupRecords      = 40
	groupCommitAt     = 20
	idempotentRecords = 5  // one batch, sent three times: as is, again (a duplicate), and with a sequence gap
	txnRecords        = 10 // committed, then as many aborted, then one committed marker
	compactKeys       = 5
	compactVersions   = 4
	timeRecords       = 30
	// The migration path: mirrorPerPartition records on each of
	// mirrorPartitions partitions, and on partition 0 a committed and an
	// aborted transaction of mirrorTxnRecords each when the cluster
	// offers transactions.
	mirrorPartitions   = 3
	mirrorPerPartition = 10
	mirrorTxnRecords   = 5
	// Burst and replay: a history the replay re-reads, then a paced
	// producer at burstRate through burstWindows windows of burstWindow.
	burstHistoryRecords = 3000
	burstRate           = 200 // records a second
	burstWindow         = time.Second
	burstPairs          = 3                // windows without and with the replay, then one more without
	burstWindows        = 2*burstPairs + 1 // of burstWindow each
	burstLiveRecords    = burstRate * burstWindows * int(burstWindow/time.Second)
	// Failure recovery: faultRate records a second over faultPartitions
	// partitions, from faultLead before the fault until faultSettle after
	// the recovery, the recovery waited for at most RecoveryTimeout.
	faultPartitions = 6
	faultRate       = 60
	faultLead       = time.Second
	faultSettle     = time.Second
	minFaultPause   = 2 * time.Second
	// maxValueBytes bounds a record's key + value + headers.
	maxValueBytes = 200
)

// Plan is the load a run may generate.
type Plan struct {
	Records          int `json:"records"`
	Bytes            int `json:"bytes"`
	Topics           int `json:"topics"`
	Partitions       int `json:"partitions"`
	Groups           int `json:"groups"`
	TransactionalIDs int `json:"transactional_ids"`
	// ReplayFor bounds the time the burst probe's replay reads.
	ReplayFor time.Duration `json:"replay_ns"`
	// FaultRecords are the records of Records each fault probe writes.
	FaultRecords int `json:"fault_records_each,omitempty"`
	Faults       int `json:"faults,omitempty"`
}

// DefaultPlan is the load of a run without faults.
func DefaultPlan() Plan { return PlanFor(Config{}) }

// PlanFor is the load of a run with c: every record the probes write.
func PlanFor(c Config) Plan {
	c = c.withDefaults()
	records := roundTripRecords + groupRecords + 3*idempotentRecords + (2*txnRecords + 1) +
		compactKeys*compactVersions + timeRecords +
		2 + // anonymous probe: the scorecard's own record, the anonymous client's
		1 + // ACL probe
		mirrorPartitions*mirrorPerPartition + 2*mirrorTxnRecords +
		burstHistoryRecords + burstLiveRecords
	p := Plan{Topics: 10, Partitions: 9 + mirrorPartitions, Groups: 2, TransactionalIDs: 2, ReplayFor: burstPairs * burstWindow}
	if c.AllowFaults {
		p.Faults = len(c.FaultPIDs)
		p.FaultRecords = faultRecords(c)
		records += p.Faults * p.FaultRecords
		p.Topics += p.Faults
		p.Partitions += p.Faults * faultPartitions
	}
	p.Records, p.Bytes = records, records*maxValueBytes
	return p
}

// faultRecords is the most one fault probe writes: its rate over the
// longest it may write.
func faultRecords(c Config) int {
	return int(math.Ceil(faultRate * (faultLead + c.pause() + c.RecoveryTimeout + faultSettle).Seconds()))
}

func (p Plan) String() string {
	s := fmt.Sprintf("at most %d records of at most %d bytes each (%d KiB) on %d topics (%d partitions), %d consumer groups, %d transactional ids; the replay reads for at most %s",
		p.Records, maxValueBytes, p.Bytes/1024, p.Topics, p.Partitions, p.Groups, p.TransactionalIDs, p.ReplayFor)
	if p.Faults > 0 {
		s += fmt.Sprintf("; %d faults, each writing at most %d of those records", p.Faults, p.FaultRecords)
	}
	return s
}

// budget counts what was written against the plan.
type budget struct {
	plan           Plan
	records, bytes int
}

func newBudget(p Plan) *budget { return &budget{plan: p} }

// take books n records of size bytes in all, or refuses them when they
// would exceed the plan (a bug in a probe, reported as its failure).
func (b *budget) take(n, size int) error {
	if b.records+n > b.plan.Records || b.bytes+size > b.plan.Bytes {
		return fmt.Errorf("writing %d more records would exceed the load limit of %d records (%d written)", n, b.plan.Records, b.records)
	}
	b.records += n
	b.bytes += size
	return nil
}
