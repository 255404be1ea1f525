package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/partition"
	"github.com/vigilhq/vigil/internal/producer"
)

// Producer state (idempotence and transactions) is persisted as of the
// uploaded data, not the log end: the uploader folds each uploaded
// batch's producer fields (a marker's too) into upProducers and writes
// the entries it changed to the metadata store in the transaction that
// commits the segment index. On restart a partition starts from those
// entries and the WAL replay applies every later batch, so the state is
// exact without a write per produce. Only producers touched by an upload
// are written, so the cost follows the upload, not the number of
// producers.

// loadProducers restores a partition's producer state from the store.
func (e *Engine) loadProducers(ctx context.Context, topic string, l *partition.Log) error {
	ps, err := e.meta.Producers(ctx, topic, l.Partition)
	if err != nil {
		return fmt.Errorf("storage: load producer state of %s/%d: %w", topic, l.Partition, err)
	}
	up := producer.NewState()
	for _, p := range ps {
		ent, err := producer.Decode(p.Data)
		if err != nil {
			return fmt.Errorf("storage: producer state of %s/%d: %w", topic, l.Partition, err)
		}
		l.RestoreProducer(ent)
		up.Put(ent)
	}
	e.upProducers[l] = up
	return nil
}

// changedProducer is one producer entry an upload changes, not yet
// installed in upProducers (the upload may still fail and be retried).
type changedProducer struct {
	log   *partition.Log
	entry *producer.Entry
}

// uploadedProducers applies the producer fields of the batches about to
// be uploaded to copies of the uploaded state, and returns the changed
// entries and their stored form, each fenced at its partition's epoch
// (epochOf; 0 for a single broker).
func (e *Engine) uploadedProducers(q []queued, epochOf func(*partition.Log) int32) ([]changedProducer, []meta.Producer, error) {
	type key struct {
		log *partition.Log
		id  int64
	}
	work := map[*partition.Log]*producer.State{}
	var order []key
	seen := map[key]bool{}
	nowMs := time.Now().UnixMilli()
	for _, it := range q {
		if it.log.Deleted() {
			continue
		}
		info, err := batch.Peek(it.b.Data)
		if err != nil {
			return nil, nil, fmt.Errorf("producer state of %s/%d: %w", it.log.Topic, it.log.Partition, err)
		}
		pb := info.Producer()
		if pb.ID < 0 {
			continue
		}
		st := work[it.log]
		if st == nil {
			st = producer.NewState()
			work[it.log] = st
		}
		k := key{it.log, pb.ID}
		if !seen[k] {
			seen[k] = true
			order = append(order, k)
			if up := e.upProducers[it.log]; up != nil {
				if c := up.Clone(pb.ID); c != nil {
					st.Put(c)
				}
			}
		}
		if err := partition.ApplyStored(st, it.b.Data, nowMs); err != nil {
			return nil, nil, fmt.Errorf("producer state of %s/%d: %w", it.log.Topic, it.log.Partition, err)
		}
	}
	if len(order) == 0 {
		return nil, nil, nil
	}
	out := make([]changedProducer, len(order))
	ps := make([]meta.Producer, len(order))
	for i, k := range order {
		ent := work[k.log].Get(k.id)
		out[i] = changedProducer{k.log, ent}
		ps[i] = meta.Producer{Topic: k.log.Topic, TopicID: k.log.TopicID, Partition: k.log.Partition, ProducerID: k.id, Data: ent.Encode(), LeaderEpoch: epochOf(k.log)}
	}
	return out, ps, nil
}

// recoveredProducers is the state, fenced at the new epoch, of the
// producers whose batches a takeover recovered from the WAL. Those batches
// are uploaded by the takeover itself, not by the upload queue, so without
// it their producer state would live only in this broker until the
// producer's next batch is uploaded, and a later leader would load it
// without them (and accept a retry of one of them as new).
func (e *Engine) recoveredProducers(l *partition.Log, ids []int64, epoch int32) []meta.Producer {
	up := e.upProducers[l]
	var ps []meta.Producer
	for _, id := range ids {
		if ent := up.Get(id); ent != nil {
			ps = append(ps, meta.Producer{Topic: l.Topic, TopicID: l.TopicID, Partition: l.Partition, ProducerID: id, Data: ent.Encode(), LeaderEpoch: epoch})
		}
	}
	return ps
}

// installProducers makes persisted entries the uploaded state.
func (e *Engine) installProducers(cs []changedProducer) {
	for _, c := range cs {
		up := e.upProducers[c.log]
		if up == nil {
			up = producer.NewState()
			e.upProducers[c.log] = up
		}
		up.Put(c.entry)
	}
}

// expireProducers forgets producer ids idle for longer than
// ProducerExpiry, in memory and in the store, and drops the uploaded state
// of partitions whose topic is gone.
func (e *Engine) expireProducers(ctx context.Context) {
	e.lastExpiry = time.Now()
	before := e.lastExpiry.Add(-e.opts.ProducerExpiry).UnixMilli()
	var gone []meta.Producer
	for l, up := range e.upProducers {
		if l.Deleted() {
			delete(e.upProducers, l)
			continue
		}
		epoch, led := e.leads(l)
		if !led {
			continue // the producers of a moved partition are its leader's to expire
		}
		l.ExpireProducers(before)
		for _, id := range up.Expire(before) {
			gone = append(gone, meta.Producer{Topic: l.Topic, TopicID: l.TopicID, Partition: l.Partition, ProducerID: id, LeaderEpoch: epoch})
		}
	}
	if len(gone) == 0 {
		return
	}
	if err := e.meta.PutProducers(ctx, gone); err != nil {
		// Harmless: a stale entry only remembers batches no client will
		// retry, and after a restart it is loaded and expired again.
		e.log.Warn("could not delete expired producer ids from the metadata store", "producers", len(gone), "err", err)
		return
	}
	e.log.Info("expired idle producer ids", "producers", len(gone), "idle_for", e.opts.ProducerExpiry)
}

// NewProducerID hands out a producer id never used before in this cluster.
func (e *Engine) NewProducerID(ctx context.Context) (int64, error) {
	return e.pids.Next(ctx)
}

// ProducerIDsAbove makes every producer id handed out from now on greater
// than id (producer.IDs.Above): the mirror's appends carry another
// cluster's ids.
func (e *Engine) ProducerIDsAbove(ctx context.Context, id int64) error {
	return e.pids.Above(ctx, id)
}
