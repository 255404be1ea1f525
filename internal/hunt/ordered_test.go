package hunt

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/detect"
	"github.com/vigilhq/vigil/internal/server/servertest"
)

const bruteForceRules = `title: Failed logon
id: 11111111-0000-0000-0000-000000000001
name: failed_logon
level: low
logsource: {product: windows, service: security}
detection:
  sel: {EventID: 4625}
  condition: sel
---
title: Brute force
id: 22222222-0000-0000-0000-000000000001
level: high
correlation:
  type: event_count
  rules: [failed_logon]
  group-by: [TargetUserName]
  timespan: 5s
  condition: {gte: 3}
`

// writeBruteForce writes bruteForceRules into a directory of rules.
func writeBruteForce(t *testing.T) string {
	t.Helper()
	rules := t.TempDir()
	if err := os.WriteFile(filepath.Join(rules, "brute.yml"), []byte(bruteForceRules), 0o644); err != nil {
		t.Fatal(err)
	}
	return rules
}

// TestHuntOrdered runs a correlation whose groups span partitions over
// three partitions written one after the other, with a queue of 8 records
// so partitions are paused and resumed throughout: an Ordered hunt's
// findings are, in the same order, those of detect's evaluator fed the
// records sorted by timestamp, whatever order the fetches brought them in.
func TestHuntOrdered(t *testing.T) {
	rules := writeBruteForce(t)
	addr := startBroker(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopics(ctx, 3, 1, nil, "auth"); err != nil {
		t.Fatal(err)
	}
	// Record j of partition p is at offset j, time t0 + (3j+p) x 100ms: in
	// time the partitions take turns. Each user fails 9 times in a row, 3
	// times on each partition, so which record is a user's third, the one
	// that completes the group, depends on the order the partitions are
	// read in (in time order it is on partition 2; read partition by
	// partition, on the partition read first).
	const perPart = 300
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	var all []*kgo.Record
	for p := range int32(3) {
		var recs []*kgo.Record
		for j := range perPart {
			n := 3*j + int(p)
			r := &kgo.Record{Topic: "auth", Partition: p, Offset: int64(j), Timestamp: t0.Add(time.Duration(n) * 100 * time.Millisecond),
				Value: fmt.Appendf(nil, `{"Channel":"Security","EventID":4625,"TargetUserName":"u%d","n":%d}`, n/9, n)}
			recs = append(recs, r)
		}
		// One partition at a time, so each is a stretch of the log and
		// fetches tend to bring one partition's records before another's.
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		all = append(all, recs...)
	}

	// The oracle: detect's evaluator over the records in time order.
	eng, _, err := detect.LoadEngine([]string{rules}, "")
	if err != nil {
		t.Fatal(err)
	}
	ev := detect.Evaluator{Engine: eng, Matcher: eng.NewMatcher(), Corr: eng.NewCorrelator(0), Suppress: detect.NewSuppressor(eng), Now: time.Now(), Log: servertest.Logger(t)}
	slices.SortFunc(all, func(a, b *kgo.Record) int { return a.Timestamp.Compare(b.Timestamp) })
	var want []string
	for _, r := range all {
		out, ok := ev.Record(r, nil)
		if !ok {
			t.Fatalf("not an event: %s", r.Value)
		}
		for _, f := range out {
			want = append(want, string(f.Value))
		}
	}
	for _, f := range ev.Flush(nil) {
		want = append(want, string(f.Value))
	}
	if len(want) < 50 {
		t.Fatalf("the oracle found only %d findings", len(want))
	}

	var out bytes.Buffer
	st, err := Run(ctx, Config{Brokers: []string{addr}, Topics: []string{"auth"}, From: t0.Add(-time.Second), To: t0.Add(time.Hour),
		RuleDirs: []string{rules}, Output: &out, Ordered: true, OrderedQueue: 8}, servertest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 3*perPart {
		t.Errorf("evaluated %d records, want %d", st.Records, 3*perPart)
	}
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(got) != len(want) {
		t.Errorf("%d findings, the oracle %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("finding %d differs from the oracle's:\n hunt   %s\n oracle %s", i, got[i], want[i])
		}
	}
}
