package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/partition"
	"github.com/vigilhq/vigil/internal/segment"
)

// ErrCompactOnly is returned for DeleteRecords on a topic whose
// cleanup.policy is compact without delete; the broker answers it with
// POLICY_VIOLATION, as Kafka does.
var ErrCompactOnly = errors.New("storage: records of a compacted topic cannot be deleted")

// CleanupPolicy reads a topic's cleanup.policy (Kafka's default:
// delete). It does not allocate: produce asks it for every request.
func CleanupPolicy(configs map[string]string) (compact, del bool) {
	v, ok := configs["cleanup.policy"]
	if !ok {
		return false, true
	}
	for v != "" {
		var p string
		p, v, _ = strings.Cut(v, ",")
		switch strings.TrimSpace(p) {
		case "compact":
			compact = true
		case "delete":
			del = true
		}
	}
	return compact, del
}

// cleanConfig is one compacted topic's cleaner settings, Kafka's topic
// configs with Kafka's defaults.
type cleanConfig struct {
	minDirtyRatio  float64 // min.cleanable.dirty.ratio
	minLagMs       int64   // min.compaction.lag.ms
	maxLagMs       int64   // max.compaction.lag.ms
	deleteRetainMs int64   // delete.retention.ms: how long a tombstone stays readable
}

func topicCleanConfig(t meta.Topic) cleanConfig {
	c := cleanConfig{minDirtyRatio: 0.5, maxLagMs: math.MaxInt64, deleteRetainMs: 86400000}
	if v, err := strconv.ParseFloat(t.Configs["min.cleanable.dirty.ratio"], 64); err == nil {
		c.minDirtyRatio = v
	}
	if v, err := strconv.ParseInt(t.Configs["min.compaction.lag.ms"], 10, 64); err == nil {
		c.minLagMs = v
	}
	if v, err := strconv.ParseInt(t.Configs["max.compaction.lag.ms"], 10, 64); err == nil {
		c.maxLagMs = v
	}
	if v, err := strconv.ParseInt(t.Configs["delete.retention.ms"], 10, 64); err == nil {
		c.deleteRetainMs = v
	}
	return c
}

// cleanerMaxKeys bounds the keys one pass maps (Kafka's dedupe buffer):
// a dirty section with more is cleaned over several passes.
const cleanerMaxKeys = 1 << 20

// cleanedSuffix ends the keys of the objects the cleaner writes. The
// index entries at the start of a partition whose objects have it are the
// clean section, cleaned by the last pass (each pass rewrites from the
// log start), so the clean mark is read from the index, after a restart
// or a change of leader too. Compaction's merges write ordinary objects,
// which only makes the next pass take more as dirty.
const cleanedSuffix = ".clean.seg"

func cleanedKey() string { return strings.TrimSuffix(objectKey(), ".seg") + cleanedSuffix }

// cleanMark is the last offset of the clean section of segs; -1 if none.
func cleanMark(segs []meta.Segment) int64 {
	mark := int64(-1)
	for _, s := range segs {
		if !strings.HasSuffix(s.Object, cleanedSuffix) {
			break
		}
		mark = s.LastOffset
	}
	return mark
}

// cleaner holds the log cleaner's codecs; mu makes passes one at a time,
// since kgo's compressors are not for concurrent use.
type cleaner struct {
	mu   sync.Mutex
	comp batch.Compressors
	dec  kgo.Decompressor
}

func newCleaner() *cleaner { return &cleaner{dec: kgo.DefaultDecompressor()} }

