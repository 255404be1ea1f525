package mirror

// Comparing detections: `vigil mirror compare-detections` runs the same
// Sigma rules (and correlations) over the same offsets of both clusters,
// as two retro-hunts (package hunt, the code `vigil hunt` runs), and
// reports every finding one side has and the other lacks. Both hunts
// evaluate the records in timestamp order across partitions
// (hunt.Config.Ordered), so the order records are evaluated in, which
// correlations and suppression depend on, is the same on both sides.
//
// The ranges are Verify's: the topics the pattern matches, their
// partitions and bounds are planned by the same code (plan), with time
// bounds looked up on the source, so both hunts read the same offsets;
// each side's range ends at its own high watermark, so records a mirror
// has not copied yet show as findings only on the source.
//
// Findings are matched by their finding_info.uid, which is the rule and
// the position (topic, partition, offset) of the record the finding names
// (detect.FindingUID, of the record's vigil.origin header when it has
// one): nothing in it names the cluster, so a mirror that keeps offsets
// gives the same uids on both sides. A suppression update shares its
// finding's uid, so the key is the uid and the activity. Two findings
// with the same key are the same finding; their bytes are compared too
// (a finding is a function of the rule and the record, detect.Alert), so
// an event changed on one side that still fires the rule is reported as
// a finding that differs.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/hunt"
	"github.com/vigilhq/vigil/internal/rangeread"
)

// DetectionsConfig is one comparison of detections.
type DetectionsConfig struct {
	// Config holds the clusters, the topics, the bounds, Out and the
	// progress line, as Verify takes them. Timeout and MaxBytes apply to
	// the planning (listing topics and offsets); the hunts read as vigil
	// hunt does.
	Config
	// RuleDirs and ConfigPath are the rules and the detection config, as
	// vigil hunt's and vigil detect's.
	RuleDirs   []string
	ConfigPath string
	// MaxGroups bounds the groups kept per correlation rule (0: detect's
	// default).
	MaxGroups int
	Log       *slog.Logger
}

// DetectionsSummary is what CompareDetections compared and found.
type DetectionsSummary struct {
	Topics           int // topics matched on either side
	TopicsDiffer     int // on one side only, or with other partition counts
	Partitions       int // partitions hunted on both sides
	PartitionsDiffer int // partitions on one side only (not hunted)
	// Source and Destination are each hunt's counts.
	Source, Destination hunt.Stats
	// OnlySource and OnlyDestination count the findings one side lacks;
	// Differ those both have with other contents.
	OnlySource, OnlyDestination, Differ int
	// Rules are the findings per rule on each side, by rule id.
	Rules   []RuleCount
	Elapsed time.Duration
}

// RuleCount is one rule's findings on each side (suppression updates
// included).
type RuleCount struct {
	Rule, Title         string
	Source, Destination int64
}

// OK reports whether both sides found the same findings.
func (s DetectionsSummary) OK() bool {
	return s.TopicsDiffer == 0 && s.PartitionsDiffer == 0 && s.OnlySource == 0 && s.OnlyDestination == 0 && s.Differ == 0
}

// CompareDetections hunts both clusters and writes the differences, the
// per-rule counts and a summary to cfg.Out. As for Verify, a difference
// is a finding of the comparison (DetectionsSummary.OK), and the error is
// for what stopped it: a cluster that cannot be read, rules that cannot
// be loaded, ErrNoTopics.
func CompareDetections(ctx context.Context, cfg DetectionsConfig) (DetectionsSummary, error) {
	var sum DetectionsSummary
	start := time.Now()
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 5 * time.Second
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Topics == nil {
		return sum, fmt.Errorf("no topic pattern")
	}
	srcRanges, dstRanges, err := planDetections(ctx, cfg, &sum)
	if err != nil {
		return sum, err
	}

	// Both hunts run at once, each on its own cluster; their progress
	// lines share one writer.
	prog := &lockedWriter{w: cfg.Progress}
	sides := [2]*findingSet{newFindingSet(), newFindingSet()}
	hcfg := func(i int) hunt.Config {
		name, opts, ranges := "source", cfg.Source, srcRanges
		if i == 1 {
			name, opts, ranges = "destination", cfg.Destination, dstRanges
		}
		hc := hunt.Config{
			Ranges: ranges, From: cfg.From, To: cfg.To,
			RuleDirs: cfg.RuleDirs, ConfigPath: cfg.ConfigPath, MaxGroups: cfg.MaxGroups,
			Output: sides[i], ProgressEvery: cfg.ProgressEvery, ProgressName: "mirror compare-detections " + name,
			ClientOpts: opts, ClientID: "vigil-mirror-compare-detections",
			// Each cluster's fetches bring the partitions in their own
			// interleaving; in time order both sides evaluate the same
			// sequence, so correlations and suppression groups spanning
			// partitions complete on the same record.
			Ordered: true,
		}
		if cfg.Progress != nil {
			hc.Progress = prog
		}
		for _, r := range ranges {
			if len(hc.Topics) == 0 || hc.Topics[len(hc.Topics)-1] != r.Topic {
				hc.Topics = append(hc.Topics, r.Topic)
			}
		}
		return hc
	}
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var stats [2]hunt.Stats
	var errs [2]error
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stats[i], errs[i] = hunt.Run(hctx, hcfg(i), cfg.Log)
			if errs[i] != nil {
				cancel() // the other side's findings alone say nothing
			}
		}()
	}
	wg.Wait()
	sum.Source, sum.Destination = stats[0], stats[1]
	// The side whose error is not a cancellation is the one to name: the
	// other was canceled because of it.
	names := [2]string{"source", "destination"}
	for i := range 2 {
		if errs[i] != nil && !errors.Is(errs[i], context.Canceled) {
			return sum, fmt.Errorf("%s: %w", names[i], errs[i])
		}
	}
	for i := range 2 {
		if errs[i] != nil {
			return sum, fmt.Errorf("%s: %w", names[i], errs[i])
		}
	}
	if err := ctx.Err(); err != nil {
		return sum, err
	}

	report(cfg.Out, sides[0], sides[1], &sum)
	sum.Elapsed = time.Since(start)
	fmt.Fprintln(cfg.Out, sum.line())
	return sum, nil
}

