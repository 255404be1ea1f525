package group

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/meta/boltstore"
	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/producer"
	"github.com/vigilhq/vigil/internal/storage"
)

// txnEnv is an offsets log the transaction tests run over: a real
// storage engine in a temporary directory (restarted by reopen), and the
// in-memory memLog, whose markers need no producer state.
type txnEnv struct {
	t      *testing.T
	name   string
	log    Log
	reopen func() // restart the log's process: the engine from its directory
	// marker appends a transaction marker to offsets partition p; nil
	// while the log cannot take one.
	marker func(p int32, pid int64, epoch int16, commit bool) error
	// snapshot is SnapshotMinRecords for the coordinators opened.
	snapshot int
	cur      *Coordinator
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// forEachLog runs fn over each kind of offsets log (one partition).
func forEachLog(t *testing.T, fn func(t *testing.T, env *txnEnv)) {
	t.Run("engine", func(t *testing.T) { fn(t, engineEnv(t)) })
	t.Run("memlog", func(t *testing.T) {
		l := newMemLog(1)
		env := &txnEnv{t: t, name: "memlog", log: l, reopen: func() {}, snapshot: 1000}
		env.marker = func(p int32, pid int64, epoch int16, commit bool) error {
			l.add(p, markerBatch(pid, epoch, commit))
			return nil
		}
		fn(t, env)
	})
}

// markerBatch is a marker as memLog stores it.
func markerBatch(pid int64, epoch int16, commit bool) memBatch {
	rb, recs, err := batch.Records(batch.BuildMarker(pid, epoch, commit, 0, time.Now().UnixMilli()), nil)
	if err != nil {
		panic(err)
	}
	return memBatch{attrs: rb.Attributes, pid: pid, epoch: epoch, recs: []Record{{Key: recs[0].Key, Value: recs[0].Value}}}
}

func engineEnv(t *testing.T) *txnEnv {
	dir := t.TempDir()
	env := &txnEnv{t: t, name: "engine", snapshot: 1000}
	var closeE func()
	open := func() {
		ctx := context.Background()
		ms, err := boltstore.Open(filepath.Join(dir, "meta.db"))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := objstore.Open(ctx, filepath.Join(dir, "objects"), objstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		e, err := storage.Open(ctx, ms, objs, storage.Options{WALDir: filepath.Join(dir, "wal"), WALSync: true,
			UploadInterval: 20 * time.Millisecond, SegmentBytes: 1 << 20, TailCacheBytes: 1 << 10, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		it, err := e.OpenInternalTopic(ctx, OffsetsTopic, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		env.log = it
		env.marker = engineMarker(e)
		closeE = func() {
			if err := e.Close(); err != nil {
				t.Error(err)
			}
			objs.Close()
			ms.Close()
		}
	}
	open()
	env.reopen = func() {
		env.closeCoordinator()
		closeE()
		open()
	}
	t.Cleanup(func() {
		env.closeCoordinator()
		closeE()
	})
	return env
}

// engineMarker appends a marker through the engine's marker path, as
// the broker does for WriteTxnMarkers, and waits until it is durable.
func engineMarker(e *storage.Engine) func(p int32, pid int64, epoch int16, commit bool) error {
	return func(p int32, pid int64, epoch int16, commit bool) error {
		t := e.Topic(OffsetsTopic)
		ch := make(chan error, 1)
		e.AppendMarker(t, t.Logs[p], storage.Marker{ProducerID: pid, Epoch: epoch, Commit: commit}, func(_ int64, err error) { ch <- err })
		return <-ch
	}
}

// needMarkers skips a test the log cannot write markers for yet.
func (env *txnEnv) needMarkers() {
	if env.marker == nil {
		env.t.Skip("the storage engine appends no transaction marker yet (Engine.AppendMarker)")
	}
}

func (env *txnEnv) writeMarker(pid int64, epoch int16, commit bool) {
	env.t.Helper()
	if err := env.marker(0, pid, epoch, commit); err != nil {
		env.t.Fatalf("marker: %v", err)
	}
}

// open closes the current coordinator, if any, and loads a new one over
// the log (a coordinator move, or a restart after reopen).
func (env *txnEnv) open() *Coordinator {
	env.t.Helper()
	env.closeCoordinator()
	c := New(Config{InitialRebalanceDelay: 10 * time.Millisecond, MinSessionTimeout: 10 * time.Millisecond,
		SnapshotMinRecords: env.snapshot, OffsetsRetentionCheck: -1, Logger: quiet()}, env.log, allTopics{})
	if err := c.Load(context.Background()); err != nil {
		env.t.Fatal(err)
	}
	env.cur = c
	return c
}

func (env *txnEnv) closeCoordinator() {
	if env.cur != nil {
		env.cur.Close()
		env.cur = nil
	}
}

// complete writes the marker and tells the coordinator, as the broker
// does once the marker is durable.
func (env *txnEnv) complete(c *Coordinator, pid int64, epoch int16, commit bool) {
	env.t.Helper()
	env.writeMarker(pid, epoch, commit)
	recv(env.t, c.CompleteTxn(pid, commit))
}

type txnReq struct {
	group, member, instance string
	gen                     int32
	pid                     int64
	epoch                   int16
	topic                   string
	partition               int32
	offset                  int64
	version                 int16
}

func txnCommitReq(r txnReq) *kmsg.TxnOffsetCommitRequest {
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version = r.version
	if req.Version == 0 {
		req.Version = 3
	}
	req.TransactionalID = "tx"
	req.Group, req.MemberID, req.Generation = r.group, r.member, r.gen
	if r.instance != "" {
		req.InstanceID = &r.instance
	}
	req.ProducerID, req.ProducerEpoch = r.pid, r.epoch
	topic := r.topic
	if topic == "" {
		topic = "t"
	}
	md := "m"
	req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{
		{Partition: r.partition, Offset: r.offset, LeaderEpoch: 2, Metadata: &md}}}}
	return req
}

// txnCommit sends a TxnOffsetCommit of one partition and returns its code.
func txnCommit(t *testing.T, c *Coordinator, r txnReq) int16 {
	t.Helper()
	resp := recv(t, c.TxnCommit(txnCommitReq(r)))
	return resp.Topics[0].Partitions[0].ErrorCode
}

// simple is a TxnOffsetCommit of a group without membership (gen -1).
func simple(group string, pid int64, epoch int16, partition int32, off int64) txnReq {
	return txnReq{group: group, gen: -1, pid: pid, epoch: epoch, partition: partition, offset: off}
}

// offsetOf is the committed offset of group's t/p (-1 none) and the code
// a fetch requiring stable offsets gets for it.
func offsetOf(c *Coordinator, group string, p int32) (int64, int16) {
	offs, _ := c.FetchOffsets(group, map[string][]int32{"t": {p}}, false)
	stable, _ := c.FetchOffsetsStable(group, map[string][]int32{"t": {p}}, false, true)
	return offs[0].Offset, stable[0].ErrorCode
}

func wantOffset(t *testing.T, c *Coordinator, group string, p int32, want int64, wantCode int16, what string) {
	t.Helper()
	got, code := offsetOf(c, group, p)
	if got != want || code != wantCode {
		t.Errorf("%s: %s t/%d: offset %d (stable fetch: %v), want %d (%v)", what, group, p, got, kerr.ErrorForCode(code), want, kerr.ErrorForCode(wantCode))
	}
}

const unstable = 88 // UNSTABLE_OFFSET_COMMIT

// TestTxnOffsetsInvisibleUntilCommit: a transaction's offsets are not
// fetched until the commit marker; a fetch requiring stable offsets is
// told UNSTABLE_OFFSET_COMMIT for their partitions (only); commit makes
// them the committed ones, durably; abort drops them, durably.
func TestTxnOffsetsInvisibleUntilCommit(t *testing.T) {
	forEachLog(t, func(t *testing.T, env *txnEnv) {
		env.needMarkers()
		c := env.open()
		if code := commit(t, c, commitReq("g", "", -1, "t", 0, 5)); code != 0 {
			t.Fatalf("plain commit: %v", kerr.ErrorForCode(code))
		}
		if code := commit(t, c, commitReq("g", "", -1, "t", 1, 7)); code != 0 {
			t.Fatalf("plain commit: %v", kerr.ErrorForCode(code))
		}
		if code := txnCommit(t, c, simple("g", 100, 0, 0, 10)); code != 0 {
			t.Fatalf("txn commit: %v", kerr.ErrorForCode(code))
		}
		wantOffset(t, c, "g", 0, 5, unstable, "pending")
		wantOffset(t, c, "g", 1, 7, 0, "other partition while pending")
		all, _ := c.FetchOffsetsStable("g", nil, true, true)
		for _, o := range all {
			if want := map[int32]int16{0: unstable, 1: 0}[o.Partition]; o.ErrorCode != want {
				t.Errorf("fetch of all offsets, stable: t/%d error %v", o.Partition, kerr.ErrorForCode(o.ErrorCode))
			}
		}
		env.complete(c, 100, 0, true)
		wantOffset(t, c, "g", 0, 10, 0, "committed")

		// A second transaction of the producer, aborted.
		if code := txnCommit(t, c, simple("g", 100, 0, 1, 70)); code != 0 {
			t.Fatalf("txn commit: %v", kerr.ErrorForCode(code))
		}
		wantOffset(t, c, "g", 1, 7, unstable, "second pending")
		env.complete(c, 100, 0, false)
		wantOffset(t, c, "g", 1, 7, 0, "aborted")

		env.reopen()
		c = env.open()
		wantOffset(t, c, "g", 0, 10, 0, "committed, after a reload")
		wantOffset(t, c, "g", 1, 7, 0, "aborted, after a reload")
	})
}

// TestTxnOffsetsAcrossReload: a coordinator loaded while a transaction
// is open keeps its offsets pending, with or without the marker written
// before the reload.
func TestTxnOffsetsAcrossReload(t *testing.T) {
	for _, commitIt := range []bool{true, false} {
		for _, markerFirst := range []bool{false, true} {
			name := map[bool]string{true: "commit", false: "abort"}[commitIt] + map[bool]string{true: "/marker-before-reload", false: "/marker-after-reload"}[markerFirst]
			t.Run(name, func(t *testing.T) {
				forEachLog(t, func(t *testing.T, env *txnEnv) {
					env.needMarkers()
					c := env.open()
					commit(t, c, commitReq("g", "", -1, "t", 0, 5))
					if code := txnCommit(t, c, simple("g", 100, 3, 0, 10)); code != 0 {
						t.Fatalf("txn commit: %v", kerr.ErrorForCode(code))
					}
					if markerFirst {
						// The marker is durable but the coordinator moved
						// (or crashed) before it was told.
						env.writeMarker(100, 3, commitIt)
					}
					env.reopen()
					c = env.open()
					want := int64(5)
					if commitIt {
						want = 10
					}
					if markerFirst {
						wantOffset(t, c, "g", 0, want, 0, "marker replayed")
					} else {
						wantOffset(t, c, "g", 0, 5, unstable, "pending after the reload")
						env.complete(c, 100, 3, commitIt)
						wantOffset(t, c, "g", 0, want, 0, "completed after the reload")
					}
					env.reopen()
					c = env.open()
					wantOffset(t, c, "g", 0, want, 0, "after a second reload")
				})
			})
		}
	}
}

// TestTxnCommitChecks: Kafka's checks of a TxnOffsetCommit
// (ClassicGroup.validateOffsetCommit with isTransactional, KIP-447).
func TestTxnCommitChecks(t *testing.T) {
	c := newTestCoordinator(t, newMemLog(1), 1000)
	check := func(what string, r txnReq, want *kerr.Error) {
		t.Helper()
		var wantCode int16
		if want != nil {
			wantCode = want.Code
		}
		if code := txnCommit(t, c, r); code != wantCode {
			t.Errorf("%s: %v, want %v", what, kerr.ErrorForCode(code), kerr.ErrorForCode(wantCode))
		}
	}
	check("no group id", txnReq{gen: -1, pid: 1}, kerr.InvalidGroupID)
	check("no producer id", txnReq{group: "g", gen: -1, pid: -1}, kerr.InvalidProducerIDMapping)
	check("generation of a group that does not exist", txnReq{group: "g", member: "m", gen: 1, pid: 1}, kerr.IllegalGeneration)
	if groups := c.List(nil); len(groups) != 0 {
		t.Errorf("a refused commit left groups %v", groups)
	}

	// A stable group of one static member.
	jr := joinReqFor("g", "", "range")
	inst := "i1"
	jr.InstanceID = &inst
	a := recv(t, c.Join(jr, "a", "/h"))
	sreq := kmsg.NewPtrSyncGroupRequest()
	sreq.Group, sreq.MemberID, sreq.Generation, sreq.InstanceID = "g", a.MemberID, a.Generation, &inst
	sreq.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: a.MemberID, MemberAssignment: []byte("A")}}
	if r := recv(t, c.Sync(sreq)); r.ErrorCode != 0 {
		t.Fatalf("sync: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	gen := a.Generation
	member := txnReq{group: "g", member: a.MemberID, instance: inst, gen: gen, pid: 1}
	check("the current member", member, nil)
	r := member
	r.gen = gen + 1
	check("a wrong generation", r, kerr.IllegalGeneration)
	r = member
	r.member, r.instance = "x", ""
	check("an unknown member", r, kerr.UnknownMemberID)
	r = member
	r.member = "x"
	check("another member id with the instance id", r, kerr.FencedInstanceID)
	r = member
	r.instance = "i9"
	check("an unknown instance id", r, kerr.UnknownMemberID)
	check("no membership, in a stable group", txnReq{group: "g", gen: -1, pid: 1}, nil)
	r = member
	r.version, r.gen, r.member = 2, gen+5, "x" // v2 has no membership fields: they are ignored
	check("v2", r, nil)
	r = member
	r.topic = "missing"
	check("an unknown topic", r, kerr.UnknownTopicOrPartition)

	// A rebalance in progress refuses plain commits, not transactional
	// ones: the group state is not enforced for those.
	bch := c.Join(joinReqFor("g", "", "range"), "b", "/h")
	jr.MemberID = a.MemberID
	a2 := recv(t, c.Join(jr, "a", "/h"))
	recv(t, bch)
	if a2.Generation != gen+1 {
		t.Fatalf("rejoin: generation %d, want %d", a2.Generation, gen+1)
	}
	if code := commit(t, c, commitReq("g", a.MemberID, a2.Generation, "t", 0, 1)); code != kerr.RebalanceInProgress.Code {
		t.Errorf("plain commit while completing the rebalance: %v", kerr.ErrorForCode(code))
	}
	r = member
	r.gen = a2.Generation
	check("while completing the rebalance", r, nil)

	big := txnCommitReq(simple("h", 1, 0, 0, 1))
	md := string(make([]byte, 5000))
	big.Topics[0].Partitions = append(big.Topics[0].Partitions, kmsg.TxnOffsetCommitRequestTopicPartition{Partition: 1, Offset: 1, Metadata: &md})
	resp := recv(t, c.TxnCommit(big))
	if p := resp.Topics[0].Partitions; p[0].ErrorCode != 0 || p[1].ErrorCode != kerr.OffsetMetadataTooLarge.Code {
		t.Errorf("metadata too large: %v, %v", kerr.ErrorForCode(p[0].ErrorCode), kerr.ErrorForCode(p[1].ErrorCode))
	}

	other := New(Config{Partitions: []int32{1}, Logger: quiet(), OffsetsRetentionCheck: -1}, newMemLog(2), allTopics{})
	defer other.Close()
	if PartitionFor("g", 2) != 1 {
		check := txnCommit(t, other, simple("g", 1, 0, 0, 1))
		if check != kerr.NotCoordinator.Code {
			t.Errorf("a group of a partition not served: %v", kerr.ErrorForCode(check))
		}
	}
	c.Close()
	check("closed", simple("g", 1, 0, 0, 1), kerr.CoordinatorNotAvailable)
}

// pendingOf is producer pid's pending offset of group's t/p, -1 if none.
func pendingOf(c *Coordinator, group string, pid int64, p int32) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.groups[group]; g != nil {
		if list := g.txn[pid][tp{"t", p}]; len(list) > 0 {
			return list[len(list)-1].o.offset
		}
	}
	return -1
}

// TestTxnFencedEpoch: the partition log's producer checks refuse a
// transaction's batch of an older epoch (INVALID_PRODUCER_EPOCH), which
// then leaves nothing pending; batches of one transaction are numbered
// so the log writes each (none is taken for a retried duplicate).
func TestTxnFencedEpoch(t *testing.T) {
	env := engineEnv(t)
	c := env.open()
	if code := txnCommit(t, c, simple("g", 7, 1, 0, 10)); code != 0 {
		t.Fatalf("txn commit: %v", kerr.ErrorForCode(code))
	}
	if code := txnCommit(t, c, simple("g", 7, 0, 0, 20)); code != kerr.InvalidProducerEpoch.Code {
		t.Errorf("txn commit of an older epoch: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(code))
	}
	if code := txnCommit(t, c, simple("g", 7, 0, 1, 20)); code != kerr.InvalidProducerEpoch.Code {
		t.Errorf("txn commit of an older epoch, another partition: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(code))
	}
	if got := pendingOf(c, "g", 7, 0); got != 10 {
		t.Errorf("pending offset %d after a fenced commit, want 10", got)
	}
	wantOffset(t, c, "g", 1, -1, 0, "the fenced commit's partition")
	// Two more batches of the same transaction: the same record count,
	// so only the sequence tells them from a retry.
	for _, off := range []int64{11, 12} {
		if code := txnCommit(t, c, simple("g", 7, 1, 0, off)); code != 0 {
			t.Fatalf("txn commit: %v", kerr.ErrorForCode(code))
		}
	}
	env.reopen()
	c = env.open()
	if got := pendingOf(c, "g", 7, 0); got != 12 {
		t.Errorf("pending offset after a restart %d, want 12 (the last batch written)", got)
	}
	wantOffset(t, c, "g", 0, -1, unstable, "pending after a restart")
	wantOffset(t, c, "g", 1, -1, 0, "the fenced commit's partition after a restart")
	if code := txnCommit(t, c, simple("g", 7, 0, 0, 30)); code != kerr.InvalidProducerEpoch.Code {
		t.Errorf("txn commit of an older epoch after a restart: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(code))
	}

	// The coordinator fences the producer: it aborts with a bumped epoch
	// (KIP-360/KIP-890), after which the old epoch is refused and the new
	// one starts its sequence at 0.
	env.complete(c, 7, 2, false)
	wantOffset(t, c, "g", 0, -1, 0, "aborted with a bumped epoch")
	if code := txnCommit(t, c, simple("g", 7, 1, 0, 40)); code != kerr.InvalidProducerEpoch.Code {
		t.Errorf("txn commit of the fenced epoch: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(code))
	}
	if got := pendingOf(c, "g", 7, 0); got != -1 {
		t.Errorf("the fenced commit left pending offset %d", got)
	}
	for _, off := range []int64{50, 51} {
		if code := txnCommit(t, c, simple("g", 7, 2, 0, off)); code != 0 {
			t.Fatalf("txn commit of the new epoch: %v", kerr.ErrorForCode(code))
		}
	}
	env.complete(c, 7, 2, true)
	wantOffset(t, c, "g", 0, 51, 0, "committed at the new epoch")
	env.reopen()
	c = env.open()
	wantOffset(t, c, "g", 0, 51, 0, "committed at the new epoch, after a restart")
}

// TestTxnSnapshots: snapshots of the offsets log neither lose a
// transaction's pending offsets nor make a replay disagree with memory
// on its outcome (a restated committed offset would look newer than the
// transaction's).
func TestTxnSnapshots(t *testing.T) {
	for _, commitIt := range []bool{true, false} {
		t.Run(map[bool]string{true: "commit", false: "abort"}[commitIt], func(t *testing.T) {
			forEachLog(t, func(t *testing.T, env *txnEnv) {
				env.snapshot = 5
				c := env.open()
				churn := func(n int) {
					t.Helper()
					for i := range n {
						if code := commit(t, c, commitReq("churn", "", -1, "t", int32(i%4), int64(i))); code != 0 {
							t.Fatalf("commit: %v", kerr.ErrorForCode(code))
						}
					}
				}
				commit(t, c, commitReq("g", "", -1, "t", 0, 5))
				churn(50)
				if code := txnCommit(t, c, simple("g", 100, 0, 0, 10)); code != 0 {
					t.Fatalf("txn commit: %v", kerr.ErrorForCode(code))
				}
				churn(200) // several snapshots while the transaction is open
				c = env.open()
				wantOffset(t, c, "g", 0, 5, unstable, "pending across snapshots and a reload")
				if env.marker == nil {
					return
				}
				churn(100)
				env.complete(c, 100, 0, commitIt)
				want := int64(5)
				if commitIt {
					want = 10
				}
				wantOffset(t, c, "g", 0, want, 0, "completed")
				churn(200)
				env.reopen()
				c = env.open()
				wantOffset(t, c, "g", 0, want, 0, "after snapshots and a reload")
				if ml, ok := env.log.(*memLog); ok {
					if n := ml.replayed(0); n > 100 {
						t.Errorf("replay reads %d records once the transaction ended", n)
					}
				}
			})
		})
	}
}

// TestTxnExpiry: offset retention neither expires a committed offset
// whose partition has a transaction's offset pending nor removes a group
// with pending offsets; once the transaction ends, it does.
func TestTxnExpiry(t *testing.T) {
	forEachLog(t, func(t *testing.T, env *txnEnv) {
		env.needMarkers()
		c := env.open()
		commit(t, c, commitReq("g", "", -1, "t", 0, 5))
		commit(t, c, commitReq("g", "", -1, "t", 1, 6))
		if code := txnCommit(t, c, simple("g", 100, 0, 0, 10)); code != 0 {
			t.Fatalf("txn commit: %v", kerr.ErrorForCode(code))
		}
		// A group with nothing but a pending transaction's offset.
		if code := txnCommit(t, c, simple("only-txn", 100, 0, 2, 20)); code != 0 {
			t.Fatalf("txn commit: %v", kerr.ErrorForCode(code))
		}
		later := time.Now().Add(8 * 24 * time.Hour) // past the default 7 days
		expire := func(want int, applied func() bool) {
			t.Helper()
			if n := c.Expire(later); n != want {
				t.Errorf("Expire removed %d offsets, want %d", n, want)
			}
			// The removals apply once durable, on the applier.
			for deadline := time.Now().Add(5 * time.Second); !applied() && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
		}
		expire(1, func() bool { o, _ := offsetOf(c, "g", 1); return o == -1 }) // t/1 only
		wantOffset(t, c, "g", 0, 5, unstable, "expiry while pending")
		wantOffset(t, c, "g", 1, -1, 0, "expired")
		if groups := c.List(nil); len(groups) != 2 {
			t.Errorf("groups after expiry: %v, want g and only-txn", groups)
		}
		env.complete(c, 100, 0, false)
		wantOffset(t, c, "g", 0, 5, 0, "aborted")
		expire(1, func() bool { return len(c.List(nil)) == 0 }) // t/0 now; only-txn has nothing left to expire
		if groups := c.List(nil); len(groups) != 0 {
			t.Errorf("groups after the abort and expiry: %v, want none", groups)
		}
		env.reopen()
		c = env.open()
		wantOffset(t, c, "g", 0, -1, 0, "expired, after a reload")
		if groups := c.List(nil); len(groups) != 0 {
			t.Errorf("groups after a reload: %v, want none", groups)
		}
	})
}

// TestTxnTombstone: deleting a partition's offset drops the pending
// transactional offsets of the partition too, so the commit marker does
// not bring it back, in memory or in a replay.
func TestTxnTombstone(t *testing.T) {
	forEachLog(t, func(t *testing.T, env *txnEnv) {
		env.needMarkers()
		c := env.open()
		commit(t, c, commitReq("g", "", -1, "t", 0, 5))
		if code := txnCommit(t, c, simple("g", 100, 0, 0, 10)); code != 0 {
			t.Fatalf("txn commit: %v", kerr.ErrorForCode(code))
		}
		if code := txnCommit(t, c, simple("g", 100, 0, 1, 11)); code != 0 {
			t.Fatalf("txn commit: %v", kerr.ErrorForCode(code))
		}
		del := kmsg.NewPtrOffsetDeleteRequest()
		del.Group = "g"
		del.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
		if r := recv(t, c.DeleteOffsets(del)); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("offset delete: %+v", r)
		}
		wantOffset(t, c, "g", 0, -1, 0, "deleted while pending")
		env.complete(c, 100, 0, true)
		wantOffset(t, c, "g", 0, -1, 0, "deleted, then the transaction committed")
		wantOffset(t, c, "g", 1, 11, 0, "the transaction's other partition")
		env.reopen()
		c = env.open()
		wantOffset(t, c, "g", 0, -1, 0, "after a reload")
		wantOffset(t, c, "g", 1, 11, 0, "the other partition after a reload")
	})
}

// TestTxnMixedCommits: Kafka's rule for a transaction's offset and a
// plain commit of the same partition: the record later in the log wins,
// whenever the marker comes, in memory and in a replay.
func TestTxnMixedCommits(t *testing.T) {
	forEachLog(t, func(t *testing.T, env *txnEnv) {
		env.needMarkers()
		c := env.open()
		commit(t, c, commitReq("g", "", -1, "t", 0, 5))
		if code := txnCommit(t, c, simple("g", 100, 0, 0, 10)); code != 0 {
			t.Fatalf("txn commit: %v", kerr.ErrorForCode(code))
		}
		commit(t, c, commitReq("g", "", -1, "t", 0, 7)) // after the transaction's
		if code := txnCommit(t, c, simple("g", 100, 0, 1, 30)); code != 0 {
			t.Fatalf("txn commit: %v", kerr.ErrorForCode(code))
		}
		wantOffset(t, c, "g", 0, 7, unstable, "plain commit while pending")
		env.complete(c, 100, 0, true)
		wantOffset(t, c, "g", 0, 7, 0, "the later plain commit")
		wantOffset(t, c, "g", 1, 30, 0, "the transaction's")
		env.reopen()
		c = env.open()
		wantOffset(t, c, "g", 0, 7, 0, "the later plain commit, after a reload")
		wantOffset(t, c, "g", 1, 30, 0, "the transaction's, after a reload")
	})
}

// AppendBatchVerified of a heldLog is durable when released too.
func (l *heldLog) AppendBatchVerified(p int32, raw []byte, _ producer.Guard, done func(int64, error)) {
	l.memLog.AppendBatch(p, raw, func(off int64, err error) {
		l.mu.Lock()
		l.held = append(l.held, func() { done(off, err) })
		l.mu.Unlock()
	})
}

// TestTxnCompleteLeavesLaterBatches: offsets the producer appended after
// its marker (its next transaction's) are not completed by the marker,
// in memory as in a replay.
func TestTxnCompleteLeavesLaterBatches(t *testing.T) {
	l := &heldLog{memLog: newMemLog(1)}
	c := newTestCoordinator(t, l, 1000)
	ch := c.TxnCommit(txnCommitReq(simple("g", 100, 0, 0, 10)))
	l.release()
	if r := recv(t, ch); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("txn commit: %+v", r)
	}
	l.add(0, markerBatch(100, 0, true))
	next := c.TxnCommit(txnCommitReq(simple("g", 100, 0, 1, 20))) // not durable yet
	recv(t, c.CompleteTxn(100, true))
	wantOffset(t, c, "g", 0, 10, 0, "completed")
	wantOffset(t, c, "g", 1, -1, unstable, "appended after the marker")
	l.release()
	if r := recv(t, next); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("txn commit: %+v", r)
	}
	wantOffset(t, c, "g", 1, -1, unstable, "durable after the marker")
	c.Close()
	c = newTestCoordinator(t, l, 1000)
	wantOffset(t, c, "g", 0, 10, 0, "completed, after a reload")
	wantOffset(t, c, "g", 1, -1, unstable, "the next transaction's, after a reload")
}

// TestTxnCommitVerified: KIP-890 part 1 for transactional offsets. The
// first commit of a transaction on the offsets partition is verified with
// the transaction coordinator (later ones are not: the transaction is
// ongoing there); a refusal is the answer and nothing is appended; and a
// transaction that ends between the verification and the append (its
// marker written) refuses the late batch, INVALID_TXN_STATE.
func TestTxnCommitVerified(t *testing.T) {
	env := engineEnv(t)
	c := env.open()
	calls := 0
	verify := func(code int16) func(int32) int16 {
		return func(p int32) int16 {
			calls++
			if p != PartitionFor("g", 1) {
				t.Errorf("verified offsets partition %d", p)
			}
			return code
		}
	}
	send := func(r txnReq, v func(int32) int16) int16 {
		t.Helper()
		return recv(t, c.TxnCommitVerified(txnCommitReq(r), v)).Topics[0].Partitions[0].ErrorCode
	}
	if code := send(simple("g", 7, 0, 0, 10), verify(kerr.InvalidTxnState.Code)); code != kerr.InvalidTxnState.Code {
		t.Errorf("refused verification: %v", kerr.ErrorForCode(code))
	}
	if code := send(simple("g", 7, 0, 0, 10), verify(kerr.NetworkException.Code)); code != kerr.CoordinatorLoadInProgress.Code {
		t.Errorf("verification failing with NETWORK_EXCEPTION: %v, want COORDINATOR_LOAD_IN_PROGRESS", kerr.ErrorForCode(code))
	}
	wantOffset(t, c, "g", 0, -1, 0, "refused verifications")
	if got := pendingOf(c, "g", 7, 0); got != -1 {
		t.Errorf("a refused verification left pending offset %d", got)
	}
	calls = 0
	if code := send(simple("g", 7, 0, 0, 10), verify(0)); code != 0 {
		t.Fatalf("verified commit: %v", kerr.ErrorForCode(code))
	}
	if code := send(simple("g", 7, 0, 1, 11), verify(0)); code != 0 {
		t.Fatalf("second commit of the transaction: %v", kerr.ErrorForCode(code))
	}
	if calls != 1 {
		t.Errorf("%d verifications, want 1 (the transaction is ongoing on the partition after the first)", calls)
	}
	env.complete(c, 7, 0, true)
	wantOffset(t, c, "g", 1, 11, 0, "verified and committed")

	// The transaction ends while the next commit is being verified.
	late := func(int32) int16 {
		env.writeMarker(7, 0, false)
		return 0
	}
	if code := send(simple("g", 7, 0, 0, 99), late); code != kerr.InvalidTxnState.Code {
		t.Errorf("commit whose transaction ended during its verification: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(code))
	}
	if got := pendingOf(c, "g", 7, 0); got != -1 {
		t.Errorf("the late commit left pending offset %d", got)
	}
	env.reopen()
	c = env.open()
	wantOffset(t, c, "g", 0, 10, 0, "after a restart")
	wantOffset(t, c, "g", 1, 11, 0, "after a restart")
}
