// Package enrich is `vigil enrich`: a stage between ingest and detection
// that adds context to OCSF events: GeoIP and ASN for every IP address,
// hits of threat-intel indicators (internal/intel, from the compacted
// intel.* topics), and the asset and identity records of the compacted
// `assets` and `identities` topics. Enriched events go to their own
// topics (enriched.<topic>), which detection and hunts read; an indicator
// of a set whose action is alert also becomes a Detection Finding of its
// own on the alerts topic.
//
// # Why a stage of its own
//
// Enrichment runs as its own consumer group rather than inside
// `vigil detect`:
//
//   - Reproducibility. The enriched event is durable, so the live
//     detector, a retro-hunt a month later and any other consumer see the
//     context as it was when the event arrived. Enriching inside detect
//     would tie each finding to the intel loaded at evaluation time: a
//     batch evaluated again after a crash, or hunted later, could give a
//     different finding for the same uid.
//   - Exactly once, later. The stage is the canonical consume, transform,
//     produce loop: once transactions land, each batch's enriched records,
//     findings and offset commit go in one transaction (the producer's
//     transactional id per input partition, TxnOffsetCommit in place of
//     CommitRecords). Until then it is at least once, and its output is
//     deterministic so a repeat is harmless: an enriched record is a
//     function of the input record and the intel loaded, carries the
//     input's key, timestamp and partition, and names the record it came
//     from (header vigil.origin), from which detection derives finding
//     uids; a repeated IOC finding has the same uid.
//   - Operations. A million indicators and the GeoIP databases live in
//     the enrichment group's memory only, not in every detector; the
//     stage scales and restarts on its own, and detection keeps running
//     on the last enriched events while intel reloads.
//
// The price is one more hop: a produce (a WAL group commit) and a fetch
// woken by it, milliseconds on one broker, against the seconds a
// detection pipeline's batches already allow.
//
// # What an enriched event holds
//
// The event's bytes are kept as they are; the enricher appends to them:
//
//   - enrichments[] (OCSF): one per value and kind, {name: the attribute
//     path, value, type, provider, data: {<type>: {...}}} with type
//     location (OCSF location object), autonomous_system (number, name),
//     intel (set, source, action, indicator, indicator_type, match,
//     severity, title, description, labels, id, confidence), asset and
//     identity (the inventory record as it was produced);
//   - observables[] (OCSF): each enriched value with its type, and a
//     reputation when an intel set lists it;
//   - location and autonomous_system inside src_endpoint, dst_endpoint
//     (any top-level *_endpoint) and device, for their ip, as OCSF places
//     them, unless the event has them already.
//
// Sigma rules see them through the one field mapping (sigma.DefaultMapping):
// enrichments.data. is stripped, so `intel.set`, `asset.criticality`,
// `location.country` name the enrichment of any value of the event, and
// SourceCountry, DestinationAsn ... name the endpoints'.
package enrich

import (
	"bytes"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/intel"
)

// Enricher holds what events are enriched with; any part may be nil. It
// is shared by Workers, one per goroutine.
type Enricher struct {
	Geo        *GeoIP
	Intel      *intel.Index
	Assets     *Table
	Identities *Table
	// Topics name the providers of intel, asset and identity enrichments.
	AssetsTopic, IdentitiesTopic string
}

// Worker enriches events on one goroutine; its buffers are reused.
type Worker struct {
	e    *Enricher
	s    scanner
	geo  geoCache
	low  []byte
	hits []intel.Hit
	seen []string
	ens  []byte // enrichments, comma-separated
	obs  []byte // observables, comma-separated
	ins  []insert
	at   time.Time
	// intelCache holds the enrichment data of hits seen before.
	intelCache map[hitKey][]byte
	// Alerts are the hits of alert sets in the last event.
	Alerts []Alert
	// Stats of the last event.
	Enrichments int
}

// Alert is a hit of an alert set: the event value, where it was, and
// the indicator.
type Alert struct {
	Name, Value string
	Hit         intel.Hit
}

type hitKey struct {
	m   *intel.Meta
	ind string
	p   netip.Prefix
}

type insert struct {
	pos int
	b   []byte
}