// planDetections plans the partitions as Verify does and turns each into
// the offsets each side's hunt reads: the bounds (the source's offsets
// for times), clamped to what that side holds.
func planDetections(ctx context.Context, cfg DetectionsConfig, sum *DetectionsSummary) (src, dst []rangeread.Range, err error) {
	maxBytes := cfg.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 4 << 20
	}
	srcC, err := newCluster("source", cfg.Source, cfg.Timeout, maxBytes)
	if err != nil {
		return nil, nil, err
	}
	defer srcC.close()
	dstC, err := newCluster("destination", cfg.Destination, cfg.Timeout, maxBytes)
	if err != nil {
		return nil, nil, err
	}
	defer dstC.close()
	v := &verifier{cfg: cfg.Config, src: srcC, dst: dstC}
	plans, err := v.plan(ctx)
	if err != nil {
		return nil, nil, err
	}
	sum.Topics, sum.TopicsDiffer = v.sum.Topics, v.sum.TopicsDiffer
	// Non-nil even when empty: hunt.Config.Ranges nil means "find by time".
	src, dst = []rangeread.Range{}, []rangeread.Range{}
	for _, p := range plans {
		if p.onlyOn != "" {
			sum.PartitionsDiffer++
			fmt.Fprintf(cfg.Out, "%s/%d: DIFFERS: partition only on the %s (not hunted)\n", p.topic, p.part, p.onlyOn)
			continue
		}
		sum.Partitions++
		src = append(src, rangeread.Range{Topic: p.topic, Partition: p.part,
			Start: max(p.lower, p.srcStart), End: max(min(p.upper, p.srcEnd), max(p.lower, p.srcStart))})
		dst = append(dst, rangeread.Range{Topic: p.topic, Partition: p.part,
			Start: max(p.lower, p.dstStart), End: max(min(p.upper, p.dstEnd), max(p.lower, p.dstStart))})
	}
	return src, dst, nil
}

// found is one finding, as much of it as the report needs: the bytes are
// kept as a digest, so memory grows by about 100 bytes per finding.
type found struct {
	rule    string
	topic   string
	part    int32
	offset  int64
	time    int64 // ms: the record's timestamp
	update  bool  // a suppression update (activity 2)
	uid     string
	size    int
	digest  [16]byte
	matched bool
}

// findingSet collects one side's findings from the hunt's NDJSON output.
type findingSet struct {
	mu     sync.Mutex
	buf    []byte
	byKey  map[string]*found
	seen   map[string]int // findings per uid and activity
	titles map[string]string
	counts map[string]int64
}

func newFindingSet() *findingSet {
	return &findingSet{byKey: map[string]*found{}, seen: map[string]int{}, titles: map[string]string{}, counts: map[string]int64{}}
}

// Write takes NDJSON lines; a line may arrive in pieces.
func (s *findingSet) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		if err := s.add(s.buf[:i]); err != nil {
			return 0, err
		}
		s.buf = s.buf[i+1:]
	}
}

// findingDoc is the part of an OCSF Detection Finding the report reads.
type findingDoc struct {
	ActivityID int   `json:"activity_id"`
	Time       int64 `json:"time"`
	Info       struct {
		UID      string `json:"uid"`
		Title    string `json:"title"`
		Analytic struct {
			UID string `json:"uid"`
		} `json:"analytic"`
	} `json:"finding_info"`
	Unmapped struct {
		Source struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Offset    int64  `json:"offset"`
		} `json:"source"`
	} `json:"unmapped"`
}

