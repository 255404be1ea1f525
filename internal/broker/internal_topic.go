package broker

import (
	"github.com/vigilhq/vigil/internal/group"
)

// isInternalTopic reports whether a topic belongs to the broker itself
// (__consumer_offsets). Clients may read it but not produce to it, delete
// it or delete its records: its records are the groups' durable state.
func isInternalTopic(name string) bool { return name == group.OffsetsTopic }

// Kafka's bits of group ACL operations (READ, DELETE, DESCRIBE) reported
// when DescribeGroups asks for authorized operations: without ACLs every
// client may do all of them.
const groupAuthorizedOps = 1<<3 | 1<<6 | 1<<8
