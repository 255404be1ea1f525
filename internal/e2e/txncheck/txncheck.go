// Package txncheck checks what the readers of a chain of transactional
// consume-transform-produce stages saw, poll by poll, against the
// invariants of Jepsen's queue workload with transactions:
//
//   - no aborted reads: a read_committed reader never sees a record of an
//     aborted transaction (one whose values say "ABORTED", or one its
//     writer reported aborted);
//   - no lost committed writes: every transaction a writer reported
//     committed is read whole, and every input id reaches every topic;
//   - no duplicates: a read_committed reader of an exactly-once topic sees
//     each id once;
//   - offsets strictly increase per partition, for every reader;
//   - no torn transactions: a read_committed reader sees all of a
//     transaction's records, across partitions, or none.
//
// Records carry their id in the value ("id=<n>" and the tags of the stages
// it went through, "id=7|s1|s2"), and their transaction in the headers
// "txn" (an id unique per attempt) and "txn-n" (the transaction's record
// count). The package holds no I/O but the readers' polling (Follow); the
// fault harness that drives the stages is the test's.
package txncheck

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Record is one record as a reader received it.
type Record struct {
	Partition int32
	Offset    int64
	Value     string
	Txn       string // header "txn"; "" for none
	TxnSize   int    // header "txn-n"
}

// Topic is one topic of the chain: what its values must look like.
type Topic struct {
	Name string
	// Path is the tags every value carries after its id, in order
	// ("|s1|s2"); "" for the chain's input.
	Path string
}

// Checker collects the writers' reports and the readers' polls, and the
// violations among them. It is safe for concurrent use.
type Checker struct {
	ids int // the input is ids 0..ids-1

	mu         sync.Mutex
	aborted    map[string]bool   // transactions their writer reported aborted
	committed  map[string]string // transactions their writer reported committed, to their topic
	size       map[string]int    // the committed transactions' record counts
	readers    []*Reader
	violations []string
}

// New returns a checker of a chain whose input is ids 0..ids-1.
func New(ids int) *Checker {
	return &Checker{ids: ids, aborted: map[string]bool{}, committed: map[string]string{}, size: map[string]int{}}
}

// Aborted records that a writer aborted txn. A read_committed reader that
// saw one of its records, before or after this report, is a violation.
func (c *Checker) Aborted(txn string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.aborted[txn] = true
	for _, r := range c.readers {
		if r.committed && r.txns[txn] > 0 {
			c.violatef("aborted read: %s read %d record(s) of transaction %s, which its writer aborted", r.name, r.txns[txn], txn)
		}
	}
}

// Committed records that a writer's EndTxn committed txn, of n records,
// to topic: they must all be read.
func (c *Checker) Committed(txn, topic string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.committed[txn] = topic
	c.size[txn] = n
}

// Reread is a checker for a second reading of the same history (after a
// restart, say): the writers' reports, no readers, no violations.
func (c *Checker) Reread() *Checker {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := New(c.ids)
	for txn := range c.aborted {
		n.aborted[txn] = true
	}
	for txn, topic := range c.committed {
		n.committed[txn], n.size[txn] = topic, c.size[txn]
	}
	return n
}

// Violation records a violation found outside the readers' polls (a
// stage's fetch saw data loss, say).
func (c *Checker) Violation(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.violatef(format, args...)
}

func (c *Checker) violatef(format string, args ...any) {
	// A broken invariant tends to break on every record after it: the
	// first hundred say enough.
	if len(c.violations) < 100 {
		c.violations = append(c.violations, fmt.Sprintf(format, args...))
	}
}

// Violations are those found so far.
func (c *Checker) Violations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.violations...)
}

// Reader is the history of one reader of one topic.
type Reader struct {
	name      string
	topic     Topic
	committed bool // read_committed: the transactional invariants apply

	last     map[int32]int64 // the last offset read per partition
	ids      map[int]int     // times each id was read
	txns     map[string]int  // records read per transaction
	txnSize  map[string]int
	polls    int
	records  int
	abortedN int // records of aborted transactions read (read_uncommitted readers should see some)
}

// NewReader registers a reader of topic, at read_committed if committed.
func (c *Checker) NewReader(name string, topic Topic, committed bool) *Reader {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &Reader{name: name, topic: topic, committed: committed, last: map[int32]int64{}, ids: map[int]int{},
		txns: map[string]int{}, txnSize: map[string]int{}}
	c.readers = append(c.readers, r)
	return r
}

