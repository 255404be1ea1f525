// Package mirror is moving topics from another Kafka-compatible cluster
// onto Vigil with their offsets kept, and proving they arrived unchanged.
//
// `vigil mirror`, Mirror (copy.go), copies: each partition's record
// batches are fetched raw from the source and sent to Vigil unchanged as
// mirror appends, which Vigil takes only on topics marked
// MirrorSourceConfig and appends at the offsets they carry (gaps,
// markers, producer fields and all: copy.go explains the design, and
// partition.Log.AppendMirror the append). Topics, log starts and groups'
// committed offsets follow the source; Vigil's high watermark is the only
// state, so a mirror resumes wherever it stopped. Promote, the cutover,
// makes a mirror topic an ordinary one.
//
// `vigil mirror verify`, Verify, compares the topics a pattern matches on
// a source cluster and on a destination, partition by partition; `vigil
// mirror compare-detections`, CompareDetections (detections.go), runs the
// same rules over both.
//
// Per topic Verify compares the partition counts; per partition the log start
// offset, the high watermark and every record of the compared range:
// offset, timestamp, key, value, headers and whether it is a control
// record. Both sides are read at read_uncommitted with control records
// kept, so transaction markers and aborted data are compared at their
// offsets like any record, and offsets without a record (compaction's
// gaps) must be the same on both sides. Records are compared field by
// field as they stream in; a range that matches is printed with the
// SHA-256 digest of its records (see digest), the same for both sides.
//
// The compared range of a partition is, by default, from the later of the
// two log start offsets to the earlier of the two high watermarks, and the
// log starts and high watermarks are compared themselves. --from-offset,
// --to-offset (or times, turned into offsets on the source) bound it; the
// log starts and high watermarks are then compared only inside the bounds,
// so a mirror still copying newer records can be checked up to an offset
// it has passed.
//
// Memory does not grow with the data: the partitions are read one at a
// time, each side a fetch response at a time (see stream).
package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/rangeread"
)

// Config is one comparison.
type Config struct {
	// Source and Destination are each cluster's client options: its seed
	// brokers and security (package clientsec's Opts).
	Source, Destination []kgo.Opt
	// Topics selects the topics compared, on either side (TopicPattern).
	Topics *regexp.Regexp
	// FromOffset and ToOffset bound every partition's range to [FromOffset,
	// ToOffset); zero leaves that end unbounded (the zero Config compares
	// whole logs).
	FromOffset, ToOffset int64
	// From and To bound it by time instead: each becomes, per partition,
	// the source's first offset whose timestamp is at or after it. Zero
	// leaves that end unbounded. An end has an offset or a time, not both.
	From, To time.Time
	// Timeout is how long a cluster may fail to answer (a leader moving, a
	// broker restarting) before Verify gives up; default 30s.
	Timeout time.Duration
	// MaxBytes bounds one fetch response; default 4 MiB.
	MaxBytes int32

	// Out receives a line per partition (and per topic that differs as a
	// whole) and the summary.
	Out io.Writer
	// Progress, if set, receives a progress line every ProgressEvery
	// (default 5s) while records are compared.
	Progress      io.Writer
	ProgressEvery time.Duration
}

// Summary counts what Verify compared.
type Summary struct {
	Topics        int // topics matched on either side
	TopicsDiffer  int // of those: on one side only, or with other partition counts
	Partitions    int // partitions compared or found on one side only
	Match, Differ int // partitions
	Records       int64
	Elapsed       time.Duration
}

// OK reports whether everything compared matched.
func (s Summary) OK() bool { return s.TopicsDiffer == 0 && s.Differ == 0 }

// ErrNoTopics is Verify's error when the pattern matches no topic on
// either cluster: most likely a mistyped pattern, not a verified mirror.
var ErrNoTopics = errors.New("no topic on either cluster matches --topics")

// TopicPattern compiles a --topics pattern. It must match a whole topic
// name, as Kafka's own topic patterns do, so "audit" is the topic audit
// and not also audit-archive; "audit.*" is both.
func TopicPattern(s string) (*regexp.Regexp, error) {
	re, err := regexp.Compile("^(?:" + s + ")$")
	if err != nil {
		return nil, fmt.Errorf("--topics %q: %w", s, err)
	}
	return re, nil
}

// Verify compares the clusters and writes its findings to cfg.Out. A
// difference is a finding, not an error (Summary.OK says whether there
// was one); the error is for what stopped the comparison: a cluster that
// cannot be reached or read, a topic that cannot be listed, ErrNoTopics.
func Verify(ctx context.Context, cfg Config) (Summary, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 4 << 20
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 5 * time.Second
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Topics == nil {
		return Summary{}, errors.New("no topic pattern")
	}
	src, err := newCluster("source", cfg.Source, cfg.Timeout, cfg.MaxBytes)
	if err != nil {
		return Summary{}, err
	}
	defer src.close()
	dst, err := newCluster("destination", cfg.Destination, cfg.Timeout, cfg.MaxBytes)
	if err != nil {
		return Summary{}, err
	}
	defer dst.close()
	v := &verifier{cfg: cfg, src: src, dst: dst, start: time.Now()}
	return v.run(ctx)
}

