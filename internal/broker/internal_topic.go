package broker

import (
	"github.com/vigilhq/vigil/internal/group"
	"github.com/vigilhq/vigil/internal/txn"
)

// AuditTopic is the audit trail's topic (package audit writes it through
// the storage engine).
const AuditTopic = "_vigil.audit"

// isInternalTopic reports whether a topic belongs to the broker itself
// (__consumer_offsets, __transaction_state, the audit trail). Clients may
// read it, as ACLs allow, but not produce to it, delete it or delete its
// records: its records are the groups' and transactions' durable state,
// or the evidence of who did what.
func isInternalTopic(name string) bool {
	return name == group.OffsetsTopic || name == txn.StateTopic || name == AuditTopic
}
