package broker

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/txn"
)

// verifyTimeout bounds a verification forwarded to the transaction
// coordinator on another broker; the produce waits for it on its
// connection's reader goroutine.
const verifyTimeout = 5 * time.Second

// With transaction version 2 a producer starts its next transaction as
// soon as EndTxn answers, while the coordinator is still writing the last
// one's markers: adding a partition meanwhile is CONCURRENT_TRANSACTIONS.
// Kafka's brokers retry that themselves (add.partitions.to.txn.retry.*:
// every 20 ms for 100 ms) rather than answer the producer a retriable
// error that franz-go waits out with a metadata refresh (seconds). Vigil
// waits up to a second: its markers go through WAL commits and, in a
// cluster, other brokers, so completing takes longer than Kafka's budget
// when the disk or a peer is slow.
const (
	addRetryBackoff = 20 * time.Millisecond
	addRetryMax     = time.Second
)

// SetTransactions replaces the transaction coordinators (nil: this
// broker coordinates no transactional id now); in a cluster each moves
// with its __transaction_state partition.
func (b *Broker) SetTransactions(s *txn.Shards) { b.txnsPtr.Store(s) }

// txnCoordinator is the coordinator of a transactional id, or nil when
// another broker coordinates it (NOT_COORDINATOR).
func (b *Broker) txnCoordinator(txnID string) *txn.Coordinator { return b.txnsPtr.Load().For(txnID) }

// txnCoordinatorNode is the broker that coordinates a transactional id,
// the leader of its __transaction_state partition, and whether there is
// one now.
func (b *Broker) txnCoordinatorNode(protocol, txnID string) (brokerEndpoint, bool) {
	if b.txnCoordinator(txnID) != nil {
		return b.endpoint(protocol, b.cfg.NodeID)
	}
	t := b.store.Topic(txn.StateTopic)
	if b.cluster == nil || t == nil || len(t.Logs) == 0 {
		return brokerEndpoint{}, false
	}
	l, ok := b.cluster.LeaderOf(txn.StateTopic, txn.PartitionFor(txnID, int32(len(t.Logs))))
	if !ok {
		return brokerEndpoint{}, false
	}
	return b.endpoint(protocol, l.Broker)
}

// verifyTxnPartition asks the coordinator of txnID whether the partition
// is in the producer's ongoing transaction (KIP-890 part 1), or with add
// (transaction version 2, KIP-890 part 2) to add it: here, or on the
// coordinator's broker with AddPartitionsToTxn v5 (VerifyOnly unless
// add), as Kafka's AddPartitionsToTxnManager asks. It answers the
// coordinator's code, or NETWORK_EXCEPTION when the coordinator could not
// be asked.
func (b *Broker) verifyTxnPartition(txnID string, pid int64, epoch int16, topic string, p int32, add bool) int16 {
	code := b.askTxnPartition(txnID, pid, epoch, topic, p, add)
	if !add {
		return code
	}
	for deadline := time.Now().Add(addRetryMax); code == kerr.ConcurrentTransactions.Code && time.Now().Before(deadline); {
		time.Sleep(addRetryBackoff)
		code = b.askTxnPartition(txnID, pid, epoch, topic, p, add)
	}
	return code
}

// askTxnPartition asks once (verifyTxnPartition).
func (b *Broker) askTxnPartition(txnID string, pid int64, epoch int16, topic string, p int32, add bool) int16 {
	tp := txn.TopicPartition{Topic: topic, Partition: p}
	if co := b.txnCoordinator(txnID); co != nil {
		if !add {
			return co.VerifyPartition(txnID, pid, epoch, tp)
		}
		ctx, cancel := context.WithTimeout(context.Background(), verifyTimeout)
		defer cancel()
		return co.AddPartitions(ctx, txnID, pid, epoch, []txn.TopicPartition{tp})
	}
	if b.cluster == nil || b.fwd == nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	e, ok := b.txnCoordinatorNode(b.cfg.InterBroker(), txnID)
	if !ok || e.id == b.cfg.NodeID {
		// Led here but not loaded yet, or led by no one.
		return kerr.CoordinatorNotAvailable.Code
	}
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = 5
	tr := kmsg.NewAddPartitionsToTxnRequestTransaction()
	tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, tr.VerifyOnly = txnID, pid, epoch, !add
	tr.Topics = []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: topic, Partitions: []int32{p}}}
	req.Transactions = []kmsg.AddPartitionsToTxnRequestTransaction{tr}
	ctx, cancel := context.WithTimeout(context.Background(), verifyTimeout)
	defer cancel()
	r, err := b.fwd.Submit(e.id, net.JoinHostPort(e.host, strconv.Itoa(int(e.port))), req).Wait(ctx)
	if err != nil {
		b.log.Warn("cannot verify a transactional batch with its coordinator", "transactional_id", txnID, "coordinator", e.id, "err", err)
		return kerr.NetworkException.Code
	}
	resp := r.(*kmsg.AddPartitionsToTxnResponse)
	if resp.ErrorCode != 0 {
		if resp.ErrorCode == kerr.ClusterAuthorizationFailed.Code {
			// The client must not see the brokers' own authorization:
			// Kafka answers that the verification did not complete.
			b.log.Error("the transaction coordinator refused this broker's verification: grant the inter-broker principal ClusterAction", "coordinator", e.id)
			return kerr.InvalidTxnState.Code
		}
		return resp.ErrorCode
	}
	for _, t := range resp.Transactions {
		for _, rt := range t.Topics {
			for _, rp := range rt.Partitions {
				if rt.Topic == topic && rp.Partition == p {
					return rp.ErrorCode
				}
			}
		}
	}
	return kerr.UnknownServerError.Code
}

// verifiedCode is a verification's answer as a produce or a
// TxnOffsetCommit gives it to the client, as Kafka translates it
// (AddPartitionsToTxnManager, ReplicaManager): PRODUCER_FENCED becomes
// the INVALID_PRODUCER_EPOCH producers expect there;
// TRANSACTION_ABORTABLE, which older clients do not know, becomes
// INVALID_TXN_STATE unless abortable; and a coordinator that could not
// answer becomes retriable, the code the caller names.
func verifiedCode(code int16, abortable bool, retriable int16) int16 {
	switch code {
	case kerr.ProducerFenced.Code:
		return kerr.InvalidProducerEpoch.Code
	case kerr.TransactionAbortable.Code:
		if !abortable {
			return kerr.InvalidTxnState.Code
		}
	case kerr.ConcurrentTransactions.Code, kerr.NetworkException.Code, kerr.CoordinatorLoadInProgress.Code,
		kerr.CoordinatorNotAvailable.Code, kerr.NotCoordinator.Code:
		return retriable
	}
	return code
}

// fencedCode maps PRODUCER_FENCED to INVALID_PRODUCER_EPOCH for a request
// version that predates it (KIP-588), as Kafka answers such clients.
func fencedCode(code int16, knowsFenced bool) int16 {
	if code == kerr.ProducerFenced.Code && !knowsFenced {
		return kerr.InvalidProducerEpoch.Code
	}
	return code
}
