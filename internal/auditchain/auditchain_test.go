package auditchain

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

type rec struct {
	key, value []byte
	headers    []kmsg.Header
}

// chain links n records as the trail writes them, from the zero link,
// after unchained records written before the chain.
func chain(h *Hasher, unchained, n int) []rec {
	var out []rec
	for i := range unchained {
		out = append(out, rec{key: []byte("User:old"), value: fmt.Appendf(nil, `{"old":%d}`, i)})
	}
	prev := Zero
	for i := range n {
		r := rec{key: []byte("User:alice"), value: fmt.Appendf(nil, `{"n":%d}`, i)}
		if i%3 == 0 {
			r.headers = []kmsg.Header{{Key: "other", Value: []byte("x")}}
		}
		prev = h.Link(prev, r.key, r.value, r.headers)
		r.headers = append(r.headers, kmsg.Header{Key: h.HeaderName(), Value: []byte(prev.String())})
		out = append(out, r)
	}
	return out
}

func verify(h *Hasher, recs []rec) *Partition {
	p := NewPartition(0, h)
	for i, r := range recs {
		p.Add(int64(i), r.key, r.value, r.headers)
	}
	return p
}

func breakOffsets(p *Partition) []int64 {
	var out []int64
	for _, b := range p.Breaks {
		out = append(out, b.Offset)
	}
	return out
}

// TestVerifyTampering: an intact chain holds from where it starts; one
// record altered, removed or inserted is one break, at that record (the
// altered or inserted one) or at the record after it (the removed one).
func TestVerifyTampering(t *testing.T) {
	for _, key := range [][]byte{nil, []byte("0123456789abcdef0123456789abcdef")} {
		h := NewHasher(key)
		name := fmt.Sprintf("keyed=%v", key != nil)
		base := chain(h, 3, 20) // offsets 0-2 unchained, 3-22 chained

		p := verify(h, base)
		if !p.OK() || p.Start != 3 || p.Unchained != 3 || p.Records != 23 || p.HeadOffset != 22 {
			t.Fatalf("%s: intact chain: ok=%v start=%d unchained=%d records=%d head=%d, breaks %+v",
				name, p.OK(), p.Start, p.Unchained, p.Records, p.HeadOffset, p.Breaks)
		}
		if want := base[22].headers[len(base[22].headers)-1].Value; p.Head.String() != string(want) {
			t.Errorf("%s: head %s, want %s", name, p.Head, want)
		}

		altered := slices.Clone(base)
		altered[10].value = []byte(`{"n":7, "tampered":true}`)
		if got := breakOffsets(verify(h, altered)); !slices.Equal(got, []int64{10}) {
			t.Errorf("%s: one record altered at 10: breaks at %v, want [10]", name, got)
		}

		hdr := slices.Clone(base)
		hdr[6].headers = slices.Clone(hdr[6].headers)
		hdr[6].headers[0] = kmsg.Header{Key: "other", Value: []byte("y")} // a header other than the link
		if got := breakOffsets(verify(h, hdr)); !slices.Equal(got, []int64{6}) {
			t.Errorf("%s: one header altered at 6: breaks at %v, want [6]", name, got)
		}

		removed := slices.Delete(slices.Clone(base), 12, 13)
		if got := breakOffsets(verify(h, removed)); !slices.Equal(got, []int64{12}) {
			t.Errorf("%s: record 12 removed: breaks at %v, want [12] (the record after it)", name, got)
		}

		inserted := slices.Insert(slices.Clone(base), 15, rec{key: []byte("User:mallory"), value: []byte(`{"forged":1}`)})
		if got := breakOffsets(verify(h, inserted)); !slices.Equal(got, []int64{15}) {
			t.Errorf("%s: record inserted at 15: breaks at %v, want [15]", name, got)
		}

		// A forged link that chains from the record before: the record
		// after it breaks (without a key anyone can compute the forged
		// link; with one, the forged link itself breaks too).
		forged := rec{key: []byte("User:mallory"), value: []byte(`{"forged":2}`)}
		prev, _ := ParseLink(base[14].headers[len(base[14].headers)-1].Value)
		plain := NewHasher(nil)
		forged.headers = []kmsg.Header{{Key: h.HeaderName(), Value: []byte(plain.Link(prev, forged.key, forged.value, nil).String())}}
		want := []int64{16}
		if key != nil {
			want = []int64{15, 16}
		}
		if got := breakOffsets(verify(h, slices.Insert(slices.Clone(base), 15, forged))); !slices.Equal(got, want) {
			t.Errorf("%s: forged record inserted at 15: breaks at %v, want %v", name, got, want)
		}

		// The chain's first linked records cut off: the new first one
		// does not chain from the zero link.
		if got := breakOffsets(verify(h, slices.Delete(slices.Clone(base), 3, 5))); !slices.Equal(got, []int64{3}) {
			t.Errorf("%s: first linked records removed: breaks at %v, want [3]", name, got)
		}
	}
}

