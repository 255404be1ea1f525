package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/group"
	"github.com/vigilhq/vigil/internal/partition"
	"github.com/vigilhq/vigil/internal/producer"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/internal/txn"
)

// markerTimeout bounds one forwarded WriteTxnMarkers; the coordinator
// retries after it.
const markerTimeout = 30 * time.Second

// handleWriteTxnMarkers appends transaction markers to the partitions
// this broker leads: a transaction coordinator on another broker sends
// it. A marker on a __consumer_offsets partition also completes the
// group coordinator's pending transactional offsets before it is
// answered, so offsets committed after the answer belong to the
// producer's next transaction.
//
// Authorization, as Kafka's handleWriteTxnMarkersRequest: ClusterAction
// on the cluster (brokers only), else every partition
// CLUSTER_AUTHORIZATION_FAILED.
func (b *Broker) handleWriteTxnMarkers(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.WriteTxnMarkersRequest)
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	allowed := c.allowed(kmsg.ACLOperationClusterAction, kmsg.ACLResourceTypeCluster, clusterResource)
	results := make([]*markerResult, len(req.Markers))
	for i, m := range req.Markers {
		mk := storage.Marker{ProducerID: m.ProducerID, Epoch: m.ProducerEpoch, Commit: m.Committed,
			CoordinatorEpoch: m.CoordinatorEpoch, TransactionVersion: m.TransactionVersion}
		var tps []txn.TopicPartition
		for _, t := range m.Topics {
			for _, p := range t.Partitions {
				tps = append(tps, txn.TopicPartition{Topic: t.Topic, Partition: p})
			}
		}
		if !allowed {
			results[i] = failedMarkers(tps, kerr.ClusterAuthorizationFailed.Code)
			continue
		}
		// Appended here, on the reader goroutine, in request order.
		results[i] = b.appendMarkers(mk, tps)
	}
	return func() kmsg.Response {
		for i, m := range req.Markers {
			res := results[i]
			res.wait()
			rm := kmsg.WriteTxnMarkersResponseMarker{ProducerID: m.ProducerID}
			for _, t := range m.Topics {
				rt := kmsg.WriteTxnMarkersResponseMarkerTopic{Topic: t.Topic}
				for _, p := range t.Partitions {
					rt.Partitions = append(rt.Partitions, kmsg.WriteTxnMarkersResponseMarkerTopicPartition{
						Partition: p, ErrorCode: res.codes[txn.TopicPartition{Topic: t.Topic, Partition: p}]})
				}
				rm.Topics = append(rm.Topics, rt)
			}
			resp.Markers = append(resp.Markers, rm)
		}
		return resp
	}
}

// markerResult is the answer per partition of one marker, final once
// wait returns.
type markerResult struct {
	mu    sync.Mutex
	wg    sync.WaitGroup
	codes map[txn.TopicPartition]int16
}

func (r *markerResult) set(tp txn.TopicPartition, code int16) {
	r.mu.Lock()
	r.codes[tp] = code
	r.mu.Unlock()
}

func (r *markerResult) wait() {
	r.wg.Wait()
	r.mu.Lock() // the callbacks' writes happen before
	r.mu.Unlock()
}

func failedMarkers(tps []txn.TopicPartition, code int16) *markerResult {
	r := &markerResult{codes: make(map[txn.TopicPartition]int16, len(tps))}
	for _, tp := range tps {
		r.codes[tp] = code
	}
	return r
}

// appendMarkers appends m to each of the partitions tps this broker
// leads; a partition led elsewhere is NOT_LEADER_OR_FOLLOWER.
func (b *Broker) appendMarkers(m storage.Marker, tps []txn.TopicPartition) *markerResult {
	res := &markerResult{codes: make(map[txn.TopicPartition]int16, len(tps))}
	for _, tp := range tps {
		t := b.store.Topic(tp.Topic)
		l, code := b.servePartition(t, tp.Partition, -1)
		if code != 0 {
			res.codes[tp] = code
			continue
		}
		res.wg.Add(1)
		b.store.AppendMarker(t, l, m, func(_ int64, err error) {
			code := markerCode(err)
			if code == 0 && tp.Topic == group.OffsetsTopic {
				if g := b.groupsPtr.Load().ForPartition(tp.Partition); g != nil {
					// The group coordinator's applier completes the
					// offsets; waiting for it must not hold up this
					// callback, which runs on the WAL's goroutine.
					done := g.CompleteTxn(m.ProducerID, m.Commit)
					go func() {
						<-done
						res.set(tp, 0)
						res.wg.Done()
					}()
					return
				}
			}
			res.set(tp, code)
			res.wg.Done()
		})
	}
	return res
}

// markerCode is the Kafka error code of a marker append's error.
func markerCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, partition.ErrNotLeader):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, partition.ErrDeleted):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, producer.ErrInvalidEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, producer.ErrCoordinatorFenced):
		return kerr.TransactionCoordinatorFenced.Code
	default:
		return kerr.KafkaStorageError.Code
	}
}

