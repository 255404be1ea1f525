package broker

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/bufpool"
	"github.com/vigilhq/vigil/internal/forward"
	"github.com/vigilhq/vigil/internal/partition"
	"github.com/vigilhq/vigil/internal/quota"
	"github.com/vigilhq/vigil/internal/storage"
)

// handleFetch serves fetches without sessions: every request is a full
// fetch, and a request for a new session (epoch 0) is answered with
// session id 0, which tells the client none was created (KIP-227).
//
// Waiting: a fetch long-polls until min bytes or max wait, unless some
// partition is answered with an error, which answers at once (Kafka's
// ReplicaManager.fetchMessages); a partition fenced while a fetch waits
// wakes it (partition.Log.Fence), so a consumer of a partition that moved
// is told (NOT_LEADER_OR_FOLLOWER, with the new leader from v16) without
// waiting out its max wait.
//
// Isolation (v4+, KIP-98): READ_UNCOMMITTED reads up to the high
// watermark; READ_COMMITTED only batches below the last stable offset,
// and is told the aborted transactions of what it read
// (AbortedTransactions: those whose abort marker is at or after the fetch
// offset and whose first offset is at or before the last offset returned,
// from the partition's aborted index, which covers data read back from
// segment objects too), an empty list when there are none or nothing was
// read, as Kafka answers. Kafka bounds that lookup by its sparse offset
// index, so it may name a few more transactions beginning just past the
// data; clients ignore those. LastStableOffset is the LSO at both levels
// (the high watermark when no transaction is open); an offset between the
// LSO and the high watermark is in range and reads nothing.
//
// Authorization, as Kafka's handleFetchRequest: a consumer needs Read on
// each topic; a refused topic's partitions are answered
// TOPIC_AUTHORIZATION_FAILED (after the partitions read) and are never
// read, waited on or forwarded. A fetch from a replica (replica id >= 0)
// needs ClusterAction on the cluster instead, or every partition is
// refused so.
//
// Topic ids (v13+, KIP-516): the request names each topic by id alone. An
// id that is no live topic's, because it never was or because the topic
// was deleted (and perhaps re-created under a new id), is answered
// UNKNOWN_TOPIC_ID for each of its partitions, before authorization as in
// Kafka's handleFetchRequest: the id names nothing to authorize. A known
// id is read by id on every pass of a long poll, never by the name it
// had, so a topic deleted and re-created by name mid-fetch is never read
// at the old incarnation's offsets; that is how a client reading the old
// incarnation learns of the new one.
//
// Later versions: v14 (KIP-405) only lets the broker answer
// OFFSET_MOVED_TO_TIERED_STORAGE, which Vigil, whose whole log is in the
// object store and readable, never does; v15 (KIP-903) moves the replica
// id into the tagged ReplicaState (fetchReplicaID; a consumer's is -1);
// v16 (KIP-951) adds the leader hints of NOT_LEADER_OR_FOLLOWER and
// FENCED_LEADER_EPOCH partitions (leader_hints.go); v17 (KIP-853) adds
// only a follower's ReplicaDirectoryId, a tagged field consumers leave
// out and Vigil ignores. From v12 on, partitions answer the tagged
// DivergingEpoch, CurrentLeader and SnapshotID at Kafka's defaults (left
// off the wire) unless a hint is set.
func (b *Broker) handleFetch(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req, unknown := b.resolveFetchIDs(r.(*kmsg.FetchRequest))
	req, denied := authorizeFetch(c, req)
	denied = append(unknown, denied...)
	local, subs, fw := b.splitFetch(h, req)
	// Forwarded from the reader goroutine, like produces (order is not
	// needed here, but one path is simpler to reason about).
	deadline := time.Now().Add(time.Duration(max(req.MaxWaitMillis, 0))*time.Millisecond + forwardFetchSlack)
	calls := map[int32]*forward.Call{}
	for leader, sub := range subs {
		calls[leader] = fw.submit(leader, sub)
	}
	return func() kmsg.Response {
		var resp *kmsg.FetchResponse
		bufs := &heldBufs{pool: &b.fetchBufs}
		switch {
		case len(calls) == 0:
			resp = b.fetch(c, h, req, bufs)
		case len(local.Topics) == 0:
			resp = req.ResponseKind().(*kmsg.FetchResponse)
		default:
			// The leaders long-poll the forwarded partitions; the local
			// ones are answered as they are now, merged once the
			// forwards return.
			local.MaxWaitMillis = 0
			resp = b.fetch(c, h, local, bufs)
		}
		for leader, call := range calls {
			r, code := b.waitForward(call, deadline)
			fresp, _ := r.(*kmsg.FetchResponse)
			mergeFetch(resp, subs[leader], fresp, code)
		}
		if resp.ErrorCode == 0 {
			resp.Topics = append(resp.Topics, denied...)
		}
		hints := b.newLeaderHints(c, h)
		hints.hintFetch(resp)
		var n int
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				n += len(p.RecordBatches)
			}
		}
		resp.ThrottleMillis = b.throttle(c, quota.ConsumerByteRate, h, n)
		if b.catchup != nil && bufs.fromObjects > 0 {
			// Held here, on this connection's writer: the reader's next
			// fetch waits for this answer, so it reads at the rate, and
			// no other connection waits.
			b.catchup.Wait(c.ctx, bufs.fromObjects)
		}
		return pooledFetch{resp, bufs}
	}
}

