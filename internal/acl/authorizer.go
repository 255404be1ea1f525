package acl

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config is an Authorizer's configuration, Kafka's authorizer settings.
type Config struct {
	// SuperUsers are principals ("User:admin") allowed everything
	// (super.users), compared exactly.
	SuperUsers []string
	// AllowEveryoneIfNoACLFound allows every operation on a resource no
	// binding applies to (allow.everyone.if.no.acl.found; default false).
	AllowEveryoneIfNoACLFound bool
}

// Authorizer decides operations from the current bindings. Create it with
// New (the zero value has no super users and no bindings); it is safe for
// concurrent use, and Authorize and AuthorizeAny neither lock nor allocate.
type Authorizer struct {
	reloadMu sync.Mutex // serializes Reloads: the last to read the store is the last to apply
	mu       sync.Mutex // serializes writers: SetBindings, SetConfig
	snap     atomic.Pointer[snapshot]
}

var emptySnapshot = &snapshot{}

func (a *Authorizer) load() *snapshot {
	if s := a.snap.Load(); s != nil {
		return s
	}
	return emptySnapshot
}

// New returns an Authorizer with no bindings. A super user that is not in
// "Type:Name" form is an error, as it is for Kafka's super.users.
func New(cfg Config) (*Authorizer, error) {
	a := &Authorizer{}
	s := &snapshot{}
	if err := s.configure(cfg); err != nil {
		return nil, err
	}
	a.snap.Store(s)
	return a, nil
}

// SetConfig replaces the configuration, keeping the bindings.
func (a *Authorizer) SetConfig(cfg Config) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.load()
	s := &snapshot{bindings: old.bindings, types: old.types}
	if err := s.configure(cfg); err != nil {
		return err
	}
	a.snap.Store(s)
	return nil
}

// SetBindings replaces every binding at once. Identical bindings count
// once; bs is not kept. Of concurrent calls, any may land last: a caller
// with several sources of updates uses Reload, or serializes them.
func (a *Authorizer) SetBindings(bs []Binding) {
	bindings, types := index(bs)
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.load()
	a.snap.Store(&snapshot{
		superUsers:    old.superUsers,
		allowEveryone: old.allowEveryone,
		bindings:      bindings,
		types:         types,
	})
}

// Reload replaces the bindings with those s holds. Reloads run one at a
// time, so after a change is stored, the next Reload to return has it.
func (a *Authorizer) Reload(ctx context.Context, s Store) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	bs, err := s.ACLs(ctx)
	if err != nil {
		return err
	}
	a.SetBindings(bs)
	return nil
}

// Bindings returns every binding f matches, sorted by resource pattern
// (type, name, pattern type), then entry.
func (a *Authorizer) Bindings(f Filter) []Binding {
	return Select(a.load().bindings, f)
}

// Authorize reports whether principal, connected from host (an IP address
// as text), may do op on the resource of type resType named name.
func (a *Authorizer) Authorize(principal, host string, op kmsg.ACLOperation, resType kmsg.ACLResourceType, name string) bool {
	return a.load().authorize(principal, host, op, resType, name)
}

// AuthorizeAny reports whether principal, from host, may do op on at least
// one resource of type resType: Kafka's authorizeByResourceType (KIP-679:
// an idempotent producer needs IDEMPOTENT_WRITE on the cluster or this for
// WRITE on topics). An ANY or UNKNOWN type or operation is never allowed.
func (a *Authorizer) AuthorizeAny(principal, host string, op kmsg.ACLOperation, resType kmsg.ACLResourceType) bool {
	return a.load().authorizeAny(principal, host, op, resType)
}

// snapshot is one immutable state of an Authorizer.
type snapshot struct {
	superUsers    map[string]struct{}
	allowEveryone bool
	bindings      []Binding                                // deduplicated, sorted
	types         [kmsg.ACLResourceTypeUser + 1]*typeIndex // by resource type; nil: no binding of that type
}

func (s *snapshot) configure(cfg Config) error {
	s.superUsers = make(map[string]struct{}, len(cfg.SuperUsers))
	for _, p := range cfg.SuperUsers {
		if !strings.Contains(p, ":") {
			return fmt.Errorf("acl: super user %q: expected a principal in the form Type:Name", p)
		}
		s.superUsers[p] = struct{}{}
	}
	s.allowEveryone = cfg.AllowEveryoneIfNoACLFound
	return nil
}

// typeIndex holds the bindings of one resource type.
type typeIndex struct {
	literal  map[string]*entrySet // LITERAL bindings by name, "*" included
	wildcard *entrySet            // literal["*"]
	prefixes node                 // PREFIXED bindings, a radix trie by name
	// allows lists the ALLOW bindings by principal, for AuthorizeAny.
	allows map[string][]flatEntry
}

// entrySet is the entries of one resource pattern, sorted by principal so a
// check looks at the principal's and the wildcard principal's only.
type entrySet struct {
	entries []entry
}

type entry struct {
	principal string
	host      string
	addr      netip.Addr // host as an address; invalid for "*" or a non-address
	op        kmsg.ACLOperation
	allow     bool // Kafka treats every permission but ALLOW as DENY
}

