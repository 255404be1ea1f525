package bufpool

import "testing"

func TestGetCapacity(t *testing.T) {
	var p Pool
	for _, n := range []int{0, 1, 4095, 4096, 4097, 1 << 20, 1<<20 + 1, 1 << 26} {
		b := p.Get(n)
		if len(b) != 0 || cap(b) < n {
			t.Errorf("Get(%d): len %d cap %d", n, len(b), cap(b))
		}
		if c := cap(b); c&(c-1) != 0 {
			t.Errorf("Get(%d): capacity %d is not a class size", n, c)
		}
		p.Put(b)
	}
	if b := p.Get(1<<26 + 1); cap(b) != 1<<26+1 {
		t.Errorf("oversized Get: cap %d, want exact", cap(b))
	}
}

func TestReuse(t *testing.T) {
	var p Pool
	b := p.Get(10000)
	b = append(b, "data"...)
	// sync.Pool may drop any Put (under the race detector it drops one in
	// four on purpose), so reuse is likely, not sure: put b back before
	// each try and call it broken only if ten tries never see it again.
	for range 10 {
		p.Put(b)
		c := p.Get(9000)
		if len(c) != 0 {
			t.Fatalf("reused buffer has length %d", len(c))
		}
		if cap(c) == cap(b) && &c[:1][0] == &b[:1][0] {
			return
		}
	}
	t.Error("a buffer put back was never handed out again")
}

func TestPutForeign(t *testing.T) {
	var p Pool
	p.Put(make([]byte, 0, 5000)) // not a class size: dropped
	p.Put(nil)
	if b := p.Get(5000); cap(b) != 8192 {
		t.Errorf("cap %d, want 8192", cap(b))
	}
}