// Clean runs Kafka's log cleaner over every partition this broker leads of
// every topic with cleanup.policy=compact: of the records in segment
// objects (never the tail not yet uploaded, nor records newer than
// min.compaction.lag.ms), only the latest for each key stays; tombstones
// (null values) stay about delete.retention.ms past the first pass that
// kept them, so that consumers catching up see the delete: as Kafka's
// cleaner since 3.1 (KIP-534), that pass stamps the batch's delete
// horizon (now + delete.retention.ms; batch.DeleteHorizon) and a pass
// after the horizon removes them. A tombstone's own timestamp plays no
// part: a producer sets it, and a mirror copies it. Offsets, batch
// boundaries and producer fields are kept, so readers see gaps, never
// moved records. A partition is cleaned once its dirty part (written
// since its last cleaning) is min.cleanable.dirty.ratio of its cleanable
// bytes, or its oldest dirty segment is max.compaction.lag.ms old. Topics
// under legal hold are not cleaned: cleaning deletes records. It returns
// how many partitions were cleaned.
//
// Transactions, as Kafka's cleaner (CleanedTransactionMetadata): nothing
// at or after the last stable offset is cleaned (an open transaction's
// fate is unknown); the batches of aborted transactions are removed and
// never enter the offset map (an aborted record supersedes nothing); an
// abort marker stays while the pass removed data of its transaction (its
// aborted-index entry with it, in the run the marker lands in), a commit
// marker while the pass met data of its transaction; after that the
// first pass stamps the marker's batch with a delete horizon, as a
// tombstone's, and it goes in a pass past that horizon, never before its
// data.
func (e *Engine) Clean(ctx context.Context, now time.Time) (int, error) {
	e.cleaner.mu.Lock()
	defer e.cleaner.mu.Unlock()
	var n int
	var errs []error
	for _, t := range e.Topics() {
		// A mirror topic holds what the source's cleaner left.
		if compact, _ := CleanupPolicy(t.Configs); !compact || LegalHold(t.Topic) || Mirrored(t.Topic) {
			continue
		}
		cfg := topicCleanConfig(t.Topic)
		for _, l := range t.Logs {
			if l.Deleted() {
				break
			}
			cleaned, err := e.cleanPartition(ctx, l, cfg, now)
			if err != nil {
				errs = append(errs, err)
			}
			if cleaned {
				n++
			}
		}
	}
	return n, errors.Join(errs...)
}

// cleanable returns the segments a pass may rewrite, oldest first: those
// wholly below the last stable offset lso whose newest record is at least
// min.compaction.lag.ms old, up to the first that is not; and whether the
// pass is due.
func cleanable(segs []meta.Segment, cleanTo, lso int64, cfg cleanConfig, now time.Time) ([]meta.Segment, bool) {
	nowMs := now.UnixMilli()
	n := 0
	for n < len(segs) && segs[n].LastOffset < lso && (cfg.minLagMs <= 0 || segs[n].MaxTimestamp <= nowMs-cfg.minLagMs) {
		n++
	}
	segs = segs[:n]
	var total, dirty int64
	due := false
	for _, s := range segs {
		total += s.Size
		if s.LastOffset > cleanTo {
			dirty += s.Size
			if cfg.maxLagMs < math.MaxInt64 && s.MaxTimestamp <= nowMs-cfg.maxLagMs {
				due = true
			}
		}
	}
	if dirty == 0 {
		return nil, false
	}
	return segs, due || float64(dirty) >= cfg.minDirtyRatio*float64(total)
}