// NewWorker returns a Worker of e.
func (e *Enricher) NewWorker() *Worker {
	return &Worker{e: e, geo: geoCache{city: map[uintptr][]byte{}, asn: map[uintptr][]byte{}}, intelCache: map[hitKey][]byte{}}
}

// Lock takes the read locks of the intel index and the context tables
// for a batch of events; Unlock releases them.
func (e *Enricher) Lock() {
	if e.Intel != nil {
		e.Intel.RLock()
	}
	if e.Assets != nil {
		e.Assets.mu.RLock()
	}
	if e.Identities != nil {
		e.Identities.mu.RLock()
	}
}

// Unlock releases what Lock took.
func (e *Enricher) Unlock() {
	if e.Identities != nil {
		e.Identities.mu.RUnlock()
	}
	if e.Assets != nil {
		e.Assets.mu.RUnlock()
	}
	if e.Intel != nil {
		e.Intel.RUnlock()
	}
}

// observable types (OCSF observable.type_id).
const (
	obsHostname = 1
	obsIP       = 2
	obsUser     = 4
	obsEmail    = 5
	obsURL      = 6
	obsHash     = 8
)

var obsNames = map[int]string{obsHostname: "Hostname", obsIP: "IP Address", obsUser: "User Name", obsEmail: "Email Address", obsURL: "URL String", obsHash: "Hash"}

// Enrich appends the enriched form of doc (a JSON object) to dst; at is
// the event's time (an indicator past its valid_until does not match).
// The caller holds the Enricher's locks (Lock). An event with nothing to
// add is appended unchanged; a document that is not a JSON object is an
// error (and dst is returned as it was).
func (w *Worker) Enrich(dst, doc []byte, at time.Time) ([]byte, error) {
	w.Alerts = w.Alerts[:0]
	w.Enrichments = 0
	w.at = at
	if err := w.s.scan(doc); err != nil {
		return dst, err
	}
	w.seen, w.ens, w.obs, w.ins = w.seen[:0], w.ens[:0], w.obs[:0], w.ins[:0]
	for i := range w.s.leaves {
		w.leaf(&w.s.leaves[i], at)
	}
	if len(w.ens) == 0 {
		return append(dst, doc...), nil
	}
	// Top-level arrays the event has already get the new elements.
	ensDone, obsDone := false, false
	for i := range w.s.top {
		t := &w.s.top[i]
		if t.kind != '[' {
			continue
		}
		var add []byte
		switch string(w.s.topName(i)) {
		case "enrichments":
			add, ensDone = w.ens, true
		case "observables":
			add, obsDone = w.obs, true
		default:
			continue
		}
		if len(add) == 0 {
			continue
		}
		var b []byte
		if t.nonEmpty {
			b = append(b, ',')
		}
		w.ins = append(w.ins, insert{t.close, append(b, add...)})
	}
	var tail []byte
	comma := func() {
		if !w.s.empty || len(tail) > 0 {
			tail = append(tail, ',')
		}
	}
	if !ensDone {
		comma()
		tail = append(append(append(tail, `"enrichments":[`...), w.ens...), ']')
	}
	if !obsDone && len(w.obs) > 0 {
		comma()
		tail = append(append(append(tail, `"observables":[`...), w.obs...), ']')
	}
	if len(tail) > 0 {
		w.ins = append(w.ins, insert{w.s.end, tail})
	}
	sort.SliceStable(w.ins, func(i, j int) bool { return w.ins[i].pos < w.ins[j].pos })
	last := 0
	for _, in := range w.ins {
		dst = append(dst, doc[last:in.pos]...)
		dst = append(dst, in.b...)
		last = in.pos
	}
	return append(dst, doc[last:]...), nil
}

