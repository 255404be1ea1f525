package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The TestTxnClient tests drive Vigil's transactions (docs/transactions.md)
// with the clients people run, each against the vigil binary: librdkafka
// through confluent-kafka and kcat, sarama and KafkaJS. Each writes
// committed and aborted transactions, runs an exactly-once
// consume-transform-produce loop where the client has one, and reads back
// at read_committed: every committed record once, no aborted record ever
// (checked at each record, not only at the end), and a read_uncommitted
// reader that does see the aborted records, without which the
// read_committed check would prove nothing. franz-go, Vigil's own client
// library, is tested in internal/server/transactions_test.go.

// txnClientBrokerFlags: a group's first rebalance waits for no one (the
// loops start one consumer per group), and a timed-out transaction is
// aborted within a fifth of a second of its timeout.
var txnClientBrokerFlags = []string{"--group-initial-rebalance-delay", "0s", "--transaction-abort-check-interval", "200ms"}

// txnRecord is a record as the confluent-kafka script reports it.
type txnRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Value     string
}

func (r *txnRecord) UnmarshalJSON(b []byte) error {
	var a [4]json.RawMessage
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	for i, dst := range []any{&r.Topic, &r.Partition, &r.Offset, &r.Value} {
		if err := json.Unmarshal(a[i], dst); err != nil {
			return fmt.Errorf("field %d of %s: %w", i, b, err)
		}
	}
	return nil
}

// confluentTxn runs testdata/confluent_txn.py (which checks what it can
// itself and exits non-zero on the first difference), logs its progress
// and decodes the JSON it prints last into out, if out is not nil.
func confluentTxn(t *testing.T, out any, args ...string) {
	t.Helper()
	start := time.Now()
	stdout := string(runPython(t, "confluent_kafka", "confluent_txn.py", args...))
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	progress := lines
	if out != nil {
		progress = lines[:len(lines)-1]
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), out); err != nil {
			t.Fatalf("confluent_txn.py %s: last line is not its result: %v\n%s", args[0], err, truncate(stdout, 4000))
		}
	}
	t.Logf("confluent_txn.py %s in %v:\n%s", args[0], time.Since(start).Round(time.Millisecond), strings.Join(progress, "\n"))
}

// TestTxnClientConfluent: confluent-kafka's transactional producer commits
// and aborts transactions over two topics, and an exactly-once
// consume-transform-produce loop (send_offsets_to_transaction, a consumer
// group at read_committed, one batch aborted and redone) copies the
// committed records; the script checks what read_committed readers see
// and the group's committed offsets, and the offsets are checked here
// again with franz-go.
func TestTxnClientConfluent(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "", t.TempDir(), txnClientBrokerFlags...)
	createTopic(t, b.addr, "cf-in-a", 3)
	createTopic(t, b.addr, "cf-in-b", 2)
	createTopic(t, b.addr, "cf-out", 3)

	var produced struct{ Committed, Aborted []txnRecord }
	confluentTxn(t, &produced, "produce", b.addr, "cf-producer", "cf-in-a", "cf-in-b")
	// Six transactions of 25 records (five per partition), four committed.
	if len(produced.Committed) != 100 || len(produced.Aborted) != 50 {
		t.Fatalf("the script reports %d committed and %d aborted records, want 100 and 50", len(produced.Committed), len(produced.Aborted))
	}

	var eos struct{ Offsets [][3]any }
	confluentTxn(t, &eos, "eos", b.addr, "cf-eos", "cf-group", "cf-out", "100", "cf-in-a", "cf-in-b")
	if len(eos.Offsets) != 5 {
		t.Fatalf("the loop committed offsets for %d partitions, want all 5: %v", len(eos.Offsets), eos.Offsets)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	committed, err := kadm.NewClient(cl).FetchOffsets(ctx, "cf-group")
	if err != nil {
		t.Fatalf("FetchOffsets cf-group: %v", err)
	}
	for _, o := range eos.Offsets {
		topic, p, want := o[0].(string), int32(o[1].(float64)), int64(o[2].(float64))
		got, ok := committed.Lookup(topic, p)
		if !ok || got.Err != nil || got.At != want {
			t.Errorf("cf-group: committed offset of %s[%d] = %+v, want %d (what the last transaction sent)", topic, p, got, want)
		}
	}
}

