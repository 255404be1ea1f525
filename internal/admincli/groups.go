package admincli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

const groupsUsage = `Usage:
  vigil groups list [--state S[,S...]] [flags]
  vigil groups describe GROUP... [flags]
  vigil groups reset GROUP (--topic T[:P,P...] ... | --all-topics)
        (--to-earliest | --to-latest | --to-datetime RFC3339 | --to-offset N)
        [--dry-run | --execute] [flags]
  vigil groups delete GROUP... [flags]

reset shows the plan unless --execute is given, and refuses while the group
has active members (as Kafka does): stop its consumers first.

` + commonUsage

func groupCommands() map[string]subcommand {
	return map[string]subcommand{
		"list": {args: "", setup: func(fs *flag.FlagSet) func(context.Context, *invocation) error {
			states := listFlag{split: true}
			fs.Var(&states, "state", "only groups in these `states` (Stable, Empty, PreparingRebalance, CompletingRebalance, Dead; repeatable)")
			return func(ctx context.Context, inv *invocation) error {
				if len(inv.pos) > 0 {
					return usagef("unexpected argument %q", inv.pos[0])
				}
				return inv.admin(func(adm *kadm.Client) error {
					return newGroups(adm, inv.out).List(ctx, states.vals...)
				})
			}
		}},
		"describe": {args: "GROUP...", setup: func(fs *flag.FlagSet) func(context.Context, *invocation) error {
			return func(ctx context.Context, inv *invocation) error {
				if err := needArgs(inv, "group"); err != nil {
					return err
				}
				return inv.admin(func(adm *kadm.Client) error {
					return newGroups(adm, inv.out).Describe(ctx, dedupe(inv.pos)...)
				})
			}
		}},
		"reset": {args: "GROUP (--topic T[:P,P...] | --all-topics) (--to-earliest | --to-latest | --to-datetime T | --to-offset N) [--execute]", setup: resetCommand},
		"delete": {args: "GROUP...", setup: func(fs *flag.FlagSet) func(context.Context, *invocation) error {
			return func(ctx context.Context, inv *invocation) error {
				if err := needArgs(inv, "group"); err != nil {
					return err
				}
				return inv.admin(func(adm *kadm.Client) error {
					return newGroups(adm, inv.out).Delete(ctx, dedupe(inv.pos)...)
				})
			}
		}},
	}
}

func resetCommand(fs *flag.FlagSet) func(context.Context, *invocation) error {
	var topics listFlag
	fs.Var(&topics, "topic", "reset `TOPIC` or TOPIC:P,P (repeatable)")
	allTopics := fs.Bool("all-topics", false, "reset every topic the group has committed offsets for")
	earliest := fs.Bool("to-earliest", false, "reset to each partition's log start offset")
	latest := fs.Bool("to-latest", false, "reset to each partition's end offset")
	datetime := fs.String("to-datetime", "", "reset to the first offset whose timestamp is at or after this RFC3339 `time`")
	var toOffset optionalInt
	fs.Var(&toOffset, "to-offset", "reset to offset `N` (clamped to each partition's start and end)")
	dryRun := fs.Bool("dry-run", false, "only show the plan (the default)")
	execute := fs.Bool("execute", false, "commit the new offsets")
	return func(ctx context.Context, inv *invocation) error {
		if len(inv.pos) != 1 {
			return usagef("name exactly one group to reset (got %d)", len(inv.pos))
		}
		var spec ResetSpec
		n := 0
		if *earliest {
			n++
			spec.To = ResetEarliest
		}
		if *latest {
			n++
			spec.To = ResetLatest
		}
		if *datetime != "" {
			n++
			t, err := time.Parse(time.RFC3339Nano, *datetime)
			if err != nil {
				return usagef("--to-datetime %q: want RFC3339, e.g. 2026-11-26T10:00:00Z", *datetime)
			}
			spec.To, spec.Time = ResetDatetime, t
		}
		if toOffset.set {
			n++
			if toOffset.v < 0 {
				return usagef("--to-offset %d: want a non-negative offset", toOffset.v)
			}
			spec.To, spec.Offset = ResetOffset, toOffset.v
		}
		if n != 1 {
			return usagef("give exactly one of --to-earliest, --to-latest, --to-datetime, --to-offset")
		}
		if *dryRun && *execute {
			return usagef("--dry-run and --execute contradict each other")
		}
		if *allTopics == (len(topics.vals) > 0) {
			return usagef("give either --topic (repeatable) or --all-topics")
		}
		spec.AllTopics = *allTopics
		for _, t := range topics.vals {
			ts, err := parseTopicSpec(t)
			if err != nil {
				return err
			}
			spec.Topics = append(spec.Topics, ts)
		}
		spec.Execute = *execute
		return inv.admin(func(adm *kadm.Client) error {
			return newGroups(adm, inv.out).Reset(ctx, inv.pos[0], spec)
		})
	}
}

