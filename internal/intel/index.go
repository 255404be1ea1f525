package intel

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Meta is what a set says about its indicators, shared by every indicator
// of the set that says the same (a warninglist's or a CSV file's
// indicators share one Meta; STIX indicators each have their own). It is
// immutable: an update replaces it.
type Meta struct {
	Record            // without Value
	validUntil int64  // unix ms, 0: none
	key        string // the interning key
}

// Expired reports whether the indicator no longer matches at t.
func (m *Meta) Expired(t time.Time) bool {
	return m.validUntil != 0 && t.UnixMilli() > m.validUntil
}

// Match kinds of a Hit.
const (
	MatchExact  = "exact"
	MatchCIDR   = "cidr"
	MatchSuffix = "suffix"
)

// Hit is one indicator of one set that an event value matched.
type Hit struct {
	M *Meta
	// Indicator is the matched indicator: the value itself (exact) or
	// the parent domain (suffix); for a prefix it is empty and Prefix
	// holds it (String formats either).
	Indicator string
	Prefix    netip.Prefix
	Match     string
}

// String is the matched indicator.
func (h *Hit) String() string {
	if h.Match == MatchCIDR {
		return h.Prefix.String()
	}
	return h.Indicator
}

// entry is one (indicator, set) of the index: its Meta and the next
// entry of the same indicator in another set.
type entry struct {
	meta int32
	next int32 // -1: end
}

// Index matches values against every indicator of every set it was fed.
// Lookups take the read lock (Read) once per batch of events, so many
// goroutines match in parallel; Apply takes the write lock.
//
// Memory: one map entry and 8 bytes per indicator, plus the value
// string; Metas are interned, so a million indicators of a few sets cost
// about the strings and the maps (see `vigil bench enrich`).
type Index struct {
	mu      sync.RWMutex
	exact   map[string]int32 // ip, url, hash, email, domain (exact) -> head entry
	suffix  map[string]int32 // domains matched with every name under them
	cidr4   map[netip.Prefix]int32
	cidr6   map[netip.Prefix]int32
	bits4   []int // prefix lengths present, longest first
	bits6   []int
	bitsN   map[int]int // prefixes per length (v4: len, v6: 1000+len)
	entries []entry
	free    []int32 // free entry slots
	metas   []*Meta
	refs    []int32
	metaIDs map[string]int32
	freeM   []int32
	n       int
	sets    map[string]int
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{
		exact: map[string]int32{}, suffix: map[string]int32{},
		cidr4: map[netip.Prefix]int32{}, cidr6: map[netip.Prefix]int32{},
		bitsN: map[int]int{}, metaIDs: map[string]int32{}, sets: map[string]int{},
	}
}

// Stats are an index's sizes.
type Stats struct {
	Indicators int            // (indicator, set) pairs
	Sets       map[string]int // indicators per set
	Metas      int
}

// Len counts the (indicator, set) pairs held.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.n
}

// Stats returns the index's sizes.
func (ix *Index) Stats() Stats {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	sets := make(map[string]int, len(ix.sets))
	for k, v := range ix.sets {
		sets[k] = v
	}
	return Stats{Indicators: ix.n, Sets: sets, Metas: len(ix.metaIDs)}
}

// Apply applies one intel.* record: a value upserts the indicator in its
// set, a nil value (tombstone) removes it. Keys and values that are not
// intel records are an error, and change nothing.
func (ix *Index) Apply(key, value []byte) error {
	set, typ, v, ok := ParseKey(string(key))
	if !ok {
		return fmt.Errorf("intel: record key %q is not <set>|<type>:<value>", key)
	}
	if value == nil {
		ix.mu.Lock()
		ix.remove(set, typ, v)
		ix.mu.Unlock()
		return nil
	}
	var r Record
	if err := json.Unmarshal(value, &r); err != nil {
		return fmt.Errorf("intel: record %q: %w", key, err)
	}
	if err := r.Normalize(); err != nil {
		return fmt.Errorf("intel: record %q: %w", key, err)
	}
	if r.Key() != string(key) {
		return fmt.Errorf("intel: record %q holds %q", key, r.Key())
	}
	ix.mu.Lock()
	ix.Add(&r)
	ix.mu.Unlock()
	return nil
}

