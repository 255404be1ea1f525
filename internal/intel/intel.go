// Package intel holds threat intelligence as Vigil keeps it: indicators
// of compromise (IOCs) and known-good lists, one record per indicator in
// compacted `intel.*` topics, loaded from the formats feeds come in (MISP
// warninglists and feed events, STIX 2.1 bundles, CSV) and matched in
// memory by an Index.
//
// A record is keyed "<set>|<type>:<value>" and its value is the JSON of a
// Record; a record without a value (a tombstone) removes the indicator
// from its set, so a compacted topic is the current state of every set it
// holds and the Index a consumer builds from it follows updates without a
// restart. Values are normalised when a Record is made (lower-case
// domains, hashes and e-mail addresses; canonical IP addresses and
// masked prefixes; URLs with a lower-case scheme and host), so matching
// an event's value is one map lookup after the same normalisation.
//
// A set's Action says what a hit is: "alert" (a Detection Finding of its
// own besides the enrichment; the default for feeds of bad indicators)
// or "context" (the enrichment only; the default for MISP warninglists,
// which list known-good infrastructure to suppress false positives).
package intel

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Indicator types.
const (
	TypeIP     = "ip"     // an address
	TypeCIDR   = "cidr"   // a prefix: matches every address in it
	TypeDomain = "domain" // a domain name (with Suffix: and every name under it)
	TypeURL    = "url"
	TypeMD5    = "md5"
	TypeSHA1   = "sha1"
	TypeSHA256 = "sha256"
	TypeSHA512 = "sha512"
	TypeEmail  = "email"
)

// Actions.
const (
	ActionAlert   = "alert"
	ActionContext = "context"
)

// Record is one indicator of one set, the value of an intel.* record.
type Record struct {
	Set   string `json:"set"`
	Type  string `json:"type"`
	Value string `json:"value"`
	// Suffix (domains only): the indicator matches the domain and every
	// name under it (MISP warninglists of type hostname).
	Suffix bool `json:"suffix,omitempty"`
	// Source is the format it came from: misp-warninglist, misp-feed,
	// stix, csv.
	Source string `json:"source,omitempty"`
	// Action is alert or context (default: alert).
	Action string `json:"action,omitempty"`
	// Severity of a finding: informational, low, medium, high, critical.
	Severity    string   `json:"severity,omitempty"`
	Title       string   `json:"title,omitempty"`
	Description string   `json:"description,omitempty"`
	Labels      []string `json:"labels,omitempty"`
	// ID is the indicator's id in its source (a STIX indicator id, a
	// MISP attribute uuid).
	ID         string `json:"id,omitempty"`
	Confidence int    `json:"confidence,omitempty"`
	// ValidUntil: past it the indicator no longer matches (RFC 3339).
	ValidUntil string `json:"valid_until,omitempty"`
}

// Key is the record key of r on an intel.* topic; a suffix domain's
// value is written "*.example.com", so the name alone and the name with
// everything under it are two indicators of a set.
func (r *Record) Key() string {
	if r.Suffix {
		return r.Set + "|" + r.Type + ":*." + r.Value
	}
	return r.Set + "|" + r.Type + ":" + r.Value
}

// ParseKey splits a record key into set, type and value.
func ParseKey(k string) (set, typ, value string, ok bool) {
	set, rest, ok := strings.Cut(k, "|")
	if !ok {
		return "", "", "", false
	}
	typ, value, ok = strings.Cut(rest, ":")
	return set, typ, value, ok && set != "" && value != ""
}

// Marshal is r's JSON, the record value.
func (r *Record) Marshal() []byte {
	b, err := json.Marshal(r)
	if err != nil { // strings and ints only
		panic(err)
	}
	return b
}

