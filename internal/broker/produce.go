package broker

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/forward"
	"github.com/vigilhq/vigil/internal/partition"
	"github.com/vigilhq/vigil/internal/producer"
	"github.com/vigilhq/vigil/internal/quota"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/internal/wal"
)

// handleProduce validates and appends on the reader goroutine, so that
// pipelined produces on one connection get offsets in request order, and
// waits for durability on the writer goroutine.
//
// Validation, as Kafka 3.9's LogValidator: the batch as a whole first
// (framing, CRC, size, no control batch), then every record against the
// topic's rules (a key on a compacted topic, create-time bounds, no
// producer-set LogAppendTime). Bad records refuse the whole batch with
// RecordErrors naming each of them (KIP-467, refuseRecords); nothing of
// a refused batch is appended. A valid batch in another codec than the
// topic's compression.type asks for is then recompressed (compression.go);
// with producer, the default, it is stored as it came.
//
// Transactions (KIP-98, KIP-890 part 1): a transactional batch needs a
// producer id (else INVALID_RECORD) and follows the partition's producer
// rules: an older epoch than the producer's is INVALID_PRODUCER_EPOCH
// (Kafka has answered it rather than PRODUCER_FENCED since 2.7, at every
// produce version), a plain batch of a producer inside a transaction
// INVALID_TXN_STATE. The first batch of a transaction on a partition (its
// producer has none ongoing there at that epoch) is verified with the
// coordinator through txnVerify when set, whose code answers instead of
// appending; a marker of the producer that lands between the
// verification and the append refuses the batch (INVALID_TXN_STATE), so a
// late batch never opens a transaction nobody will end.
//
// Mirror topics (storage.MirrorSourceConfig) refuse these produces with
// INVALID_REQUEST until promoted; produces from `vigil mirror` (client.id
// MirrorClientID) take another path, produce_mirror.go.
//
// Authorization, as Kafka's handleProduceRequest: a request carrying
// transactional batches needs a transactional id and Write on it, or
// every partition fails with TRANSACTIONAL_ID_AUTHORIZATION_FAILED (Kafka
// asks that even without an authorizer, so a missing id fails so too).
// Each topic needs Write, or its partitions fail with
// TOPIC_AUTHORIZATION_FAILED, before any other check (so an unauthorized
// client cannot learn whether the topic exists) and without being
// appended or forwarded. An acks=0 produce that was refused any of this
// closes the connection once read, as Kafka closes it, since the client
// hears of no error otherwise.
//
// Leader discovery (v10+, KIP-951): a partition answered
// NOT_LEADER_OR_FOLLOWER names the leader this broker knows of and the
// response lists its endpoint (leader_hints.go), whichever path answered
// it (refused here, by the WAL's callback, or by a forward), set on the
// writer goroutine once every partition has its answer.
func (b *Broker) handleProduce(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	acks := req.Acks
	if h.clientID == MirrorClientID {
		return b.handleMirrorProduce(c, h, req, resp)
	}
	if hasTransactionalRecords(req) &&
		(req.TransactionID == nil || !c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, *req.TransactionID)) {
		return b.failProduce(c, h, req, resp, kerr.TransactionalIDAuthorizationFailed)
	}
	denied := false // some topic was refused
	var wg sync.WaitGroup
	fw := b.newForwarder(h)
	// Partitions another broker leads, per leader, with the slots their
	// answers go to.
	subs := map[int32]*kmsg.ProduceRequest{}
	slots := map[int32]map[string]map[int32]*kmsg.ProduceResponseTopicPartition{}
	for _, rt := range req.Topics {
		st := kmsg.ProduceResponseTopic{Topic: rt.Topic}
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		if !c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, rt.Topic) {
			for i, rp := range rt.Partitions {
				st.Partitions[i] = kmsg.ProduceResponseTopicPartition{Partition: rp.Partition, ErrorCode: kerr.TopicAuthorizationFailed.Code,
					BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}
			}
			resp.Topics = append(resp.Topics, st)
			denied = true
			continue
		}
		t := b.store.Topic(rt.Topic)
		maxMessageBytes := int64(-1) // looked up once per topic, when first needed
		var stamps *timestampPolicy  // likewise
		var keyed *bool              // likewise: compacted topics need keys
		var target batch.Target      // likewise: the codec batches are stored in (compression.go)
		recompress, targetKnown := false, false
		mirrored := t != nil && storage.Mirrored(t.Topic) // read-only until promoted
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			*sp = kmsg.ProduceResponseTopicPartition{Partition: rp.Partition, BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}
			fail := func(e *kerr.Error, msg string) {
				sp.ErrorCode = e.Code
				if msg != "" {
					sp.ErrorMessage = &msg
					c.log.Info("produce refused", "topic", rt.Topic, "partition", rp.Partition, "error", e.Message, "reason", msg)
				}
			}
			if acks != 0 && acks != 1 && acks != -1 {
				fail(kerr.InvalidRequiredAcks, fmt.Sprintf("acks=%d: must be 0, 1 or -1", acks))
				continue
			}
			if isInternalTopic(rt.Topic) {
				fail(kerr.InvalidTopicException, "cannot append to internal topic "+rt.Topic)
				continue
			}
			if _, code := b.servePartition(t, rp.Partition, -1); code != 0 {
				if leader, ok := fw.target(rt.Topic, rp.Partition); ok && code == kerr.NotLeaderForPartition.Code {
					addProduce(subs, slots, req, leader, rt.Topic, rp, sp)
					continue
				}
				sp.ErrorCode = code
				continue
			}
			if mirrored {
				fail(kerr.InvalidRequest, refuseMirrorTopic(t))
				continue
			}
			hs, err := batch.Split(rp.Records)
			if err != nil {
				if errors.Is(err, batch.ErrCorrupt) {
					fail(kerr.CorruptMessage, err.Error())
				} else {
					fail(kerr.InvalidRecord, err.Error())
				}
				continue
			}
			// Kafka's rule since Produce v3; it is also what lets a retried
			// batch be answered as one unit.
			if len(hs) != 1 {
				fail(kerr.InvalidRecord, fmt.Sprintf("%d record batches for one partition: produce v3+ carries exactly one", len(hs)))
				continue
			}
			bh := &hs[0]
			if maxMessageBytes < 0 {
				maxMessageBytes = b.effectiveInt(t.Configs, "max.message.bytes")
			}
			if int64(len(bh.Raw)) > maxMessageBytes {
				fail(kerr.MessageTooLarge, fmt.Sprintf("record batch of %d bytes exceeds max.message.bytes=%d", len(bh.Raw), maxMessageBytes))
				continue
			}
			if bh.IsControl() {
				fail(kerr.InvalidRecord, "control batches are written by the broker, not by clients")
				continue
			}
			if stamps == nil {
				p := b.timestampPolicy(t.Configs)
				stamps = &p
			}
			if keyed == nil {
				k, _ := storage.CleanupPolicy(t.Configs)
				keyed = &k
			}
			now := time.Now().UnixMilli()
			errs, err := batch.CheckRecords(bh, b.dec, batch.RecordRules{Topic: rt.Topic, Partition: rp.Partition,
				Keyed: *keyed, LogAppendTime: stamps.logAppend, Bounded: stamps.bounded(), Now: now, Before: stamps.before, After: stamps.after})
			if err != nil {
				fail(kerr.CorruptMessage, err.Error())
				continue
			}
			if len(errs) > 0 {
				refuseRecords(sp, errs)
				c.log.Info("produce refused", "topic", rt.Topic, "partition", rp.Partition, "error", kerr.ErrorForCode(sp.ErrorCode).Error(),
					"bad_records", len(errs), "batch_records", bh.NumRecords, "first", errs[0].Message)
				continue
			}
			if !targetKnown {
				target, recompress = b.compressionTarget(t.Configs)
				targetKnown = true
			}
			if recompress {
				if e, msg := b.recompressBatch(bh, target, maxMessageBytes); e != nil {
					fail(e, msg)
					continue
				}
			}
			appendTime := int64(-1)
			if stamps.logAppend {
				appendTime = now
				batch.SetLogAppendTime(bh, now)
			}
			l := t.Logs[rp.Partition]
			guard := producer.NoGuard
			if bh.IsTransactional() {
				if bh.ProducerID < 0 {
					fail(kerr.InvalidRecord, "a transactional record batch needs a producer id")
					continue
				}
				if b.txnVerify != nil && req.TransactionID != nil {
					g, ongoing := l.TxnGuard(bh.ProducerID, bh.ProducerEpoch)
					if !ongoing {
						// v12+ (transaction version 2) adds the partition
						// to the transaction rather than verifying it.
						if code := b.txnVerify(*req.TransactionID, bh.ProducerID, bh.ProducerEpoch, rt.Topic, rp.Partition, h.version >= 12); code != 0 {
							// v11+ clients know TRANSACTION_ABORTABLE (KIP-890);
							// NOT_ENOUGH_REPLICAS is Kafka's retriable answer
							// when the coordinator could not answer (the Java
							// client retries it without refreshing metadata;
							// franz-go waits for a refresh, hence the retries
							// of verifyTxnPartition).
							sp.ErrorCode = verifiedCode(code, h.version >= 11, kerr.NotEnoughReplicas.Code)
							continue
						}
						if h.version >= 12 {
							// Adding may have waited out the producer's last
							// transaction (CONCURRENT_TRANSACTIONS until its
							// markers are written, verifyTxnPartition), whose
							// marker then moved the state g saw: the guard is
							// what the state is once the add succeeded, as
							// Kafka takes a new guard for each attempt. A
							// marker ending this transaction still refuses the
							// batch: with version 2 it carries a bumped epoch.
							g, _ = l.TxnGuard(bh.ProducerID, bh.ProducerEpoch)
						}
						guard = g
					}
				}
			}
			wg.Add(1)
			b.store.ProduceVerified(t, l, bh, guard, func(base int64, err error) {
				defer wg.Done()
				if err != nil {
					switch {
					case errors.Is(err, partition.ErrDeleted):
						sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
						return
					case errors.Is(err, partition.ErrNotLeader):
						sp.ErrorCode = kerr.NotLeaderForPartition.Code
						return
					case errors.Is(err, producer.ErrOutOfOrder):
						fail(kerr.OutOfOrderSequenceNumber, err.Error())
						return
					case errors.Is(err, producer.ErrInvalidEpoch):
						fail(kerr.InvalidProducerEpoch, err.Error())
						return
					case errors.Is(err, producer.ErrInvalidTxnState):
						fail(kerr.InvalidTxnState, err.Error())
						return
					case errors.Is(err, wal.ErrFull):
						// Retriable: the client waits for the WAL to find space
						// again. The WAL logs the condition once.
						sp.ErrorCode = kerr.KafkaStorageError.Code
						msg := "the broker's write-ahead log has no disk space; retry later: " + err.Error()
						sp.ErrorMessage = &msg
						return
					}
					b.log.Error("produce failed", "topic", l.Topic, "partition", l.Partition, "err", err)
					sp.ErrorCode = kerr.KafkaStorageError.Code
					msg := err.Error()
					sp.ErrorMessage = &msg
					return
				}
				sp.BaseOffset = base
				sp.LogAppendTime = appendTime
				sp.LogStartOffset, _ = l.Offsets()
			})
		}
		resp.Topics = append(resp.Topics, st)
	}
	var n int
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			n += len(rp.Records)
		}
	}
	resp.ThrottleMillis = b.throttle(c, quota.ProducerByteRate, h, n)
	// Forwarded from here, the reader goroutine, so that each leader gets
	// this connection's produces in the order they came.
	deadline := time.Now().Add(max(time.Duration(req.TimeoutMillis)*time.Millisecond, time.Second))
	calls := map[int32]*forward.Call{}
	for leader, sub := range subs {
		calls[leader] = fw.submit(leader, sub)
	}
	if acks == 0 {
		if denied {
			c.closeAfter(errors.New("acks=0 produce to a topic the principal may not write"))
		}
		return nil
	}
	return func() kmsg.Response {
		wg.Wait()
		for leader, call := range calls {
			r, code := b.waitForward(call, deadline)
			fresp, _ := r.(*kmsg.ProduceResponse)
			mergeProduce(slots[leader], fresp, code)
		}
		hints := b.newLeaderHints(c, h)
		hints.hintProduce(resp)
		return resp
	}
}