// optionalInt tells "--to-offset 0" apart from no --to-offset at all.
type optionalInt struct {
	v   int64
	set bool
}

func (o *optionalInt) String() string {
	if !o.set {
		return ""
	}
	return strconv.FormatInt(o.v, 10)
}

func (o *optionalInt) Set(s string) error {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("want an integer")
	}
	o.v, o.set = v, true
	return nil
}

// TopicPartitions names a topic and, optionally, some of its partitions
// (none means all of them).
type TopicPartitions struct {
	Topic      string
	Partitions []int32
}

// parseTopicSpec reads T or T:P,P. Kafka topic names cannot contain ':',
// so the first colon is the separator.
func parseTopicSpec(s string) (TopicPartitions, error) {
	name, parts, hasParts := strings.Cut(s, ":")
	if name == "" {
		return TopicPartitions{}, usagef("--topic %q: empty topic name", s)
	}
	tp := TopicPartitions{Topic: name}
	if !hasParts {
		return tp, nil
	}
	for _, p := range strings.Split(parts, ",") {
		v, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
		if err != nil || v < 0 {
			return TopicPartitions{}, usagef("--topic %q: partitions must be non-negative integers", s)
		}
		tp.Partitions = append(tp.Partitions, int32(v))
	}
	return tp, nil
}

// ResetTo is where a reset moves committed offsets.
type ResetTo int

// The four targets of `groups reset`.
const (
	ResetEarliest ResetTo = iota + 1
	ResetLatest
	ResetDatetime
	ResetOffset
)

func (r ResetTo) String() string {
	switch r {
	case ResetEarliest:
		return "earliest"
	case ResetLatest:
		return "latest"
	case ResetDatetime:
		return "datetime"
	case ResetOffset:
		return "offset"
	}
	return "unknown"
}

// ResetSpec is one `groups reset` request.
type ResetSpec struct {
	Topics    []TopicPartitions
	AllTopics bool
	To        ResetTo
	Time      time.Time // for ResetDatetime
	Offset    int64     // for ResetOffset
	Execute   bool      // false: only show the plan
}

// Groups runs the consumer-group commands against one cluster.
type Groups struct {
	adm *kadm.Client
	out *printer
}

// NewGroups writes results to w, as JSON when asJSON is set.
func NewGroups(adm *kadm.Client, w io.Writer, asJSON bool) *Groups {
	return newGroups(adm, newPrinter(w, asJSON))
}

func newGroups(adm *kadm.Client, out *printer) *Groups { return &Groups{adm: adm, out: out} }

// groupStates are Kafka's spellings; the broker may match states exactly,
// so operators' lower-case input is normalized before it is sent.
var groupStates = []string{"Stable", "Empty", "PreparingRebalance", "CompletingRebalance", "Dead", "Assigning", "Reconciling", "Unknown"}

func canonicalState(s string) string {
	for _, c := range groupStates {
		if strings.EqualFold(c, s) {
			return c
		}
	}
	return s
}

type groupSummary struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Coordinator  int32  `json:"coordinator"`
}

// List shows groups, filtered by state on the broker and again here, since
// brokers before ListGroups v4 ignore the filter.
func (g *Groups) List(ctx context.Context, states ...string) error {
	want := make(map[string]bool, len(states))
	for i, s := range states {
		states[i] = canonicalState(s)
		want[strings.ToLower(s)] = true
	}
	listed, err := g.adm.ListGroups(ctx, states...)
	if err != nil {
		return fmt.Errorf("list groups: %w", groupErr(err))
	}
	out := []groupSummary{}
	for _, l := range listed.Sorted() {
		if len(want) > 0 && !want[strings.ToLower(l.State)] {
			continue
		}
		out = append(out, groupSummary{Group: l.Group, State: l.State, ProtocolType: l.ProtocolType, Coordinator: l.Coordinator})
	}
	if g.out.json {
		return g.out.encode(out)
	}
	rows := make([][]string, 0, len(out))
	for _, s := range out {
		rows = append(rows, []string{s.Group, s.State, s.ProtocolType, itoa(s.Coordinator)})
	}
	return g.out.table([]string{"GROUP", "STATE", "PROTOCOL-TYPE", "COORDINATOR"}, rows)
}

