package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/audit"
	"github.com/vigilhq/vigil/internal/config"
)

// listObjects returns the segment objects in the store directory.
func listObjects(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".seg") {
			out[p] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// newObjects returns the objects written since before.
func newObjects(t *testing.T, dir string, before map[string]bool) []string {
	t.Helper()
	var out []string
	for p := range listObjects(t, dir) {
		if !before[p] {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no new segment object")
	}
	return out
}

// gone reports whether none of the objects exist any more.
func gone(objs []string) bool {
	for _, p := range objs {
		if _, err := os.Stat(p); err == nil {
			return false
		}
	}
	return true
}

// unaudited drops from objs the objects the audit trail's index names:
// its events (of this test's topic creations and config changes) may
// share an object with a test topic's records, and the held audit topic
// keeps such an object alive after the test topic's part of it expired.
func unaudited(t *testing.T, ts *testServer, dir string, objs []string) []string {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	audited := map[string]bool{}
	for p := range int32(audit.Partitions) {
		segs, err := ts.srv.meta.Segments(ctx, audit.Topic, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, sg := range segs {
			audited[sg.Object] = true
		}
	}
	var out []string
	for _, o := range objs {
		rel, err := filepath.Rel(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		rel = filepath.ToSlash(rel)
		if !audited[rel] && !audited[strings.TrimPrefix(rel, "segments/")] {
			out = append(out, o)
		}
	}
	return out
}

// produceUploaded produces n records with timestamp ts to partition 0 of
// topic and waits until they are in a segment object of their own.
func produceUploaded(t *testing.T, ts *testServer, cl *kgo.Client, topic string, n int, at time.Time) {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	for i := range n {
		r := &kgo.Record{Topic: topic, Value: []byte(strings.Repeat("r", 100) + string(rune('a'+i%26))), Timestamp: at}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
	waitFor(t, "upload", func() bool { return ts.srv.UploadBacklog() == 0 })
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startOffset(t *testing.T, adm *kadm.Client, topic string) int64 {
	t.Helper()
	so, err := adm.ListStartOffsets(testCtx(t, 10*time.Second), topic)
	if err != nil {
		t.Fatalf("list start offsets of %s: %v", topic, err)
	}
	o, ok := so.Lookup(topic, 0)
	if !ok || o.Err != nil {
		t.Fatalf("start offset of %s/0: %+v", topic, o)
	}
	return o.Offset
}

func (c *rawConn) fetchCode(topic string, offset int64) int16 {
	c.t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID, req.MaxBytes, req.SessionEpoch = -1, 1<<20, -1
	req.Topics = []kmsg.FetchRequestTopic{{Topic: topic, Partitions: []kmsg.FetchRequestTopicPartition{
		{Partition: 0, FetchOffset: offset, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1, LogStartOffset: -1}}}}
	resp := c.roundTrip(req, -1).(*kmsg.FetchResponse)
	return resp.Topics[0].Partitions[0].ErrorCode
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, dir, func(c *config.Broker) {
		c.RetentionCheckInterval = 50 * time.Millisecond
		c.ObjectDeleteDelay = 0
		c.UploadInterval = 50 * time.Millisecond
	})
	ctx := testCtx(t, 2*time.Minute)
	adm := ts.admin(t)
	hour, one, yes := "3600000", "1", "true"
	// ret-time gets its retention.ms once its old records' objects are
	// known: with it from the start, a retention pass may delete them
	// before the test has seen them.
	createTopics(t, ctx, adm, 1, nil, "ret-time")
	createTopics(t, ctx, adm, 1, map[string]*string{"retention.bytes": &one}, "ret-bytes")
	createTopics(t, ctx, adm, 1, map[string]*string{"retention.ms": &hour, "vigil.legal.hold": &yes}, "ret-held")
	createTopics(t, ctx, adm, 1, nil, "ret-deleted")
	cl := ts.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	objects := filepath.Join(dir, "objects")
	old, now := time.Now().Add(-2*time.Hour), time.Now()
	c := dialRaw(t, ts.addr)

	t.Run("retention.ms", func(t *testing.T) {
		start := listObjects(t, objects)
		produceUploaded(t, ts, cl, "ret-time", 20, old)
		oldObjs := newObjects(t, objects, start) // uploads may split the 20 records
		res, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &hour}}, "ret-time")
		if err != nil || res[0].Err != nil {
			t.Fatalf("set retention.ms: %v %+v", err, res)
		}
		produceUploaded(t, ts, cl, "ret-time", 20, now)
		waitFor(t, "old segment to expire", func() bool { return startOffset(t, adm, "ret-time") == 20 })
		waitFor(t, "its objects to be deleted", func() bool { return gone(unaudited(t, ts, objects, oldObjs)) })
		wantCode(t, "fetch below the new log start", c.fetchCode("ret-time", 0), kerr.OffsetOutOfRange)
		wantCode(t, "fetch at the new log start", c.fetchCode("ret-time", 20), nil)
		time.Sleep(300 * time.Millisecond) // several passes: the fresh records stay
		if got := startOffset(t, adm, "ret-time"); got != 20 {
			t.Fatalf("log start %d after more passes, want 20: fresh records were deleted", got)
		}
	})

	t.Run("retention.bytes", func(t *testing.T) {
		for range 3 {
			produceUploaded(t, ts, cl, "ret-bytes", 10, now)
		}
		// retention.bytes=1 keeps only the newest segment (an upload tick may
		// have split the last 10 records, so it starts at 20 or later).
		waitFor(t, "all but the newest segment to go", func() bool { return startOffset(t, adm, "ret-bytes") >= 20 })
		time.Sleep(200 * time.Millisecond)
		if got := startOffset(t, adm, "ret-bytes"); got >= 30 {
			t.Fatalf("log start %d: the newest segment was deleted too", got)
		}
	})

	t.Run("below log start", func(t *testing.T) {
		start := listObjects(t, objects)
		produceUploaded(t, ts, cl, "ret-deleted", 10, now)
		firstObjs := newObjects(t, objects, start)
		produceUploaded(t, ts, cl, "ret-deleted", 10, now)
		dr, err := adm.DeleteRecords(ctx, kadm.Offsets{"ret-deleted": {0: {Topic: "ret-deleted", Partition: 0, At: 10}}})
		if err != nil || dr.Error() != nil {
			t.Fatalf("delete records: %v / %v", err, dr.Error())
		}
		waitFor(t, "the objects wholly below the log start to be deleted", func() bool { return gone(unaudited(t, ts, objects, firstObjs)) })
	})

	t.Run("legal hold", func(t *testing.T) {
		produceUploaded(t, ts, cl, "ret-held", 10, old)
		produceUploaded(t, ts, cl, "ret-held", 10, now)
		time.Sleep(300 * time.Millisecond)
		if got := startOffset(t, adm, "ret-held"); got != 0 {
			t.Fatalf("retention moved the log start of a held topic to %d", got)
		}
		dr, err := adm.DeleteRecords(ctx, kadm.Offsets{"ret-held": {0: {Topic: "ret-held", Partition: 0, At: 5}}})
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := dr.Lookup("ret-held", 0); r.Err != kerr.PolicyViolation {
			t.Fatalf("DeleteRecords on a held topic: %v, want POLICY_VIOLATION", r.Err)
		}
		dt, err := adm.DeleteTopics(ctx, "ret-held")
		if err != nil {
			t.Fatal(err)
		}
		if r := dt["ret-held"]; r.Err != kerr.PolicyViolation || !strings.Contains(r.ErrMessage, "legal hold") {
			t.Fatalf("DeleteTopics on a held topic: %v (%q), want POLICY_VIOLATION naming the hold", r.Err, r.ErrMessage)
		}
		if got := startOffset(t, adm, "ret-held"); got != 0 {
			t.Fatalf("log start of a held topic moved to %d", got)
		}
		// Released, retention catches up.
		no := "false"
		res, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "vigil.legal.hold", Value: &no}}, "ret-held")
		if err != nil || res[0].Err != nil {
			t.Fatalf("release hold: %v %+v", err, res)
		}
		waitFor(t, "retention after release", func() bool { return startOffset(t, adm, "ret-held") == 10 })
	})
}
