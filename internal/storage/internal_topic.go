package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/partition"
	"github.com/vigilhq/vigil/internal/producer"
)

// InternalTopic is a topic the broker itself writes, such as
// __consumer_offsets: records go through the same partition logs, WAL
// (with group commit) and segment uploads as produced data, so they are
// durable and recoverable exactly like it, without a metadata-store
// transaction per write.
type InternalTopic struct {
	e          *Engine
	name       string
	partitions int32
	dec        kgo.Decompressor
}

// internalBatchRecords bounds the records of one batch the broker builds,
// so a large snapshot becomes several batches of fetchable size.
const internalBatchRecords = 1000

// OpenInternalTopic returns the internal topic name, creating it with
// partitions and configs if it does not exist. An existing topic keeps its
// partition count (records are placed by a hash modulo that count, so it
// is fixed at first creation).
func (e *Engine) OpenInternalTopic(ctx context.Context, name string, partitions int32, configs map[string]string) (*InternalTopic, error) {
	t := e.Topic(name)
	if t == nil {
		var err error
		t, err = e.CreateTopic(ctx, name, partitions, configs)
		if errors.Is(err, ErrTopicExists) {
			if t = e.Topic(name); t == nil {
				// Another broker of the cluster created it just now.
				if err = e.Refresh(ctx); err == nil {
					if t = e.Topic(name); t == nil {
						err = fmt.Errorf("%w: %s", ErrUnknownTopic, name)
					}
				}
			} else {
				err = nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("storage: create internal topic %s: %w", name, err)
		}
	}
	if t.Partitions != partitions {
		e.log.Warn("internal topic keeps the partition count it was created with", "topic", name,
			"partitions", t.Partitions, "configured", partitions)
	}
	return &InternalTopic{e: e, name: name, partitions: t.Partitions, dec: kgo.DefaultDecompressor()}, nil
}

// Partitions is the topic's partition count.
func (it *InternalTopic) Partitions() int32 { return it.partitions }

func (it *InternalTopic) topic(p int32) (*Topic, error) {
	t := it.e.Topic(it.name)
	if t == nil || p < 0 || int(p) >= len(t.Logs) {
		return nil, fmt.Errorf("%w: %s/%d", ErrUnknownTopic, it.name, p)
	}
	return t, nil
}

// Append writes recs to partition p as uncompressed magic-v2 batches built
// by the broker; done gets the offset of the first record once all are
// durable in the WAL (it may run on the WAL goroutine, or inline on error).
func (it *InternalTopic) Append(p int32, recs []batch.KV, done func(first int64, err error)) {
	now := time.Now().UnixMilli()
	var raw []byte
	for i := 0; i < len(recs); i += internalBatchRecords {
		raw = append(raw, batch.Build(recs[i:min(i+internalBatchRecords, len(recs))], now)...)
	}
	it.AppendBatch(p, raw, done)
}

// AppendBatch writes encoded batches the broker built itself (such as a
// transaction's offsets, batch.BuildTxn) to partition p, as Append does:
// they pass the same validation and the partition's producer checks as a
// client's produce, so a fenced producer epoch is refused with the
// partition log's error. done gets the offset of the first record once
// all are durable, or the first error.
func (it *InternalTopic) AppendBatch(p int32, raw []byte, done func(first int64, err error)) {
	it.AppendBatchVerified(p, raw, producer.NoGuard, done)
}

// TxnGuard is partition p's partition.Log.TxnGuard: whether producerID
// has a transaction ongoing there at epoch, and the guard a batch
// verified with its transaction coordinator is appended under
// (AppendBatchVerified).
func (it *InternalTopic) TxnGuard(p int32, producerID int64, epoch int16) (producer.Guard, bool) {
	t, err := it.topic(p)
	if err != nil {
		return producer.NoGuard, false
	}
	return t.Logs[p].TxnGuard(producerID, epoch)
}

// AppendBatchVerified is AppendBatch for a transaction's batch verified
// with its coordinator (KIP-890 part 1) after TxnGuard returned guard:
// if a marker of the producer was appended since, the partition refuses
// it (producer.ErrInvalidTxnState) rather than begin a transaction no
// coordinator knows of.
func (it *InternalTopic) AppendBatchVerified(p int32, raw []byte, guard producer.Guard, done func(first int64, err error)) {
	t, err := it.topic(p)
	if err != nil {
		done(0, err)
		return
	}
	hs, err := batch.Split(raw)
	if err != nil {
		done(0, fmt.Errorf("storage: internal batch for %s/%d: %w", it.name, p, err))
		return
	}
	for i := range hs {
		if hs[i].IsControl() {
			// A marker must go through the partition's marker rules
			// (Engine.AppendMarker), never be taken for data.
			done(0, fmt.Errorf("storage: internal batch for %s/%d: a control batch is appended with AppendMarker", it.name, p))
			return
		}
	}
	// One Produce per batch; the WAL completes them in order, so the last
	// callback reports for all (a WAL failure fails every later one too).
	// A failure may be reported inline while the WAL goroutine reports an
	// earlier batch, hence the lock.
	var mu sync.Mutex
	var first int64
	var firstErr error
	for i := range hs {
		last := i == len(hs)-1
		it.e.ProduceVerified(t, t.Logs[p], &hs[i], guard, func(base int64, err error) {
			mu.Lock()
			defer mu.Unlock()
			if i == 0 {
				first = base
			}
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if last {
				done(first, firstErr)
			}
		})
	}
}

// NextSequence is the first sequence number the next batch of producerID
// at epoch must carry on partition p for the partition's producer checks
// to take it as new: 0 for a producer the partition has no batch of at
// that epoch, else one past the last one's. The broker's own
// transactional writes number their batches with it (Kafka skips the
// sequence check for the coordinator's appends instead; a batch that
// repeated a remembered sequence range would be answered as a duplicate
// and never written). Only the caller appends batches of that producer
// to p, so the answer holds until it does.
func (it *InternalTopic) NextSequence(p int32, producerID int64, epoch int16) int32 {
	t, err := it.topic(p)
	if err != nil {
		return 0
	}
	for _, e := range t.Logs[p].Producers() {
		if e.ID != producerID {
			continue
		}
		if e.Epoch != epoch || len(e.Batches) == 0 {
			return 0
		}
		last := e.Batches[len(e.Batches)-1].LastSeq
		if last == math.MaxInt32 {
			return 0
		}
		return last + 1
	}
	return 0
}

// Replay calls fn for every record of partition p from its log start to
// its high watermark, in offset order. Control batches (transaction
// markers) are not records of the topic and are skipped; ReplayBatches
// shows them.
func (it *InternalTopic) Replay(ctx context.Context, p int32, fn func(offset int64, r batch.KV) error) error {
	return it.ReplayBatches(ctx, p, func(rb kmsg.RecordBatch, recs []kmsg.Record, _ int64) error {
		if rb.Attributes&attrControl != 0 {
			return nil
		}
		for _, r := range recs {
			if err := fn(rb.FirstOffset+int64(r.OffsetDelta), batch.KV{Key: r.Key, Value: r.Value, Headers: r.Headers}); err != nil {
				return err
			}
		}
		return nil
	})
}

// attrControl is the control bit of a batch's attributes (Kafka's
// isControlBatch).
const attrControl = 0x20

// ReplayBatches calls fn for every batch of partition p from its log
// start to its high watermark, in offset order, with the batch header
// (producer id and epoch, transactional and control attributes) and its
// decoded records, so a reader of a log with transactions sees which
// records are transactional and where markers end them. recs holds only
// the records at or after the log start (never none); offset is the
// offset of recs[0] (a record's offset is rb.FirstOffset+OffsetDelta).
func (it *InternalTopic) ReplayBatches(ctx context.Context, p int32, fn func(rb kmsg.RecordBatch, recs []kmsg.Record, offset int64) error) error {
	t, err := it.topic(p)
	if err != nil {
		return err
	}
	l := t.Logs[p]
	off, hw := l.Offsets()
	for off < hw {
		res, err := l.Read(ctx, off, 1<<20, true)
		if err != nil {
			return fmt.Errorf("storage: read %s/%d at %d: %w", it.name, p, off, err)
		}
		if len(res.Data) == 0 {
			return fmt.Errorf("storage: read %s/%d at %d returned nothing below the high watermark %d", it.name, p, off, hw)
		}
		data := res.Data
		for len(data) > 0 {
			info, err := batch.Peek(data)
			if err != nil {
				return fmt.Errorf("storage: %s/%d at %d: %w", it.name, p, off, err)
			}
			rb, recs, err := batch.Records(data[:info.Size], it.dec)
			if err != nil {
				return fmt.Errorf("storage: %s/%d batch at %d: %w", it.name, p, info.BaseOffset, err)
			}
			// Records before the log start, inside the first batch.
			for len(recs) > 0 && rb.FirstOffset+int64(recs[0].OffsetDelta) < off {
				recs = recs[1:]
			}
			if len(recs) > 0 {
				if err := fn(rb, recs, rb.FirstOffset+int64(recs[0].OffsetDelta)); err != nil {
					return err
				}
			}
			off = max(off, info.LastOffset+1)
			data = data[info.Size:]
		}
	}
	return nil
}

// SetStart moves partition p's log start to off (bounded replay after a
// snapshot); it costs one metadata-store write.
func (it *InternalTopic) SetStart(ctx context.Context, p int32, off int64) error {
	t, err := it.topic(p)
	if err != nil {
		return err
	}
	_, err = it.e.SetLogStart(ctx, t, t.Logs[p], off)
	return err
}

// TopicInfo returns a live topic's id and partition count.
func (e *Engine) TopicInfo(name string) ([16]byte, int32, bool) {
	t := e.Topic(name)
	if t == nil {
		return [16]byte{}, 0, false
	}
	return t.ID, int32(len(t.Logs)), true
}

// TopicNames returns the live topics' names, unsorted.
func (e *Engine) TopicNames() []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]string, 0, len(e.topics))
	for name := range e.topics {
		out = append(out, name)
	}
	return out
}

