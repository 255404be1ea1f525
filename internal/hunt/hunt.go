// Package hunt is `vigil hunt`: Sigma rules (and correlations) run over a
// time range of retained history, a retro-hunt. It is how a detection
// engineer tries a new rule against last month before deploying it.
//
// A hunt is a plain reader, not a group member: ListOffsets by timestamp
// gives each partition's first offset at or after --from and the first
// at or after --to, and it reads every partition between the two. Old
// offsets are catch-up reads, served from segment objects through the
// broker's read cache and paced by its catch-up governor at low CPU
// priority (docs/architecture.md, "The path of a replay"), so a hunt gets
// replay isolation for free and live detection does not wait for it; a
// consumer_byte_rate quota on client id vigil-hunt caps it further.
//
// Records are evaluated by detect.Evaluator, the code the streaming
// detector runs, with the same rules, field mapping, routing and
// suppression, so the same records give the same findings, byte for byte
// and with the same finding uids, as live detection gave (findings are a
// function of rule and record: detect.Alert). Correlation windows start
// empty at --from; across partitions a hunt sees records in another
// interleaving than the live detector did, so a correlation whose groups
// span partitions can fire on another record. With Config.Ordered the
// records are evaluated in timestamp order across partitions, the same
// order on any cluster holding them (`vigil mirror compare-detections`
// hunts two clusters so).
package hunt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/detect"
	"github.com/vigilhq/vigil/internal/rangeread"
	"github.com/vigilhq/vigil/sigma"
)

// Config configures a hunt.
type Config struct {
	Brokers []string
	Topics  []string
	// From and To bound the range: records with From <= timestamp < To.
	From, To time.Time
	// Ranges, when not nil, are the offsets read instead of those
	// ListOffsets gives for From and To: `vigil mirror compare-detections`
	// reads the same offsets on two clusters. From and To then still bound
	// the records' times, each only when set.
	Ranges []rangeread.Range
	// RuleDirs and ConfigPath are as detect's.
	RuleDirs   []string
	ConfigPath string
	// Output receives the findings as NDJSON unless OutputTopic is set.
	Output      io.Writer
	OutputTopic string
	// Progress receives a progress line every ProgressEvery (default 1s)
	// and a summary at the end; nil: none.
	Progress      io.Writer
	ProgressEvery time.Duration
	// ProgressName starts each progress line (default "hunt"), so two
	// hunts writing to one stderr can be told apart.
	ProgressName string
	MaxGroups    int
	ClientOpts   []kgo.Opt
	// ClientID of the reader (default vigil-hunt), for quotas.
	ClientID string
	// Ordered evaluates the records in the order of their timestamps
	// across partitions (ties by topic, partition, offset) instead of as
	// fetches bring them, so two hunts over the same records see them in
	// the same order, and correlations and suppression groups that span
	// partitions give the same findings (compare-detections hunts two
	// clusters so). A partition with OrderedQueue records waiting for the
	// others is paused until they catch up.
	Ordered bool
	// OrderedQueue is how many records an Ordered hunt holds per partition
	// before it stops fetching that partition; default 4096.
	OrderedQueue int
}

// Stats are what a hunt read and found.
type Stats struct {
	Records  int64 // records evaluated (inside the range)
	Outside  int64 // records between the offsets but outside the range's times
	Invalid  int64 // records that are not JSON events
	Bytes    int64 // record value bytes read
	Findings int64
	Elapsed  time.Duration
	Problems []sigma.LoadProblem
}

// partRange is one partition's offsets to read: [start, end).
type partRange struct {
	topic      string
	part       int32
	start, end int64
	next       int64
	// queue holds an Ordered hunt's records not evaluated yet; paused
	// says fetching stopped because it is long.
	queue  []*kgo.Record
	paused bool
}