// TestTxnClientConfluentFencing: a second and a third confluent-kafka
// producer with the same transactional.id each fence the one before while
// its transaction is open with records in the log. The first learns it
// from a Produce, the second from its EndTxn: both fail fatally with
// _FENCED (librdkafka's name for PRODUCER_FENCED and
// INVALID_PRODUCER_EPOCH), and read_committed readers see only the last
// producer's records while read_uncommitted ones see the zombies' too.
func TestTxnClientConfluentFencing(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "", t.TempDir(), txnClientBrokerFlags...)
	createTopic(t, b.addr, "cf-fence", 2)
	confluentTxn(t, nil, "fence", b.addr, "cf-fenced-id", "cf-fence")
}

// kcatRecords reads every partition of topic with kcat to its end (-e)
// at the isolation level given, as "topic partition offset value" lines.
func kcatRecords(t *testing.T, kcat, addr, topic, isolation string, partition int) []string {
	t.Helper()
	args := []string{"-b", addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
		"-X", "isolation.level=" + isolation, "-f", "%t %p %o %s\n"}
	if partition >= 0 {
		args = append(args, "-p", fmt.Sprint(partition))
	}
	out := strings.TrimSuffix(string(runCmd(t, 60*time.Second, kcat, args...)), "\n")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

func txnLine(r txnRecord) string {
	return fmt.Sprintf("%s %d %d %s", r.Topic, r.Partition, r.Offset, r.Value)
}

// TestTxnClientKcat reads with kcat (librdkafka) at read_committed a topic
// confluent-kafka's transactional producer wrote committed and aborted
// transactions to: exactly the committed records, at their offsets. Then
// kcat's own transactional producer (kcat 1.7 has one: -X
// transactional.id sends all its input in one transaction, committed at
// the end of the input) commits a file, and a kcat producer stopped in the
// middle of its input leaves its transaction open (kcat does not abort
// it, whatever its help says: it sends no EndTxn): its records are never
// visible at read_committed, they hold the partition's last stable offset
// back until the coordinator aborts the transaction at its
// transaction.timeout.ms, and then a later committed transaction on the
// partition becomes visible.
func TestTxnClientKcat(t *testing.T) {
	t.Parallel()
	kcat := lookKcat(t)
	b := startBroker(t, "", t.TempDir(), txnClientBrokerFlags...)
	const topic = "kcat-txn"
	createTopic(t, b.addr, topic, 3)
	var produced struct{ Committed, Aborted []txnRecord }
	confluentTxn(t, &produced, "produce", b.addr, "kcat-source", topic)

	want := map[string]bool{}
	for _, r := range produced.Committed {
		want[txnLine(r)] = true
	}
	aborted := map[string]bool{}
	for _, r := range produced.Aborted {
		aborted[txnLine(r)] = true
	}
	got := kcatRecords(t, kcat, b.addr, topic, "read_committed", -1)
	checkTxnLines(t, "kcat read_committed", got, want, aborted)
	t.Logf("kcat at read_committed read exactly the %d committed records of %d", len(got), len(produced.Committed)+len(produced.Aborted))
	// The same read at read_uncommitted has the aborted records too: the
	// read_committed one filtered them.
	all := kcatRecords(t, kcat, b.addr, topic, "read_uncommitted", -1)
	if len(all) != len(want)+len(aborted) {
		t.Fatalf("kcat read_uncommitted read %d records, want the %d committed and %d aborted ones", len(all), len(want), len(aborted))
	}

	// kcat's transactional producer, committing: lines of a file.
	var commitLines []string
	for i := range 20 {
		commitLines = append(commitLines, fmt.Sprintf("kcat committed %02d", i))
	}
	file := filepath.Join(t.TempDir(), "commit.txt")
	if err := os.WriteFile(file, []byte(strings.Join(commitLines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runCmd(t, 60*time.Second, kcat, "-b", b.addr, "-P", "-t", topic, "-p", "0", "-X", "transactional.id=kcat-commit", "-l", file)

	// A kcat producer stopped mid-input. kcat reads its input in large
	// blocks, so it is given a lot of it to have some produced before the
	// end; the test waits until some of it is in the log.
	abandoned := exec.Command(kcat, "-b", b.addr, "-P", "-t", topic, "-p", "0",
		"-X", "transactional.id=kcat-abandoned", "-X", "transaction.timeout.ms=3000")
	stdin, err := abandoned.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var kcatErr strings.Builder
	abandoned.Stderr = &kcatErr
	if err := abandoned.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		w := bufio.NewWriter(stdin)
		for i := range 20000 {
			fmt.Fprintf(w, "kcat abandoned %05d\n", i)
		}
		w.Flush() // the pipe stays open: kcat is mid-input
	}()
	deadline := time.Now().Add(30 * time.Second)
	inLog := 0
	for inLog == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("none of the abandoned transaction's records reached the log in 30s; kcat: %s", kcatErr.String())
		}
		time.Sleep(100 * time.Millisecond)
		for _, l := range kcatRecords(t, kcat, b.addr, topic, "read_uncommitted", 0) {
			if strings.Contains(l, "kcat abandoned") {
				inLog++
			}
		}
	}
	_ = abandoned.Process.Signal(syscall.SIGINT)
	stdin.Close()
	werr := abandoned.Wait()
	t.Logf("the abandoned kcat producer had %d records in the log when stopped (exit: %v, %s)", inLog, werr, strings.TrimSpace(kcatErr.String()))

	var afterLines []string
	for i := range 10 {
		afterLines = append(afterLines, fmt.Sprintf("kcat after %02d", i))
	}
	if err := os.WriteFile(file, []byte(strings.Join(afterLines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runCmd(t, 60*time.Second, kcat, "-b", b.addr, "-P", "-t", topic, "-p", "0", "-X", "transactional.id=kcat-commit", "-l", file)

	// Partition 0 at read_committed: the committed lines of each
	// producer; never an abandoned one. The "after" lines appear once the
	// coordinator has aborted the abandoned transaction.
	for _, l := range commitLines {
		want[l] = true
	}
	for _, l := range afterLines {
		want[l] = true
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		var vals []string
		for _, l := range kcatRecords(t, kcat, b.addr, topic, "read_committed", 0) {
			if strings.Contains(l, "kcat abandoned") {
				t.Fatalf("kcat read_committed read %q, of the abandoned transaction", l)
			}
			if strings.Contains(l, "kcat ") {
				vals = append(vals, strings.SplitN(l, " ", 4)[3])
			}
		}
		if len(vals) == len(commitLines)+len(afterLines) {
			checkTxnLines(t, "kcat read_committed of kcat's transactions", vals, want, nil)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kcat read_committed read %d of kcat's committed lines in 30s, want %d: %v", len(vals), len(commitLines)+len(afterLines), vals)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(b.log(), "transactional_id=kcat-abandoned") || !strings.Contains(b.log(), "aborted a timed-out transaction") {
		t.Errorf("the broker logged no timeout abort of kcat-abandoned")
	}
}

// checkTxnLines: every line of got is wanted, none twice, none aborted,
// and (want given) every wanted line of got's kind is there.
func checkTxnLines(t *testing.T, label string, got []string, want, aborted map[string]bool) {
	t.Helper()
	seen := map[string]bool{}
	for _, l := range got {
		switch {
		case aborted[l]:
			t.Fatalf("%s: read %q, a record of an aborted transaction", label, l)
		case seen[l]:
			t.Fatalf("%s: read %q twice", label, l)
		case !want[l]:
			t.Fatalf("%s: read %q, which no committed transaction wrote", label, l)
		}
		seen[l] = true
	}
	if aborted != nil && len(seen) != len(want) {
		t.Fatalf("%s: read %d records, want %d", label, len(seen), len(want))
	}
}

// TestTxnClientKafkaJS runs testdata/kafkajs/txn.js: KafkaJS's
// transactions (send, sendBatch, commit, abort, sendOffsets) and
// read_committed consumers, in the setup TestKafkaJS uses.
func TestTxnClientKafkaJS(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: apt-get install -y nodejs npm, then npm ci --prefix internal/e2e/testdata/kafkajs (see .ci/install)")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "kafkajs"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kafkajs", "package.json")); err != nil {
		t.Fatalf("KafkaJS is not installed (%v): npm ci --prefix internal/e2e/testdata/kafkajs (see .ci/install)", err)
	}
	b := startBroker(t, "", t.TempDir(), txnClientBrokerFlags...)
	start := time.Now()
	out := runCmd(t, 2*time.Minute, node, filepath.Join(dir, "txn.js"), b.addr, "kafkajs-txn")
	t.Logf("txn.js passed in %v:\n%s", time.Since(start).Round(time.Millisecond), out)
}

// TestTxnClientSarama: sarama's transactional producer commits and
// aborts; a consume-transform-produce loop in a consumer group at
// read_committed commits each input's offset in the transaction of its
// output (AddMessageToTxn, without the member, and
// AddOffsetsToTxnWithGroupMetadata, with the session's member and
// generation: KIP-447), one aborted and redone; read_committed consumers
// check the result; and a second producer with the same transactional id
// fences the first, whose commit then fails. Sarama picks request
// versions from its configured Kafka version: 2.5 predates
// PRODUCER_FENCED (KIP-588, Kafka 2.7), so the fenced commit gets
// INVALID_PRODUCER_EPOCH there and PRODUCER_FENCED at the newest version.
func TestTxnClientSarama(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "", t.TempDir(), txnClientBrokerFlags...)
	for _, v := range []sarama.KafkaVersion{sarama.V2_5_0_0, sarama.MaxVersion} {
		t.Run(v.String(), func(t *testing.T) {
			testTxnSarama(t, b.addr, v)
		})
	}
}

func saramaTxnConfig(v sarama.KafkaVersion, txnID string) *sarama.Config {
	cfg := saramaConfig(v)
	cfg.ClientID = "vigil-e2e-sarama-txn"
	cfg.Producer.Transaction.ID = txnID
	cfg.Producer.Transaction.Retry.Backoff = 50 * time.Millisecond
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	cfg.Consumer.Offsets.AutoCommit.Enable = false // offsets go through the transactions
	return cfg
}

func saramaTxnProducer(t *testing.T, addr string, cfg *sarama.Config) sarama.SyncProducer {
	t.Helper()
	p, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("transactional producer %s: %v", cfg.Producer.Transaction.ID, err)
	}
	return p
}

func testTxnSarama(t *testing.T, addr string, v sarama.KafkaVersion) {
	const partitions = 3
	in, out, group := "sarama-txn-in-"+v.String(), "sarama-txn-out-"+v.String(), "sarama-txn-group-"+v.String()
	createTopic(t, addr, in, partitions)
	createTopic(t, addr, out, partitions)

	// Three transactions of four records per partition, the middle one
	// aborted after every record was acknowledged.
	producer := saramaTxnProducer(t, addr, saramaTxnConfig(v, "sarama-producer-"+v.String()))
	committed, aborted := map[string]bool{}, map[string]bool{}
	for i, commit := range []bool{true, false, true} {
		if err := producer.BeginTxn(); err != nil {
			t.Fatalf("BeginTxn: %v", err)
		}
		var msgs []*sarama.ProducerMessage
		for j := range 4 * partitions {
			val := fmt.Sprintf("sarama tx%d rec%02d commit=%v", i, j, commit)
			msgs = append(msgs, &sarama.ProducerMessage{Topic: in, Partition: int32(j % partitions), Key: sarama.StringEncoder(fmt.Sprint(j)), Value: sarama.StringEncoder(val)})
			if commit {
				committed[val] = true
			} else {
				aborted[val] = true
			}
		}
		if err := producer.SendMessages(msgs); err != nil {
			t.Fatalf("tx%d: SendMessages: %v", i, err)
		}
		var err error
		if commit {
			err = producer.CommitTxn()
		} else {
			err = producer.AbortTxn()
		}
		if err != nil {
			t.Fatalf("tx%d: end (commit %v): %v", i, commit, err)
		}
	}
	if err := producer.Close(); err != nil {
		t.Fatalf("close producer: %v", err)
	}
	readSaramaTxn(t, addr, v, in, partitions, committed, aborted, sarama.ReadCommitted)
	all := map[string]bool{}
	for val := range committed {
		all[val] = true
	}
	for val := range aborted {
		all[val] = true
	}
	readSaramaTxn(t, addr, v, in, partitions, all, nil, sarama.ReadUncommitted)
	t.Logf("read_committed read exactly the %d committed records; read_uncommitted all %d", len(committed), len(all))

	// Consume-transform-produce, a transaction per input.
	eosCfg := saramaTxnConfig(v, "sarama-eos-"+v.String())
	eos := saramaTxnProducer(t, addr, eosCfg)
	defer eos.Close()
	h := &saramaEOS{t: t, producer: eos, group: group, out: out, aborted: aborted, want: len(committed),
		done: map[string]bool{}, next: map[int32]int64{}}
	cg, err := sarama.NewConsumerGroup([]string{addr}, group, eosCfg)
	if err != nil {
		t.Fatalf("consumer group: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h.finish = cancel
	errs := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{in}, h); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	select {
	case err := <-errs:
		if err != nil {
			t.Fatalf("consume: %v", err)
		}
	case err := <-cg.Errors():
		t.Fatalf("consumer group: %v", err)
	}
	if err := cg.Close(); err != nil {
		t.Fatalf("close consumer group: %v", err)
	}
	h.mu.Lock()
	if h.err != nil {
		t.Fatal(h.err)
	}
	if len(h.done) != len(committed) {
		t.Fatalf("the loop processed %d inputs in a minute, want %d", len(h.done), len(committed))
	}
	next := h.next
	h.mu.Unlock()
	wantOut := map[string]bool{}
	for val := range committed {
		wantOut["eos "+val] = true
	}
	readSaramaTxn(t, addr, v, out, partitions, wantOut, nil, sarama.ReadCommitted)

	// The committed offsets are those of the last transaction per
	// partition. The marker reaches the offsets partition after EndTxn is
	// answered, so an OffsetFetch right after may see the offset before.
	admin, err := sarama.NewClusterAdmin([]string{addr}, saramaConfig(v))
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	defer admin.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{in: {0, 1, 2}})
		if err != nil {
			t.Fatalf("ListConsumerGroupOffsets: %v", err)
		}
		var bad []string
		for p := int32(0); p < partitions; p++ {
			blk := resp.GetBlock(in, p)
			if blk == nil || blk.Err != sarama.ErrNoError || blk.Offset != next[p] {
				bad = append(bad, fmt.Sprintf("partition %d: %+v, want %d", p, blk, next[p]))
			}
		}
		if len(bad) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s committed offsets: %s", group, strings.Join(bad, "; "))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the loop copied %d inputs exactly once; committed offsets %v", len(committed), next)

	// Fencing, on the output topic: the zombie's record is never
	// visible, the new producer's is.
	testSaramaFencing(t, addr, v, out)
	wantOut["fresh"] = true
	readSaramaTxn(t, addr, v, out, partitions, wantOut, map[string]bool{"zombie": true}, sarama.ReadCommitted)
}