// Normalize checks r and puts its value in canonical form (see the
// package comment); an empty Action becomes alert.
func (r *Record) Normalize() error {
	if r.Set == "" || strings.Contains(r.Set, "|") {
		return fmt.Errorf("intel: set name %q (must be non-empty, without |)", r.Set)
	}
	switch r.Action {
	case "":
		r.Action = ActionAlert
	case ActionAlert, ActionContext:
	default:
		return fmt.Errorf("intel: action %q: want alert or context", r.Action)
	}
	if r.ValidUntil != "" {
		if _, err := time.Parse(time.RFC3339, r.ValidUntil); err != nil {
			return fmt.Errorf("intel: valid_until %q: %w", r.ValidUntil, err)
		}
	}
	v, err := NormalizeValue(r.Type, r.Value)
	if err != nil {
		return err
	}
	r.Value = v
	if r.Type == TypeIP && strings.Contains(v, "/") {
		r.Type = TypeCIDR
	}
	if r.Type == TypeCIDR && !strings.Contains(v, "/") {
		r.Type = TypeIP
	}
	return nil
}

// NormalizeValue returns v in the canonical form of its type.
func NormalizeValue(typ, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", errors.New("intel: empty value")
	}
	switch typ {
	case TypeIP, TypeCIDR:
		if strings.Contains(v, "/") {
			p, err := netip.ParsePrefix(v)
			if err != nil {
				return "", fmt.Errorf("intel: %s %q: %w", typ, v, err)
			}
			p = p.Masked()
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			if p.IsSingleIP() {
				return p.Addr().String(), nil
			}
			return p.String(), nil
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return "", fmt.Errorf("intel: %s %q: %w", typ, v, err)
		}
		return a.Unmap().WithZone("").String(), nil
	case TypeDomain:
		d := strings.TrimSuffix(strings.TrimPrefix(strings.ToLower(v), "*."), ".")
		if !IsDomain(d) {
			return "", fmt.Errorf("intel: domain %q is not a domain name", v)
		}
		return d, nil
	case TypeURL:
		return NormalizeURL(v)
	case TypeMD5, TypeSHA1, TypeSHA256, TypeSHA512:
		h := strings.ToLower(v)
		if HashType(h) != typ {
			return "", fmt.Errorf("intel: %q is not a %s hash", v, typ)
		}
		return h, nil
	case TypeEmail:
		e := strings.ToLower(v)
		local, dom, ok := strings.Cut(e, "@")
		if !ok || local == "" || !IsDomain(dom) {
			return "", fmt.Errorf("intel: %q is not an e-mail address", v)
		}
		return e, nil
	}
	return "", fmt.Errorf("intel: unknown indicator type %q", typ)
}

// NormalizeURL lower-cases a URL's scheme and host and drops a default
// port and the fragment; the path and query keep their case.
func NormalizeURL(v string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(v))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("intel: url %q: not an absolute URL", v)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Host)
	host = strings.TrimSuffix(host, ":80")
	if u.Scheme == "https" {
		host = strings.TrimSuffix(host, ":443")
	}
	u.Host = host
	u.Fragment, u.RawFragment = "", ""
	return u.String(), nil
}

// HashType names the hash a lower-case hex string can be by its length,
// or "".
func HashType(s string) string {
	var t string
	switch len(s) {
	case 32:
		t = TypeMD5
	case 40:
		t = TypeSHA1
	case 64:
		t = TypeSHA256
	case 128:
		t = TypeSHA512
	default:
		return ""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return ""
		}
	}
	return t
}

// IsDomain reports whether s (lower case) is a domain name with at least
// two labels whose last is not numeric.
func IsDomain(s string) bool {
	if len(s) < 3 || len(s) > 253 || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	dots, labelStart, lastAlpha := 0, 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if i == labelStart || i-labelStart > 63 {
				return false
			}
			dots++
			labelStart = i + 1
			lastAlpha = false
		case c >= 'a' && c <= 'z':
			lastAlpha = true
		case c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return dots > 0 && lastAlpha
}

// Guess names the type of a bare indicator value by its shape: an
// address, a prefix, a URL, a hash, an e-mail address or a domain ("" if
// none).
func Guess(v string) string {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return ""
	case strings.Contains(v, "://"):
		return TypeURL
	}
	if _, err := netip.ParseAddr(v); err == nil {
		return TypeIP
	}
	if _, err := netip.ParsePrefix(v); err == nil {
		return TypeCIDR
	}
	l := strings.ToLower(v)
	if t := HashType(l); t != "" {
		return t
	}
	if strings.Contains(l, "@") {
		return TypeEmail
	}
	if IsDomain(strings.TrimPrefix(strings.TrimSuffix(l, "."), "*.")) {
		return TypeDomain
	}
	return ""
}
