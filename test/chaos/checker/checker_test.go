package checker

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func send(v string, p int32, o int64) Op {
	return Op{Proc: "p1", F: Send, Type: OK, Value: v, Partition: p, Offset: o}
}

func final(v string, p int32, o int64) Op {
	return Op{Proc: "final", F: Final, Value: v, Partition: p, Offset: o}
}

func poll(proc string, p int32, offs []int64, vals ...string) Op {
	return Op{Proc: proc, F: Poll, Group: "g", Partition: p, Offsets: offs, Values: vals}
}

// healthy is a history with nothing wrong: three records acknowledged,
// one send indeterminate but written, polled in order, committed, read.
func healthy() []Op {
	return []Op{
		send("a", 0, 0), send("b", 0, 1), send("c", 1, 0),
		{Proc: "p1", F: Send, Type: Info, Value: "d", Partition: -1, Offset: -1, Err: "timed out"},
		{Proc: "c1", F: Assigned, Group: "g", Parts: []int32{0, 1}},
		poll("c1", 0, []int64{0, 1}, "a", "b"),
		poll("c1", 1, []int64{0}, "c"),
		poll("c1", 1, []int64{1}, "d"),
		{Proc: "final", F: Committed, Group: "g", Partition: 0, Offset: 2},
		{Proc: "final", F: Committed, Group: "g", Partition: 1, Offset: 2},
		final("a", 0, 0), final("b", 0, 1), final("c", 1, 0), final("d", 1, 1),
	}
}

func TestHealthyHistoryIsValid(t *testing.T) {
	r := Check(healthy(), true)
	if !r.Valid() {
		t.Fatalf("healthy history judged invalid: %+v", r)
	}
	if r.Acked != 3 || r.Indeterminate != 1 || r.Recovered != 1 || r.FinalRecords != 4 || r.Polled != 4 {
		t.Errorf("counts: %+v", r)
	}
	if Check(healthy(), false).Valid() {
		t.Errorf("a history whose final read did not complete was judged valid")
	}
}

// Each anomaly the checker exists for, planted in the healthy history.
func TestAnomalies(t *testing.T) {
	cases := []struct {
		name  string
		edit  func([]Op) []Op
		count func(*Result) int
		kind  string
	}{
		{"lost: acknowledged, absent from the final read", func(h []Op) []Op {
			return append(h[:len(h)-4:len(h)-4], final("b", 0, 1), final("c", 1, 0), final("d", 1, 1))
		}, func(r *Result) int { return r.Lost }, "lost"},
		{"duplicated: one value at two offsets", func(h []Op) []Op {
			return append(h, final("a", 0, 2))
		}, func(r *Result) int { return r.Duplicated }, "duplicated"},
		{"unexpected: read, never sent", func(h []Op) []Op {
			return append(h, final("zz", 1, 2))
		}, func(r *Result) int { return r.Unexpected }, "unexpected"},
		{"inconsistent: two reads disagree on an offset", func(h []Op) []Op {
			return append(h, poll("c2", 1, []int64{0}, "d"))
		}, func(r *Result) int { return r.Inconsistent }, "inconsistent"},
		{"inconsistent: acknowledged at another offset", func(h []Op) []Op {
			h[0].Offset = 7
			return h
		}, func(r *Result) int { return r.Inconsistent }, "inconsistent"},
		{"non-monotonic: a consumer goes back within an assignment", func(h []Op) []Op {
			return append(h, poll("c1", 0, []int64{0}, "a"))
		}, func(r *Result) int { return r.NonMonotonic }, "non-monotonic"},
		{"poll skip: a consumer jumps over a record", func(h []Op) []Op {
			h[5] = poll("c1", 0, []int64{0}, "a")
			return append(h, poll("c1", 0, []int64{2}, "e"), send("e", 0, 2), final("e", 0, 2))
		}, func(r *Result) int { return r.PollSkips }, "poll-skip"},
		{"group skip: committed past records no member received", func(h []Op) []Op {
			h[7] = Op{Proc: "c1", F: Revoked, Group: "g", Parts: []int32{1}} // d never polled
			return h
		}, func(r *Result) int { return r.GroupSkips }, "group-skip"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Check(tc.edit(healthy()), true)
			if tc.count(r) == 0 || r.Valid() {
				t.Fatalf("not reported: %+v", r)
			}
			found := false
			for _, a := range r.Anomalies {
				found = found || a.Kind == tc.kind
			}
			if !found {
				t.Errorf("no %s anomaly listed: %+v", tc.kind, r.Anomalies)
			}
		})
	}
}

// A new assignment resets a consumer's order: starting over from the
// committed offset is neither non-monotonic nor a skip.
func TestReassignmentResetsOrder(t *testing.T) {
	h := healthy()
	h = append(h[:8:8], append([]Op{
		{Proc: "c1", F: Revoked, Group: "g", Parts: []int32{0}},
		{Proc: "c1", F: Assigned, Group: "g", Parts: []int32{0}},
		poll("c1", 0, []int64{1}, "b"),
	}, h[8:]...)...)
	if r := Check(h, true); !r.Valid() {
		t.Fatalf("re-reading after a reassignment judged invalid: %+v", r.Anomalies)
	}
}

func TestReadRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, op := range healthy() {
		enc.Encode(op)
	}
	ops, err := Read(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	if r := Check(ops, true); !r.Valid() || r.Acked != 3 {
		t.Fatalf("round trip: %+v", r)
	}
}

// Transactions: one committed (both values read), one aborted (nothing
// read); then an aborted value read, and a committed one half lost.
func TestTransactions(t *testing.T) {
	txn := func(v, id, typ string, p int32, o int64) Op {
		return Op{Proc: "t1", F: Send, Type: typ, Value: v, Txn: id, Partition: p, Offset: o}
	}
	base := func() []Op {
		return append(healthy(),
			txn("x1", "t1#1", OK, 2, 0), txn("x2", "t1#1", OK, 3, 0),
			txn("y1", "t1#2", Aborted, 2, 1), txn("y2", "t1#2", Aborted, 3, 1),
			final("x1", 2, 0), final("x2", 3, 0))
	}
	r := Check(base(), true)
	if !r.Valid() || r.Txns != 2 || r.TxnAborted != 1 || r.TxnFailed != 0 || r.Acked != 5 {
		t.Fatalf("healthy transactions: %+v", r)
	}
	// Aborted because a produce failed, and an EndTxn that failed: valid,
	// but counted as failed (the aborted on purpose above is not).
	forced := txn("z1", "t1#3", Aborted, -1, -1)
	forced.Err = "INVALID_TXN_STATE"
	r = Check(append(base(), forced, txn("w1", "t1#4", Info, -1, -1)), true)
	if !r.Valid() || r.Txns != 4 || r.TxnAborted != 2 || r.TxnFailed != 2 {
		t.Errorf("failed transactions not counted: %+v", r)
	}
	r = Check(append(base(), poll("c1", 2, []int64{1}, "y1")), true)
	if r.AbortedReads != 1 || r.Valid() {
		t.Errorf("aborted read not reported: %+v", r)
	}
	h := base()
	r = Check(h[:len(h)-1], true) // x2 missing from the final read
	if r.TornTxns != 1 || r.Lost != 1 {
		t.Errorf("torn transaction not reported: %+v", r)
	}
}