func (s *findingSet) add(line []byte) error {
	var d findingDoc
	if err := json.Unmarshal(line, &d); err != nil {
		return fmt.Errorf("read a finding: %w", err)
	}
	if d.Info.UID == "" {
		return fmt.Errorf("a finding without finding_info.uid: %.200s", line)
	}
	f := &found{rule: d.Info.Analytic.UID, topic: d.Unmapped.Source.Topic, part: d.Unmapped.Source.Partition,
		offset: d.Unmapped.Source.Offset, time: d.Time, update: d.ActivityID == 2, uid: d.Info.UID, size: len(line)}
	sha := sha256.Sum256(line)
	copy(f.digest[:], sha[:])
	key := d.Info.UID + " " + strconv.Itoa(d.ActivityID)
	// Not expected from one hunt (a record is read once), but a key seen
	// twice must not hide the second: it is matched with the other side's
	// second.
	if n := s.seen[key]; n > 0 {
		s.seen[key]++
		key += "#" + strconv.Itoa(n)
	} else {
		s.seen[key] = 1
	}
	s.byKey[key] = f
	s.titles[f.rule] = d.Info.Title
	s.counts[f.rule]++
	return nil
}

// difference is one line of the report.
type difference struct {
	f    *found
	line string
}

// report matches the two sides' findings and writes the differences (in
// record order), then the per-rule counts.
func report(out io.Writer, src, dst *findingSet, sum *DetectionsSummary) {
	var diffs []difference
	for key, a := range src.byKey {
		b, ok := dst.byKey[key]
		if !ok {
			sum.OnlySource++
			diffs = append(diffs, difference{a, "only on the source: " + describe(a, src.titles)})
			continue
		}
		b.matched = true
		if a.digest != b.digest {
			sum.Differ++
			diffs = append(diffs, difference{a, fmt.Sprintf("DIFFERS: %s: other contents: source %d B sha256 %s, destination %d B sha256 %s",
				describe(a, src.titles), a.size, hex.EncodeToString(a.digest[:8]), b.size, hex.EncodeToString(b.digest[:8]))})
		}
	}
	for _, b := range dst.byKey {
		if !b.matched {
			sum.OnlyDestination++
			diffs = append(diffs, difference{b, "only on the destination: " + describe(b, dst.titles)})
		}
	}
	slices.SortFunc(diffs, func(x, y difference) int {
		if c := strings.Compare(x.f.topic, y.f.topic); c != 0 {
			return c
		}
		if x.f.part != y.f.part {
			return int(x.f.part - y.f.part)
		}
		if x.f.offset != y.f.offset {
			return compareInt(x.f.offset, y.f.offset)
		}
		return strings.Compare(x.line, y.line)
	})
	for _, d := range diffs {
		fmt.Fprintln(out, d.line)
	}

	rules := map[string]*RuleCount{}
	for i, s := range []*findingSet{src, dst} {
		for id, n := range s.counts {
			rc := rules[id]
			if rc == nil {
				rc = &RuleCount{Rule: id, Title: s.titles[id]}
				rules[id] = rc
			}
			if i == 0 {
				rc.Source = n
			} else {
				rc.Destination = n
			}
		}
	}
	for _, rc := range rules {
		sum.Rules = append(sum.Rules, *rc)
	}
	slices.SortFunc(sum.Rules, func(x, y RuleCount) int { return strings.Compare(x.Rule, y.Rule) })
	for _, rc := range sum.Rules {
		mark := ""
		if rc.Source != rc.Destination {
			mark = " DIFFERS"
		}
		fmt.Fprintf(out, "rule %s %q: source %d, destination %d%s\n", rc.Rule, rc.Title, rc.Source, rc.Destination, mark)
	}
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// describe names a finding: its rule, the record it names and its uid.
func describe(f *found, titles map[string]string) string {
	what := "finding"
	if f.update {
		what = "suppression update"
	}
	return fmt.Sprintf("rule %s %q at %s/%d offset %d (%s): %s uid %s", f.rule, titles[f.rule], f.topic, f.part, f.offset,
		time.UnixMilli(f.time).UTC().Format("2006-01-02T15:04:05.000Z07:00"), what, f.uid)
}

// line is the summary line.
func (s DetectionsSummary) line() string {
	head := fmt.Sprintf("summary: %s, %s hunted in %s; source: %s, %s; destination: %s, %s: ",
		plural(s.Topics, "topic", "topics"), plural(s.Partitions, "partition", "partitions"), s.Elapsed.Round(time.Millisecond),
		plural(int(s.Source.Records), "event", "events"), plural(int(s.Source.Findings), "finding", "findings"),
		plural(int(s.Destination.Records), "event", "events"), plural(int(s.Destination.Findings), "finding", "findings"))
	if s.OK() {
		return head + "the findings match"
	}
	out := head + fmt.Sprintf("%d only on the source, %d only on the destination, %d %s", s.OnlySource, s.OnlyDestination, s.Differ, pick(s.Differ, "differs", "differ"))
	if s.TopicsDiffer > 0 {
		out += fmt.Sprintf(", %s as a whole", plural(s.TopicsDiffer, "topic differs", "topics differ"))
	}
	if s.PartitionsDiffer > 0 {
		out += fmt.Sprintf(", %s on one side only", plural(s.PartitionsDiffer, "partition", "partitions"))
	}
	return out
}

// lockedWriter lets two hunts write their progress lines to one writer,
// a whole line per Write.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
