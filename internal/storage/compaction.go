package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/partition"
	"github.com/vigilhq/vigil/internal/segment"
)

// compactMinInputs is the fewest index entries worth merging: fewer
// would rewrite data for little gain.
const compactMinInputs = 4

// Compact merges, in every partition, runs of consecutive small index
// entries (each under a quarter of CompactTargetBytes, together at most
// CompactTargetBytes) into one new object holding only that partition's
// batches. Uploads produce many small objects that mix partitions; a
// replay then reads one large object per partition instead of many ranged
// reads. The swap is one ReplaceSegments transaction; the inputs' objects
// are deleted only once nothing refers to them, after ObjectDeleteDelay, so
// fetches that planned a read of them finish. Topics under legal hold are
// compacted too: no record is deleted. It returns how many entries were
// replaced.
func (e *Engine) Compact(ctx context.Context) (int, error) {
	target := e.opts.CompactTargetBytes
	if target <= 0 {
		return 0, nil
	}
	var n int
	var errs []error
	for _, t := range e.Topics() {
		for _, l := range t.Logs {
			for _, group := range compactable(l.Segments(), target) {
				if l.Deleted() {
					break
				}
				if err := e.compactGroup(ctx, l, group); err != nil {
					errs = append(errs, err)
					continue
				}
				n += len(group)
			}
		}
	}
	return n, errors.Join(errs...)
}

// compactable splits segs into the groups to merge.
func compactable(segs []meta.Segment, target int64) [][]meta.Segment {
	var out [][]meta.Segment
	var cur []meta.Segment
	var size int64
	flush := func() {
		// A leading entry larger than everything after it (usually an
		// earlier merge) stays: rewriting it with a few small ones each
		// pass would rewrite a slow partition's data over and over.
		// Merging only similar sizes rewrites each byte about log2(target
		// / upload size) times.
		rest := size
		for len(cur) > 0 && cur[0].Size > rest-cur[0].Size {
			rest -= cur[0].Size
			cur = cur[1:]
		}
		if len(cur) >= compactMinInputs {
			out = append(out, cur)
		}
		cur, size = nil, 0
	}
	for _, s := range segs {
		contiguous := len(cur) == 0 || s.FirstOffset == cur[len(cur)-1].LastOffset+1
		if s.Size >= target/4 || !contiguous || size+s.Size > target {
			flush()
		}
		if s.Size < target/4 {
			cur = append(cur, s)
			size += s.Size
		}
	}
	flush()
	return out
}

func (e *Engine) compactGroup(ctx context.Context, l *partition.Log, group []meta.Segment) error {
	b := segment.NewBuilder()
	for _, s := range group {
		err := e.eachBatch(ctx, s, func(raw []byte, info batch.Info) error {
			b.Add(l.Topic, l.Partition, raw, info.BaseOffset, info.LastOffset, info.MaxTimestamp)
			return nil
		})
		if err != nil {
			return fmt.Errorf("compact %s/%d: %w", l.Topic, l.Partition, err)
		}
	}
	// The merged run holds every input's markers: its aborted index is
	// the union of theirs, in marker order like the runs.
	var aborted []meta.AbortedTxn
	for _, s := range group {
		aborted = append(aborted, s.Aborted...)
	}
	b.SetAborted(l.Topic, l.Partition, runAborted(aborted))
	obj, runs := b.Build()
	first, last := group[0], group[len(group)-1]
	// Inside, not equal: entries the cleaner wrote cover offsets it removed.
	if len(runs) != 1 || runs[0].FirstOffset < first.FirstOffset || runs[0].LastOffset > last.LastOffset {
		return fmt.Errorf("compact %s/%d: merged run %+v is not within offsets %d-%d", l.Topic, l.Partition, runs, first.FirstOffset, last.LastOffset)
	}
	key := objectKey()
	if err := e.objs.Put(ctx, key, obj); err != nil {
		return fmt.Errorf("compact %s/%d: put %s: %w", l.Topic, l.Partition, key, err)
	}
	r := runs[0]
	merged := meta.Segment{Topic: l.Topic, Partition: l.Partition, Object: key, Position: r.Position, Size: r.Size,
		FirstOffset: first.FirstOffset, LastOffset: last.LastOffset, MaxTimestamp: r.MaxTimestamp, Aborted: aborted}
	epoch, led := e.leads(l)
	if !led {
		e.objs.Delete(ctx, key)
		return nil // its new leader compacts it
	}
	if err := e.meta.ReplaceSegments(ctx, fenced(group, epoch), fenced([]meta.Segment{merged}, epoch)); err != nil {
		e.objs.Delete(ctx, key)
		return fmt.Errorf("compact %s/%d: swap index: %w", l.Topic, l.Partition, err)
	}
	if !l.ReplaceSegments(group, merged) {
		// The topic went away meanwhile; its new object has no reader.
		e.objs.Delete(ctx, key)
		return nil
	}
	e.cache.Forget(group)
	e.collectLater(group)
	e.opts.Observer.Compacted(len(group), r.Size)
	e.log.Debug("compacted segments", "topic", l.Topic, "partition", l.Partition, "inputs", len(group),
		"bytes", r.Size, "first_offset", r.FirstOffset, "last_offset", r.LastOffset, "object", key)
	return nil
}
