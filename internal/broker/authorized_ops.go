package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The handlers apply Kafka's authorization checks as KafkaApis does
// (docs/security.md, "Authorization", lists them per API), with
// c.allowed (a denial Kafka logs: reported to the audit observer) and
// c.allowedQuiet (one it does not: filtering, or a first check with a
// fallback). Checks read the connection's principal, so they run in the
// handler body on the reader goroutine; a response built later on the
// writer goroutine uses decisions taken there. A refused topic or
// partition is never appended, read, created, changed or forwarded.

// Kafka's messages for the authorization errors (Errors.message()),
// which some responses carry (DescribeConfigs, DescribeProducers,
// FindCoordinator before v4, the client quota APIs).
const (
	msgTopicAuthz   = "Topic authorization failed."
	msgGroupAuthz   = "Group authorization failed."
	msgClusterAuthz = "Cluster authorization failed."
	msgTxnIDAuthz   = "Transactional Id authorization failed."
)

// The operations Kafka reports authorized operations over, per resource
// type (AclEntry.supportedOperations).
var (
	topicOps = []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate,
		kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter,
		kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs}
	groupOps   = []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete}
	clusterOps = []kmsg.ACLOperation{kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction,
		kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite,
		kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe}
)

// authorizedOps is Kafka's AuthHelper.authorizedOperations: a bit field
// (bit n for the operation of code n) of the operations the principal may
// do on a resource, out of those its type supports; without an authorizer
// all of them. Nothing is reported: these are questions, not requests.
func (c *conn) authorizedOps(rt kmsg.ACLResourceType, name string) int32 {
	var ops []kmsg.ACLOperation
	switch rt {
	case kmsg.ACLResourceTypeTopic:
		ops = topicOps
	case kmsg.ACLResourceTypeGroup:
		ops = groupOps
	case kmsg.ACLResourceTypeCluster:
		ops = clusterOps
	}
	var bits int32
	for _, op := range ops {
		if c.allowedQuiet(op, rt, name) {
			bits |= 1 << op
		}
	}
	return bits
}
