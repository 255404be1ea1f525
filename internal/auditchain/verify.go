package auditchain

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// MaxBreaks bounds the breaks a Partition keeps (it counts them all): a
// wrong key breaks every link, and one line each would bury the answer.
const MaxBreaks = 100

// Break is a record where the chain does not hold.
type Break struct {
	Offset int64
	// Expected is the link the record should carry, Found the one it
	// carries ("-": none).
	Expected, Found string
	Reason          string
}

// Partition recomputes one partition's chain from records fed to Add in
// offset order, from the partition's start.
type Partition struct {
	ID int32
	// Records is how many records were fed, Unchained how many of them
	// came before the chain starts (written before it existed).
	Records, Unchained int64
	// Start is the offset of the first record carrying a link (-1: none
	// does); the chain vouches for the records from there on.
	Start int64
	// HeadOffset and Head are the last linked record's offset (-1: none)
	// and link: recorded elsewhere, they anchor the chain's end, which a
	// chain alone cannot (cutting off its tail leaves a valid chain).
	HeadOffset int64
	Head       Link
	// Breaks are the first MaxBreaks breaks; BreakCount counts them all.
	Breaks     []Break
	BreakCount int64
	// Linked counts the records carrying a link; NeedKey those of them
	// whose keyed link could not be checked, the verifier having no key.
	Linked, NeedKey int64

	h      *Hasher
	prev   Link
	anchor *anchor
}

// anchor is a head recorded earlier (Expect).
type anchor struct {
	offset int64
	link   Link
	seen   bool
}

// NewPartition starts verifying partition id with h (plain or keyed, as
// the chain was written).
func NewPartition(id int32, h *Hasher) *Partition {
	return &Partition{ID: id, Start: -1, HeadOffset: -1, h: h}
}

// Expect anchors the chain at a head recorded earlier, outside the
// cluster: the record at offset must still carry link. It catches what a
// chain alone cannot: the tail cut off (Finish), or the log rewritten
// with a new consistent chain up to there.
func (p *Partition) Expect(offset int64, link Link) {
	p.anchor = &anchor{offset: offset, link: link}
}

// Finish reports an anchor the records fed never reached; call it after
// the last record.
func (p *Partition) Finish() {
	if a := p.anchor; a != nil && !a.seen {
		p.brk(a.offset, a.link.String(), "-",
			fmt.Sprintf("the partition ends at offset %d, before the anchored head: records were cut off", p.HeadOffset))
	}
}

// OK reports whether every link checked holds, and every link could be
// checked.
func (p *Partition) OK() bool { return p.BreakCount == 0 && p.NeedKey == 0 }

// Add checks the record at offset, the next one of the partition.
func (p *Partition) Add(offset int64, key, value []byte, headers []kmsg.Header) {
	p.Records++
	found, name, n := Found(headers)
	if a := p.anchor; a != nil && offset == a.offset {
		a.seen = true
		if l, ok := ParseLink(found); n == 0 || !ok || l != a.link {
			p.brk(offset, a.link.String(), orDash(found),
				"the record at the anchored head does not carry the anchored link: the log was rewritten up to here")
		}
	}
	if n == 0 {
		if p.Start < 0 {
			p.Unchained++
			return
		}
		// The next record should chain from the last linked one: prev
		// stays, so an inserted record is one break, not two.
		p.brk(offset, p.h.Link(p.prev, key, value, headers).String(), "-",
			"no chain link: a record inserted, or written by a broker without the chain")
		return
	}
	p.Linked++
	if p.Start < 0 {
		p.Start = offset
	}
	got, parsed := ParseLink(found)
	if name != p.h.HeaderName() && !p.h.Keyed() {
		// A keyed link cannot be checked without the key; the chain
		// goes on from it so that later plain links still can be.
		p.NeedKey++
		if parsed {
			p.prev = got
		}
		p.head(offset)
		return
	}
	want := p.h.Link(p.prev, key, value, headers)
	switch {
	case name != p.h.HeaderName():
		p.brk(offset, want.String(), string(found),
			"a plain SHA-256 link in a keyed chain: anyone who can write the log could have computed it")
	case n > 1:
		p.brk(offset, want.String(), string(found), "more than one chain link header")
	case !parsed:
		p.brk(offset, want.String(), string(found), "the chain link is not 64 hex digits")
		got = want
	case got == want:
	case p.prev != Zero && got == p.h.Link(Zero, key, value, headers):
		p.brk(offset, want.String(), string(found),
			"the chain starts again from the zero link: a broker found no link on the record before (written without the chain), or the records before were replaced")
	default:
		p.brk(offset, want.String(), string(found),
			"the link does not match: this record was altered, or records before it were removed or inserted")
	}
	// From what the record carries: an altered record is one break, and
	// the records after it still check.
	p.prev = got
	p.head(offset)
}

func (p *Partition) head(offset int64) {
	p.Head, p.HeadOffset = p.prev, offset
}

func (p *Partition) brk(offset int64, expected, found, reason string) {
	p.BreakCount++
	if len(p.Breaks) < MaxBreaks {
		p.Breaks = append(p.Breaks, Break{Offset: offset, Expected: expected, Found: found, Reason: reason})
	}
}

func orDash(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}