// resolveFetchIDs names the topics of a v13+ fetch by their ids and takes
// out those whose id is no live topic's, returning their answers
// (UNKNOWN_TOPIC_ID). Earlier versions are returned as they are.
func (b *Broker) resolveFetchIDs(req *kmsg.FetchRequest) (*kmsg.FetchRequest, []kmsg.FetchResponseTopic) {
	if req.Version < 13 {
		return req, nil
	}
	kept := req.Topics[:0:0]
	var unknown []kmsg.FetchResponseTopic
	for _, rt := range req.Topics {
		if t := b.store.TopicByID(rt.TopicID); t != nil {
			rt.Topic = t.Name
			kept = append(kept, rt)
			continue
		}
		st := kmsg.FetchResponseTopic{TopicID: rt.TopicID}
		for _, rp := range rt.Partitions {
			st.Partitions = append(st.Partitions, errFetchPartition(rp.Partition, kerr.UnknownTopicID.Code))
		}
		unknown = append(unknown, st)
	}
	cp := *req
	cp.Topics = kept
	if len(kept) == 0 && len(unknown) > 0 {
		cp.MaxWaitMillis = 0 // nothing is left to wait for, as authorizeFetch
	}
	return &cp, unknown
}

// errFetchPartition is a partition's answer that reads nothing. Its
// tagged fields (v12+) keep kmsg's defaults, which are Kafka's and left
// off the wire: a zero DivergingEpoch would tell a client its log
// diverged at offset 0.
func errFetchPartition(p int32, code int16) kmsg.FetchResponseTopicPartition {
	sp := kmsg.NewFetchResponseTopicPartition()
	sp.Partition, sp.ErrorCode, sp.HighWatermark, sp.PreferredReadReplica, sp.RecordBatches = p, code, -1, -1, []byte{}
	return sp
}

// authorizeFetch takes the topics the principal may not read out of a
// fetch and returns their answers. A fetch with every topic readable is
// returned as it is, without allocating; one whose topics are all refused
// does not wait (Kafka answers it at once: nothing is left to read).
func authorizeFetch(c *conn, req *kmsg.FetchRequest) (*kmsg.FetchRequest, []kmsg.FetchResponseTopic) {
	replicaID := fetchReplicaID(req)
	replica := replicaID >= 0 && c.allowed(kmsg.ACLOperationClusterAction, kmsg.ACLResourceTypeCluster, clusterResource)
	var kept *kmsg.FetchRequest
	var denied []kmsg.FetchResponseTopic
	for i, rt := range req.Topics {
		if replica || (replicaID < 0 && c.allowed(kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, rt.Topic)) {
			if kept != nil {
				kept.Topics = append(kept.Topics, rt)
			}
			continue
		}
		if kept == nil {
			cp := *req
			cp.Topics = append([]kmsg.FetchRequestTopic(nil), req.Topics[:i]...)
			kept = &cp
		}
		st := kmsg.FetchResponseTopic{Topic: rt.Topic, TopicID: rt.TopicID}
		for _, rp := range rt.Partitions {
			st.Partitions = append(st.Partitions, errFetchPartition(rp.Partition, kerr.TopicAuthorizationFailed.Code))
		}
		denied = append(denied, st)
	}
	if kept == nil {
		return req, nil
	}
	if len(kept.Topics) == 0 {
		kept.MaxWaitMillis = 0
	}
	return kept, denied
}