// Add upserts a normalised record; the caller holds the write lock (or
// owns the index alone, as loaders and benchmarks do).
func (ix *Index) Add(r *Record) {
	mi := ix.meta(r)
	head, ok := ix.lookupHead(r)
	if ok {
		for i := head; i >= 0; i = ix.entries[i].next {
			old := ix.metas[ix.entries[i].meta]
			if old.Set == r.Set && old.Type == r.Type {
				ix.unref(ix.entries[i].meta)
				ix.entries[i].meta = mi
				return
			}
		}
	} else {
		head = -1
	}
	var slot int32
	if n := len(ix.free); n > 0 {
		slot = ix.free[n-1]
		ix.free = ix.free[:n-1]
		ix.entries[slot] = entry{meta: mi, next: head}
	} else {
		slot = int32(len(ix.entries))
		ix.entries = append(ix.entries, entry{meta: mi, next: head})
	}
	ix.setHead(r, slot, !ok)
	ix.n++
	ix.sets[r.Set]++
}

func (ix *Index) remove(set, typ, v string) {
	r := &Record{Set: set, Type: typ, Value: v}
	if typ == TypeDomain {
		r.Value, r.Suffix = strings.CutPrefix(v, "*.")
	}
	ix.removeOne(r)
}

func (ix *Index) removeOne(r *Record) {
	head, ok := ix.lookupHead(r)
	if !ok {
		return
	}
	prev := int32(-1)
	for i := head; i >= 0; prev, i = i, ix.entries[i].next {
		m := ix.metas[ix.entries[i].meta]
		if m.Set != r.Set || m.Type != r.Type {
			continue
		}
		next := ix.entries[i].next
		ix.unref(ix.entries[i].meta)
		ix.free = append(ix.free, i)
		if prev >= 0 {
			ix.entries[prev].next = next
		} else if next >= 0 {
			ix.setHead(r, next, false)
		} else {
			ix.deleteHead(r)
		}
		ix.n--
		if ix.sets[r.Set]--; ix.sets[r.Set] <= 0 {
			delete(ix.sets, r.Set)
		}
		return
	}
}

func (ix *Index) lookupHead(r *Record) (int32, bool) {
	switch {
	case r.Type == TypeCIDR:
		p, err := netip.ParsePrefix(r.Value)
		if err != nil {
			return 0, false
		}
		h, ok := ix.cidrMap(p)[p]
		return h, ok
	case r.Type == TypeDomain && r.Suffix:
		h, ok := ix.suffix[r.Value]
		return h, ok
	}
	h, ok := ix.exact[r.Value]
	return h, ok
}

func (ix *Index) cidrMap(p netip.Prefix) map[netip.Prefix]int32 {
	if p.Addr().Is4() {
		return ix.cidr4
	}
	return ix.cidr6
}

func (ix *Index) setHead(r *Record, slot int32, isNew bool) {
	switch {
	case r.Type == TypeCIDR:
		p := netip.MustParsePrefix(r.Value)
		ix.cidrMap(p)[p] = slot
		if isNew {
			ix.addBits(p, 1)
		}
	case r.Type == TypeDomain && r.Suffix:
		ix.suffix[r.Value] = slot
	default:
		ix.exact[r.Value] = slot
	}
}

func (ix *Index) deleteHead(r *Record) {
	switch {
	case r.Type == TypeCIDR:
		p := netip.MustParsePrefix(r.Value)
		delete(ix.cidrMap(p), p)
		ix.addBits(p, -1)
	case r.Type == TypeDomain && r.Suffix:
		delete(ix.suffix, r.Value)
	default:
		delete(ix.exact, r.Value)
	}
}