// Run hunts and returns what it read. The findings are written as they
// are found; an error stops the hunt (findings already written stay).
func Run(ctx context.Context, cfg Config, log *slog.Logger) (Stats, error) {
	var st Stats
	bounded := !cfg.From.IsZero() && !cfg.To.IsZero()
	if (cfg.Ranges == nil || bounded) && !cfg.From.Before(cfg.To) {
		return st, fmt.Errorf("hunt: --from %s is not before --to %s", cfg.From.Format(time.RFC3339), cfg.To.Format(time.RFC3339))
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "vigil-hunt"
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = time.Second
	}
	if cfg.ProgressName == "" {
		cfg.ProgressName = "hunt"
	}
	if cfg.OrderedQueue <= 0 {
		cfg.OrderedQueue = 4096
	}
	eng, problems, err := detect.LoadEngine(cfg.RuleDirs, cfg.ConfigPath)
	if err != nil {
		return st, fmt.Errorf("hunt: load rules: %w", err)
	}
	st.Problems = problems
	base := append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.ClientID(cfg.ClientID)}, cfg.ClientOpts...)
	acl, err := kgo.NewClient(append(base, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.AllowAutoTopicCreation())...)
	if err != nil {
		return st, err
	}
	defer acl.Close()
	found := cfg.Ranges
	if found == nil {
		if found, err = rangeread.Find(ctx, kadm.NewClient(acl), cfg.Topics, cfg.From, cfg.To); err != nil {
			return st, fmt.Errorf("hunt: %w", err)
		}
	}
	ranges := make([]*partRange, len(found))
	for i, r := range found {
		ranges[i] = &partRange{topic: r.Topic, part: r.Partition, start: r.Start, end: r.End, next: r.Start}
	}
	var total int64
	pending := 0 // partitions not read to their end yet
	want := map[string]map[int32]kgo.Offset{}
	left := map[string]map[int32]*partRange{}
	for _, r := range ranges {
		if r.end <= r.start {
			continue
		}
		total += r.end - r.start
		pending++
		if want[r.topic] == nil {
			want[r.topic], left[r.topic] = map[int32]kgo.Offset{}, map[int32]*partRange{}
		}
		want[r.topic][r.part] = kgo.NewOffset().At(r.start)
		left[r.topic][r.part] = r
	}
	pr := &progress{Progress: rangeread.NewProgress(cfg.Progress, cfg.ProgressName, total, cfg.ProgressEvery)}
	if log != nil {
		log.Info("hunt reading", "topics", cfg.Topics, "partitions", len(ranges), "records", total,
			"from", cfg.From.Format(time.RFC3339), "to", cfg.To.Format(time.RFC3339), "rules", eng.Stats().Rules)
	}
	ev := detect.Evaluator{Engine: eng, Matcher: eng.NewMatcher(), AlertsTopic: cfg.OutputTopic, Now: time.Now(), Log: log}
	if ev.Log == nil {
		ev.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if eng.Stats().Correlations > 0 {
		ev.Corr = eng.NewCorrelator(cfg.MaxGroups)
	}
	ev.Suppress = detect.NewSuppressor(eng)
	emit := func(out []*kgo.Record) error {
		if len(out) == 0 {
			return nil
		}
		st.Findings += int64(len(out))
		if cfg.OutputTopic != "" {
			return acl.ProduceSync(ctx, out...).FirstErr()
		}
		for _, r := range out {
			if _, err := cfg.Output.Write(append(r.Value, '\n')); err != nil {
				return err
			}
		}
		return nil
	}
	start := time.Now()
	if total > 0 {
		// Control records (transaction markers) are kept only to see the
		// reader pass them: a range can end at a marker, and without it
		// the hunt would wait for an offset no record will ever have.
		rd, err := kgo.NewClient(append(base, kgo.ConsumePartitions(want), kgo.FetchMaxBytes(64<<20), kgo.KeepControlRecords())...)
		if err != nil {
			return st, err
		}
		defer rd.Close()
		var out []*kgo.Record
		var consumed int64
		evaluate := func(r *kgo.Record) {
			if (!cfg.From.IsZero() && r.Timestamp.Before(cfg.From)) || (!cfg.To.IsZero() && !r.Timestamp.Before(cfg.To)) {
				st.Outside++
				return
			}
			st.Records++
			var ok bool
			if out, ok = ev.Record(r, out); !ok {
				st.Invalid++
			}
		}
		for pending > 0 {
			f := rd.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				return st, err
			}
			var ferr error
			f.EachError(func(t string, p int32, err error) {
				if !errors.Is(err, context.Canceled) && ferr == nil {
					ferr = fmt.Errorf("hunt: fetch %s[%d]: %w", t, p, err)
				}
			})
			if ferr != nil {
				return st, ferr
			}
			out = out[:0]
			f.EachRecord(func(r *kgo.Record) {
				pr2 := left[r.Topic][r.Partition]
				if pr2 == nil {
					return
				}
				in, done, read := rangeread.Step(&pr2.next, pr2.end, r.Offset)
				consumed += read
				if done {
					delete(left[r.Topic], r.Partition)
					pending--
					rd.PauseFetchPartitions(map[string][]int32{r.Topic: {r.Partition}})
				}
				if !in || r.Attrs.IsControl() {
					return
				}
				st.Bytes += int64(len(r.Value))
				if cfg.Ordered {
					pr2.queue = append(pr2.queue, r)
					return
				}
				evaluate(r)
			})
			if cfg.Ordered {
				drain(ranges, pending == 0, evaluate)
				throttle(rd, ranges, cfg.OrderedQueue)
			}
			out = ev.Expire(out)
			if err := emit(out); err != nil {
				return st, fmt.Errorf("hunt: write findings: %w", err)
			}
			pr.update(consumed, st, false)
		}
	}
	if err := emit(ev.Flush(nil)); err != nil {
		return st, fmt.Errorf("hunt: write findings: %w", err)
	}
	st.Elapsed = time.Since(start)
	pr.update(total, st, true)
	return st, nil
}