// leaf enriches one string value.
func (w *Worker) leaf(l *leaf, at time.Time) {
	v := w.s.leafVal(l)
	if len(v) < 3 {
		return
	}
	path := w.s.leafPath(l)
	last := path
	parent := []byte(nil)
	if i := bytes.LastIndexByte(path, '.'); i >= 0 {
		last = path[i+1:]
		if j := bytes.LastIndexByte(path[:i], '.'); j >= 0 {
			parent = path[j+1 : i]
		} else {
			parent = path[:i]
		}
	}
	c := v[0]
	switch {
	case c >= '0' && c <= '9' || c == ':' || (bytes.IndexByte(v, ':') > 0 && len(v) <= 45 && isHexColon(v)):
		if a, ok := intel.ParseAddr(string(v)); ok {
			w.ip(l, path, a)
			return
		}
	}
	if bytes.Contains(v, []byte("://")) {
		w.url(path, v, at)
		return
	}
	w.low = lower(w.low[:0], v)
	low := w.low
	if t := intel.HashType(string(low)); t != "" {
		w.exact(path, string(low), obsHash, at)
		return
	}
	if as := bytes.IndexByte(low, '@'); as > 0 {
		if intel.IsDomain(string(low[as+1:])) {
			w.email(path, last, parent, string(low))
			return
		}
	}
	if hostField(last) {
		w.host(path, string(low), at)
		return
	}
	if userField(last, parent) {
		w.identity(path, string(low))
		return
	}
	if bytes.IndexByte(low, '.') > 0 && intel.IsDomain(string(low)) {
		w.domain(path, string(low), obsHostname, at)
	}
}

func isHexColon(v []byte) bool {
	for _, c := range v {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.') {
			return false
		}
	}
	return true
}

