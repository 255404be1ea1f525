package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/txn"
)

// handleAddPartitionsToTxn adds partitions to a producer's ongoing
// transaction (v0-3, from producers) or, v4+ (KIP-890 part 1), answers for
// a batch of transactions from a broker, most of them only verifying that
// a partition is already in the transaction before that broker appends.
// PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2, as Kafka answers.
//
// Authorization, as Kafka's handleAddPartitionsToTxnRequest: v4+ needs
// ClusterAction on the cluster (only brokers send it, having authorized
// their clients), else a top-level CLUSTER_AUTHORIZATION_FAILED. Before
// v4, Write on the transactional id, else every partition
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED, then Write on each topic (never
// granted on an internal topic): refused topics TOPIC_AUTHORIZATION_FAILED,
// unknown partitions UNKNOWN_TOPIC_OR_PARTITION, and when any is, the
// others OPERATION_NOT_ATTEMPTED and nothing is added.
func (b *Broker) handleAddPartitionsToTxn(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.AddPartitionsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	fromBroker := h.version >= 4
	if fromBroker && !c.allowed(kmsg.ACLOperationClusterAction, kmsg.ACLResourceTypeCluster, clusterResource) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return func() kmsg.Response { return resp }
	}
	var txns []addTxn
	if fromBroker {
		for _, t := range req.Transactions {
			a := addTxn{id: t.TransactionalID, pid: t.ProducerID, epoch: t.ProducerEpoch, verifyOnly: t.VerifyOnly}
			for _, tt := range t.Topics {
				a.topics = append(a.topics, addTopic{tt.Topic, tt.Partitions})
			}
			txns = append(txns, a)
		}
	} else {
		a := addTxn{id: req.TransactionalID, pid: req.ProducerID, epoch: req.ProducerEpoch}
		for _, tt := range req.Topics {
			a.topics = append(a.topics, addTopic{tt.Topic, tt.Partitions})
		}
		txns = []addTxn{a}
	}
	for i := range txns {
		b.checkAddTxn(c, &txns[i], fromBroker)
	}
	return func() kmsg.Response {
		ctx, cancel := context.WithTimeout(c.ctx, adminTimeout)
		defer cancel()
		for i := range txns {
			a := &txns[i]
			if a.refused {
				continue
			}
			co := b.txnCoordinator(a.id)
			switch {
			case co == nil:
				a.setAll(kerr.NotCoordinator.Code)
			case a.verifyOnly:
				for _, tp := range a.ask {
					a.codes[tp] = co.VerifyPartition(a.id, a.pid, a.epoch, tp)
				}
			default:
				a.setAll(fencedCode(co.AddPartitions(ctx, a.id, a.pid, a.epoch, a.ask), h.version >= 2))
			}
		}
		if !fromBroker {
			resp.Topics = txns[0].answerV3()
			return resp
		}
		for _, a := range txns {
			rt := kmsg.AddPartitionsToTxnResponseTransaction{TransactionalID: a.id}
			for _, t := range a.answerV3() {
				tt := kmsg.AddPartitionsToTxnResponseTransactionTopic{Topic: t.Topic}
				for _, p := range t.Partitions {
					tt.Partitions = append(tt.Partitions, kmsg.AddPartitionsToTxnResponseTransactionTopicPartition{Partition: p.Partition, ErrorCode: p.ErrorCode})
				}
				rt.Topics = append(rt.Topics, tt)
			}
			resp.Transactions = append(resp.Transactions, rt)
		}
		return resp
	}
}

// addTxn is one transaction of an AddPartitionsToTxn: what it asks, and
// the answer per partition.
type addTxn struct {
	id         string
	pid        int64
	epoch      int16
	verifyOnly bool
	topics     []addTopic
	codes      map[txn.TopicPartition]int16
	ask        []txn.TopicPartition // the partitions for the coordinator
	refused    bool                 // answered without the coordinator
}

type addTopic struct {
	topic      string
	partitions []int32
}

// checkAddTxn authorizes a transaction's partitions and checks they
// exist, on the reader goroutine.
func (b *Broker) checkAddTxn(c *conn, a *addTxn, fromBroker bool) {
	a.codes = map[txn.TopicPartition]int16{}
	if !fromBroker && !c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, a.id) {
		for _, t := range a.topics {
			for _, p := range t.partitions {
				a.codes[txn.TopicPartition{Topic: t.topic, Partition: p}] = kerr.TransactionalIDAuthorizationFailed.Code
			}
		}
		a.refused = true
		return
	}
	failed := false
	for _, t := range a.topics {
		denied := !fromBroker && (isInternalTopic(t.topic) || !c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, t.topic))
		st := b.store.Topic(t.topic)
		for _, p := range t.partitions {
			tp := txn.TopicPartition{Topic: t.topic, Partition: p}
			switch {
			case denied:
				a.codes[tp] = kerr.TopicAuthorizationFailed.Code
				failed = true
			case st == nil || p < 0 || int(p) >= len(st.Logs):
				a.codes[tp] = kerr.UnknownTopicOrPartition.Code
				failed = true
			default:
				a.codes[tp] = 0
				a.ask = append(a.ask, tp)
			}
		}
	}
	if failed {
		for _, tp := range a.ask {
			a.codes[tp] = kerr.OperationNotAttempted.Code
		}
		a.ask, a.refused = nil, true
	}
}

func (a *addTxn) setAll(code int16) {
	for _, tp := range a.ask {
		a.codes[tp] = code
	}
}

// answerV3 lists the answer per topic in request order (the shape of v0-3,
// which v4+ nests per transaction).
func (a *addTxn) answerV3() []kmsg.AddPartitionsToTxnResponseTopic {
	var out []kmsg.AddPartitionsToTxnResponseTopic
	for _, t := range a.topics {
		rt := kmsg.AddPartitionsToTxnResponseTopic{Topic: t.topic}
		for _, p := range t.partitions {
			rt.Partitions = append(rt.Partitions, kmsg.AddPartitionsToTxnResponseTopicPartition{
				Partition: p, ErrorCode: a.codes[txn.TopicPartition{Topic: t.topic, Partition: p}]})
		}
		out = append(out, rt)
	}
	return out
}