// addBits keeps the list of prefix lengths present, longest first, so a
// lookup probes one map per length in use.
func (ix *Index) addBits(p netip.Prefix, d int) {
	k := p.Bits()
	list := &ix.bits4
	if !p.Addr().Is4() {
		k += 1000
		list = &ix.bits6
	}
	ix.bitsN[k] += d
	has := slices.Contains(*list, p.Bits())
	switch {
	case ix.bitsN[k] > 0 && !has:
		*list = append(*list, p.Bits())
		slices.SortFunc(*list, func(a, b int) int { return b - a })
	case ix.bitsN[k] <= 0 && has:
		delete(ix.bitsN, k)
		*list = slices.DeleteFunc(*list, func(b int) bool { return b == p.Bits() })
	}
}

// meta interns r's metadata and takes a reference to it.
func (ix *Index) meta(r *Record) int32 {
	m := *r
	m.Value = ""
	b, _ := json.Marshal(&m)
	key := string(b)
	if id, ok := ix.metaIDs[key]; ok {
		ix.refs[id]++
		return id
	}
	meta := &Meta{Record: m, key: key}
	if m.ValidUntil != "" {
		if t, err := time.Parse(time.RFC3339, m.ValidUntil); err == nil {
			meta.validUntil = t.UnixMilli()
		}
	}
	var id int32
	if n := len(ix.freeM); n > 0 {
		id = ix.freeM[n-1]
		ix.freeM = ix.freeM[:n-1]
		ix.metas[id], ix.refs[id] = meta, 1
	} else {
		id = int32(len(ix.metas))
		ix.metas = append(ix.metas, meta)
		ix.refs = append(ix.refs, 1)
	}
	ix.metaIDs[key] = id
	return id
}

func (ix *Index) unref(id int32) {
	if ix.refs[id]--; ix.refs[id] > 0 {
		return
	}
	delete(ix.metaIDs, ix.metas[id].key)
	ix.metas[id] = nil
	ix.freeM = append(ix.freeM, id)
}

// RLock takes the read lock for a batch of lookups; RUnlock releases it.
func (ix *Index) RLock()   { ix.mu.RLock() }
func (ix *Index) RUnlock() { ix.mu.RUnlock() }

func (ix *Index) appendChain(out []Hit, head int32, indicator, match string) []Hit {
	for i := head; i >= 0; i = ix.entries[i].next {
		out = append(out, Hit{M: ix.metas[ix.entries[i].meta], Indicator: indicator, Match: match})
	}
	return out
}

func (ix *Index) appendPrefix(out []Hit, head int32, p netip.Prefix) []Hit {
	for i := head; i >= 0; i = ix.entries[i].next {
		out = append(out, Hit{M: ix.metas[ix.entries[i].meta], Prefix: p, Match: MatchCIDR})
	}
	return out
}

// LookupIP appends the hits of an address: the address itself and every
// prefix holding it, most specific first. The caller holds the read lock.
func (ix *Index) LookupIP(a netip.Addr, s string, out []Hit) []Hit {
	if h, ok := ix.exact[s]; ok {
		out = ix.appendChain(out, h, s, MatchExact)
	}
	m, bits := ix.cidr4, ix.bits4
	if !a.Is4() {
		m, bits = ix.cidr6, ix.bits6
	}
	for _, b := range bits {
		p, err := a.Prefix(b)
		if err != nil {
			continue
		}
		if h, ok := m[p]; ok {
			out = ix.appendPrefix(out, h, p)
		}
	}
	return out
}

// LookupDomain appends the hits of a domain name (lower case): the name
// itself, and every suffix indicator that is the name or a parent of it.
// The caller holds the read lock.
func (ix *Index) LookupDomain(d string, out []Hit) []Hit {
	if h, ok := ix.exact[d]; ok {
		out = ix.appendChain(out, h, d, MatchExact)
	}
	if len(ix.suffix) == 0 {
		return out
	}
	for s := d; ; {
		if h, ok := ix.suffix[s]; ok {
			out = ix.appendChain(out, h, s, MatchSuffix)
		}
		i := strings.IndexByte(s, '.')
		if i < 0 {
			return out
		}
		s = s[i+1:]
	}
}

// LookupExact appends the hits of a normalised URL, hash or e-mail
// address. The caller holds the read lock.
func (ix *Index) LookupExact(v string, out []Hit) []Hit {
	if h, ok := ix.exact[v]; ok {
		out = ix.appendChain(out, h, v, MatchExact)
	}
	return out
}
