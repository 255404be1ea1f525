// Package checker holds the chaos campaign's history format and the
// checker that judges a history, after Jepsen's queue workload and its
// Kafka checker.
//
// # History
//
// A run's history is a sequence of operations (Op), one JSON object per
// line, in the order the harness observed them:
//
//   - send: one producer's record, written when its produce completed:
//     type ok (acknowledged, at a partition and offset), or info (the
//     client gave up: the record may or may not have been written; Kafka
//     has no definite failure for a produce that timed out).
//   - poll: the records one consumer got from one partition in one poll,
//     in order (offsets and values side by side).
//   - assigned, revoked: a consumer's partitions changed; tracking of
//     poll order restarts for them.
//   - final: the final read, after every fault healed: each partition read
//     from its log start to the high watermark by a fresh client.
//   - committed: a consumer group's committed offset at the end.
//   - fault, heal: what the nemesis did, with how it was asserted.
//
// # What is checked
//
// Values are unique, so a value's identity is its text. Against the
// history the checker reports:
//
//   - lost: acknowledged, but absent from the final read;
//   - duplicated: one value at two or more offsets (in any reads);
//   - unexpected: a value read that no producer ever sent;
//   - inconsistent: two reads that disagree on the value at an offset,
//     or an acknowledgement whose offset is not where the value is read;
//   - non-monotonic: one consumer, within one assignment of a partition,
//     reading an offset at or below one it already read (and the final
//     read not strictly increasing);
//   - poll skip: one consumer, within one assignment, reading offset b
//     right after a < b-1 while the log holds a record between them;
//   - group skip: a record below its group's final committed offset that
//     no member of the group ever received (a commit that jumped over
//     records);
//   - aborted read: a value of an aborted transaction read by anyone (every
//     reader is read_committed);
//   - torn transaction: a transaction of which the final read holds some
//     values but not all.
//
// A transactional producer's values are sends too, named with their
// transaction (Op.Txn) and typed by its outcome: ok (committed), aborted,
// or info (EndTxn failed: committed or aborted, but all or nothing).
// Acknowledged writes (and committed transactions) are checked against
// the final read only: a consumer that never caught up proves nothing
// lost.
package checker

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
)

// Op is one operation of a history.
type Op struct {
	T         int64    `json:"t"`            // ns since the run started (completion)
	T0        int64    `json:"t0,omitempty"` // send: ns since start when it was invoked
	Proc      string   `json:"p"`            // producer, consumer, "final", "nemesis"
	F         string   `json:"f"`            // send, poll, assigned, revoked, final, committed, fault, heal
	Type      string   `json:"type,omitempty"`
	Value     string   `json:"v,omitempty"`
	Partition int32    `json:"pt"`
	Offset    int64    `json:"o"`
	Offsets   []int64  `json:"os,omitempty"`
	Values    []string `json:"vs,omitempty"`
	Parts     []int32  `json:"pts,omitempty"` // assigned, revoked
	Group     string   `json:"g,omitempty"`
	Txn       string   `json:"txn,omitempty"` // send: the value's transaction
	Err       string   `json:"err,omitempty"`
	Detail    string   `json:"d,omitempty"`
}

// Op names and types.
const (
	Send      = "send"
	Poll      = "poll"
	Assigned  = "assigned"
	Revoked   = "revoked"
	Final     = "final"
	Committed = "committed"
	Fault     = "fault"
	Heal      = "heal"

	OK      = "ok"
	Info    = "info"
	Aborted = "aborted" // send: its transaction was aborted
)

// Anomaly is one finding, with where it was seen.
type Anomaly struct {
	Kind   string `json:"kind"`
	Value  string `json:"value,omitempty"`
	Detail string `json:"detail"`
}

// Result is what the checker found in one history.
type Result struct {
	Sent       int `json:"sent"`         // values producers tried to send
	Acked      int `json:"acked"`        // acknowledged (or committed in a transaction)
	Txns       int `json:"txns"`         // transactions ended (committed, aborted or unknown)
	TxnAborted int `json:"txns_aborted"` // transactions aborted
	// TxnFailed counts the transactions the workload did not end as it
	// meant to: aborted because a produce failed (the op's Err), or whose
	// EndTxn failed (info). Not an anomaly (faults fail transactions),
	// but a share well above the faults' is a broker refusing what it
	// should take.
	TxnFailed     int `json:"txns_failed"`
	Indeterminate int `json:"indeterminate"` // not acknowledged (may or may not be written)
	Recovered     int `json:"recovered"`     // indeterminate, yet in the final read
	Polled        int `json:"polled"`        // records consumers received (with repeats)
	FinalRecords  int `json:"final_records"` // records in the final read
	Faults        int `json:"faults"`

	Lost          int  `json:"lost"`
	Duplicated    int  `json:"duplicated"`
	Unexpected    int  `json:"unexpected"`
	Inconsistent  int  `json:"inconsistent"`
	NonMonotonic  int  `json:"non_monotonic"`
	PollSkips     int  `json:"poll_skips"`
	GroupSkips    int  `json:"group_skips"`
	AbortedReads  int  `json:"aborted_reads"`
	TornTxns      int  `json:"torn_txns"`
	FinalComplete bool `json:"final_complete"` // the final read reached every partition's high watermark

	// Anomalies holds up to MaxExamples findings of each kind.
	Anomalies []Anomaly `json:"anomalies,omitempty"`
}