type verifier struct {
	cfg      Config
	src, dst *cluster
	start    time.Time
	sum      Summary
	progress *rangeread.Progress
	done     int64 // offsets of the ranges compared so far, for the progress line
	bytes    int64
}

// partPlan is one partition's offsets on both sides and its bounds.
type partPlan struct {
	topic            string
	part             int32
	srcStart, srcEnd int64
	dstStart, dstEnd int64
	lower, upper     int64  // the requested bounds, resolved; MinInt64/MaxInt64 for none
	onlyOn           string // "source" or "destination" when the other lacks the partition
}

// span is the range of offsets compared: inside the bounds and held by
// both sides.
func (p partPlan) span() (lo, hi int64) {
	lo = max(p.lower, p.srcStart, p.dstStart)
	hi = min(p.upper, p.srcEnd, p.dstEnd)
	return lo, max(lo, hi)
}

func (v *verifier) run(ctx context.Context) (Summary, error) {
	plans, err := v.plan(ctx)
	if err != nil {
		return v.sum, err
	}
	var total int64
	for _, p := range plans {
		if p.onlyOn == "" {
			lo, hi := p.span()
			total += hi - lo
		}
	}
	v.progress = rangeread.NewProgress(v.cfg.Progress, "mirror verify", total, v.cfg.ProgressEvery)
	for _, p := range plans {
		v.sum.Partitions++
		if p.onlyOn != "" {
			v.sum.Differ++
			fmt.Fprintf(v.cfg.Out, "%s/%d: DIFFERS: partition only on the %s\n", p.topic, p.part, p.onlyOn)
			continue
		}
		line, ok, err := v.comparePartition(ctx, p)
		if err != nil {
			return v.sum, err
		}
		if ok {
			v.sum.Match++
		} else {
			v.sum.Differ++
		}
		fmt.Fprintf(v.cfg.Out, "%s/%d: %s\n", p.topic, p.part, line)
	}
	v.sum.Elapsed = time.Since(v.start)
	fmt.Fprintln(v.cfg.Out, v.sum.line())
	return v.sum, nil
}

// line is the summary line.
func (s Summary) line() string {
	head := fmt.Sprintf("summary: %s, %s, %s compared in %s: ", plural(s.Topics, "topic", "topics"),
		plural(s.Partitions, "partition", "partitions"), plural(int(s.Records), "record", "records"), s.Elapsed.Round(time.Millisecond))
	if s.OK() {
		return head + "all match"
	}
	out := head + fmt.Sprintf("%s, %d %s", plural(s.Match, "partition matches", "partitions match"), s.Differ, pick(s.Differ, "differs", "differ"))
	if s.TopicsDiffer > 0 {
		out += fmt.Sprintf(", %s as a whole", plural(s.TopicsDiffer, "topic differs", "topics differ"))
	}
	return out
}

func plural(n int, one, many string) string { return fmt.Sprintf("%d %s", n, pick(n, one, many)) }