func lower(dst, v []byte) []byte {
	for _, c := range v {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// hostField: a leaf named for a host (an asset's name).
func hostField(last []byte) bool {
	switch string(last) {
	case "hostname", "Computer", "ComputerName", "DeviceName", "Hostname", "host_name", "WorkstationName":
		return true
	}
	return false
}

// userField: a leaf naming a user (an identity).
func userField(last, parent []byte) bool {
	switch string(last) {
	case "TargetUserName", "SubjectUserName", "UserName", "userName", "username", "User", "UserPrincipalName", "userPrincipalName", "email_addr":
		return true
	case "name", "uid":
		return string(parent) == "user"
	}
	return false
}

// once reports whether kind+value is new in this event.
func (w *Worker) once(kind byte, v string) bool {
	for _, s := range w.seen {
		if len(s) == len(v)+1 && s[0] == kind && s[1:] == v {
			return false
		}
	}
	w.seen = append(w.seen, string(kind)+v)
	return true
}

func (w *Worker) ip(l *leaf, path []byte, a netip.Addr) {
	s := a.String()
	if !w.once('i', s) {
		return
	}
	added := w.Enrichments
	loc, as, _ := w.e.Geo.lookup(a, &w.geo)
	if loc != nil {
		w.enrichment(path, s, "location", w.e.Geo.cityDB, loc)
	}
	if as != nil {
		w.enrichment(path, s, "autonomous_system", w.e.Geo.asnDB, as)
	}
	// OCSF places them inside the endpoint: src_endpoint.location.
	if l.direct && (loc != nil || as != nil) && bytes.HasSuffix(path, []byte(".ip")) {
		t := &w.s.top[l.top]
		name := string(w.s.topName(l.top))
		if t.kind == '{' && (strings.HasSuffix(name, "_endpoint") || name == "device") {
			var b []byte
			if loc != nil && !t.hasLocation {
				b = append(append(b, `,"location":`...), loc...)
			}
			if as != nil && !t.hasAS {
				b = append(append(b, `,"autonomous_system":`...), as...)
			}
			if b != nil {
				w.ins = append(w.ins, insert{t.close, b})
			}
		}
	}
	var hits []intel.Hit
	if w.e.Intel != nil {
		w.hits = w.live(w.e.Intel.LookupIP(a, s, w.hits[:0]))
		hits = w.hits
	}
	w.intelHits(path, s, hits)
	if r := w.e.Assets.find(s); r != nil {
		w.enrichment(path, s, "asset", w.e.AssetsTopic, r.data)
	}
	if w.Enrichments > added {
		w.observable(path, s, obsIP, hits)
	}
}

func (w *Worker) url(path, v []byte, at time.Time) {
	u, err := intel.NormalizeURL(string(v))
	if err != nil || !w.once('u', u) {
		return
	}
	if w.e.Intel != nil {
		w.hits = w.live(w.e.Intel.LookupExact(u, w.hits[:0]))
		if len(w.hits) > 0 {
			w.intelHits(path, u, w.hits)
			w.observable(path, u, obsURL, w.hits)
		}
	}
	// The URL's host is a domain (or an address) of its own.
	host := u[strings.Index(u, "://")+3:]
	if i := strings.IndexAny(host, "/?#"); i >= 0 {
		host = host[:i]
	}
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		host = host[i+1:]
	}
	if h, _, ok := strings.Cut(host, ":"); ok && !strings.HasPrefix(host, "[") {
		host = h
	}
	if intel.IsDomain(host) {
		w.domain(path, host, obsHostname, at)
	}
}

func (w *Worker) exact(path []byte, v string, obsType int, at time.Time) {
	if w.e.Intel == nil || !w.once('x', v) {
		return
	}
	w.hits = w.live(w.e.Intel.LookupExact(v, w.hits[:0]))
	if len(w.hits) > 0 {
		w.intelHits(path, v, w.hits)
		w.observable(path, v, obsType, w.hits)
	}
}

func (w *Worker) domain(path []byte, d string, obsType int, at time.Time) {
	if w.e.Intel == nil || !w.once('d', d) {
		return
	}
	w.hits = w.live(w.e.Intel.LookupDomain(d, w.hits[:0]))
	if len(w.hits) > 0 {
		w.intelHits(path, d, w.hits)
		w.observable(path, d, obsType, w.hits)
	}
}

func (w *Worker) host(path []byte, h string, at time.Time) {
	added := w.Enrichments
	if w.once('h', h) {
		r := w.e.Assets.find(h)
		if r == nil {
			if short, _, ok := strings.Cut(h, "."); ok {
				r = w.e.Assets.find(short)
			}
		}
		if r != nil {
			w.enrichment(path, h, "asset", w.e.AssetsTopic, r.data)
		}
	}
	if intel.IsDomain(h) {
		w.domain(path, h, obsHostname, at)
	} else if w.Enrichments > added {
		w.observable(path, h, obsHostname, nil)
	}
}

func (w *Worker) email(path, last, parent []byte, e string) {
	added := w.Enrichments
	w.hits = w.hits[:0]
	if w.e.Intel != nil && w.once('x', e) {
		w.hits = w.live(w.e.Intel.LookupExact(e, w.hits[:0]))
		w.intelHits(path, e, w.hits)
	}
	if userField(last, parent) || string(last) == "email_addr" {
		w.identityLookup(path, e)
	}
	if w.Enrichments > added {
		w.observable(path, e, obsEmail, w.hits)
	}
}

func (w *Worker) identity(path []byte, u string) {
	added := w.Enrichments
	w.identityLookup(path, u)
	if w.Enrichments > added {
		w.observable(path, u, obsUser, nil)
	}
}

func (w *Worker) identityLookup(path []byte, u string) {
	if w.e.Identities == nil || !w.once('u', u) {
		return
	}
	r := w.e.Identities.find(u)
	if r == nil {
		// DOMAIN\user, user@domain
		short := u
		if i := strings.LastIndexByte(short, '\\'); i >= 0 {
			short = short[i+1:]
		}
		if i := strings.IndexByte(short, '@'); i > 0 {
			short = short[:i]
		}
		if short != u {
			r = w.e.Identities.find(short)
		}
	}
	if r != nil {
		w.enrichment(path, u, "identity", w.e.IdentitiesTopic, r.data)
	}
}

// live drops the hits of indicators past their valid_until at the
// event's time.
func (w *Worker) live(hits []intel.Hit) []intel.Hit {
	out := hits[:0]
	for _, h := range hits {
		if !h.M.Expired(w.at) {
			out = append(out, h)
		}
	}
	return out
}

// intelHits writes an enrichment per hit and keeps the alert hits.
func (w *Worker) intelHits(path []byte, v string, hits []intel.Hit) {
	for _, h := range hits {
		// The data of a hit is the same each time the indicator matches
		// (a private address hits RFC 1918's prefix in most events).
		k := hitKey{h.M, h.Indicator, h.Prefix}
		data, ok := w.intelCache[k]
		if !ok {
			data = intelJSON(h)
			if len(w.intelCache) >= maxGeoCache {
				clear(w.intelCache)
			}
			w.intelCache[k] = data
		}
		w.enrichment(path, v, "intel", h.M.Set, data)
		if h.M.Action == intel.ActionAlert {
			w.Alerts = append(w.Alerts, Alert{Name: string(path), Value: v, Hit: h})
		}
	}
}

// intelJSON is an intel enrichment's data.
func intelJSON(h intel.Hit) []byte {
	var j jw
	j.open()
	m := h.M
	j.str("set", m.Set)
	if m.Source != "" {
		j.str("source", m.Source)
	}
	j.str("action", m.Action)
	j.str("indicator", h.String())
	j.str("indicator_type", m.Type)
	j.str("match", h.Match)
	if m.Severity != "" {
		j.str("severity", m.Severity)
	}
	if m.Title != "" {
		j.str("title", m.Title)
	}
	if m.Description != "" {
		j.str("description", m.Description)
	}
	if len(m.Labels) > 0 {
		j.key("labels")
		j.b = strList(j.b, m.Labels)
	}
	if m.ID != "" {
		j.str("id", m.ID)
	}
	if m.Confidence != 0 {
		j.int("confidence", m.Confidence)
	}
	if m.ValidUntil != "" {
		j.str("valid_until", m.ValidUntil)
	}
	j.close()
	return j.b
}

// enrichment appends one OCSF enrichment object.
func (w *Worker) enrichment(path []byte, value, typ, provider string, data []byte) {
	if len(w.ens) > 0 {
		w.ens = append(w.ens, ',')
	}
	w.ens = append(w.ens, `{"name":`...)
	w.ens = appendString(w.ens, string(path))
	w.ens = append(w.ens, `,"value":`...)
	w.ens = appendString(w.ens, value)
	w.ens = append(w.ens, `,"type":`...)
	w.ens = appendString(w.ens, typ)
	if provider != "" {
		w.ens = append(w.ens, `,"provider":`...)
		w.ens = appendString(w.ens, provider)
	}
	w.ens = append(w.ens, `,"data":{`...)
	w.ens = appendString(w.ens, typ)
	w.ens = append(w.ens, ':')
	w.ens = append(w.ens, data...)
	w.ens = append(w.ens, "}}"...)
	w.Enrichments++
}

// observable appends one OCSF observable, with the reputation the intel
// hits give it: the worst of its alert sets (by severity), else Probably
// Safe for a value only known-good lists hold.
func (w *Worker) observable(path []byte, value string, typeID int, hits []intel.Hit) {
	if len(w.obs) > 0 {
		w.obs = append(w.obs, ',')
	}
	var j jw
	j.b = w.obs
	j.open()
	j.str("name", string(path))
	j.int("type_id", typeID)
	j.str("type", obsNames[typeID])
	j.str("value", value)
	if len(hits) > 0 {
		score, provider := 0, ""
		for _, h := range hits {
			s := reputation(h.M)
			if s > score {
				score, provider = s, h.M.Set
			}
		}
		j.key("reputation")
		j.open()
		j.key("base_score")
		j.b = append(j.b, []byte(itoa(score))...)
		j.str("provider", provider)
		j.str("score", scoreNames[score])
		j.int("score_id", score)
		j.close()
	}
	j.close()
	w.obs = j.b
}

// OCSF reputation score ids.
var scoreNames = map[int]string{0: "Unknown", 1: "Very Safe", 2: "Safe", 3: "Probably Safe", 4: "Leans Safe", 5: "May not be Safe",
	6: "Exercise Caution", 7: "Suspicious/Risky", 8: "Possibly Malicious", 9: "Probably Malicious", 10: "Malicious"}

func reputation(m *intel.Meta) int {
	if m.Action == intel.ActionContext {
		return 3
	}
	switch m.Severity {
	case "critical", "high":
		return 10
	case "medium", "":
		return 9
	case "low":
		return 8
	}
	return 7
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return "10"
}