// MaxExamples bounds the findings of one kind a Result lists.
const MaxExamples = 20

// Valid reports whether the history shows no anomaly.
func (r *Result) Valid() bool {
	return r.FinalComplete && r.Lost == 0 && r.Duplicated == 0 && r.Unexpected == 0 && r.Inconsistent == 0 &&
		r.NonMonotonic == 0 && r.PollSkips == 0 && r.GroupSkips == 0 && r.AbortedReads == 0 && r.TornTxns == 0
}

func (r *Result) add(kind, value, detail string, count *int) {
	*count++
	n := 0
	for _, a := range r.Anomalies {
		if a.Kind == kind {
			n++
		}
	}
	if n < MaxExamples {
		r.Anomalies = append(r.Anomalies, Anomaly{Kind: kind, Value: value, Detail: detail})
	}
}

type loc struct {
	p int32
	o int64
}

// Read decodes a history.
func Read(r io.Reader) ([]Op, error) {
	var ops []Op
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var op Op
		if err := json.Unmarshal(sc.Bytes(), &op); err != nil {
			return nil, fmt.Errorf("history line %d: %w", len(ops)+1, err)
		}
		ops = append(ops, op)
	}
	return ops, sc.Err()
}

// Check judges a history. finalComplete says whether the final read
// reached every partition's high watermark.
func Check(ops []Op, finalComplete bool) *Result {
	r := &Result{FinalComplete: finalComplete}
	sent := map[string]Op{}        // value -> its send (ok or info)
	at := map[loc]string{}         // every read: offset -> value
	where := map[string]loc{}      // value -> first offset read at
	final := map[string]loc{}      // final read: value -> offset
	finalAt := map[int32][]int64{} // final read offsets per partition
	dupReported := map[string]bool{}
	type track struct{ last int64 }
	tracks := map[string]map[int32]*track{} // consumer -> partition -> last offset this assignment
	groupOf := map[string]string{}          // consumer -> group
	received := map[string]map[loc]bool{}   // group -> offsets delivered
	committed := map[string]map[int32]int64{}

	read := func(proc string, p int32, o int64, v string) {
		l := loc{p, o}
		if prev, ok := at[l]; ok && prev != v {
			r.add("inconsistent", v, fmt.Sprintf("partition %d offset %d read as %q and as %q (%s)", p, o, prev, v, proc), &r.Inconsistent)
		} else if !ok {
			at[l] = v
		}
		if w, ok := where[v]; ok && w != l && !dupReported[v] {
			dupReported[v] = true
			r.add("duplicated", v, fmt.Sprintf("at %d/%d and %d/%d (%s)", w.p, w.o, p, o, proc), &r.Duplicated)
		} else if !ok {
			where[v] = l
		}
	}

	for _, op := range ops {
		switch op.F {
		case Send:
			r.Sent++
			sent[op.Value] = op
			switch op.Type {
			case OK:
				r.Acked++
			case Info:
				r.Indeterminate++
			}
		case Fault:
			r.Faults++
		case Assigned, Revoked, Poll:
			if op.Group != "" {
				groupOf[op.Proc] = op.Group
			}
		case Final:
			read("final", op.Partition, op.Offset, op.Value)
			if _, ok := final[op.Value]; !ok {
				final[op.Value] = loc{op.Partition, op.Offset}
			}
			finalAt[op.Partition] = append(finalAt[op.Partition], op.Offset)
			r.FinalRecords++
		case Committed:
			if committed[op.Group] == nil {
				committed[op.Group] = map[int32]int64{}
			}
			committed[op.Group][op.Partition] = op.Offset
		}
	}

	// The log as the final read saw it: which offsets hold a record.
	known := map[loc]bool{}
	for p, offs := range finalAt {
		for i, o := range offs {
			known[loc{p, o}] = true
			if i > 0 && o <= offs[i-1] {
				r.add("non-monotonic", "", fmt.Sprintf("final read of partition %d: offset %d after %d", p, o, offs[i-1]), &r.NonMonotonic)
			}
		}
	}
	// Walk the polls in order, per consumer and assignment.
	for _, op := range ops {
		switch op.F {
		case Assigned, Revoked:
			for _, p := range op.Parts {
				delete(tracks[op.Proc], p)
			}
			continue
		case Poll:
		default:
			continue
		}
		if tracks[op.Proc] == nil {
			tracks[op.Proc] = map[int32]*track{}
		}
		g := groupOf[op.Proc]
		if g != "" && received[g] == nil {
			received[g] = map[loc]bool{}
		}
		for i, o := range op.Offsets {
			v := op.Values[i]
			r.Polled++
			read(op.Proc, op.Partition, o, v)
			if g != "" {
				received[g][loc{op.Partition, o}] = true
			}
			tr := tracks[op.Proc][op.Partition]
			if tr == nil {
				tracks[op.Proc][op.Partition] = &track{last: o}
				continue
			}
			switch {
			case o <= tr.last:
				r.add("non-monotonic", v, fmt.Sprintf("%s read partition %d offset %d after %d", op.Proc, op.Partition, o, tr.last), &r.NonMonotonic)
			case o > tr.last+1:
				var skipped []int64
				for x := tr.last + 1; x < o; x++ {
					if known[loc{op.Partition, x}] {
						skipped = append(skipped, x)
					}
				}
				if len(skipped) > 0 {
					r.add("poll-skip", v, fmt.Sprintf("%s read partition %d offset %d right after %d, skipping %d records (first %d)", op.Proc, op.Partition, o, tr.last, len(skipped), skipped[0]), &r.PollSkips)
				}
			}
			tr.last = o
		}
	}

	// Lost and recovered, against the final read.
	values := make([]string, 0, len(sent))
	for v := range sent {
		values = append(values, v)
	}
	sort.Strings(values)
	for _, v := range values {
		s := sent[v]
		fl, found := final[v]
		switch {
		case s.Type == OK && !found:
			r.add("lost", v, fmt.Sprintf("acknowledged at %d/%d by %s, not in the final read", s.Partition, s.Offset, s.Proc), &r.Lost)
		case s.Type == OK && (fl.p != s.Partition || fl.o != s.Offset):
			r.add("inconsistent", v, fmt.Sprintf("acknowledged at %d/%d, read at %d/%d", s.Partition, s.Offset, fl.p, fl.o), &r.Inconsistent)
		case s.Type == Info && found:
			r.Recovered++
		}
	}
	// Transactions: nothing of an aborted one is read; the final read
	// holds all of a transaction or none of it.
	txns := map[string][]string{}
	for _, v := range values {
		if s := sent[v]; s.Txn != "" {
			txns[s.Txn] = append(txns[s.Txn], v)
		}
	}
	ids := make([]string, 0, len(txns))
	for id := range txns {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	readAnywhere := map[string]loc{}
	for l, v := range at {
		readAnywhere[v] = l
	}
	for _, id := range ids {
		vs := txns[id]
		r.Txns++
		outcome := sent[vs[0]].Type
		if outcome == Aborted {
			r.TxnAborted++
		}
		if outcome == Info || outcome == Aborted && sent[vs[0]].Err != "" {
			r.TxnFailed++
		}
		found := 0
		for _, v := range vs {
			if _, ok := final[v]; ok {
				found++
			}
			if l, ok := readAnywhere[v]; ok && outcome == Aborted {
				r.add("aborted-read", v, fmt.Sprintf("transaction %s was aborted, yet %s was read at %d/%d", id, v, l.p, l.o), &r.AbortedReads)
			}
		}
		if found > 0 && found < len(vs) {
			r.add("torn-txn", "", fmt.Sprintf("transaction %s (%s): the final read holds %d of its %d values", id, outcome, found, len(vs)), &r.TornTxns)
		}
	}
	// Unexpected: read, never sent.
	seenUnexpected := map[string]bool{}
	for _, v := range at {
		if _, ok := sent[v]; !ok && !seenUnexpected[v] {
			seenUnexpected[v] = true
			r.add("unexpected", v, "read but never sent", &r.Unexpected)
		}
	}
	// Group skips: below the committed offset, every record delivered.
	groups := make([]string, 0, len(committed))
	for g := range committed {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		for p, c := range committed[g] {
			missing, first := 0, int64(-1)
			for _, o := range finalAt[p] {
				if o < c && !received[g][loc{p, o}] {
					if missing == 0 {
						first = o
					}
					missing++
				}
			}
			if missing > 0 {
				r.add("group-skip", "", fmt.Sprintf("group %s committed partition %d at %d but never received %d records below it (first at %d)", g, p, c, missing, first), &r.GroupSkips)
			}
		}
	}
	return r
}
