package admincli_test

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/admincli"
)

type groupInfo struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Members      []struct {
		MemberID    string             `json:"member_id"`
		ClientID    string             `json:"client_id"`
		Assignments map[string][]int32 `json:"assignments"`
	} `json:"members"`
	Offsets []struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Committed *int64 `json:"committed_offset"`
		LogEnd    *int64 `json:"log_end_offset"`
		Lag       *int64 `json:"lag"`
		MemberID  string `json:"member_id"`
	} `json:"offsets"`
	TotalLag int64    `json:"total_lag"`
	Error    *jsonErr `json:"error"`
}

type resetPlan struct {
	Group    string `json:"group"`
	To       string `json:"to"`
	Executed bool   `json:"executed"`
	Offsets  []struct {
		Topic     string   `json:"topic"`
		Partition int32    `json:"partition"`
		Current   *int64   `json:"current_offset"`
		New       int64    `json:"new_offset"`
		Error     *jsonErr `json:"error"`
	} `json:"offsets"`
}

// newOffsets maps "topic/partition" to the planned offset.
func (p resetPlan) newOffsets() map[string]int64 {
	m := map[string]int64{}
	for _, o := range p.Offsets {
		m[fmt.Sprintf("%s/%d", o.Topic, o.Partition)] = o.New
	}
	return m
}

// committed reads the group's committed offsets straight from the broker,
// so assertions do not depend on the command under test.
func committed(t *testing.T, adm *kadm.Client, group string) map[string]int64 {
	t.Helper()
	resps, err := adm.FetchOffsets(testCtx(t), group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[string]int64{}
	}
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	m := map[string]int64{}
	resps.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil {
			t.Fatalf("fetch offset %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		m[fmt.Sprintf("%s/%d", o.Topic, o.Partition)] = o.At
	})
	return m
}

func wantOffsets(t *testing.T, what string, got map[string]int64, want map[string]int64) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s: %s = %d (present %v), want %d; all: %v", what, k, g, ok, w, got)
		}
	}
}

func describeGroupJSON(t *testing.T, addr, group string) groupInfo {
	t.Helper()
	var infos []groupInfo
	decode(t, mustCLI(t, addr, "groups", "describe", "--json", group), &infos)
	if len(infos) != 1 {
		t.Fatalf("describe --json %s: %d groups", group, len(infos))
	}
	return infos[0]
}