// fetchReplicaID is the fetching replica's id, -1 for a consumer: from
// v15 on in ReplicaState (KIP-903), before in ReplicaID, as Kafka's
// FetchRequest.replicaId.
func fetchReplicaID(req *kmsg.FetchRequest) int32 {
	if req.Version >= 15 {
		return req.ReplicaState.ID
	}
	return req.ReplicaID
}

// heldBufs are the pooled arrays one fetch response's records were copied
// into; they go back to the pool once the response is encoded.
type heldBufs struct {
	pool        *bufpool.Pool
	held        [][]byte
	fromObjects int // bytes of the response read from segment objects
}

func (h *heldBufs) get(n int) []byte {
	buf := h.pool.Get(n)
	h.held = append(h.held, buf)
	return buf
}

func (h *heldBufs) release() {
	for _, buf := range h.held {
		h.pool.Put(buf)
	}
	h.held, h.fromObjects = h.held[:0], 0
}

// pooledFetch is a fetch response whose records lie in pooled arrays: the
// connection's writer calls releaseBuffers once it has encoded it.
type pooledFetch struct {
	*kmsg.FetchResponse
	bufs *heldBufs
}

// The writer recognises it by this interface; without it the arrays would
// never go back to the pool.
var _ pooledResponse = pooledFetch{}

func (p pooledFetch) releaseBuffers() { p.bufs.release() }

func (p pooledFetch) fromObjects() bool { return p.bufs.fromObjects > 0 }

// recordBytes is what the response's record sets hold, most of its size.
func (p pooledFetch) recordBytes() int {
	n := 0
	for _, t := range p.Topics {
		n += 64 + len(t.Topic)
		for _, pt := range t.Partitions {
			n += 64 + len(pt.RecordBatches)
		}
	}
	return n
}

// forwardFetchSlack is how much longer than its max wait a forwarded
// fetch may take: the leader may have to read objects after the wait.
const forwardFetchSlack = 5 * time.Second

// splitFetch separates the partitions of a fetch that are forwarded to
// their leaders (per leader) from those answered here.
func (b *Broker) splitFetch(h header, req *kmsg.FetchRequest) (*kmsg.FetchRequest, map[int32]*kmsg.FetchRequest, *forwarder) {
	fw := b.newForwarder(h)
	if !fw.enabled || (h.version >= 7 && (req.SessionID != 0 || (req.SessionEpoch != 0 && req.SessionEpoch != -1))) {
		return req, nil, fw
	}
	local := *req
	local.Topics = nil
	var subs map[int32]*kmsg.FetchRequest
	for _, rt := range req.Topics {
		t := b.store.Topic(rt.Topic)
		lt := rt
		lt.Partitions = nil
		for _, rp := range rt.Partitions {
			if t != nil && rp.Partition >= 0 && int(rp.Partition) < len(t.Logs) {
				if _, led := t.Logs[rp.Partition].Leader(); !led {
					if leader, ok := fw.target(rt.Topic, rp.Partition); ok {
						if subs == nil {
							subs = map[int32]*kmsg.FetchRequest{}
						}
						sub := subs[leader]
						if sub == nil {
							cp := *req
							sub = &cp
							sub.Topics, sub.ForgottenTopics = nil, nil
							sub.SessionID, sub.SessionEpoch, sub.ReplicaID = 0, -1, -1
							sub.ReplicaState = kmsg.NewFetchRequestReplicaState()
							subs[leader] = sub
						}
						if n := len(sub.Topics); n == 0 || sub.Topics[n-1].Topic != rt.Topic {
							st := rt
							st.Partitions = nil
							sub.Topics = append(sub.Topics, st)
						}
						st := &sub.Topics[len(sub.Topics)-1]
						st.Partitions = append(st.Partitions, rp)
						continue
					}
				}
			}
			lt.Partitions = append(lt.Partitions, rp)
		}
		if len(lt.Partitions) > 0 || len(rt.Partitions) == 0 {
			local.Topics = append(local.Topics, lt)
		}
	}
	if len(subs) == 0 {
		return req, nil, fw
	}
	return &local, subs, fw
}