type memberInfo struct {
	MemberID   string             `json:"member_id"`
	InstanceID *string            `json:"instance_id,omitempty"`
	ClientID   string             `json:"client_id"`
	ClientHost string             `json:"client_host"`
	Assigned   map[string][]int32 `json:"assignments"`
}

type partitionLag struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Committed *int64   `json:"committed_offset"` // null: nothing committed
	LogEnd    *int64   `json:"log_end_offset"`
	Lag       *int64   `json:"lag"`
	MemberID  string   `json:"member_id,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Error     *jsonErr `json:"error,omitempty"`
}

type groupInfo struct {
	Group        string         `json:"group"`
	State        string         `json:"state,omitempty"`
	ProtocolType string         `json:"protocol_type,omitempty"`
	Protocol     string         `json:"protocol,omitempty"`
	Coordinator  int32          `json:"coordinator"`
	Members      []memberInfo   `json:"members"`
	Offsets      []partitionLag `json:"offsets"`
	TotalLag     int64          `json:"total_lag"`
	Error        *jsonErr       `json:"error,omitempty"`
}

// Describe shows members with their assignments, and for every partition
// the group consumes or has committed: committed offset, end and lag.
func (g *Groups) Describe(ctx context.Context, groups ...string) error {
	lags, err := g.adm.Lag(ctx, groups...)
	if err != nil {
		return fmt.Errorf("describe groups: %w", groupErr(err))
	}
	infos := make([]groupInfo, 0, len(groups))
	failed := 0
	for _, name := range groups {
		l, ok := lags[name]
		info := groupInfo{Group: name, Members: []memberInfo{}, Offsets: []partitionLag{}}
		if !ok {
			info.Error = newJSONErr(errors.New("no answer for this group"), "")
			failed++
			infos = append(infos, info)
			continue
		}
		info.State, info.ProtocolType, info.Protocol = l.State, l.ProtocolType, l.Protocol
		info.Coordinator = l.Coordinator.NodeID
		if err := l.Error(); errors.Is(err, kerr.GroupIDNotFound) {
			// A consumer group (KIP-848) is not a classic group:
			// DescribeGroups does not describe it, ConsumerGroupDescribe does.
			if ci, ok := g.describeConsumerGroup(ctx, name); ok {
				infos = append(infos, ci)
				continue
			}
		}
		if err := l.Error(); err != nil {
			info.Error = newJSONErr(groupErr(err), "")
			failed++
			infos = append(infos, info)
			continue
		}
		if isMissingGroup(l.State, len(l.Members), len(l.Lag)) {
			info.Error = newJSONErr(kerr.GroupIDNotFound, "group does not exist")
			failed++
			infos = append(infos, info)
			continue
		}
		for _, m := range l.Members {
			mi := memberInfo{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost, Assigned: map[string][]int32{}}
			if ca, ok := m.Assigned.AsConsumer(); ok {
				for _, t := range ca.Topics {
					ps := append([]int32(nil), t.Partitions...)
					sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
					mi.Assigned[t.Topic] = ps
				}
			}
			info.Members = append(info.Members, mi)
		}
		for _, ml := range l.Lag.Sorted() {
			pl := partitionLag{Topic: ml.Topic, Partition: ml.Partition, Error: newJSONErr(ml.Err, "")}
			if ml.Commit.At >= 0 {
				pl.Committed = ptr(ml.Commit.At)
			}
			if ml.End.Err == nil && ml.End.Offset >= 0 {
				pl.LogEnd = ptr(ml.End.Offset)
			}
			if ml.Err == nil && ml.Lag >= 0 {
				pl.Lag = ptr(ml.Lag)
				info.TotalLag += ml.Lag
			}
			if ml.Member != nil {
				pl.MemberID, pl.ClientID = ml.Member.MemberID, ml.Member.ClientID
			}
			info.Offsets = append(info.Offsets, pl)
		}
		infos = append(infos, info)
	}
	if err := describeAll(g.out, infos, g.printGroup); err != nil {
		return err
	}
	if failed > 0 {
		return failedf("%s of %d could not be described", plural(failed, "group", "groups"), len(groups))
	}
	return nil
}

func (g *Groups) printGroup(info groupInfo) error {
	if info.Error != nil {
		return g.out.line("Group: %s\tError: %s", info.Group, info.Error.Message)
	}
	if err := g.out.line("Group: %s\tState: %s\tProtocol: %s/%s\tCoordinator: %d\tMembers: %d\tTotal lag: %d",
		info.Group, info.State, info.ProtocolType, info.Protocol, info.Coordinator, len(info.Members), info.TotalLag); err != nil {
		return err
	}
	if len(info.Members) > 0 {
		g.out.line("")
		rows := make([][]string, 0, len(info.Members))
		for _, m := range info.Members {
			rows = append(rows, []string{m.MemberID, m.ClientID, m.ClientHost, assignmentText(m.Assigned)})
		}
		if err := g.out.table([]string{"MEMBER", "CLIENT-ID", "HOST", "ASSIGNMENT"}, rows); err != nil {
			return err
		}
	}
	g.out.line("")
	rows := make([][]string, 0, len(info.Offsets))
	for _, o := range info.Offsets {
		errCell := ""
		if o.Error != nil {
			errCell = o.Error.Message
		}
		member := o.MemberID
		if member == "" {
			member = "-"
		}
		rows = append(rows, []string{o.Topic, itoa(o.Partition), optText(o.Committed), optText(o.LogEnd), optText(o.Lag), member, errCell})
	}
	return g.out.table([]string{"TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG", "MEMBER", "ERROR"}, rows)
}

// isMissingGroup recognizes the "Dead and empty" answer Kafka gives for a
// group it has never heard of (DescribeGroups before v6 has no error for it).
func isMissingGroup(state string, members, lagTopics int) bool {
	return (state == "Dead" || state == "") && members == 0 && lagTopics == 0
}

func assignmentText(a map[string][]int32) string {
	if len(a) == 0 {
		return "-"
	}
	topics := make([]string, 0, len(a))
	for t := range a {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	parts := make([]string, len(topics))
	for i, t := range topics {
		parts[i] = t + ":" + joinInts(a[t])
	}
	return strings.Join(parts, " ")
}

type resetRow struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Current   *int64   `json:"current_offset"` // null: nothing committed
	New       int64    `json:"new_offset"`
	Error     *jsonErr `json:"error,omitempty"`
}

type resetPlan struct {
	Group    string     `json:"group"`
	To       string     `json:"to"`
	Executed bool       `json:"executed"`
	Offsets  []resetRow `json:"offsets"`
}

// Reset moves the group's committed offsets. Without spec.Execute it only
// shows the plan, which is what an operator should look at first.
func (g *Groups) Reset(ctx context.Context, group string, spec ResetSpec) error {
	if err := g.requireInactive(ctx, group); err != nil {
		return err
	}
	current, err := g.adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		// Resetting a group that never committed creates its offsets, as
		// in Kafka: operators use it to position a consumer before it starts.
		current, err = kadm.OffsetResponses{}, nil
	}
	if err != nil {
		return fmt.Errorf("fetch committed offsets of group %q: %w", group, groupErr(err))
	}
	targets, err := g.resetPartitions(ctx, group, spec, current)
	if err != nil {
		return err
	}
	topics := targets.Topics()
	newOffsets, err := g.resetTargets(ctx, spec, topics)
	if err != nil {
		return err
	}

	plan := resetPlan{Group: group, To: spec.To.String(), Offsets: []resetRow{}}
	var commit kadm.Offsets
	for _, tp := range targets.Sorted() {
		for _, p := range tp.Partitions {
			row := resetRow{Topic: tp.Topic, Partition: p, New: -1}
			if c, ok := current.Lookup(tp.Topic, p); ok && c.Err == nil && c.At >= 0 {
				row.Current = ptr(c.At)
			}
			lo, ok := newOffsets.Lookup(tp.Topic, p)
			switch {
			case !ok:
				row.Error = newJSONErr(kerr.UnknownTopicOrPartition, "no offset listed for this partition")
			case lo.Err != nil:
				row.Error = newJSONErr(lo.Err, "")
			default:
				row.New = lo.Offset
				// -1 leader epoch: the group has no record of the epoch at
				// this offset, and a wrong epoch would make consumers
				// detect a truncation that never happened.
				commit.Add(kadm.Offset{Topic: tp.Topic, Partition: p, At: lo.Offset, LeaderEpoch: -1})
			}
			plan.Offsets = append(plan.Offsets, row)
		}
	}

	failed := 0
	for _, r := range plan.Offsets {
		if r.Error != nil {
			failed++
		}
	}
	if spec.Execute && failed == 0 {
		resps, err := g.adm.CommitOffsets(ctx, group, commit)
		if err != nil {
			return fmt.Errorf("commit offsets for group %q: %w", group, groupErr(err))
		}
		plan.Executed = true
		for i, r := range plan.Offsets {
			if c, ok := resps.Lookup(r.Topic, r.Partition); ok && c.Err != nil {
				plan.Offsets[i].Error = newJSONErr(c.Err, "")
				failed++
			}
		}
	}

	if g.out.json {
		if err := g.out.encode(plan); err != nil {
			return err
		}
	} else {
		rows := make([][]string, 0, len(plan.Offsets))
		for _, r := range plan.Offsets {
			errCell := ""
			if r.Error != nil {
				errCell = r.Error.Message
			}
			rows = append(rows, []string{group, r.Topic, itoa(r.Partition), optText(r.Current), offsetText(r.New), errCell})
		}
		if err := g.out.table([]string{"GROUP", "TOPIC", "PARTITION", "CURRENT", "NEW", "ERROR"}, rows); err != nil {
			return err
		}
		switch {
		case plan.Executed && failed == 0:
			g.out.line("\nCommitted %s for group %s.", plural(len(plan.Offsets), "offset", "offsets"), group)
		case !spec.Execute && failed == 0:
			g.out.line("\nDry run: nothing changed. Rerun with --execute to commit these offsets.")
		}
	}
	switch {
	case failed > 0 && !spec.Execute:
		return failedf("%s of %d cannot be reset", plural(failed, "partition", "partitions"), len(plan.Offsets))
	case failed > 0 && !plan.Executed:
		return failedf("%s of %d cannot be reset; nothing was committed", plural(failed, "partition", "partitions"), len(plan.Offsets))
	case failed > 0:
		return failedf("%s of %d failed to commit", plural(failed, "partition", "partitions"), len(plan.Offsets))
	}
	return nil
}

// requireInactive refuses a reset while consumers are in the group: they
// would overwrite the new offsets with their next commit, and Kafka's tool
// refuses for the same reason.
func (g *Groups) requireInactive(ctx context.Context, group string) error {
	described, err := g.adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("describe group %q: %w", group, groupErr(err))
	}
	d, ok := described[group]
	if !ok {
		return fmt.Errorf("describe group %q: no answer for this group", group)
	}
	if d.Err != nil && !errors.Is(d.Err, kerr.GroupIDNotFound) {
		return fmt.Errorf("describe group %q: %w", group, d.Err)
	}
	if errors.Is(d.Err, kerr.GroupIDNotFound) {
		// Perhaps a consumer group (KIP-848), which DescribeGroups does
		// not describe.
		if dg, err := g.adm.DescribeConsumerGroups(ctx, group); err == nil && dg[group].Err == nil {
			d.Members, d.State = make([]kadm.DescribedGroupMember, len(dg[group].Members)), dg[group].State
		}
	}
	if len(d.Members) > 0 || (d.State != "" && d.State != "Empty" && d.State != "Dead") {
		return failedf("group %q has %s (state %s): stop its consumers before resetting offsets (Kafka refuses the same)",
			group, plural(len(d.Members), "active member", "active members"), d.State)
	}
	return nil
}

// resetPartitions decides which partitions move: the named ones, or with
// --all-topics every partition of every topic the group has committed to
// (as Kafka's tool does), so partitions added since are included.
func (g *Groups) resetPartitions(ctx context.Context, group string, spec ResetSpec, current kadm.OffsetResponses) (kadm.TopicsSet, error) {
	var topics []string
	explicit := map[string][]int32{}
	whole := map[string]bool{} // named without partitions at least once
	if spec.AllTopics {
		for t := range current.Partitions() {
			topics = append(topics, t)
		}
		if len(topics) == 0 {
			return nil, failedf("group %q has no committed offsets; name topics with --topic", group)
		}
	} else {
		for _, tp := range spec.Topics {
			if _, seen := explicit[tp.Topic]; !seen {
				topics = append(topics, tp.Topic)
				explicit[tp.Topic] = nil
			}
			explicit[tp.Topic] = append(explicit[tp.Topic], tp.Partitions...)
			if len(tp.Partitions) == 0 {
				whole[tp.Topic] = true
			}
		}
	}
	sort.Strings(topics)
	tds, err := g.adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	set := make(kadm.TopicsSet)
	var problems []string
	for _, t := range topics {
		td, ok := tds[t]
		if !ok || td.Err != nil {
			e := error(kerr.UnknownTopicOrPartition)
			if ok {
				e = td.Err
			}
			problems = append(problems, fmt.Sprintf("topic %q: %v", t, e))
			continue
		}
		if ps := explicit[t]; len(ps) > 0 && !whole[t] {
			for _, p := range ps {
				if _, ok := td.Partitions[p]; !ok {
					problems = append(problems, fmt.Sprintf("topic %q has no partition %d (it has %d)", t, p, len(td.Partitions)))
					continue
				}
				set.Add(t, p)
			}
			continue
		}
		for p := range td.Partitions {
			set.Add(t, p)
		}
	}
	if len(problems) > 0 {
		return nil, failedf("cannot reset group %q: %s", group, strings.Join(problems, "; "))
	}
	return set, nil
}

// resetTargets lists the offset each partition moves to.
func (g *Groups) resetTargets(ctx context.Context, spec ResetSpec, topics []string) (kadm.ListedOffsets, error) {
	list := func(what string, fn func(context.Context, ...string) (kadm.ListedOffsets, error)) (kadm.ListedOffsets, error) {
		lo, err := fn(ctx, topics...)
		if err != nil {
			return nil, fmt.Errorf("list %s offsets: %w", what, err)
		}
		return lo, nil
	}
	switch spec.To {
	case ResetEarliest:
		return list("start", g.adm.ListStartOffsets)
	case ResetLatest:
		return list("end", g.adm.ListEndOffsets)
	case ResetDatetime:
		// kadm falls back to the end offset where no record is that new,
		// which is where a consumer starting "at that time" would begin.
		return list("by-time", func(ctx context.Context, ts ...string) (kadm.ListedOffsets, error) {
			return g.adm.ListOffsetsAfterMilli(ctx, spec.Time.UnixMilli(), ts...)
		})
	case ResetOffset:
		starts, err := list("start", g.adm.ListStartOffsets)
		if err != nil {
			return nil, err
		}
		ends, err := list("end", g.adm.ListEndOffsets)
		if err != nil {
			return nil, err
		}
		// Clamp into [start, end] as Kafka's tool does: an offset outside
		// the log would only make consumers fall back to auto.offset.reset.
		out := make(kadm.ListedOffsets)
		ends.Each(func(e kadm.ListedOffset) {
			o := e
			s, ok := starts.Lookup(e.Topic, e.Partition)
			switch {
			case e.Err != nil:
			case !ok:
				o.Err = kerr.UnknownTopicOrPartition
			case s.Err != nil:
				o.Err = s.Err
			default:
				o.Offset = min(max(spec.Offset, s.Offset), e.Offset)
			}
			if out[o.Topic] == nil {
				out[o.Topic] = map[int32]kadm.ListedOffset{}
			}
			out[o.Topic][o.Partition] = o
		})
		return out, nil
	}
	return nil, fmt.Errorf("unknown reset target %d", spec.To)
}

type groupResult struct {
	Group string   `json:"group"`
	OK    bool     `json:"ok"`
	Error *jsonErr `json:"error,omitempty"`
}

// Delete removes groups with their committed offsets; the broker refuses
// groups that still have members (NON_EMPTY_GROUP).
func (g *Groups) Delete(ctx context.Context, groups ...string) error {
	resps, err := g.adm.DeleteGroups(ctx, groups...)
	if err != nil && len(resps) == 0 {
		return fmt.Errorf("delete groups: %w", groupErr(err))
	}
	results := make([]groupResult, 0, len(groups))
	failed := 0
	for _, name := range groups {
		r, ok := resps[name]
		res := groupResult{Group: name}
		res.Error = answerError(ok, r.Err, r.ErrMessage, "group")
		res.OK = res.Error == nil
		if !res.OK {
			failed++
		}
		results = append(results, res)
	}
	if g.out.json {
		if err := g.out.encode(results); err != nil {
			return err
		}
	} else {
		rows := make([][]string, 0, len(results))
		for _, r := range results {
			rows = append(rows, []string{r.Group, resultText(r.OK, r.Error, "deleted")})
		}
		if err := g.out.table([]string{"GROUP", "RESULT"}, rows); err != nil {
			return err
		}
	}
	if failed > 0 {
		return failedf("%s of %d could not be deleted", plural(failed, "group", "groups"), len(groups))
	}
	return nil
}

// groupErr adds a hint when the cluster has no group coordinator at all;
// kgo reports that only as "broker is too old", which misleads operators.
func groupErr(err error) error {
	if err == nil {
		return nil
	}
	s := err.Error()
	if strings.Contains(s, "broker is too old") || strings.Contains(s, "unknown request key") || errors.Is(err, kerr.UnsupportedVersion) {
		return fmt.Errorf("the cluster does not support consumer groups (no group coordinator APIs): %w", err)
	}
	return err
}

func ptr[T any](v T) *T { return &v }

func optText(v *int64) string {
	if v == nil {
		return "-"
	}
	return itoa(*v)
}

// describeConsumerGroup describes a group of the consumer group protocol
// (KIP-848): its members and assignments by ConsumerGroupDescribe, the
// state it reports (Empty, Assigning, Reconciling, Stable), the assignor
// as its protocol, and the lag of every partition it is assigned or has
// committed. ok is false when it is not such a group.
func (g *Groups) describeConsumerGroup(ctx context.Context, name string) (groupInfo, bool) {
	info := groupInfo{Group: name, Members: []memberInfo{}, Offsets: []partitionLag{}}
	dg, err := g.adm.DescribeConsumerGroups(ctx, name)
	d, ok := dg[name]
	if err != nil || !ok || d.Err != nil {
		return info, false
	}
	info.State, info.ProtocolType, info.Protocol, info.Coordinator = d.State, "consumer", d.AssignorName, d.Coordinator.NodeID
	owner := map[string]map[int32]memberInfo{}
	topics := map[string]bool{}
	for _, m := range d.Members {
		mi := memberInfo{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost, Assigned: map[string][]int32{}}
		for t, ps := range m.Assignment {
			for p := range ps {
				mi.Assigned[t] = append(mi.Assigned[t], p)
				if owner[t] == nil {
					owner[t] = map[int32]memberInfo{}
				}
				owner[t][p] = mi
			}
			sort.Slice(mi.Assigned[t], func(i, j int) bool { return mi.Assigned[t][i] < mi.Assigned[t][j] })
			topics[t] = true
		}
		info.Members = append(info.Members, mi)
	}
	commits, err := g.adm.FetchOffsets(ctx, name)
	if err != nil {
		info.Error = newJSONErr(groupErr(err), "")
		return info, true
	}
	commits.Each(func(o kadm.OffsetResponse) { topics[o.Topic] = true })
	ends, err := g.adm.ListEndOffsets(ctx, slices.Sorted(maps.Keys(topics))...)
	if err != nil {
		info.Error = newJSONErr(groupErr(err), "")
		return info, true
	}
	parts := map[string]map[int32]bool{}
	add := func(t string, p int32) {
		if parts[t] == nil {
			parts[t] = map[int32]bool{}
		}
		parts[t][p] = true
	}
	commits.Each(func(o kadm.OffsetResponse) { add(o.Topic, o.Partition) })
	for t, ps := range owner {
		for p := range ps {
			add(t, p)
		}
	}
	for _, t := range slices.Sorted(maps.Keys(parts)) {
		for _, p := range slices.Sorted(maps.Keys(parts[t])) {
			pl := partitionLag{Topic: t, Partition: p}
			if c, ok := commits.Lookup(t, p); ok && c.Err == nil && c.At >= 0 {
				pl.Committed = ptr(c.At)
			}
			if e, ok := ends.Lookup(t, p); ok && e.Err == nil && e.Offset >= 0 {
				pl.LogEnd = ptr(e.Offset)
				if pl.Committed != nil {
					pl.Lag = ptr(max(0, e.Offset-*pl.Committed))
					info.TotalLag += *pl.Lag
				}
			} else if ok && e.Err != nil {
				pl.Error = newJSONErr(e.Err, "")
			}
			if m, ok := owner[t][p]; ok {
				pl.MemberID, pl.ClientID = m.MemberID, m.ClientID
			}
			info.Offsets = append(info.Offsets, pl)
		}
	}
	return info, true
}