func (e *Engine) cleanPartition(ctx context.Context, l *partition.Log, cfg cleanConfig, now time.Time) (bool, error) {
	segs := l.Segments()
	cleanTo := cleanMark(segs)
	segs, due := cleanable(segs, cleanTo, l.LSO(), cfg, now)
	if !due {
		return false, nil
	}
	epoch, led := e.leads(l)
	if !led {
		return false, nil // its leader cleans it
	}
	fail := func(err error) (bool, error) {
		return false, fmt.Errorf("clean %s/%d: %w", l.Topic, l.Partition, err)
	}

	// The offset map: each key's latest offset in the dirty section, in as
	// many whole segments as cleanerMaxKeys allows (at least one).
	latest := map[string]int64{}
	end := len(segs)
	aborted := l.AbortedTxns(segs[0].FirstOffset, segs[len(segs)-1].LastOffset)
	// The map reads the dirty section only: transactions that ended before
	// it would never see their marker (Kafka collects from the dirty start).
	mapTxns := newTxnCleaning(l.AbortedTxns(cleanTo+1, segs[len(segs)-1].LastOffset))
	for i, s := range segs {
		if s.LastOffset <= cleanTo {
			continue
		}
		if len(latest) >= cleanerMaxKeys {
			end = i
			break
		}
		err := e.eachBatch(ctx, s, func(raw []byte, info batch.Info) error {
			if info.IsControl() {
				_, _, err := mapTxns.onMarker(raw, info) // ends its transaction; holds no keys
				return err
			}
			if mapTxns.onData(info) {
				return nil // aborted records supersede nothing
			}
			rb, recs, err := batch.Records(raw, e.cleaner.dec)
			if err != nil {
				return err
			}
			for j := range recs {
				if recs[j].Key != nil {
					latest[string(recs[j].Key)] = rb.FirstOffset + int64(recs[j].OffsetDelta)
				}
			}
			return nil
		})
		if err != nil {
			return fail(err)
		}
	}
	segs = segs[:end]
	dirtyFrom := cleanTo

	// Rewrite clean and dirty sections alike, keeping a record if no later
	// one of its key is in the map. A tombstone, and a marker whose
	// transaction's data is gone, go once the pass is past the delete
	// horizon of their batch (KIP-534): in a batch without one they stay,
	// and this pass stamps it with now + delete.retention.ms, so their
	// timestamps, which a producer or a mirrored cluster set, never
	// shorten the time consumers have to see the delete.
	nowMs := now.UnixMilli()
	stamp := nowMs + cfg.deleteRetainMs
	if cfg.deleteRetainMs > math.MaxInt64-nowMs {
		stamp = math.MaxInt64
	}
	var expired bool // the batch being filtered is past its delete horizon
	// Records without a key (written before the topic became compacted)
	// go, as in Kafka: no later record could ever supersede them.
	keep := func(rb *kmsg.RecordBatch, r *kmsg.Record) bool {
		if r.Key == nil {
			return false
		}
		if last, ok := latest[string(r.Key)]; ok && rb.FirstOffset+int64(r.OffsetDelta) < last {
			return false
		}
		return r.Value != nil || !expired
	}
	var out []meta.Segment
	var lastBatch []byte // the last input batch, kept if nothing else is
	var lastInfo batch.Info
	var inBytes, outBytes int64
	b := segment.NewBuilder()
	txns := newTxnCleaning(aborted)
	var runAbortedTxns []meta.AbortedTxn // the aborted index of the run being built
	flush := func(last int64) error {
		if b.Empty() {
			return nil
		}
		b.SetAborted(l.Topic, l.Partition, runAborted(runAbortedTxns))
		obj, runs := b.Build()
		if len(runs) != 1 {
			return fmt.Errorf("built %d runs for one partition", len(runs))
		}
		key := cleanedKey()
		if err := e.objs.Put(ctx, key, obj); err != nil {
			return fmt.Errorf("put %s: %w", key, err)
		}
		r := runs[0]
		// The entries stay contiguous over the cleaned offsets, gaps
		// included: a fetch at a removed offset finds the entry that
		// holds the next kept batch.
		first := segs[0].FirstOffset
		if len(out) > 0 {
			first = out[len(out)-1].LastOffset + 1
		}
		out = append(out, meta.Segment{Topic: l.Topic, Partition: l.Partition, Object: key, Position: r.Position, Size: r.Size,
			FirstOffset: first, LastOffset: last, MaxTimestamp: r.MaxTimestamp, Aborted: runAbortedTxns})
		outBytes += r.Size
		b = segment.NewBuilder()
		runAbortedTxns = nil
		return nil
	}
	discard := func() {
		for _, s := range out {
			e.objs.Delete(ctx, s.Object)
		}
	}
	target := e.opts.CompactTargetBytes
	if target <= 0 {
		target = e.opts.SegmentBytes
	}
	// The batch holding the log's last offset stays whole, as Kafka never
	// cleans its active segment: a reader that reads up to the high
	// watermark (an intel or asset table loading, a hunt to the end)
	// waits for the record at hw-1, and a fetch cannot say that the
	// offsets before hw are gone when no batch follows them.
	_, hw := l.Offsets()
	for _, s := range segs {
		inBytes += s.Size
		err := e.eachBatch(ctx, s, func(raw []byte, info batch.Info) error {
			lastBatch, lastInfo = raw, info
			var kept []byte
			atEnd := info.LastOffset >= hw-1
			horizon, stamped := batch.DeleteHorizon(raw)
			expired = stamped && horizon <= nowMs
			switch {
			case info.IsControl():
				discard, abort, err := txns.onMarker(raw, info)
				if err != nil {
					return err
				}
				kept = raw
				switch {
				case !discard || atEnd:
				case expired:
					return nil
				case !stamped:
					if kept, err = batch.StampDeleteHorizon(raw, e.cleaner.dec, &e.cleaner.comp, stamp); err != nil {
						return err
					}
				}
				if abort != nil {
					runAbortedTxns = append(runAbortedTxns, *abort)
				}
			case txns.onData(info):
				return nil // an aborted transaction's batch
			case atEnd:
				kept = raw
			default:
				var err error
				if kept, err = batch.Filter(raw, e.cleaner.dec, &e.cleaner.comp, stamp, keep); err != nil || kept == nil {
					return err
				}
			}
			ki, err := batch.Peek(kept)
			if err != nil {
				return err
			}
			b.Add(l.Topic, l.Partition, kept, ki.BaseOffset, ki.LastOffset, ki.MaxTimestamp)
			if target > 0 && b.Size() >= target {
				return flush(ki.LastOffset)
			}
			return nil
		})
		if err != nil {
			discard()
			return fail(err)
		}
	}
	if len(out) == 0 && b.Empty() && lastBatch != nil {
		// Nothing is left (every record a deleted key's): the last batch
		// stays as it was, so the partition keeps an entry to read past.
		b.Add(l.Topic, l.Partition, lastBatch, lastInfo.BaseOffset, lastInfo.LastOffset, lastInfo.MaxTimestamp)
	}
	if !b.Empty() {
		if err := flush(lastInfo.LastOffset); err != nil {
			discard()
			return fail(err)
		}
	}
	if len(out) == 0 {
		return fail(errors.New("no batch read from the cleanable segments"))
	}
	out[len(out)-1].LastOffset = segs[len(segs)-1].LastOffset

	if err := e.meta.ReplaceSegments(ctx, fenced(segs, epoch), fenced(out, epoch)); err != nil {
		discard()
		return fail(fmt.Errorf("swap index: %w", err))
	}
	if !l.ReplaceSegments(segs, out...) {
		discard() // the topic went away meanwhile
		return false, nil
	}
	l.DropCachedThrough(segs[len(segs)-1].LastOffset)
	e.cache.Forget(segs)
	e.collectLater(segs)
	e.opts.Observer.Cleaned(inBytes, outBytes)
	e.log.Info("cleaned compacted partition", "topic", l.Topic, "partition", l.Partition,
		"dirty_from", dirtyFrom+1, "through_offset", segs[len(segs)-1].LastOffset, "keys", len(latest),
		"bytes_before", inBytes, "bytes_after", outBytes, "segments_before", len(segs), "segments_after", len(out))
	return true, nil
}