// mergeFetch adds a leader's answer for the partitions of sub to resp; a
// failed forward (or a partition missing from the answer) gets code.
func mergeFetch(resp *kmsg.FetchResponse, sub *kmsg.FetchRequest, fresp *kmsg.FetchResponse, code int16) {
	if code == 0 {
		code = kerr.NotLeaderForPartition.Code
	}
	// A v13+ answer names its topics by id only (sub's topics carry both).
	key := func(name string, id [16]byte) fetchTopicKey {
		if sub.Version >= 13 {
			return fetchTopicKey{id: id}
		}
		return fetchTopicKey{name: name}
	}
	got := map[fetchTopicKey]map[int32]kmsg.FetchResponseTopicPartition{}
	if fresp != nil {
		for _, rt := range fresp.Topics {
			k := key(rt.Topic, rt.TopicID)
			if got[k] == nil {
				got[k] = map[int32]kmsg.FetchResponseTopicPartition{}
			}
			for _, rp := range rt.Partitions {
				got[k][rp.Partition] = rp
			}
		}
	}
	for _, rt := range sub.Topics {
		i := slices.IndexFunc(resp.Topics, func(t kmsg.FetchResponseTopic) bool { return t.Topic == rt.Topic })
		if i < 0 {
			resp.Topics = append(resp.Topics, kmsg.FetchResponseTopic{Topic: rt.Topic, TopicID: rt.TopicID})
			i = len(resp.Topics) - 1
		}
		for _, rp := range rt.Partitions {
			sp, ok := got[key(rt.Topic, rt.TopicID)][rp.Partition]
			if !ok {
				sp = errFetchPartition(rp.Partition, code)
			}
			if sp.RecordBatches == nil {
				sp.RecordBatches = []byte{} // never null: see fetchOnce
			}
			resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, sp)
		}
	}
}

// fetchTopicKey is a topic of a forwarded fetch's answer: by id from v13
// on, else by name.
type fetchTopicKey struct {
	name string
	id   [16]byte
}

// fetch answers one fetch, long-polling until min bytes or max wait.
func (b *Broker) fetch(c *conn, h header, req *kmsg.FetchRequest, bufs *heldBufs) *kmsg.FetchResponse {
	{
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		if h.version >= 7 {
			if req.SessionID != 0 {
				resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
				return resp
			}
			if req.SessionEpoch != 0 && req.SessionEpoch != -1 {
				resp.ErrorCode = kerr.InvalidFetchSessionEpoch.Code
				return resp
			}
		}
		wait := time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond
		deadline := time.Now().Add(wait)
		wake := make(chan struct{}, 1)
		watched := map[*partition.Log]struct{}{}
		defer func() {
			for l := range watched {
				l.Unwatch(wake)
			}
		}()
		for {
			bufs.release() // an earlier pass's response is dropped
			size, failed := b.fetchOnce(c.ctx, req, resp, wake, watched, bufs)
			left := time.Until(deadline)
			// A partition answered with an error ends the wait, as in
			// Kafka's ReplicaManager.fetchMessages ("some error happens
			// while reading data"): a client told NOT_LEADER_OR_FOLLOWER
			// (a partition that moved, perhaps while this fetch waited:
			// Fence wakes it) goes to the new leader now, not after its
			// max wait.
			if size >= int(req.MinBytes) || failed || left <= 0 {
				return resp
			}
			timer := time.NewTimer(left)
			select {
			case <-wake:
			case <-timer.C:
			case <-c.ctx.Done():
				timer.Stop()
				return resp
			}
			timer.Stop()
		}
	}
}

// abortedTxns is a read_committed answer's AbortedTransactions for the
// data of [from, last]: never null (Kafka's empty list), empty when
// nothing was read.
func abortedTxns(l *partition.Log, from, last int64) []kmsg.FetchResponseTopicPartitionAbortedTransaction {
	out := []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
	if last < from {
		return out
	}
	for _, a := range l.AbortedTxns(from, last) {
		t := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
		t.ProducerID, t.FirstOffset = a.ProducerID, a.FirstOffset
		out = append(out, t)
	}
	return out
}

