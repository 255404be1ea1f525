package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
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
// the hint to the new one without a Metadata request; a fetch
// long-polling on the old leader ends when the partition moves, and a
// consumer reads on. DescribeTopicPartitions describes the move as
// Metadata does.
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
	var fetched requestLog
	cons := cluster.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {part: kgo.NewOffset().At(first.Offset)}}),
		kgo.WithHooks(&fetched))
	got := make(chan string, 16)
	go func() {
		for ctx.Err() == nil {
			cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got <- string(r.Value) })
		}
	}()
	select {
	case v := <-got:
		if v != "before the move" {
			t.Fatalf("consumer read %q first", v)
		}
	case <-ctx.Done():
		t.Fatal("the consumer never read the first record")
	}

	// A fetch long-polling on broker 2 (a minute, for one byte past the
	// end) when the partition moves.
	waiting := dialBroker(t, cluster.brokers[1].addr)
	wf := fetchRequest(17, topic, topicID, part, -1, first.Offset+1)
	wf.MaxWaitMillis, wf.MinBytes = 60000, 1
	writeRequest(t, waiting, wf, 7)

	// Drain broker 2: everything it leads moves to broker 1.
	var out, errOut bytes.Buffer
	if code := admincli.Main(ctx, []string{"cluster", "drain", "2", "--brokers=" + cluster.brokers[0].addr, "--timeout=60s"},
		admincli.Env{Stdout: &out, Stderr: &errOut}); code != 0 {
		t.Fatalf("vigil cluster drain 2: exit %d: %s %s", code, out.String(), errOut.String())
	}

	// Both brokers' views name the new leader (a broker's Metadata and
	// its hints read the same view), and broker 1 serves the partition:
	// the leader key is written before the takeover completes.
	old, cur := dialBroker(t, cluster.brokers[1].addr), dialBroker(t, cluster.brokers[0].addr)
	newLeader, newEpoch := waitLeader(t, ctx, old, topic, part, 1)
	if newEpoch <= oldEpoch {
		t.Fatalf("partition %d moved to broker %d at epoch %d, not after epoch %d", part, newLeader, newEpoch, oldEpoch)
	}
	if _, e := waitLeader(t, ctx, cur, topic, part, 1); e != newEpoch {
		t.Fatalf("broker 1 names itself the leader at epoch %d, broker 2 at %d", e, newEpoch)
	}
	for {
		fr := fetchRequest(12, topic, topicID, part, newEpoch, first.Offset)
		fr.MaxWaitMillis = 0
		if roundTrip(t, cur, fr).(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("broker 1 never served partition %d", part)
		case <-time.After(50 * time.Millisecond):
		}
	}
	// DescribeTopicPartitions on the old leader describes the move as its
	// Metadata does.
	dreq := kmsg.NewPtrDescribeTopicPartitionsRequest()
	dreq.Topics = []kmsg.DescribeTopicPartitionsRequestTopic{{Topic: topic}}
	dresp := roundTrip(t, old, dreq).(*kmsg.DescribeTopicPartitionsResponse)
	if len(dresp.Topics) != 1 || len(dresp.Topics[0].Partitions) != 16 {
		t.Fatalf("DescribeTopicPartitions of %s: %+v", topic, dresp.Topics)
	}
	if dp := dresp.Topics[0].Partitions[part]; dp.LeaderID != 1 || dp.LeaderEpoch != newEpoch || fmt.Sprint(dp.Replicas, dp.ISR) != "[1] [1]" {
		t.Errorf("DescribeTopicPartitions of %s/%d after the move: leader %d, epoch %d, replicas %v, ISR %v; want 1, %d, [1], [1]",
			topic, part, dp.LeaderID, dp.LeaderEpoch, dp.Replicas, dp.ISR, newEpoch)
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

	// The long poll ended when the partition moved (roundTrip's reads
	// give up after 10 s, the poll was for a minute): NOT_LEADER_OR_FOLLOWER.
	wresp := readResponse(t, waiting, wf).(*kmsg.FetchResponse)
	if code := wresp.Topics[0].Partitions[0].ErrorCode; code != kerr.NotLeaderForPartition.Code {
		t.Errorf("fetch waiting on broker 2 while the partition moved: %s, want NOT_LEADER_OR_FOLLOWER", kerr.ErrorForCode(code))
	}

	// Fetch v17 (by topic id) from the old leader: the hint, and the
	// other tagged fields at their defaults (absent). A minute's wait for
	// a byte: an error answers at once, as in Kafka.
	fetch := func(nc net.Conn, version int16, epoch int32) (*kmsg.FetchResponse, kmsg.FetchResponseTopicPartition) {
		t.Helper()
		fr := fetchRequest(version, topic, topicID, part, epoch, first.Offset)
		fr.MaxWaitMillis, fr.MinBytes = 60000, 1
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
	fresp, fp = fetch(cur, 16, oldEpoch)
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

	// The consumer, whose fetches went to broker 2, reads on from broker 1.
	select {
	case v := <-got:
		if v != "after the move" {
			t.Errorf("consumer read %q after the move", v)
		}
	case <-ctx.Done():
		t.Fatal("the consumer never read the record produced after the move")
	}
	t.Logf("consumer's requests: %v", fetched.since(0))
}

// fetchRequest fetches one partition by topic id (v13+) and name.
func fetchRequest(version int16, topic string, id [16]byte, part, epoch int32, offset int64) *kmsg.FetchRequest {
	fr := kmsg.NewPtrFetchRequest()
	fr.SetVersion(version)
	fr.MaxBytes = 1 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = topic, id
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.CurrentLeaderEpoch, fp.FetchOffset, fp.PartitionMaxBytes = part, epoch, offset, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	fr.Topics = append(fr.Topics, ft)
	return fr
}

// readResponse reads the response to req, written earlier on nc, within
// 30 s.
func readResponse(t *testing.T, nc net.Conn, req kmsg.Request) kmsg.Response {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer nc.SetReadDeadline(time.Time{})
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		t.Fatalf("read %s response: %v", kmsg.NameForKey(req.Key()), err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(nc, body); err != nil {
		t.Fatalf("read %s response: %v", kmsg.NameForKey(req.Key()), err)
	}
	body = body[4:] // correlation id
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		body = body[1:] // the response header's empty tags (ApiVersions' header has none)
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decode %s response: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
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