// saramaEOS is a consumer group handler that copies each input in a
// transaction of its own with the input's offset.
type saramaEOS struct {
	t        *testing.T
	producer sarama.SyncProducer
	group    string
	out      string
	aborted  map[string]bool
	want     int
	finish   context.CancelFunc

	mu       sync.Mutex // one transaction at a time: ConsumeClaim runs per partition
	done     map[string]bool
	next     map[int32]int64
	n        int
	abortedN int
	err      error
}

func (h *saramaEOS) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaEOS) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *saramaEOS) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		if err := h.copy(s, m); err != nil {
			h.mu.Lock()
			if h.err == nil {
				h.err = err
			}
			h.mu.Unlock()
			h.finish()
			return err
		}
	}
	return nil
}

func (h *saramaEOS) copy(s sarama.ConsumerGroupSession, m *sarama.ConsumerMessage) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	val := string(m.Value)
	switch {
	case h.aborted[val]:
		return fmt.Errorf("the read_committed consumer group gave %q, of an aborted transaction", val)
	case h.done[val]:
		return fmt.Errorf("input %q read again after its transaction committed", val)
	}
	out := &sarama.ProducerMessage{Topic: h.out, Partition: m.Partition, Key: sarama.ByteEncoder(m.Key), Value: sarama.StringEncoder("eos " + val)}
	attempt := func(withMember bool) error {
		if err := h.producer.BeginTxn(); err != nil {
			return fmt.Errorf("BeginTxn: %w", err)
		}
		if _, _, err := h.producer.SendMessage(out); err != nil {
			return fmt.Errorf("SendMessage: %w", err)
		}
		if withMember {
			offsets := map[string][]*sarama.PartitionOffsetMetadata{m.Topic: {{Partition: m.Partition, Offset: m.Offset + 1}}}
			if err := h.producer.AddOffsetsToTxnWithGroupMetadata(offsets, sarama.NewConsumerGroupMetadataFromSession(s, h.group, nil)); err != nil {
				return fmt.Errorf("AddOffsetsToTxnWithGroupMetadata (generation %d): %w", s.GenerationID(), err)
			}
		} else if err := h.producer.AddMessageToTxn(m, h.group, nil); err != nil {
			return fmt.Errorf("AddMessageToTxn: %w", err)
		}
		return nil
	}
	if h.abortedN == 0 {
		// Output acknowledged and offset sent, then aborted: neither may
		// be seen. The same input is then copied again and committed.
		if err := attempt(false); err != nil {
			return err
		}
		if err := h.producer.AbortTxn(); err != nil {
			return fmt.Errorf("AbortTxn: %w", err)
		}
		h.abortedN++
	}
	if err := attempt(h.n%2 == 1); err != nil {
		return err
	}
	if err := h.producer.CommitTxn(); err != nil {
		return fmt.Errorf("CommitTxn: %w", err)
	}
	h.n++
	h.done[val] = true
	h.next[m.Partition] = m.Offset + 1
	if len(h.done) == h.want {
		h.finish()
	}
	return nil
}

