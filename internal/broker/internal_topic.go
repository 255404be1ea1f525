package broker

import (
	"github.com/vigilhq/vigil/internal/group"
)

// AuditTopic is the audit trail's topic (package audit writes it through
// the storage engine).
const AuditTopic = "_vigil.audit"

// isInternalTopic reports whether a topic belongs to the broker itself
// (__consumer_offsets, the audit trail). Clients may read it, as ACLs
// allow, but not produce to it, delete it or delete its records: its
// records are the groups' durable state, or the evidence of who did what.
func isInternalTopic(name string) bool { return name == group.OffsetsTopic || name == AuditTopic }

// Kafka's bits of group ACL operations (READ, DELETE, DESCRIBE) reported
// when DescribeGroups asks for authorized operations: without ACLs every
// client may do all of them.
const groupAuthorizedOps = 1<<3 | 1<<6 | 1<<8
