package server

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/admincli"
)

// requestLog records which requests a franz-go client wrote to which
// broker, in order.
type requestLog struct {
	mu   sync.Mutex
	sent []string // "Produce->2"
}

func (l *requestLog) OnBrokerWrite(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		return
	}
	l.mu.Lock()
	l.sent = append(l.sent, fmt.Sprintf("%s->%d", kmsg.NameForKey(key), meta.NodeID))
	l.mu.Unlock()
}

func (l *requestLog) since(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.sent[n:]...)
}

func (l *requestLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sent)
}

// TestClusterLeaderHints drains a broker of a two-broker cluster and
// checks KIP-951's leader discovery: the drained broker answers Produce
// v10+ and Fetch v16+ for a partition it no longer leads with the new
// leader and epoch (CurrentLeader) and that leader's endpoint
// (NodeEndpoints), the new leader answers a fetch at the old epoch
// FENCED_LEADER_EPOCH with itself, older versions carry no hint, and a
// franz-go producer whose metadata still names the old leader follows
// the hint to the new one without a Metadata request, while a consumer
// reads on across the move.
func TestClusterLeaderHints(t *testing.T) {
	cluster := startCluster(t, 2, func(int32) string { return "" })
	ctx := testCtx(t, 90*time.Second)
	adm := kadm.NewClient(cluster.client(t))
	const topic = "hints"
	createTopics(t, ctx, adm, 16, nil, topic)
	leaders(t, ctx, adm, topic, map[int32]bool{1: true, 2: true})
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	topicID := md.Topics[topic].ID
	part, oldEpoch := int32(-1), int32(-1)
	for _, p := range md.Topics[topic].Partitions.Sorted() {
		if p.Leader == 2 {
			part, oldEpoch = p.Partition, p.LeaderEpoch
			break
		}
	}
	if part < 0 {
		t.Fatalf("broker 2 leads none of 16 partitions: %v", md.Topics[topic].Partitions)
	}

	// The producer learns the partition's leader (2) and epoch now, and
	// does not refresh its metadata by age during the test.
	var sent requestLog
	prod := cluster.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MetadataMaxAge(5*time.Minute), kgo.WithHooks(&sent))
	produce := func(v string) *kgo.Record {
		t.Helper()
		r := &kgo.Record{Partition: part, Value: []byte(v)}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
		return r
	}
	first := produce("before the move")

	// A consumer of the partition reads along.
	cons := cluster.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {part: kgo.NewOffset().At(first.Offset)}}),
		kgo.FetchMaxWait(200*time.Millisecond))
	got := make(chan string, 16)
	go func() {
		for ctx.Err() == nil {
			cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got <- string(r.Value) })
		}
	}()
	if v := <-got; v != "before the move" {
		t.Fatalf("consumer read %q first", v)
	}

	// Drain broker 2: everything it leads moves to broker 1.
	var out, errOut bytes.Buffer
	if code := admincli.Main(ctx, []string{"cluster", "drain", "2", "--brokers=" + cluster.brokers[0].addr, "--timeout=60s"},
		admincli.Env{Stdout: &out, Stderr: &errOut}); code != 0 {
		t.Fatalf("vigil cluster drain 2: exit %d: %s %s", code, out.String(), errOut.String())
	}

	// Broker 2's own view names the new leader (its Metadata and its
	// hints read the same view).
	old := dialBroker(t, cluster.brokers[1].addr)
	newLeader, newEpoch := waitLeader(t, ctx, old, topic, part, 1)
	if newEpoch <= oldEpoch {
		t.Fatalf("partition %d moved to broker %d at epoch %d, not after epoch %d", part, newLeader, newEpoch, oldEpoch)
	}
	// The endpoint Metadata gives broker 1 on this listener.
	wantNodes := ""
	for _, b := range md.Brokers {
		if b.NodeID == 1 {
			wantNodes = fmt.Sprintf("[{1 %s %d}]", b.Host, b.Port)
		}
	}

	// Produce v12 to the old leader: the hint; v9: the error alone.
	pr := produceReq(topic, part, -1, makeBatch(1, 10))
	pr.SetVersion(12)
	presp := roundTrip(t, old, pr).(*kmsg.ProduceResponse)
	pp := presp.Topics[0].Partitions[0]
	if pp.ErrorCode != kerr.NotLeaderForPartition.Code || pp.CurrentLeader.LeaderID != 1 || pp.CurrentLeader.LeaderEpoch != newEpoch ||
		produceNodes(presp) != wantNodes {
		t.Errorf("produce v12 to the old leader: %s, current leader %+v, node endpoints %s; want NOT_LEADER_OR_FOLLOWER, {1 %d}, %s",
			kerr.ErrorForCode(pp.ErrorCode), pp.CurrentLeader, produceNodes(presp), newEpoch, wantNodes)
	}
	pr = produceReq(topic, part, -1, makeBatch(1, 10)) // v9: flexible, before KIP-951
	presp = roundTrip(t, old, pr).(*kmsg.ProduceResponse)
	if pp := presp.Topics[0].Partitions[0]; pp.ErrorCode != kerr.NotLeaderForPartition.Code || pp.CurrentLeader.LeaderID != -1 || len(presp.Brokers) != 0 {
		t.Errorf("produce v9 to the old leader: %s, current leader %+v, brokers %v; want NOT_LEADER_OR_FOLLOWER and no hint",
			kerr.ErrorForCode(pp.ErrorCode), pp.CurrentLeader, presp.Brokers)
	}

	// Fetch v17 (by topic id) from the old leader: the hint, and the
	// other tagged fields at their defaults (absent).
	fetch := func(nc net.Conn, version int16, epoch int32) (*kmsg.FetchResponse, kmsg.FetchResponseTopicPartition) {
		t.Helper()
		fr := kmsg.NewPtrFetchRequest()
		fr.SetVersion(version)
		fr.MaxBytes, fr.MinBytes = 1<<20, 0
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic, ft.TopicID = topic, topicID
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.CurrentLeaderEpoch, fp.FetchOffset, fp.PartitionMaxBytes = part, epoch, first.Offset, 1<<20
		ft.Partitions = append(ft.Partitions, fp)
		fr.Topics = append(fr.Topics, ft)
		resp := roundTrip(t, nc, fr).(*kmsg.FetchResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("fetch v%d: %d topics in the answer", version, len(resp.Topics))
		}
		return resp, resp.Topics[0].Partitions[0]
	}
	fresp, fp := fetch(old, 17, -1)
	if fp.ErrorCode != kerr.NotLeaderForPartition.Code || fp.CurrentLeader.LeaderID != 1 || fp.CurrentLeader.LeaderEpoch != newEpoch ||
		fetchNodes(fresp) != wantNodes {
		t.Errorf("fetch v17 from the old leader: %s, current leader %+v, node endpoints %s; want NOT_LEADER_OR_FOLLOWER, {1 %d}, %s",
			kerr.ErrorForCode(fp.ErrorCode), fp.CurrentLeader, fetchNodes(fresp), newEpoch, wantNodes)
	}
	if fp.DivergingEpoch.Epoch != -1 || fp.DivergingEpoch.EndOffset != -1 || fp.SnapshotID.Epoch != -1 {
		t.Errorf("fetch v17: diverging epoch %+v, snapshot id %+v; want both absent (-1)", fp.DivergingEpoch, fp.SnapshotID)
	}
	if fresp, fp := fetch(old, 15, -1); fp.ErrorCode != kerr.NotLeaderForPartition.Code || fp.CurrentLeader.LeaderID != -1 || len(fresp.Brokers) != 0 {
		t.Errorf("fetch v15 from the old leader: %s, current leader %+v, brokers %v; want NOT_LEADER_OR_FOLLOWER and no hint",
			kerr.ErrorForCode(fp.ErrorCode), fp.CurrentLeader, fresp.Brokers)
	}
	// From the new leader at the old epoch: fenced, and told the epoch.
	fresp, fp = fetch(dialBroker(t, cluster.brokers[0].addr), 16, oldEpoch)
	if fp.ErrorCode != kerr.FencedLeaderEpoch.Code || fp.CurrentLeader.LeaderID != 1 || fp.CurrentLeader.LeaderEpoch != newEpoch ||
		fetchNodes(fresp) != wantNodes {
		t.Errorf("fetch v16 at epoch %d from the new leader: %s, current leader %+v, node endpoints %s; want FENCED_LEADER_EPOCH, {1 %d}, %s",
			oldEpoch, kerr.ErrorForCode(fp.ErrorCode), fp.CurrentLeader, fetchNodes(fresp), newEpoch, wantNodes)
	}

	// The producer still believes broker 2 leads: its next record goes
	// there, is refused with the hint, and goes to broker 1 without a
	// Metadata request in between.
	n := sent.len()
	produce("after the move")
	var produces, metadata []string
	for _, s := range sent.since(n) {
		switch {
		case strings.HasPrefix(s, "Produce"):
			produces = append(produces, s)
		case strings.HasPrefix(s, "Metadata"):
			metadata = append(metadata, s)
		}
	}
	t.Logf("producer's requests for the record after the move: %v", sent.since(n))
	if len(produces) < 2 || produces[0] != "Produce->2" || produces[len(produces)-1] != "Produce->1" || len(metadata) != 0 {
		t.Errorf("producer's requests after the move: produce %v, metadata %v; want Produce->2, then Produce->1 and no Metadata", produces, metadata)
	}
	select {
	case v := <-got:
		if v != "after the move" {
			t.Errorf("consumer read %q after the move", v)
		}
	case <-ctx.Done():
		t.Fatal("the consumer never read the record produced after the move")
	}
}