// readSaramaTxn reads every partition of topic from the start with a
// sarama consumer at the isolation level given until it has every value
// of want, failing at once on a value twice, an aborted one or one not
// wanted; then reads on for a second for late extras.
func readSaramaTxn(t *testing.T, addr string, v sarama.KafkaVersion, topic string, partitions int32, want, aborted map[string]bool, level sarama.IsolationLevel) {
	t.Helper()
	cfg := saramaConfig(v)
	cfg.Consumer.IsolationLevel = level
	consumer, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer consumer.Close()
	msgs := make(chan *sarama.ConsumerMessage)
	stop := make(chan struct{})
	defer close(stop)
	for p := range partitions {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("ConsumePartition %s[%d]: %v", topic, p, err)
		}
		defer pc.Close()
		go func() {
			for m := range pc.Messages() {
				select {
				case msgs <- m:
				case <-stop:
					return
				}
			}
		}()
	}
	name := map[sarama.IsolationLevel]string{sarama.ReadCommitted: "read_committed", sarama.ReadUncommitted: "read_uncommitted"}[level]
	seen := map[string]bool{}
	timeout := time.After(30 * time.Second)
	var settle <-chan time.Time
	for {
		select {
		case m := <-msgs:
			val := string(m.Value)
			switch {
			case aborted[val]:
				t.Fatalf("%s at %v: read %q (%s[%d] offset %d), of an aborted transaction", topic, name, val, topic, m.Partition, m.Offset)
			case seen[val]:
				t.Fatalf("%s at %v: read %q twice", topic, name, val)
			case !want[val]:
				t.Fatalf("%s at %v: read %q, not one of the %d expected records", topic, name, val, len(want))
			}
			seen[val] = true
			if len(seen) == len(want) {
				settle = time.After(time.Second)
			}
		case <-settle:
			return
		case <-timeout:
			var missing []string
			for val := range want {
				if !seen[val] {
					missing = append(missing, val)
				}
			}
			sort.Strings(missing)
			t.Fatalf("%s at %v: read %d of %d records in 30s; missing %v", topic, name, len(seen), len(want), missing[:min(3, len(missing))])
		}
	}
}

