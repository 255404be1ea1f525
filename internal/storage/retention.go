package storage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/partition"
)

// LegalHoldConfig is the topic config that, set to true, stops every
// deletion of the topic's data: retention, DeleteRecords and DeleteTopics.
const LegalHoldConfig = "vigil.legal.hold"

// ErrLegalHold is returned for a deletion refused by a legal hold; the
// broker answers it with POLICY_VIOLATION.
var ErrLegalHold = errors.New("storage: topic is under legal hold")

// LegalHold reports whether the topic's data may not be deleted.
func LegalHold(t meta.Topic) bool {
	v, _ := strconv.ParseBool(strings.TrimSpace(t.Configs[LegalHoldConfig]))
	return v
}

func holdError(t meta.Topic, what string) error {
	return fmt.Errorf("%w: %s %q refused while %s=true; release the hold first", ErrLegalHold, what, t.Name, LegalHoldConfig)
}

// MirrorSourceConfig is the topic config that makes a topic a mirror of
// another cluster's (`vigil mirror`): its value names the source. A
// mirror topic is written only by the mirror, at the source's offsets
// (Engine.MirrorAppend); clients' produces are refused, and retention and
// the cleaner leave it alone, since its log start and its compaction are
// the source's, copied. Deleting the config (`vigil mirror promote`)
// makes it an ordinary topic.
const MirrorSourceConfig = "vigil.mirror.source"

// Mirrored reports whether the topic is a mirror topic, not yet promoted.
func Mirrored(t meta.Topic) bool { return strings.TrimSpace(t.Configs[MirrorSourceConfig]) != "" }

// retention is one topic's effective retention: its own configs over the
// broker's defaults; -1 means no limit.
func (e *Engine) retention(t meta.Topic) (ms, bytes int64) {
	ms, bytes = e.opts.RetentionMs, e.opts.RetentionBytes
	if v, err := strconv.ParseInt(t.Configs["retention.ms"], 10, 64); err == nil {
		ms = v
	}
	if v, err := strconv.ParseInt(t.Configs["retention.bytes"], 10, 64); err == nil {
		bytes = v
	}
	return ms, bytes
}

func (e *Engine) retentionLoop() {
	defer close(e.retentionDone)
	t := time.NewTicker(e.opts.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		if _, err := e.EnforceRetention(context.Background(), time.Now()); err != nil {
			e.log.Error("retention pass failed; will retry", "err", err)
		}
		// In the same goroutine: retention, compaction and the cleaner all
		// rewrite the index, and must not interleave.
		if _, err := e.Compact(context.Background()); err != nil {
			e.log.Error("compaction failed; will retry", "err", err)
		}
		if _, err := e.Clean(context.Background(), time.Now()); err != nil {
			e.log.Error("cleaning compacted topics failed; will retry", "err", err)
		}
	}
}

// EnforceRetention deletes, in every partition, the oldest whole segments
// that lie below the log start (DeleteRecords), are older than retention.ms
// (by their newest record) or exceed retention.bytes, and moves the log
// start past them. Objects no index entry refers to any more are deleted
// after ObjectDeleteDelay, so fetches already reading them finish. Topics
// under legal hold are skipped (and that is logged). It returns how many
// index entries were removed.
func (e *Engine) EnforceRetention(ctx context.Context, now time.Time) (int, error) {
	var removed []meta.Segment
	var errs []error
	for _, t := range e.Topics() {
		ms, maxBytes := e.retention(t.Topic)
		if _, del := CleanupPolicy(t.Configs); !del {
			ms, maxBytes = -1, -1 // compacted only: the cleaner decides what goes
		}
		if Mirrored(t.Topic) {
			continue // the mirror copies the source's log start
		}
		held := LegalHold(t.Topic)
		for _, l := range t.Logs {
			segs := expired(l, now, ms, maxBytes)
			if len(segs) == 0 {
				continue
			}
			if held {
				e.log.Info("retention refused: topic under legal hold", "topic", t.Name, "partition", l.Partition,
					"segments_kept", len(segs), "through_offset", segs[len(segs)-1].LastOffset)
				continue
			}
			epoch, led := e.leads(l)
			if !led {
				continue // its leader enforces retention
			}
			if err := e.meta.ReplaceSegments(ctx, fenced(segs, epoch), nil); err != nil {
				errs = append(errs, fmt.Errorf("remove %d index entries of %s/%d: %w", len(segs), t.Name, l.Partition, err))
				continue
			}
			last := segs[len(segs)-1].LastOffset
			l.DropSegmentsThrough(last)
			if ls, _ := l.Offsets(); ls > 0 {
				if err := e.persistLogStart(ctx, t, l, ls); err != nil {
					errs = append(errs, err)
				}
			}
			e.cache.Forget(segs)
			removed = append(removed, segs...)
			e.log.Info("retention deleted segments", "topic", t.Name, "partition", l.Partition, "segments", len(segs), "through_offset", last)
		}
	}
	if len(removed) > 0 {
		e.opts.Observer.RetentionDeleted(len(removed))
		e.collectLater(removed)
	}
	return len(removed), errors.Join(errs...)
}

// expired returns the oldest segments of l that may go, oldest first.
func expired(l *partition.Log, now time.Time, ms, maxBytes int64) []meta.Segment {
	segs := l.Segments()
	logStart, _ := l.Offsets()
	var total int64
	for _, s := range segs {
		total += s.Size
	}
	n := 0
	for n < len(segs) {
		s := segs[n]
		below := s.LastOffset < logStart
		old := ms >= 0 && s.MaxTimestamp < now.UnixMilli()-ms
		big := maxBytes >= 0 && total-s.Size >= maxBytes
		if !below && !old && !big {
			break
		}
		total -= s.Size
		n++
	}
	return segs[:n]
}

// collectLater deletes the objects of removed index entries once no entry
// refers to them, after ObjectDeleteDelay. Objects whose delay outlives
// the process stay behind (they hold only deleted data).
func (e *Engine) collectLater(removed []meta.Segment) {
	e.gcWG.Add(1)
	go func() {
		defer e.gcWG.Done()
		select {
		case <-time.After(e.opts.ObjectDeleteDelay):
			e.collectObjects(removed)
		case <-e.stop:
		}
	}()
}