// PartitionExists reports whether topic has partition p.
func (e *Engine) PartitionExists(topic string, p int32) bool {
	t := e.Topic(topic)
	return t != nil && p >= 0 && int(p) < len(t.Logs)
}

// ErrInFlight is End's answer while records appended to the partition
// are still on their way to the WAL: the end is not yet readable.
var ErrInFlight = errors.New("storage: appends still in flight")

// End returns the offset the next record appended to partition p gets,
// once everything appended to p is durable and readable (ErrInFlight
// before). A writer that chains each record to the one before it (the
// audit trail) compares it with where its own last append ended: any
// other difference means someone else wrote to p, or a failed append
// left part of itself, and it reads the last record again (Last).
func (it *InternalTopic) End(p int32) (int64, error) {
	t, err := it.topic(p)
	if err != nil {
		return 0, err
	}
	l := t.Logs[p]
	if _, led := l.Leader(); !led {
		return 0, fmt.Errorf("storage: %s/%d: %w", it.name, p, partition.ErrNotLeader)
	}
	if !l.Settled() {
		return 0, fmt.Errorf("storage: %s/%d: %w", it.name, p, ErrInFlight)
	}
	_, hw := l.Offsets()
	return hw, nil
}

// Last returns the last record of partition p below its high watermark
// and its offset; ok is false when p holds none (from its log start).
// Control batches are skipped. It reads one batch from the end (from the
// segment objects when memory no longer holds it), not the whole log.
func (it *InternalTopic) Last(ctx context.Context, p int32) (offset int64, rec batch.KV, ok bool, err error) {
	t, err := it.topic(p)
	if err != nil {
		return 0, batch.KV{}, false, err
	}
	l := t.Logs[p]
	start, hw := l.Offsets()
	for at := hw - 1; at >= start; {
		res, err := l.Read(ctx, at, 1, true)
		if err != nil {
			return 0, batch.KV{}, false, fmt.Errorf("storage: read %s/%d at %d: %w", it.name, p, at, err)
		}
		if len(res.Data) == 0 {
			return 0, batch.KV{}, false, fmt.Errorf("storage: read %s/%d at %d returned nothing below the high watermark %d", it.name, p, at, hw)
		}
		info, err := batch.Peek(res.Data)
		if err != nil {
			return 0, batch.KV{}, false, fmt.Errorf("storage: %s/%d at %d: %w", it.name, p, at, err)
		}
		rb, recs, err := batch.Records(res.Data[:info.Size], it.dec)
		if err != nil {
			return 0, batch.KV{}, false, fmt.Errorf("storage: %s/%d batch at %d: %w", it.name, p, info.BaseOffset, err)
		}
		// The batch holding at; the last of its records at or below at.
		for i := len(recs) - 1; i >= 0 && rb.Attributes&attrControl == 0; i-- {
			off := rb.FirstOffset + int64(recs[i].OffsetDelta)
			if off <= at && off >= start {
				r := recs[i]
				return off, batch.KV{Key: r.Key, Value: r.Value, Headers: r.Headers}, true, nil
			}
		}
		at = min(at, info.BaseOffset) - 1
	}
	return 0, batch.KV{}, false, nil
}