// testSaramaFencing: a second sarama producer with the same
// transactional id fences the first while its transaction is open, and
// the first's commit fails.
func testSaramaFencing(t *testing.T, addr string, v sarama.KafkaVersion, topic string) {
	id := "sarama-fenced-" + v.String()
	zombie := saramaTxnProducer(t, addr, saramaTxnConfig(v, id))
	defer zombie.Close()
	if err := zombie.BeginTxn(); err != nil {
		t.Fatalf("BeginTxn: %v", err)
	}
	if _, _, err := zombie.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder("zombie")}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	fresh := saramaTxnProducer(t, addr, saramaTxnConfig(v, id))
	defer fresh.Close()
	err := zombie.CommitTxn()
	want := sarama.ErrProducerFenced
	if !v.IsAtLeast(sarama.V2_7_0_0) {
		want = sarama.ErrInvalidProducerEpoch
	}
	if !errors.Is(err, want) {
		t.Fatalf("the fenced producer's CommitTxn: %v, want %v", err, want)
	}
	t.Logf("the fenced producer's CommitTxn failed: %v", err)
	if err := fresh.BeginTxn(); err != nil {
		t.Fatalf("BeginTxn: %v", err)
	}
	if _, _, err := fresh.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder("fresh")}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	if err := fresh.CommitTxn(); err != nil {
		t.Fatalf("CommitTxn: %v", err)
	}
}