// txnCleaning is what one cleaner pass knows of transactions as it reads
// the log in offset order (Kafka's CleanedTransactionMetadata): which
// aborted transactions have begun, whether it met their data, and which
// producers' committed data it met since their last marker.
type txnCleaning struct {
	pending   []meta.AbortedTxn // by first offset, not yet begun
	aborted   map[int64]*abortedSeen
	committed map[int64]bool
}

type abortedSeen struct {
	txn  meta.AbortedTxn
	seen bool // the pass met (and removed) data of it
}

func newTxnCleaning(aborted []meta.AbortedTxn) *txnCleaning {
	pending := slices.Clone(aborted)
	slices.SortFunc(pending, func(a, b meta.AbortedTxn) int { return cmp.Compare(a.FirstOffset, b.FirstOffset) })
	return &txnCleaning{pending: pending, aborted: map[int64]*abortedSeen{}, committed: map[int64]bool{}}
}

func (c *txnCleaning) begin(upTo int64) {
	for len(c.pending) > 0 && c.pending[0].FirstOffset <= upTo {
		t := c.pending[0]
		c.aborted[t.ProducerID] = &abortedSeen{txn: t}
		c.pending = c.pending[1:]
	}
}

// onData reports whether a data batch belongs to an aborted transaction.
func (c *txnCleaning) onData(info batch.Info) bool {
	c.begin(info.LastOffset)
	if !info.IsTransactional() {
		return false
	}
	if a := c.aborted[info.ProducerID]; a != nil {
		a.seen = true
		return true
	}
	c.committed[info.ProducerID] = true
	return false
}

// onMarker reports whether a control batch may go (its transaction's
// data is all gone), and for an abort marker kept because the pass
// removed data of its transaction, that transaction: it stays in the
// aborted index.
func (c *txnCleaning) onMarker(raw []byte, info batch.Info) (discard bool, abort *meta.AbortedTxn, err error) {
	c.begin(info.LastOffset)
	m, err := batch.ProducerMarker(raw)
	switch {
	case errors.Is(err, batch.ErrNotMarker):
		return false, nil, nil // not ours to judge: kept
	case err != nil:
		return false, nil, err
	}
	if m.Commit {
		met := c.committed[m.ID]
		delete(c.committed, m.ID)
		return !met, nil, nil
	}
	a := c.aborted[m.ID]
	delete(c.aborted, m.ID)
	if a != nil && a.seen {
		return false, &a.txn, nil
	}
	return true, nil, nil
}

// eachBatch calls fn on every batch of index entry s, read straight from
// the store: a one-off rewrite (compaction, the cleaner) must not evict
// the blocks replays use.
func (e *Engine) eachBatch(ctx context.Context, s meta.Segment, fn func(raw []byte, info batch.Info) error) error {
	data, err := e.objs.GetRange(ctx, s.Object, s.Position, s.Size)
	if err != nil {
		return fmt.Errorf("read %s: %w", s.Object, err)
	}
	if int64(len(data)) != s.Size {
		return fmt.Errorf("%s holds %d of the %d bytes indexed", s.Object, len(data), s.Size)
	}
	for len(data) > 0 {
		info, err := batch.Peek(data)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Object, err)
		}
		if err := fn(data[:info.Size], info); err != nil {
			return fmt.Errorf("%s: %w", s.Object, err)
		}
		data = data[info.Size:]
	}
	return nil
}