// Poll checks one poll's records, in the order the reader returned them.
func (c *Checker) Poll(r *Reader, recs []Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.polls++
	for _, rec := range recs {
		c.record(r, rec)
	}
}

func (c *Checker) record(r *Reader, rec Record) {
	r.records++
	at := fmt.Sprintf("%s: %s/%d@%d %q (txn %s)", r.name, r.topic.Name, rec.Partition, rec.Offset, rec.Value, rec.Txn)
	if last, ok := r.last[rec.Partition]; ok && rec.Offset <= last {
		c.violatef("offsets not monotonic: %s after offset %d", at, last)
	}
	r.last[rec.Partition] = rec.Offset
	aborted := strings.Contains(rec.Value, "ABORTED") || c.aborted[rec.Txn]
	if aborted {
		r.abortedN++
	}
	if !r.committed {
		return
	}
	if aborted {
		c.violatef("aborted read: %s", at)
	}
	if id, ok := c.parse(r.topic, rec.Value); ok {
		r.ids[id]++
		if r.ids[id] > 1 {
			c.violatef("duplicate: id %d read %d times: %s", id, r.ids[id], at)
		}
	} else if !aborted { // an aborted record's value is reported above
		c.violatef("malformed value (want id=<0..%d>%s): %s", c.ids-1, r.topic.Path, at)
	}
	if rec.Txn != "" {
		r.txns[rec.Txn]++
		r.txnSize[rec.Txn] = rec.TxnSize
		if r.txns[rec.Txn] > rec.TxnSize {
			c.violatef("duplicate: transaction %s of %d records read %d times: %s", rec.Txn, rec.TxnSize, r.txns[rec.Txn], at)
		}
	}
}

// parse returns the id of a value of topic t.
func (c *Checker) parse(t Topic, v string) (int, bool) {
	rest, ok := strings.CutPrefix(v, "id=")
	if !ok {
		return 0, false
	}
	num, path, _ := strings.Cut(rest, "|")
	if path != "" {
		path = "|" + path
	}
	id, err := strconv.Atoi(num)
	if err != nil || id < 0 || id >= c.ids || path != t.Path {
		return 0, false
	}
	return id, true
}

// Done reports whether reader r has read every id.
func (c *Checker) Done(r *Reader) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(r.ids) == c.ids
}

// Final checks what must hold once the readers have read everything:
// every id read by every read_committed reader, every transaction read
// whole, every reported commit read, and no reported abort read. It
// returns all violations, these and the earlier ones.
func (c *Checker) Final() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.readers {
		if !r.committed {
			continue
		}
		var lost []int
		for id := range c.ids {
			if r.ids[id] == 0 {
				lost = append(lost, id)
			}
		}
		if len(lost) > 0 {
			c.violatef("lost: %s never read %d of the %d ids: %v", r.name, len(lost), c.ids, head(lost, 20))
		}
		for _, txn := range sortedKeys(r.txns) {
			if n := r.txns[txn]; n != r.txnSize[txn] {
				c.violatef("torn transaction: %s read %d of the %d records of %s", r.name, n, r.txnSize[txn], txn)
			}
			if c.aborted[txn] {
				c.violatef("aborted read: %s read %d record(s) of %s, which its writer aborted", r.name, r.txns[txn], txn)
			}
		}
		for _, txn := range sortedKeys(c.committed) {
			if c.committed[txn] == r.topic.Name && r.txns[txn] != c.size[txn] {
				c.violatef("lost committed write: %s read %d of the %d records of %s, which its writer committed", r.name, r.txns[txn], c.size[txn], txn)
			}
		}
	}
	return append([]string(nil), c.violations...)
}

// Summary is a line per reader: polls, records, transactions and the
// aborted records read (which only read_uncommitted readers may have).
func (c *Checker) Summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "writers reported %d commits, %d aborts\n", len(c.committed), len(c.aborted))
	for _, r := range c.readers {
		fmt.Fprintf(&b, "%s: %d polls, %d records, %d distinct ids, %d transactions, %d aborted records\n",
			r.name, r.polls, r.records, len(r.ids), len(r.txns), r.abortedN)
	}
	return b.String()
}

// AbortedRead is the number of records of aborted transactions r read.
func (c *Checker) AbortedRead(r *Reader) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return r.abortedN
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func head(s []int, n int) []int {
	if len(s) > n {
		return s[:n]
	}
	return s
}
