package scorecard

import "fmt"

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
	// maxValueBytes bounds a record's key + value + headers.
	maxValueBytes = 200
)

// Plan is the load a run may generate.
type Plan struct {
	Records          int `json:"records"`
	Bytes            int `json:"bytes"`
	Topics           int `json:"topics"`
	Groups           int `json:"groups"`
	TransactionalIDs int `json:"transactional_ids"`
}

// DefaultPlan is the load of one run: every record the probes write.
func DefaultPlan() Plan {
	records := roundTripRecords + groupRecords + 3*idempotentRecords + (2*txnRecords + 1) +
		compactKeys*compactVersions + timeRecords +
		2 + // anonymous probe: the scorecard's own record, the anonymous client's
		1 // ACL probe
	return Plan{Records: records, Bytes: records * maxValueBytes, Topics: 8, Groups: 1, TransactionalIDs: 1}
}

func (p Plan) String() string {
	return fmt.Sprintf("at most %d records of at most %d bytes each (%d KiB), %d topics, %d consumer group, %d transactional id",
		p.Records, maxValueBytes, p.Bytes/1024, p.Topics, p.Groups, p.TransactionalIDs)
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