type flatEntry struct {
	name     string
	prefixed bool
	entry
}

// node is a radix trie node: label is the text on the edge into it, and set
// holds the PREFIXED bindings whose name ends here.
type node struct {
	label    string
	children []*node // sorted by label[0]
	set      *entrySet
}

// index deduplicates and sorts bs and builds the per-type indexes.
func index(bs []Binding) ([]Binding, [kmsg.ACLResourceTypeUser + 1]*typeIndex) {
	var types [kmsg.ACLResourceTypeUser + 1]*typeIndex
	sorted := make([]Binding, len(bs))
	copy(sorted, bs)
	sort.Slice(sorted, func(i, j int) bool { return less(sorted[i], sorted[j]) })
	out := sorted[:0]
	for i, b := range sorted {
		if i > 0 && b == sorted[i-1] {
			continue
		}
		out = append(out, b)
	}
	bindings := out[:len(out):len(out)]
	for _, b := range bindings {
		if b.ResourceType < 0 || int(b.ResourceType) >= len(types) {
			continue // matches no resource
		}
		t := types[b.ResourceType]
		if t == nil {
			t = &typeIndex{literal: map[string]*entrySet{}, allows: map[string][]flatEntry{}}
			types[b.ResourceType] = t
		}
		e := entry{
			principal: b.Principal,
			host:      b.Host,
			op:        b.Operation,
			allow:     b.Permission == kmsg.ACLPermissionTypeAllow,
		}
		if b.Host != Wildcard {
			if addr, err := netip.ParseAddr(b.Host); err == nil {
				e.addr = addr.Unmap()
			}
		}
		var set *entrySet
		switch b.PatternType {
		case kmsg.ACLResourcePatternTypeLiteral:
			set = t.literal[b.ResourceName]
			if set == nil {
				set = &entrySet{}
				t.literal[b.ResourceName] = set
			}
		case kmsg.ACLResourcePatternTypePrefixed:
			n := t.prefixes.insert(b.ResourceName)
			if n.set == nil {
				n.set = &entrySet{}
			}
			set = n.set
		default:
			continue // matches no resource
		}
		// bindings are sorted by pattern, then principal: entries arrive in
		// principal order.
		set.entries = append(set.entries, e)
		if e.allow {
			t.allows[b.Principal] = append(t.allows[b.Principal], flatEntry{
				name:     b.ResourceName,
				prefixed: b.PatternType == kmsg.ACLResourcePatternTypePrefixed,
				entry:    e,
			})
		}
	}
	for _, t := range types {
		if t != nil {
			t.wildcard = t.literal[Wildcard]
		}
	}
	return bindings, types
}

// less orders bindings by resource pattern (type, name, pattern type), then
// entry (principal, host, operation, permission).
func less(a, b Binding) bool {
	switch {
	case a.ResourceType != b.ResourceType:
		return a.ResourceType < b.ResourceType
	case a.ResourceName != b.ResourceName:
		return a.ResourceName < b.ResourceName
	case a.PatternType != b.PatternType:
		return a.PatternType < b.PatternType
	case a.Principal != b.Principal:
		return a.Principal < b.Principal
	case a.Host != b.Host:
		return a.Host < b.Host
	case a.Operation != b.Operation:
		return a.Operation < b.Operation
	}
	return a.Permission < b.Permission
}

// insert returns the node for key below n, creating it (and splitting an
// edge) as needed.
func (n *node) insert(key string) *node {
	for key != "" {
		i := n.search(key[0])
		if i == len(n.children) || n.children[i].label[0] != key[0] {
			leaf := &node{label: key}
			n.children = append(n.children, nil)
			copy(n.children[i+1:], n.children[i:])
			n.children[i] = leaf
			return leaf
		}
		c := n.children[i]
		l := commonPrefix(c.label, key)
		if l < len(c.label) {
			mid := &node{label: c.label[:l], children: []*node{c}}
			c.label = c.label[l:]
			n.children[i] = mid
			c = mid
		}
		n, key = c, key[l:]
	}
	return n
}