// drain evaluates an Ordered hunt's queued records in timestamp order
// for as long as that order is known: while every partition not read to
// its end has a record queued (one without could yet bring an earlier
// record). all drains everything: every partition is read.
func drain(ranges []*partRange, all bool, evaluate func(*kgo.Record)) {
	for {
		var first *partRange
		for _, r := range ranges {
			if len(r.queue) == 0 {
				if r.next < r.end && !all {
					return
				}
				continue
			}
			if first == nil || before(r.queue[0], first.queue[0]) {
				first = r
			}
		}
		if first == nil {
			return
		}
		rec := first.queue[0]
		first.queue[0] = nil // evaluated: let it go
		first.queue = first.queue[1:]
		evaluate(rec)
	}
}

// before orders records by timestamp, then position.
func before(a, b *kgo.Record) bool {
	if !a.Timestamp.Equal(b.Timestamp) {
		return a.Timestamp.Before(b.Timestamp)
	}
	if a.Topic != b.Topic {
		return a.Topic < b.Topic
	}
	if a.Partition != b.Partition {
		return a.Partition < b.Partition
	}
	return a.Offset < b.Offset
}

// throttle pauses the partitions whose queues are long and resumes those
// drained to half, so an Ordered hunt holds about limit records per
// partition at most (and what one fetch brings). It cannot stall: drain empties some queue
// whenever every unfinished partition has one, and that partition is
// resumed. Pausing drops nothing: franz-go fetches a resumed partition
// from the last record it returned.
func throttle(rd *kgo.Client, ranges []*partRange, limit int) {
	for _, r := range ranges {
		switch {
		case r.next >= r.end:
			// Read to its end: paused for good by the reading loop.
		case !r.paused && len(r.queue) >= limit:
			r.paused = true
			rd.PauseFetchPartitions(map[string][]int32{r.topic: {r.part}})
		case r.paused && len(r.queue) <= limit/2:
			r.paused = false
			rd.ResumeFetchPartitions(map[string][]int32{r.topic: {r.part}})
		}
	}
}

// progress is the range's progress line with the hunt's summary.
type progress struct{ *rangeread.Progress }

func (p *progress) update(done int64, st Stats, final bool) {
	if p.W == nil {
		return
	}
	if final {
		el := p.Elapsed()
		fmt.Fprintf(p.W, "%s: done: %d events (%d outside the range's times, %d not JSON), %s in %s (%.0f events/s), %d findings\n",
			p.Name, st.Records, st.Outside, st.Invalid, rangeread.Bytes(st.Bytes), el.Round(time.Millisecond), rangeread.Rate(st.Records+st.Outside, el), st.Findings)
		return
	}
	p.Update(done, st.Records+st.Outside, st.Bytes, fmt.Sprintf("%d findings, ", st.Findings))
}