// dialBroker is a raw connection to addr, closed at the test's end.
func dialBroker(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// waitLeader polls Metadata on nc until it names broker want as the
// leader of the partition, and returns the leader and its epoch.
func waitLeader(t *testing.T, ctx context.Context, nc net.Conn, topic string, part, want int32) (int32, int32) {
	t.Helper()
	for {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(12)
		name := topic
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: &name}}
		resp := roundTrip(t, nc, req).(*kmsg.MetadataResponse)
		if len(resp.Topics) == 1 && int(part) < len(resp.Topics[0].Partitions) {
			if p := resp.Topics[0].Partitions[part]; p.Leader == want {
				return p.Leader, p.LeaderEpoch
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the broker never named broker %d the leader of %s/%d", want, topic, part)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func produceNodes(r *kmsg.ProduceResponse) string {
	var s []string
	for _, b := range r.Brokers {
		s = append(s, fmt.Sprintf("{%d %s %d}", b.NodeID, b.Host, b.Port))
	}
	return fmt.Sprint(s)
}

func fetchNodes(r *kmsg.FetchResponse) string {
	var s []string
	for _, b := range r.Brokers {
		s = append(s, fmt.Sprintf("{%d %s %d}", b.NodeID, b.Host, b.Port))
	}
	return fmt.Sprint(s)
}
