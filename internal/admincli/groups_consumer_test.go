package admincli_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupsConsumerProtocol: `vigil groups describe` describes a group
// of the consumer group protocol (KIP-848), which DescribeGroups does
// not, with its members, assignments and lag, and `groups reset` refuses
// while it has members.
func TestGroupsConsumerProtocol(t *testing.T) {
	addr := brokerFor(t)
	ctx := testCtx(t)
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, group := "kip848-"+suffix, "kip848-g-"+suffix
	mustCLI(t, addr, "topics", "create", topic, "--partitions", "2")
	prod := client(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for p := int32(0); p < 2; p++ {
		for i := 0; i < 5; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(strconv.Itoa(i))})
		}
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cons := client(t, addr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ServerSideBalancer(),
		kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(), kgo.ClientID("kip848-worker"))
	var toCommit []*kgo.Record
	for got := 0; got < 10; {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of 10: %v", got, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got++
			if r.Partition == 0 && r.Offset >= 2 {
				return // leaves a lag of 3 on partition 0
			}
			toCommit = append(toCommit, r)
		})
	}
	if err := cons.CommitRecords(ctx, toCommit...); err != nil {
		t.Fatalf("commit: %v", err)
	}
	info := describeGroupJSON(t, addr, group)
	if info.Error != nil || info.State != "Stable" || info.ProtocolType != "consumer" || len(info.Members) != 1 {
		t.Fatalf("describe: %+v", info)
	}
	if m := info.Members[0]; m.ClientID != "kip848-worker" || len(m.Assignments[topic]) != 2 {
		t.Errorf("member %+v", m)
	}
	if info.TotalLag != 3 || len(info.Offsets) != 2 {
		t.Errorf("total lag %d over %d partitions, want 3 over 2: %+v", info.TotalLag, len(info.Offsets), info.Offsets)
	}
	r := cli(t, addr, "groups", "reset", group, "--topic", topic, "--to-earliest", "--execute")
	if r.code == 0 {
		t.Errorf("reset of a consumer group with a member succeeded: %s", r.stdout)
	}
	wantMatch(t, "stderr", r.stderr, `group "`+group+`" has 1 active member \(state Stable\): stop its consumers`)
}