// failProduce answers every partition of a produce with e, which Kafka
// gives the whole request; an acks=0 produce closes the connection.
func (b *Broker) failProduce(c *conn, h header, req *kmsg.ProduceRequest, resp *kmsg.ProduceResponse, e *kerr.Error) func() kmsg.Response {
	for _, rt := range req.Topics {
		st := kmsg.ProduceResponseTopic{Topic: rt.Topic}
		for _, rp := range rt.Partitions {
			st.Partitions = append(st.Partitions, kmsg.ProduceResponseTopicPartition{Partition: rp.Partition, ErrorCode: e.Code,
				BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1})
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == 0 {
		c.closeAfter(fmt.Errorf("acks=0 produce refused: %s", e.Message))
		return nil
	}
	hints := b.newLeaderHints(c, h)
	hints.hintProduce(resp)
	return func() kmsg.Response { return resp }
}

// refuseRecords answers a batch some of whose records failed validation
// as Kafka does (KIP-467, Produce v8+): the whole batch is refused, with
// INVALID_TIMESTAMP if a record's timestamp is at fault, else
// INVALID_RECORD, and RecordErrors names each bad record by its index in
// the batch, so a client can fail those records alone and send the others
// again (librdkafka with KIP-467 support fails the others with
// _INVALID_DIFFERENT_RECORD).
// Older versions carry the code alone: kmsg leaves the v8 fields out.
func refuseRecords(sp *kmsg.ProduceResponseTopicPartition, errs []batch.RecordError) {
	msg, timestamp := batch.RejectionMessage(errs)
	sp.ErrorCode = kerr.InvalidRecord.Code
	if timestamp {
		sp.ErrorCode = kerr.InvalidTimestamp.Code
	}
	sp.ErrorMessage = &msg
	sp.ErrorRecords = make([]kmsg.ProduceResponseTopicPartitionErrorRecord, len(errs))
	for i, e := range errs {
		m := e.Message
		sp.ErrorRecords[i] = kmsg.ProduceResponseTopicPartitionErrorRecord{RelativeOffset: e.Index, ErrorMessage: &m}
	}
}

// hasTransactionalRecords is Kafka's RequestUtils.hasTransactionalRecords:
// whether the first batch of some partition is transactional (magic 2,
// attribute bit 4), read from the raw bytes before any validation.
func hasTransactionalRecords(req *kmsg.ProduceRequest) bool {
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if r := rp.Records; len(r) >= 23 && r[16] == 2 && r[22]&0x10 != 0 {
				return true
			}
		}
	}
	return false
}

