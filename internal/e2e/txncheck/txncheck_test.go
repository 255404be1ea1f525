package txncheck

import (
	"strings"
	"testing"
)

// Each invariant, broken once in a made-up history, must be reported; a
// clean history must not be.

var out = Topic{Name: "out", Path: "|s1"}

func rec(p int32, off int64, v, txn string, n int) Record {
	return Record{Partition: p, Offset: off, Value: v, Txn: txn, TxnSize: n}
}

// clean is two ids in one transaction over two partitions, read whole.
func clean(c *Checker, r *Reader) {
	c.Committed("t1", "out", 2)
	c.Poll(r, []Record{rec(0, 0, "id=0|s1", "t1", 2)})
	c.Poll(r, []Record{rec(1, 5, "id=1|s1", "t1", 2)})
}

func TestClean(t *testing.T) {
	c := New(2)
	r := c.NewReader("rc", out, true)
	u := c.NewReader("ru", out, false)
	clean(c, r)
	c.Poll(u, []Record{rec(0, 0, "id=0|s1", "t1", 2), rec(0, 1, "ABORTED-id=1|s1", "t2", 1)})
	c.Aborted("t2")
	if v := c.Final(); len(v) != 0 {
		t.Fatalf("violations in a clean history: %v", v)
	}
	if !c.Done(r) || c.AbortedRead(u) != 1 {
		t.Errorf("done %v, aborted read by read_uncommitted %d", c.Done(r), c.AbortedRead(u))
	}
}

func TestViolations(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		history    func(c *Checker, r *Reader)
	}{
		{"aborted marker", "aborted read", func(c *Checker, r *Reader) {
			clean(c, r)
			c.Poll(r, []Record{rec(0, 1, "ABORTED-id=0|s1", "t2", 1)})
		}},
		{"aborted reported before", "aborted read", func(c *Checker, r *Reader) {
			c.Aborted("t0")
			c.Poll(r, []Record{rec(0, 0, "id=0|s1", "t0", 1)})
			clean(c, r)
		}},
		{"aborted reported after", "aborted read", func(c *Checker, r *Reader) {
			c.Poll(r, []Record{rec(0, 0, "id=0|s1", "t0", 1)})
			c.Aborted("t0")
		}},
		{"duplicate", "duplicate: id 1", func(c *Checker, r *Reader) {
			clean(c, r)
			c.Poll(r, []Record{rec(2, 0, "id=1|s1", "t3", 1)})
		}},
		{"offset back", "offsets not monotonic", func(c *Checker, r *Reader) {
			c.Poll(r, []Record{rec(0, 4, "id=0|s1", "", 0), rec(0, 4, "id=1|s1", "", 0)})
		}},
		{"lost id", "lost:", func(c *Checker, r *Reader) {
			c.Poll(r, []Record{rec(0, 0, "id=0|s1", "", 0)})
		}},
		{"torn", "torn transaction", func(c *Checker, r *Reader) {
			c.Poll(r, []Record{rec(0, 0, "id=0|s1", "t1", 3), rec(1, 0, "id=1|s1", "t1", 3)})
		}},
		{"lost commit", "lost committed write", func(c *Checker, r *Reader) {
			clean(c, r)
			c.Committed("t9", "out", 1)
		}},
		{"wrong path", "malformed", func(c *Checker, r *Reader) {
			c.Poll(r, []Record{rec(0, 0, "id=0|s2", "", 0), rec(0, 1, "id=1|s1", "", 0)})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(2)
			tc.history(c, c.NewReader("rc", out, true))
			v := c.Final()
			if !strings.Contains(strings.Join(v, "\n"), tc.want) {
				t.Errorf("violations %q, want one with %q", v, tc.want)
			}
		})
	}
}

// A read_uncommitted reader may see aborted records and a transaction's
// records more than once; only its offsets are checked.
func TestReadUncommitted(t *testing.T) {
	c := New(1)
	u := c.NewReader("ru", out, false)
	c.Poll(u, []Record{rec(0, 0, "ABORTED-id=0|s1", "t1", 1), rec(0, 1, "id=0|s1", "t2", 1)})
	c.Aborted("t1")
	if v := c.Final(); len(v) != 0 {
		t.Errorf("violations of a read_uncommitted reader: %v", v)
	}
	c.Poll(u, []Record{rec(0, 1, "id=0|s1", "t2", 1)})
	if v := c.Final(); len(v) != 1 || !strings.Contains(v[0], "monotonic") {
		t.Errorf("violations %v, want offsets not monotonic", v)
	}
}