// TestVerifyModes: a keyed chain read without the key cannot be checked;
// with another key every link breaks; a plain link amid a keyed chain
// breaks (anyone could have computed it).
func TestVerifyModes(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	keyed := chain(NewHasher(key), 0, 5)
	if p := verify(NewHasher(nil), keyed); p.OK() || p.NeedKey != 5 || p.BreakCount != 0 {
		t.Errorf("keyed chain without the key: ok=%v needKey=%d breaks=%d", p.OK(), p.NeedKey, p.BreakCount)
	}
	if p := verify(NewHasher([]byte("another key, another key, another")), keyed); p.BreakCount != 5 {
		t.Errorf("keyed chain with another key: %d breaks, want 5", p.BreakCount)
	}
	plain := chain(NewHasher(nil), 0, 5)
	mixed := append(slices.Clone(keyed[:2]), plain[2:]...)
	if p := verify(NewHasher(key), mixed); p.OK() || p.BreakCount == 0 || p.Breaks[0].Offset != 2 {
		t.Errorf("plain links after keyed ones: breaks %+v, want the first at 2", p.Breaks)
	}
}

// TestEncoding: a link is the documented encoding hashed, the chain's own
// header left out, a null field as long as an empty one.
func TestEncoding(t *testing.T) {
	var doc []byte
	doc = append(doc, make([]byte, 32)...)              // the zero link
	doc = append(doc, 0, 0, 0, 1, 'k')                  // key
	doc = append(doc, 0, 0, 0, 0)                       // null value
	doc = append(doc, 0, 0, 0, 1)                       // one other header
	doc = append(doc, 0, 0, 0, 1, 'h', 0, 0, 0, 1, 'v') // its name and value
	want := sha256.Sum256(doc)
	hs := []kmsg.Header{{Key: "h", Value: []byte("v")}, {Key: Header, Value: []byte("ignored")}}
	if got := NewHasher(nil).Link(Zero, []byte("k"), nil, hs); got != Link(want) {
		t.Errorf("plain link %s, want %x", got, want)
	}
	if got := NewHasher(nil).Link(Zero, []byte("k"), []byte{}, hs); got != Link(want) {
		t.Errorf("an empty value links as %s, a null one as %x", got, want)
	}
	m := hmac.New(sha256.New, []byte("key"))
	m.Write(doc)
	if got := NewHasher([]byte("key")).Link(Zero, []byte("k"), nil, hs); hex.EncodeToString(got[:]) != hex.EncodeToString(m.Sum(nil)) {
		t.Errorf("keyed link %s, want %x", got, m.Sum(nil))
	}
}

// TestAnchor: a head recorded earlier catches what the chain alone
// cannot: the tail cut off, and the log rewritten with a fresh chain (a
// plain chain recomputed after an edit holds on its own).
func TestAnchor(t *testing.T) {
	h := NewHasher(nil)
	base := chain(h, 0, 10)
	head := verify(h, base[:8]) // the head an earlier run recorded: offset 7
	anchored := func(recs []rec) *Partition {
		p := NewPartition(0, h)
		p.Expect(head.HeadOffset, head.Head)
		for i, r := range recs {
			p.Add(int64(i), r.key, r.value, r.headers)
		}
		p.Finish()
		return p
	}
	if p := anchored(base); !p.OK() {
		t.Errorf("the chain grown past its anchor: breaks %+v", p.Breaks)
	}
	if got := breakOffsets(anchored(base[:6])); !slices.Equal(got, []int64{7}) {
		t.Errorf("tail cut off before the anchor: breaks at %v, want [7]", got)
	}
	// Record 3 edited and every link recomputed from it on.
	forged := slices.Clone(base)
	forged[3].value = []byte(`{"n":3,"edited":true}`)
	prev, _ := ParseLink(forged[2].headers[len(forged[2].headers)-1].Value)
	for i := 3; i < len(forged); i++ {
		r := &forged[i]
		r.headers = slices.Clone(r.headers[:len(r.headers)-1])
		prev = h.Link(prev, r.key, r.value, r.headers)
		r.headers = append(r.headers, kmsg.Header{Key: Header, Value: []byte(prev.String())})
	}
	if p := verify(h, forged); !p.OK() {
		t.Fatalf("a recomputed plain chain should hold on its own: %+v", p.Breaks)
	}
	if got := breakOffsets(anchored(forged)); !slices.Equal(got, []int64{7}) {
		t.Errorf("recomputed chain against the anchor: breaks at %v, want [7]", got)
	}
}