func pick(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// plan lists the matched topics on both sides, reports the topics that
// differ as a whole, and lists every partition's offsets (and the time
// bounds' offsets on the source), all before any record is read, so the
// progress line knows the total.
func (v *verifier) plan(ctx context.Context) ([]partPlan, error) {
	srcTopics, err := v.matched(ctx, v.src)
	if err != nil {
		return nil, err
	}
	dstTopics, err := v.matched(ctx, v.dst)
	if err != nil {
		return nil, err
	}
	var names []string
	for t := range srcTopics {
		names = append(names, t)
	}
	for t := range dstTopics {
		if _, ok := srcTopics[t]; !ok {
			names = append(names, t)
		}
	}
	if len(names) == 0 {
		return nil, ErrNoTopics
	}
	sort.Strings(names)
	v.sum.Topics = len(names)

	var both []string
	for _, t := range names {
		s, inSrc := srcTopics[t]
		d, inDst := dstTopics[t]
		switch {
		case !inDst:
			v.sum.TopicsDiffer++
			fmt.Fprintf(v.cfg.Out, "%s: DIFFERS: topic only on the source (%s)\n", t, plural(len(s.Partitions), "partition", "partitions"))
		case !inSrc:
			v.sum.TopicsDiffer++
			fmt.Fprintf(v.cfg.Out, "%s: DIFFERS: topic only on the destination (%s)\n", t, plural(len(d.Partitions), "partition", "partitions"))
		default:
			if len(s.Partitions) != len(d.Partitions) {
				v.sum.TopicsDiffer++
				fmt.Fprintf(v.cfg.Out, "%s: DIFFERS: partition count: source %d, destination %d\n", t, len(s.Partitions), len(d.Partitions))
			}
			both = append(both, t)
		}
	}
	if len(both) == 0 {
		return nil, nil
	}

	offs, err := v.listOffsets(ctx, both)
	if err != nil {
		return nil, err
	}
	var plans []partPlan
	for _, t := range both {
		parts := map[int32]bool{}
		for p := range srcTopics[t].Partitions {
			parts[p] = true
		}
		for p := range dstTopics[t].Partitions {
			parts[p] = true
		}
		sorted := make([]int32, 0, len(parts))
		for p := range parts {
			sorted = append(sorted, p)
		}
		slices.Sort(sorted)
		for _, p := range sorted {
			_, inSrc := srcTopics[t].Partitions[p]
			_, inDst := dstTopics[t].Partitions[p]
			pp := partPlan{topic: t, part: p, lower: math.MinInt64, upper: math.MaxInt64}
			switch {
			case !inDst:
				pp.onlyOn = "source"
			case !inSrc:
				pp.onlyOn = "destination"
			default:
				if err := offs.fill(&pp, v.cfg); err != nil {
					return nil, err
				}
			}
			plans = append(plans, pp)
		}
	}
	return plans, nil
}

// matched lists a cluster's topics the pattern matches (internal topics
// are never listed, nor Vigil's own _vigil.*: the mirror's StateTopic is
// on the destination only).
func (v *verifier) matched(ctx context.Context, c *cluster) (kadm.TopicDetails, error) {
	tds, err := c.adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: list topics: %w", c.name, err)
	}
	out := kadm.TopicDetails{}
	for name, td := range tds {
		if strings.HasPrefix(name, "_vigil.") || !v.cfg.Topics.MatchString(name) {
			continue
		}
		if td.Err != nil {
			return nil, fmt.Errorf("%s: topic %s: %w", c.name, name, td.Err)
		}
		out[name] = td
	}
	return out, nil
}

// offsets are the listed offsets a plan is filled from.
type offsets struct {
	srcStart, srcEnd, dstStart, dstEnd kadm.ListedOffsets
	from, to                           kadm.ListedOffsets // by time, on the source; nil when not asked
}

func (v *verifier) listOffsets(ctx context.Context, topics []string) (*offsets, error) {
	var o offsets
	var err error
	list := []struct {
		c    *cluster
		what string
		into *kadm.ListedOffsets
		fn   func(context.Context, ...string) (kadm.ListedOffsets, error)
	}{
		{v.src, "log start offsets", &o.srcStart, v.src.adm.ListStartOffsets},
		{v.src, "high watermarks", &o.srcEnd, v.src.adm.ListEndOffsets},
		{v.dst, "log start offsets", &o.dstStart, v.dst.adm.ListStartOffsets},
		{v.dst, "high watermarks", &o.dstEnd, v.dst.adm.ListEndOffsets},
	}
	for _, l := range list {
		if *l.into, err = l.fn(ctx, topics...); err != nil {
			return nil, fmt.Errorf("%s: list %s: %w", l.c.name, l.what, err)
		}
	}
	if !v.cfg.From.IsZero() {
		if o.from, err = v.src.adm.ListOffsetsAfterMilli(ctx, v.cfg.From.UnixMilli(), topics...); err != nil {
			return nil, fmt.Errorf("source: list offsets at --from: %w", err)
		}
	}
	if !v.cfg.To.IsZero() {
		if o.to, err = v.src.adm.ListOffsetsAfterMilli(ctx, v.cfg.To.UnixMilli(), topics...); err != nil {
			return nil, fmt.Errorf("source: list offsets at --to: %w", err)
		}
	}
	return &o, nil
}

// fill sets a partition's offsets and bounds from the lists.
func (o *offsets) fill(p *partPlan, cfg Config) error {
	get := func(l kadm.ListedOffsets, side, what string) (int64, error) {
		lo, ok := l.Lookup(p.topic, p.part)
		if !ok {
			return 0, fmt.Errorf("%s: no %s listed for %s/%d", side, what, p.topic, p.part)
		}
		if lo.Err != nil {
			return 0, fmt.Errorf("%s: %s of %s/%d: %w", side, what, p.topic, p.part, lo.Err)
		}
		return lo.Offset, nil
	}
	var err error
	if p.srcStart, err = get(o.srcStart, "source", "log start offset"); err != nil {
		return err
	}
	if p.srcEnd, err = get(o.srcEnd, "source", "high watermark"); err != nil {
		return err
	}
	if p.dstStart, err = get(o.dstStart, "destination", "log start offset"); err != nil {
		return err
	}
	if p.dstEnd, err = get(o.dstEnd, "destination", "high watermark"); err != nil {
		return err
	}
	if cfg.FromOffset > 0 {
		p.lower = cfg.FromOffset
	}
	if cfg.ToOffset > 0 {
		p.upper = cfg.ToOffset
	}
	if o.from != nil {
		if p.lower, err = get(o.from, "source", "offset at --from"); err != nil {
			return err
		}
	}
	if o.to != nil {
		if p.upper, err = get(o.to, "source", "offset at --to"); err != nil {
			return err
		}
	}
	return nil
}