// addProduce adds one partition to the request forwarded to leader.
func addProduce(subs map[int32]*kmsg.ProduceRequest, slots map[int32]map[string]map[int32]*kmsg.ProduceResponseTopicPartition,
	req *kmsg.ProduceRequest, leader int32, topic string, rp kmsg.ProduceRequestTopicPartition, sp *kmsg.ProduceResponseTopicPartition) {
	sub := subs[leader]
	if sub == nil {
		sub = kmsg.NewPtrProduceRequest()
		sub.SetVersion(req.GetVersion())
		sub.TransactionID, sub.Acks, sub.TimeoutMillis = req.TransactionID, req.Acks, req.TimeoutMillis
		subs[leader] = sub
		slots[leader] = map[string]map[int32]*kmsg.ProduceResponseTopicPartition{}
	}
	if n := len(sub.Topics); n == 0 || sub.Topics[n-1].Topic != topic {
		sub.Topics = append(sub.Topics, kmsg.ProduceRequestTopic{Topic: topic})
	}
	st := &sub.Topics[len(sub.Topics)-1]
	st.Partitions = append(st.Partitions, rp)
	if slots[leader][topic] == nil {
		slots[leader][topic] = map[int32]*kmsg.ProduceResponseTopicPartition{}
	}
	slots[leader][topic][rp.Partition] = sp
}

// mergeProduce copies a leader's answers into the slots of the
// partitions forwarded to it; a failed forward (or a partition missing
// from the answer) gets code.
func mergeProduce(slots map[string]map[int32]*kmsg.ProduceResponseTopicPartition, resp *kmsg.ProduceResponse, code int16) {
	if resp != nil {
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if sp := slots[rt.Topic][rp.Partition]; sp != nil {
					*sp = rp
					delete(slots[rt.Topic], rp.Partition)
				}
			}
		}
	}
	if code == 0 {
		code = kerr.NotLeaderForPartition.Code
	}
	for _, ps := range slots {
		for _, sp := range ps {
			sp.ErrorCode = code
		}
	}
}