// markerDone reports whether a partition's answer ends the marker's work
// there. A partition that is gone needs none; INVALID_PRODUCER_EPOCH and
// TRANSACTION_COORDINATOR_FENCED mean a newer epoch of the producer or of
// the coordinator has been there since, so this marker is superseded:
// Kafka's coordinator stops sending it too (TransactionMarkerRequestCompletionHandler).
func markerDone(code int16) bool {
	switch code {
	case 0, kerr.UnknownTopicOrPartition.Code, kerr.InvalidProducerEpoch.Code, kerr.TransactionCoordinatorFenced.Code:
		return true
	}
	return false
}

// TxnMarkers writes the transaction coordinator's markers through the
// broker: to the partitions it leads directly, to the others through the
// leaders' inter-broker links (txn.Markers).
type TxnMarkers struct{ b *Broker }

// Markers returns the broker's marker writer for its transaction
// coordinators.
func (b *Broker) Markers() TxnMarkers { return TxnMarkers{b} }

// Write returns nil once every partition of m has its marker durably (or
// needs none, markerDone), or an error naming the partitions that still
// do; the coordinator then retries.
func (w TxnMarkers) Write(ctx context.Context, m txn.Marker) error {
	b := w.b
	mk := storage.Marker{ProducerID: m.ProducerID, Epoch: m.Epoch, Commit: m.Commit, CoordinatorEpoch: m.CoordinatorEpoch,
		TransactionVersion: m.TransactionVersion}
	var local []txn.TopicPartition
	remote := map[int32][]txn.TopicPartition{}
	var errs []error
	for _, tp := range m.Partitions {
		t := b.store.Topic(tp.Topic)
		if t == nil {
			continue // deleted meanwhile: no marker needed
		}
		switch leader, _ := b.leaderOf(t.Name, tp.Partition); {
		case b.cluster == nil || leader == b.cfg.NodeID:
			local = append(local, tp)
		case leader < 0:
			errs = append(errs, fmt.Errorf("marker for %s/%d: no leader now", tp.Topic, tp.Partition))
		default:
			remote[leader] = append(remote[leader], tp)
		}
	}
	res := b.appendMarkers(mk, local)
	type fwdResult struct {
		id  int32
		err error
	}
	fwd := make(chan fwdResult, len(remote))
	for id, tps := range remote {
		go func() { fwd <- fwdResult{id, b.forwardMarkers(ctx, id, mk, tps)} }()
	}
	res.wait()
	for tp, code := range res.codes {
		if !markerDone(code) {
			errs = append(errs, fmt.Errorf("marker for %s/%d: %w", tp.Topic, tp.Partition, kerr.ErrorForCode(code)))
		}
	}
	for range remote {
		if r := <-fwd; r.err != nil {
			errs = append(errs, fmt.Errorf("markers through broker %d: %w", r.id, r.err))
		}
	}
	return errors.Join(errs...)
}

// forwardMarkers sends one marker for the partitions tps to their leader
// id and returns the partitions' failures.
func (b *Broker) forwardMarkers(ctx context.Context, id int32, m storage.Marker, tps []txn.TopicPartition) error {
	e, ok := b.endpoint(b.cfg.InterBroker(), id)
	if !ok || b.fwd == nil {
		return fmt.Errorf("broker %d is not live", id)
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Version = 2
	rm := kmsg.NewWriteTxnMarkersRequestMarker()
	rm.ProducerID, rm.ProducerEpoch, rm.Committed, rm.CoordinatorEpoch = m.ProducerID, m.Epoch, m.Commit, m.CoordinatorEpoch
	rm.TransactionVersion = m.TransactionVersion
	idx := map[string]int{}
	for _, tp := range tps {
		i, ok := idx[tp.Topic]
		if !ok {
			i = len(rm.Topics)
			idx[tp.Topic] = i
			rm.Topics = append(rm.Topics, kmsg.WriteTxnMarkersRequestMarkerTopic{Topic: tp.Topic})
		}
		rm.Topics[i].Partitions = append(rm.Topics[i].Partitions, tp.Partition)
	}
	req.Markers = []kmsg.WriteTxnMarkersRequestMarker{rm}
	wctx, cancel := context.WithTimeout(ctx, markerTimeout)
	defer cancel()
	r, err := b.fwd.Submit(id, net.JoinHostPort(e.host, strconv.Itoa(int(e.port))), req).Wait(wctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, mr := range r.(*kmsg.WriteTxnMarkersResponse).Markers {
		for _, t := range mr.Topics {
			for _, p := range t.Partitions {
				if !markerDone(p.ErrorCode) {
					errs = append(errs, fmt.Errorf("marker for %s/%d: %w", t.Topic, p.Partition, kerr.ErrorForCode(p.ErrorCode)))
				}
			}
		}
	}
	return errors.Join(errs...)
}