// clamp puts x inside [lo, hi].
func clamp(x, lo, hi int64) int64 { return min(max(x, lo), hi) }

// comparePartition compares one partition and returns its line (without
// the topic/partition prefix) and whether it matched. The first
// difference by offset is the one reported: a log start before the
// range, then the records in order, then a high watermark after it.
func (v *verifier) comparePartition(ctx context.Context, p partPlan) (string, bool, error) {
	lo, hi := p.span()
	recs, diffAt, diff, dig, err := v.compareRecords(ctx, p.topic, p.part, lo, hi)
	if err != nil {
		return "", false, err
	}
	v.done += hi - lo

	// Bounds are compared where they fall inside the requested range: by
	// default that is everywhere, so they are compared as they are.
	upper := max(p.upper, p.lower)
	srcStart, dstStart := clamp(p.srcStart, p.lower, upper), clamp(p.dstStart, p.lower, upper)
	srcEnd, dstEnd := clamp(p.srcEnd, p.lower, upper), clamp(p.dstEnd, p.lower, upper)
	var records string
	if diff == "" {
		records = fmt.Sprintf("records in [%d, %d) match (%d)", lo, hi, recs)
	} else {
		records = fmt.Sprintf("first record difference at offset %d: %s", diffAt, diff)
	}
	switch {
	case srcStart != dstStart:
		return fmt.Sprintf("DIFFERS at offset %d: log start offset: source %d, destination %d; %s",
			min(srcStart, dstStart), p.srcStart, p.dstStart, records), false, nil
	case diff != "":
		return fmt.Sprintf("DIFFERS at offset %d: %s", diffAt, diff), false, nil
	case srcEnd != dstEnd:
		return fmt.Sprintf("DIFFERS at offset %d: high watermark: source %d, destination %d; %s",
			min(srcEnd, dstEnd), p.srcEnd, p.dstEnd, records), false, nil
	}
	line := fmt.Sprintf("match: offsets [%d, %d), %d records", lo, hi, recs)
	if gaps := hi - lo - recs; gaps > 0 {
		line += fmt.Sprintf(" (%d offsets without a record on either side)", gaps)
	}
	return line + ", sha256 " + dig, true, nil
}

// compareRecords streams [lo, hi) from both sides and compares the
// records in order; it stops at the first difference, whose offset and
// description it returns ("" when none). A record on one side whose
// offset the other side skips is a difference at that offset.
func (v *verifier) compareRecords(ctx context.Context, topic string, part int32, lo, hi int64) (n, diffAt int64, diff, sum string, err error) {
	d := newDigest()
	if lo >= hi {
		return 0, 0, "", d.sum(), nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	src := v.src.open(ctx, topic, part, lo, hi)
	defer src.close()
	dst := v.dst.open(ctx, topic, part, lo, hi)
	defer dst.close()
	a, err := src.next()
	if err != nil {
		return n, 0, "", "", err
	}
	b, err := dst.next()
	if err != nil {
		return n, 0, "", "", err
	}
	for a != nil || b != nil {
		switch {
		case b == nil || (a != nil && a.Offset < b.Offset):
			return n, a.Offset, "record only on the source" + nextOn("destination", b), "", nil
		case a == nil || b.Offset < a.Offset:
			return n, b.Offset, "record only on the destination" + nextOn("source", a), "", nil
		}
		if what := diffRecords(a, b); what != "" {
			return n, a.Offset, what, "", nil
		}
		d.add(a)
		n++
		v.sum.Records++
		v.bytes += recordBytes(a)
		if n%1024 == 0 {
			v.progress.Update(v.done+a.Offset+1-lo, v.sum.Records, v.bytes, "")
		}
		if a, err = src.next(); err != nil {
			return n, 0, "", "", err
		}
		if b, err = dst.next(); err != nil {
			return n, 0, "", "", err
		}
	}
	return n, 0, "", d.sum(), nil
}

// nextOn says where the other side goes on after a record it lacks.
func nextOn(side string, r *kgo.Record) string {
	if r == nil {
		return fmt.Sprintf(" (the %s has no record from there to the end of the range)", side)
	}
	return fmt.Sprintf(" (the %s's next record is at offset %d)", side, r.Offset)
}
