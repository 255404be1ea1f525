package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestRecorderTake: a transaction's records count once it commits, and
// only its errors once it is aborted.
func TestRecorderTake(t *testing.T) {
	total, open := &recorder{}, &recorder{}
	at := time.Now()
	open.ok(time.Millisecond, 100, at)
	open.ok(2*time.Millisecond, 100, at)
	total.take(open, true)
	open.ok(time.Millisecond, 100, at.Add(time.Second))
	open.fail(errors.New("refused"))
	total.take(open, false)
	if len(total.samples) != 2 || total.bytes != 200 || total.errs != 1 || total.firstEr == nil || !total.last.Equal(at) {
		t.Errorf("after a commit and an abort: %d samples, %d bytes, %d errors (%v), last %v; want 2, 200, 1, the commit's", len(total.samples), total.bytes, total.errs, total.firstEr, total.last)
	}
	if len(open.samples) != 0 || open.bytes != 0 || open.errs != 0 || open.firstEr != nil {
		t.Errorf("the transaction's recorder was not emptied: %+v", open)
	}
}

// TestRunTxnTiny runs the transaction comparison briefly, against the
// in-process broker and against a broker given as --brokers, and checks
// that it runs end to end: both sides counted records without errors, the
// transactions committed, and every figure and the verdict are printed
// (not what the ratio is). Options it cannot honour are refused.
func TestRunTxnTiny(t *testing.T) {
	base := TxnOptions{Duration: time.Second, TxnDuration: 100 * time.Millisecond, RecordBytes: 512, Partitions: 2}
	for name, mod := range map[string]func(*TxnOptions){
		"negative duration":            func(o *TxnOptions) { o.Duration = -time.Second },
		"transactions longer than run": func(o *TxnOptions) { o.TxnDuration = 2 * time.Second },
		"negative rounds":              func(o *TxnOptions) { o.Rounds = -1 },
		"no partitions":                func(o *TxnOptions) { o.Partitions = -1 },
		"transaction version 3":        func(o *TxnOptions) { o.TxnVersion = 3 },
	} {
		o := base
		mod(&o)
		if _, err := RunTxn(context.Background(), o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if testing.Short() {
		t.Skip("runs a broker for several seconds")
	}
	for _, c := range []struct {
		name       string
		external   bool
		rounds     int
		txnVersion int
	}{
		{"in-process", false, 2, 0},
		// Against a running broker the comparison waits 5 s before each
		// run (it cannot see the upload backlog): one round only.
		{"brokers", true, 1, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var out bytes.Buffer
			o := base
			o.Duration = 600 * time.Millisecond
			o.Rounds, o.TxnVersion, o.Out = c.rounds, c.txnVersion, &out
			if c.external {
				bb, err := useBroker(ctx, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
				if err != nil {
					t.Fatal(err)
				}
				defer bb.stop()
				o.Brokers = bb.seeds
			}
			res, err := RunTxn(ctx, o)
			t.Logf("output:\n%s", out.String())
			if err != nil {
				t.Fatalf("RunTxn: %v", err)
			}
			if len(res.Rounds) != c.rounds {
				t.Fatalf("%d rounds, want %d", len(res.Rounds), c.rounds)
			}
			commits := 0
			for i, rd := range res.Rounds {
				if rd.TxnFirst != (i%2 == 1) {
					t.Errorf("round %d: transactional first %v, want the first of each pair to alternate, idempotent first", i+1, rd.TxnFirst)
				}
				for side, r := range map[string]MaxRateRun{"idempotent": rd.Idempotent, "transactional": rd.Txn.MaxRateRun} {
					if r.Acked == 0 || r.Errors != 0 || r.MBps <= 0 || r.Elapsed <= 0 {
						t.Errorf("round %d, %s: %d records counted, %d errors (first: %v), %.1f MB/s over %s", i+1, side, r.Acked, r.Errors, r.FirstError, r.MBps, r.Elapsed)
					}
				}
				tx := rd.Txn
				if tx.Commits == 0 || tx.FailedCommits != 0 || tx.CommitLatency.N != tx.Commits || tx.FlushLatency.N != tx.Commits {
					t.Errorf("round %d: %d commits (%d failed: %v), %d commit and %d flush samples", i+1, tx.Commits, tx.FailedCommits, tx.FirstCommitError, tx.CommitLatency.N, tx.FlushLatency.N)
				}
				commits += tx.Commits
			}
			if res.Commits != commits || res.CommitLatency.N != commits || res.CommitLatency.P50 <= 0 {
				t.Errorf("%d commits over the runs, commit latency %+v; the rounds have %d", res.Commits, res.CommitLatency, commits)
			}
			if res.Ratio <= 0 || res.IdempotentMedianMBps <= 0 || res.TxnMedianMBps <= 0 {
				t.Errorf("medians or ratio missing: %+v", res)
			}
			labels := []string{"transactions:  version", "round 1", "ratio transactional / idempotent", "committed, commit p50", "medians of", "ratio of medians:",
				"CPU per MB:", "ms/MB", "commit latency:", "flush before it:", "transactional >= 0.80 x idempotent:", "target >= 0.80"}
			if c.external {
				labels = append(labels, "the client's only", "--txn-version 1")
			} else {
				labels = append(labels, "the broker's and the client's together", "version 2 (the brokers finalize it")
			}
			for _, label := range labels {
				if !strings.Contains(out.String(), label) {
					t.Errorf("output lacks %q", label)
				}
			}
			if !strings.Contains(out.String(), "PASS: ratio") && !strings.Contains(out.String(), "FAIL: ratio") {
				t.Error("output has no PASS/FAIL verdict")
			}
		})
	}
}