// search returns the index of the first child whose label starts with a
// byte >= b.
func (n *node) search(b byte) int {
	lo, hi := 0, len(n.children)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if n.children[m].label[0] < b {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func commonPrefix(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// check is one authorization in progress: the request and what the
// entries seen so far say.
type check struct {
	principal string
	host      string
	op        kmsg.ACLOperation
	addr      netip.Addr
	parsed    bool // addr holds host parsed (or invalid if it is no address)

	exact   bool // AuthorizeAny: operations match only themselves and ALL
	found   bool // some binding applies to the resource
	allowed bool // a matching ALLOW
	denied  bool // a matching DENY
}

// visit applies the entries of one pattern that applies to the resource.
func (c *check) visit(s *entrySet) {
	if len(s.entries) == 0 {
		return
	}
	c.found = true
	c.principalEntries(s, c.principal)
	if !c.denied && c.principal != WildcardPrincipal {
		c.principalEntries(s, WildcardPrincipal)
	}
}

func (c *check) principalEntries(s *entrySet, principal string) {
	es := s.entries
	lo, hi := 0, len(es)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if es[m].principal < principal {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for i := lo; i < len(es) && es[i].principal == principal; i++ {
		e := &es[i]
		if !c.hostMatches(e) || !c.opMatches(e) {
			continue
		}
		if !e.allow {
			c.denied = true
			return
		}
		c.allowed = true
	}
}

// hostMatches compares e's host with the client's: "*", the same text, or
// the same IP address (Kafka compares text only; see the package comment).
func (c *check) hostMatches(e *entry) bool {
	if e.host == Wildcard || e.host == c.host {
		return true
	}
	if !e.addr.IsValid() {
		return false
	}
	if !c.parsed {
		c.parsed = true
		if addr, err := netip.ParseAddr(c.host); err == nil {
			c.addr = addr.Unmap()
		}
	}
	return c.addr == e.addr
}

// opMatches is Kafka's StandardAuthorizerData.findResult on operations.
func (c *check) opMatches(e *entry) bool {
	if e.op == kmsg.ACLOperationAll || e.op == c.op {
		return true
	}
	if c.exact || !e.allow {
		return false
	}
	switch c.op {
	case kmsg.ACLOperationDescribe:
		switch e.op {
		case kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter:
			return true
		}
	case kmsg.ACLOperationDescribeConfigs:
		return e.op == kmsg.ACLOperationAlterConfigs
	}
	return false
}

// prefixes visits the sets of every PREFIXED pattern that is a prefix of
// name, stopping at a DENY.
func (c *check) prefixes(root *node, name string) {
	n := root
	if n.set != nil {
		c.visit(n.set) // an empty prefix (never valid) is a prefix of all
	}
	for rest := name; rest != "" && !c.denied; {
		i := n.search(rest[0])
		if i == len(n.children) {
			return
		}
		child := n.children[i]
		if !strings.HasPrefix(rest, child.label) {
			return
		}
		rest = rest[len(child.label):]
		if child.set != nil {
			c.visit(child.set)
		}
		n = child
	}
}

func (s *snapshot) authorize(principal, host string, op kmsg.ACLOperation, resType kmsg.ACLResourceType, name string) bool {
	if _, ok := s.superUsers[principal]; ok {
		return true
	}
	var t *typeIndex
	if resType >= 0 && int(resType) < len(s.types) {
		t = s.types[resType]
	}
	if t == nil {
		return s.allowEveryone
	}
	c := check{principal: principal, host: host, op: op}
	if set := t.literal[name]; set != nil {
		c.visit(set)
	}
	if !c.denied && t.wildcard != nil && name != Wildcard {
		c.visit(t.wildcard)
	}
	if !c.denied {
		c.prefixes(&t.prefixes, name)
	}
	switch {
	case c.denied:
		return false
	case c.allowed:
		return true
	case !c.found:
		return s.allowEveryone
	}
	return false
}

// hardcodedName is the resource name Kafka's authorizeByResourceType first
// authorizes, so that super users (and allow.everyone.if.no.acl.found, and
// wildcard or matching prefixed ALLOWs) are answered by the usual rules.
const hardcodedName = "hardcode"

// authorizeAny is Kafka's default Authorizer.authorizeByResourceType.
func (s *snapshot) authorizeAny(principal, host string, op kmsg.ACLOperation, resType kmsg.ACLResourceType) bool {
	if !concreteType(resType) || !concreteOp(op) {
		return false
	}
	if s.authorize(principal, host, op, resType, hardcodedName) {
		return true
	}
	t := s.types[resType]
	if t == nil {
		return false
	}
	c := check{principal: principal, host: host, op: op, exact: true}
	// A DENY on the literal wildcard denies; else an ALLOW on it allows.
	if t.wildcard != nil {
		c.visit(t.wildcard)
		if c.denied {
			return false
		}
		if c.allowed {
			return true
		}
	}
	// Any other ALLOW allows unless a DENY dominates it: a LITERAL DENY of
	// the same name (for a LITERAL ALLOW only), or a PREFIXED DENY of a
	// prefix of its name.
	for _, p := range [2]string{principal, WildcardPrincipal} {
		allows := t.allows[p]
		for i := range allows {
			f := &allows[i]
			if (!f.prefixed && f.name == Wildcard) || !c.hostMatches(&f.entry) || !c.opMatches(&f.entry) {
				continue
			}
			if !f.prefixed && c.deniedIn(t.literal[f.name]) {
				continue
			}
			if c.prefixDenied(&t.prefixes, f.name) {
				continue
			}
			return true
		}
		if principal == WildcardPrincipal {
			break
		}
	}
	return false
}

// deniedIn reports whether set holds a DENY matching the check.
func (c *check) deniedIn(set *entrySet) bool {
	if set == nil {
		return false
	}
	c.denied = false
	c.visit(set)
	return c.denied
}

// prefixDenied reports whether a PREFIXED pattern that is a prefix of name
// (name itself included) holds a DENY matching the check.
func (c *check) prefixDenied(root *node, name string) bool {
	c.denied = false
	c.prefixes(root, name)
	return c.denied
}
