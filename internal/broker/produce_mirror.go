package broker

// Produce from `vigil mirror` (client.id MirrorClientID): batches copied
// from another cluster, appended at the offsets they carry.
//
// Behaviour, against handleProduce's:
//   - only a mirror topic (storage.MirrorSourceConfig set) takes them; an
//     ordinary topic answers INVALID_REQUEST, so a mirror never rewrites
//     the offsets of a topic it did not create;
//   - each batch keeps its base offset (partition.Log.AppendMirror: gaps
//     stay gaps, a retry below the log end is answered once checked, an
//     overlap is INVALID_REQUEST), its producer fields, timestamps and
//     codec: no recompression, no LogAppendTime stamping, no record rules,
//     no coordinator verification (the source applied its own);
//   - control batches (transaction markers) and transactional batches are
//     taken without a transactional id: they are the source's;
//   - a partition may carry several batches, appended in order (a fetch
//     answer's worth in one request), the answer naming the first's base;
//   - with ACLs on, the principal needs ClusterAction on the Cluster, as
//     Kafka asks of its replication-like requests, besides Write on the
//     topic: writing offsets of one's choosing is a replica's right;
//   - the principal's produce byte-rate quota applies, as to any produce;
//   - producer ids this cluster hands out from then on are above every
//     mirrored batch's (producer.IDs.Above);
//   - a partition another broker leads is NOT_LEADER_OR_FOLLOWER, never
//     forwarded: the mirror routes by metadata, as any Kafka client.
//
// Ordinary produces to a mirror topic are refused in handleProduce
// (refuseMirrorTopic) until the topic is promoted.

import (
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/partition"
	"github.com/vigilhq/vigil/internal/quota"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/internal/wal"
)

// MirrorClientID is the client.id of `vigil mirror`'s connections to
// Vigil: their produces are mirror appends.
const MirrorClientID = "vigil-mirror"

func (b *Broker) handleMirrorProduce(c *conn, h header, req *kmsg.ProduceRequest, resp *kmsg.ProduceResponse) func() kmsg.Response {
	if req.Acks != -1 && req.Acks != 1 {
		return b.failProduce(c, h, req, resp, kerr.InvalidRequiredAcks)
	}
	if !c.allowed(kmsg.ACLOperationClusterAction, kmsg.ACLResourceTypeCluster, clusterResource) {
		return b.failProduce(c, h, req, resp, kerr.ClusterAuthorizationFailed)
	}
	var wg sync.WaitGroup
	for _, rt := range req.Topics {
		st := kmsg.ProduceResponseTopic{Topic: rt.Topic}
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		allowed := c.allowed(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, rt.Topic)
		t := b.store.Topic(rt.Topic)
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			*sp = kmsg.ProduceResponseTopicPartition{Partition: rp.Partition, BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}
			if !allowed {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				continue
			}
			b.mirrorPartition(c, t, rt.Topic, rp, sp, &wg)
		}
		resp.Topics = append(resp.Topics, st)
	}
	// The principal's produce quota applies as to any produce.
	var n int
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			n += len(rp.Records)
		}
	}
	resp.ThrottleMillis = b.throttle(c, quota.ProducerByteRate, h, n)
	return func() kmsg.Response {
		wg.Wait()
		hints := b.newLeaderHints(c, h)
		hints.hintProduce(resp)
		return resp
	}
}

// mirrorPartition validates and appends one partition's batches; sp is
// filled in once the last is durable (wg).
func (b *Broker) mirrorPartition(c *conn, t *storage.Topic, topic string, rp kmsg.ProduceRequestTopicPartition,
	sp *kmsg.ProduceResponseTopicPartition, wg *sync.WaitGroup) {
	fail := func(e *kerr.Error, msg string) {
		sp.ErrorCode = e.Code
		sp.ErrorMessage = &msg
		c.log.Info("mirror append refused", "topic", topic, "partition", rp.Partition, "error", e.Message, "reason", msg)
	}
	l, code := b.servePartition(t, rp.Partition, -1)
	if code != 0 {
		sp.ErrorCode = code
		return
	}
	if isInternalTopic(topic) {
		fail(kerr.InvalidTopicException, "cannot mirror into internal topic "+topic)
		return
	}
	if !storage.Mirrored(t.Topic) {
		fail(kerr.InvalidRequest, fmt.Sprintf("topic %s is not a mirror topic (%s unset): a mirror appends only to topics it created", topic, storage.MirrorSourceConfig))
		return
	}
	hs, err := batch.SplitCopied(rp.Records)
	if err != nil {
		if errors.Is(err, batch.ErrCorrupt) {
			fail(kerr.CorruptMessage, err.Error())
		} else {
			fail(kerr.InvalidRecord, err.Error())
		}
		return
	}
	// The batches keep the source's producer ids: ids this cluster hands
	// out from now on stay above them, so a producer moved here after the
	// cutover is never taken for one of the source's.
	maxPID := int64(-1)
	for i := range hs {
		maxPID = max(maxPID, hs[i].ProducerID)
	}
	if maxPID >= 0 {
		if err := b.store.ProducerIDsAbove(c.ctx, maxPID); err != nil {
			// The copy itself is still right; only a later producer of
			// this cluster could be confused with a source's.
			c.log.Warn("mirror append: producer ids not moved above the source's", "topic", topic, "partition", rp.Partition, "err", err)
		}
	}
	// Each batch's answer lands here; the partition's is the first error,
	// else the first batch's base offset.
	var mu sync.Mutex
	first := int64(-1)
	var firstErr error
	for i := range hs {
		// A batch refused at once (a conflict, a full WAL) stops the
		// request there: a later batch appended past it would leave its
		// offsets a gap for good, since the mirror resumes at the end.
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop {
			break
		}
		wg.Add(1)
		b.store.MirrorAppend(c.ctx, t, l, &hs[i], func(base int64, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
				b.mirrorError(c, l, sp, err)
			}
			if i == 0 && err == nil {
				first = base
			}
			if firstErr == nil && i == len(hs)-1 {
				sp.BaseOffset = first
				sp.LogStartOffset, _ = l.Offsets()
			}
		})
	}
}

// mirrorError answers a failed mirror append.
func (b *Broker) mirrorError(c *conn, l *partition.Log, sp *kmsg.ProduceResponseTopicPartition, err error) {
	sp.BaseOffset = -1
	switch {
	case errors.Is(err, partition.ErrDeleted):
		sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return
	case errors.Is(err, partition.ErrNotLeader):
		sp.ErrorCode = kerr.NotLeaderForPartition.Code
		return
	case errors.Is(err, partition.ErrMirrorConflict):
		sp.ErrorCode = kerr.InvalidRequest.Code
		c.log.Warn("mirror append refused", "topic", l.Topic, "partition", l.Partition, "err", err)
	case errors.Is(err, wal.ErrFull):
		sp.ErrorCode = kerr.KafkaStorageError.Code
	default:
		b.log.Error("mirror append failed", "topic", l.Topic, "partition", l.Partition, "err", err)
		sp.ErrorCode = kerr.KafkaStorageError.Code
	}
	msg := err.Error()
	sp.ErrorMessage = &msg
}

// refuseMirrorTopic is the message an ordinary produce to a mirror topic
// gets (INVALID_REQUEST, which clients do not retry): the topic is
// read-only until promoted, as Kafka's mirror topics under cluster
// linking are.
func refuseMirrorTopic(t *storage.Topic) string {
	return fmt.Sprintf("topic %s is a read-only mirror of %s: produce to the source, or promote it first (vigil mirror promote %s)",
		t.Name, t.Configs[storage.MirrorSourceConfig], t.Name)
}