// fetchOnce fills resp from the current logs and returns the bytes it
// holds and whether some partition was answered with an error. It
// registers wake with every partition that had nothing, so a long poll
// wakes as soon as any of them gets data.
func (b *Broker) fetchOnce(ctx context.Context, req *kmsg.FetchRequest, resp *kmsg.FetchResponse, wake chan struct{}, watched map[*partition.Log]struct{}, bufs *heldBufs) (int, bool) {
	resp.Topics = resp.Topics[:0]
	maxBytes := int(req.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = 1 << 30 // versions before v3 have no response limit
	}
	// Kafka's fetch.max.bytes. Smaller answers cost a replay little (one
	// more round trip per few MiB), while one of 64 MiB was built in a
	// single allocation whose collector assist held a CPU for 100 ms,
	// stalling every produce on a two-core machine.
	maxBytes = min(maxBytes, int(b.cfg.FetchMaxBytes))
	total, failed := 0, false
	for _, rt := range req.Topics {
		st := kmsg.FetchResponseTopic{Topic: rt.Topic, TopicID: rt.TopicID}
		var t *storage.Topic
		if req.Version >= 13 {
			// By id on every pass: the name may meanwhile belong to a
			// re-created topic whose offsets mean other records.
			t = b.store.TopicByID(rt.TopicID)
		} else {
			t = b.store.Topic(rt.Topic)
		}
		for _, rp := range rt.Partitions {
			// RecordBatches is never null: librdkafka rejects a null
			// (size -1) record set even alongside an error code.
			sp := errFetchPartition(rp.Partition, 0)
			l, code := b.servePartition(t, rp.Partition, rp.CurrentLeaderEpoch)
			switch {
			case t == nil && req.Version >= 13:
				sp.ErrorCode = kerr.UnknownTopicID.Code
			case code != 0:
				sp.ErrorCode = code
			default:
				limit := min(int(rp.PartitionMaxBytes), maxBytes-total)
				if b.catchup != nil && l.Cold(rp.FetchOffset) {
					// A paced answer is a short burst of reading, copying
					// and sending, which the tail path's requests wait
					// out on two cores; the pace decides how often.
					limit = min(limit, int(b.cfg.CatchupChunkBytes)-bufs.fromObjects)
				}
				iso := partition.ReadUncommitted
				if req.IsolationLevel == 1 {
					iso = partition.ReadCommitted
				}
				var res partition.ReadResult
				var err error
				if limit > 0 || total == 0 {
					res, err = l.ReadInto(ctx, rp.FetchOffset, max(limit, 0), total == 0, iso, bufs.get)
				} else {
					res.LogStart, res.HW = l.Offsets()
					res.LSO, res.Last = l.LSO(), -1
				}
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = res.HW, res.LSO, res.LogStart
				switch {
				case errors.Is(err, partition.ErrOffsetOutOfRange):
					sp.ErrorCode = kerr.OffsetOutOfRange.Code
				case errors.Is(err, partition.ErrNotLeader):
					sp.ErrorCode = kerr.NotLeaderForPartition.Code
				case err != nil && ctx.Err() != nil:
					sp.ErrorCode = kerr.KafkaStorageError.Code // client gone; nobody reads this
				case err != nil:
					b.log.Error("fetch read failed", "topic", rt.Topic, "partition", rp.Partition, "offset", rp.FetchOffset, "err", err)
					sp.ErrorCode = kerr.KafkaStorageError.Code
				default:
					if res.Data != nil {
						sp.RecordBatches = res.Data
					}
					if iso == partition.ReadCommitted {
						sp.AbortedTransactions = abortedTxns(l, rp.FetchOffset, res.Last)
					}
					total += len(res.Data)
					if res.FromObjects {
						bufs.fromObjects += len(res.Data)
					}
					if _, ok := watched[l]; !ok && len(res.Data) == 0 {
						l.Watch(wake)
						watched[l] = struct{}{}
					}
				}
			}
			failed = failed || sp.ErrorCode != 0
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return total, failed
}
