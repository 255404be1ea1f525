package rangeread

import "testing"

func TestStep(t *testing.T) {
	// A range [10, 15): records at 10, 12 (11 removed), a duplicate of 12,
	// then 16 (13-15 removed): 16 ends it without being in it.
	next := int64(10)
	for _, c := range []struct {
		off        int64
		in, done   bool
		read, next int64
	}{
		{10, true, false, 1, 11},
		{12, true, false, 2, 13},
		{12, false, false, 0, 13},
		{16, false, true, 2, 15},
		{17, false, false, 0, 15},
	} {
		in, done, read := Step(&next, 15, c.off)
		if in != c.in || done != c.done || read != c.read || next != c.next {
			t.Errorf("Step at %d: in %v done %v read %d next %d; want %v %v %d %d", c.off, in, done, read, next, c.in, c.done, c.read, c.next)
		}
	}
	next = 14
	if in, done, read := Step(&next, 15, 14); !in || !done || read != 1 || next != 15 {
		t.Errorf("the range's last offset: in %v done %v read %d next %d", in, done, read, next)
	}
}