func TestGroups(t *testing.T) {
	addr := brokerFor(t)
	ctx := testCtx(t)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36) // unique on a shared external cluster
	orders, events, group := "orders-"+suffix, "events-"+suffix, "billing-"+suffix

	mustCLI(t, addr, "topics", "create", orders, "--partitions", "2")
	mustCLI(t, addr, "topics", "create", events, "--partitions", "1")

	// orders: 10 records in each partition. events: one record every 10 s
	// of event time from t0, each in its own batch.
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	prod := client(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for p := int32(0); p < 2; p++ {
		for i := 0; i < 10; i++ {
			recs = append(recs, &kgo.Record{Topic: orders, Partition: p, Value: []byte(strconv.Itoa(i))})
		}
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce orders: %v", err)
	}
	for i := 0; i < 5; i++ {
		r := &kgo.Record{Topic: events, Partition: 0, Timestamp: t0.Add(time.Duration(i) * 10 * time.Second), Value: []byte(strconv.Itoa(i))}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce events: %v", err)
		}
	}

	// A real consumer group member reads everything and commits all but
	// the last six records of orders/0, leaving a lag of 6 there.
	cons := client(t, addr,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(orders, events),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.ClientID("billing-worker"),
	)
	var toCommit []*kgo.Record
	got := 0
	for got < 25 {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of 25 records: %v", got, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			got++
			if r.Topic == orders && r.Partition == 0 && r.Offset >= 4 {
				return
			}
			toCommit = append(toCommit, r)
		})
	}
	if err := cons.CommitRecords(ctx, toCommit...); err != nil {
		t.Fatalf("commit: %v", err)
	}
	op0, op1, ev0 := orders+"/0", orders+"/1", events+"/0"
	adm := kadm.NewClient(prod)
	wantOffsets(t, "after consuming", committed(t, adm, group), map[string]int64{op0: 4, op1: 10, ev0: 5})

	t.Run("describe active", func(t *testing.T) {
		info := describeGroupJSON(t, addr, group)
		if info.State != "Stable" || info.ProtocolType != "consumer" || len(info.Members) != 1 {
			t.Fatalf("describe: state %q, protocol type %q, %d members", info.State, info.ProtocolType, len(info.Members))
		}
		m := info.Members[0]
		if m.ClientID != "billing-worker" || len(m.Assignments[orders]) != 2 || len(m.Assignments[events]) != 1 {
			t.Errorf("member %+v", m)
		}
		lags := map[string][3]int64{}
		for _, o := range info.Offsets {
			if o.Committed == nil || o.LogEnd == nil || o.Lag == nil {
				t.Fatalf("offsets of %s/%d incomplete: %+v", o.Topic, o.Partition, o)
			}
			if o.MemberID != m.MemberID {
				t.Errorf("%s/%d consumed by %q, want %q", o.Topic, o.Partition, o.MemberID, m.MemberID)
			}
			lags[fmt.Sprintf("%s/%d", o.Topic, o.Partition)] = [3]int64{*o.Committed, *o.LogEnd, *o.Lag}
		}
		want := map[string][3]int64{op0: {4, 10, 6}, op1: {10, 10, 0}, ev0: {5, 5, 0}}
		for k, w := range want {
			if lags[k] != w {
				t.Errorf("%s committed/end/lag = %v, want %v", k, lags[k], w)
			}
		}
		if info.TotalLag != 6 {
			t.Errorf("total lag %d, want 6", info.TotalLag)
		}

		r := mustCLI(t, addr, "groups", "describe", group)
		wantMatch(t, "stdout", r.stdout, `Group: `+group+`\s+State: Stable\s+Protocol: consumer/\S+\s+Coordinator: \d+\s+Members: 1\s+Total lag: 6`)
		wantRow(t, r, "MEMBER", "CLIENT-ID", "HOST", "ASSIGNMENT")
		wantRow(t, r, m.MemberID, "billing-worker")
		wantRow(t, r, "TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG", "MEMBER")
		wantRow(t, r, orders, "0", "4", "10", "6", m.MemberID)
		wantRow(t, r, orders, "1", "10", "10", "0", m.MemberID)
		wantRow(t, r, events, "0", "5", "5", "0", m.MemberID)
	})

	t.Run("list", func(t *testing.T) {
		r := mustCLI(t, addr, "groups", "list")
		wantRow(t, r, "GROUP", "STATE", "PROTOCOL-TYPE", "COORDINATOR")
		wantRow(t, r, group, "Stable", "consumer")
		wantRow(t, mustCLI(t, addr, "groups", "list", "--state", "stable"), group, "Stable")
		wantNoRow(t, mustCLI(t, addr, "groups", "list", "--state", "Empty"), group)

		var list []struct {
			Group string `json:"group"`
			State string `json:"state"`
		}
		decode(t, mustCLI(t, addr, "groups", "list", "--json"), &list)
		found := false
		for _, g := range list {
			found = found || (g.Group == group && g.State == "Stable")
		}
		if !found {
			t.Errorf("list --json lacks %s: %+v", group, list)
		}
	})

	t.Run("refused while active", func(t *testing.T) {
		r := cli(t, addr, "groups", "reset", group, "--topic", orders, "--to-earliest", "--execute")
		wantCode(t, r, admincli.ExitFailed)
		wantMatch(t, "stderr", r.stderr, `group "`+group+`" has 1 active member \(state Stable\): stop its consumers`)
		wantOffsets(t, "after a refused reset", committed(t, adm, group), map[string]int64{op0: 4, op1: 10, ev0: 5})

		r = cli(t, addr, "groups", "delete", group)
		wantCode(t, r, admincli.ExitFailed)
		wantMatch(t, "stdout", r.stdout, group+`\s+error: NON_EMPTY_GROUP`)
	})

	// The member leaves; the group keeps its offsets and becomes Empty.
	cons.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		info := describeGroupJSON(t, addr, group)
		if info.State == "Empty" && len(info.Members) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("group still %s with %d members after the consumer closed", info.State, len(info.Members))
		}
		time.Sleep(100 * time.Millisecond)
	}

	t.Run("describe empty", func(t *testing.T) {
		info := describeGroupJSON(t, addr, group)
		if info.TotalLag != 6 || len(info.Offsets) != 3 {
			t.Errorf("empty group: total lag %d, %d partitions: %+v", info.TotalLag, len(info.Offsets), info.Offsets)
		}
		r := mustCLI(t, addr, "groups", "describe", group)
		wantRow(t, r, orders, "0", "4", "10", "6", "-")
	})

	t.Run("dry run", func(t *testing.T) {
		r := mustCLI(t, addr, "groups", "reset", group, "--topic", orders, "--to-earliest")
		wantRow(t, r, "GROUP", "TOPIC", "PARTITION", "CURRENT", "NEW")
		wantRow(t, r, group, orders, "0", "4", "0")
		wantRow(t, r, group, orders, "1", "10", "0")
		wantMatch(t, "stdout", r.stdout, `Dry run: nothing changed`)
		var plan resetPlan
		decode(t, mustCLI(t, addr, "groups", "reset", group, "--topic", orders, "--to-earliest", "--dry-run", "--json"), &plan)
		if plan.Executed || plan.To != "earliest" || len(plan.Offsets) != 2 || *plan.Offsets[0].Current != 4 {
			t.Errorf("dry-run plan %+v", plan)
		}
		wantOffsets(t, "after dry runs", committed(t, adm, group), map[string]int64{op0: 4, op1: 10, ev0: 5})
	})

	t.Run("to-earliest", func(t *testing.T) {
		r := mustCLI(t, addr, "groups", "reset", group, "--topic", orders, "--to-earliest", "--execute")
		wantRow(t, r, group, orders, "0", "4", "0")
		wantMatch(t, "stdout", r.stdout, `Committed 2 offsets for group `+group)
		wantOffsets(t, "to-earliest", committed(t, adm, group), map[string]int64{op0: 0, op1: 0, ev0: 5})
	})

	t.Run("to-offset", func(t *testing.T) {
		mustCLI(t, addr, "groups", "reset", group, "--topic", orders+":1", "--to-offset", "7", "--execute")
		wantOffsets(t, "to-offset 7 on partition 1", committed(t, adm, group), map[string]int64{op0: 0, op1: 7, ev0: 5})
		// Past the end is clamped to the end, as Kafka's tool does.
		var plan resetPlan
		decode(t, mustCLI(t, addr, "groups", "reset", group, "--topic", orders+":0,1", "--to-offset", "999", "--json"), &plan)
		wantOffsets(t, "to-offset 999 plan", plan.newOffsets(), map[string]int64{op0: 10, op1: 10})
	})

	t.Run("to-latest all topics", func(t *testing.T) {
		var plan resetPlan
		decode(t, mustCLI(t, addr, "groups", "reset", group, "--all-topics", "--to-latest", "--execute", "--json"), &plan)
		if !plan.Executed || plan.To != "latest" || len(plan.Offsets) != 3 {
			t.Errorf("to-latest plan %+v", plan)
		}
		wantOffsets(t, "to-latest", committed(t, adm, group), map[string]int64{op0: 10, op1: 10, ev0: 5})
	})

	t.Run("to-datetime", func(t *testing.T) {
		// t0+15s falls between the records at t0+10s (offset 1) and
		// t0+20s (offset 2): the first at or after it is offset 2.
		at := t0.Add(15 * time.Second).UTC().Format(time.RFC3339)
		r := mustCLI(t, addr, "groups", "reset", group, "--topic", events, "--to-datetime", at, "--execute")
		wantRow(t, r, group, events, "0", "5", "2")
		wantOffsets(t, "to-datetime t0+15s", committed(t, adm, group), map[string]int64{ev0: 2, op0: 10})

		// Exactly a record's time selects that record.
		at = t0.Add(30 * time.Second).UTC().Format(time.RFC3339)
		var plan resetPlan
		decode(t, mustCLI(t, addr, "groups", "reset", group, "--topic", events, "--to-datetime", at, "--json"), &plan)
		wantOffsets(t, "to-datetime t0+30s plan", plan.newOffsets(), map[string]int64{ev0: 3})

		// After every record: the end offset.
		at = t0.Add(time.Minute).Format(time.RFC3339)
		decode(t, mustCLI(t, addr, "groups", "reset", group, "--topic", events, "--to-datetime", at, "--json"), &plan)
		wantOffsets(t, "to-datetime after all records", plan.newOffsets(), map[string]int64{ev0: 5})

		info := describeGroupJSON(t, addr, group)
		if info.TotalLag != 3 {
			t.Errorf("total lag after to-datetime: %d, want 3", info.TotalLag)
		}
	})

	t.Run("reset errors", func(t *testing.T) {
		r := cli(t, addr, "groups", "reset", group, "--topic", "missing-"+suffix, "--to-earliest", "--execute")
		wantCode(t, r, admincli.ExitFailed)
		wantMatch(t, "stderr", r.stderr, `topic "missing-`+suffix+`": UNKNOWN_TOPIC_OR_PARTITION`)
		r = cli(t, addr, "groups", "reset", group, "--topic", orders+":5", "--to-earliest", "--execute")
		wantCode(t, r, admincli.ExitFailed)
		wantMatch(t, "stderr", r.stderr, `has no partition 5 \(it has 2\)`)
		r = cli(t, addr, "groups", "reset", "nobody-"+suffix, "--all-topics", "--to-earliest")
		wantCode(t, r, admincli.ExitFailed)
		wantMatch(t, "stderr", r.stderr, `has no committed offsets`)
		wantOffsets(t, "after failed resets", committed(t, adm, group), map[string]int64{ev0: 2, op0: 10, op1: 10})
	})

	t.Run("new group", func(t *testing.T) {
		// Positioning a group before its consumers first start, as Kafka allows.
		fresh := "fresh-" + suffix
		mustCLI(t, addr, "groups", "reset", fresh, "--topic", orders, "--to-offset", "3", "--execute")
		wantOffsets(t, "new group", committed(t, adm, fresh), map[string]int64{op0: 3, op1: 3})
		wantRow(t, mustCLI(t, addr, "groups", "describe", fresh), orders, "1", "3", "10", "7", "-")
		mustCLI(t, addr, "groups", "delete", fresh)
	})

	t.Run("delete", func(t *testing.T) {
		r := cli(t, addr, "groups", "delete", group, "nobody-"+suffix)
		wantCode(t, r, admincli.ExitFailed)
		wantRow(t, r, group, "deleted")
		wantMatch(t, "stdout", r.stdout, `nobody-`+suffix+`\s+error: GROUP_ID_NOT_FOUND`)
		wantNoRow(t, mustCLI(t, addr, "groups", "list"), group)

		r = cli(t, addr, "groups", "describe", "--json", group)
		wantCode(t, r, admincli.ExitFailed)
		var infos []groupInfo
		decode(t, r, &infos)
		if len(infos) != 1 || infos[0].Error == nil || infos[0].Error.Code != "GROUP_ID_NOT_FOUND" {
			t.Errorf("describe a deleted group: %+v", infos)
		}
		if c := committed(t, adm, group); len(c) != 0 {
			t.Errorf("deleted group still has offsets %v", c)
		}
	})
}
