package acl

import (
	"context"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// MemStore is an in-memory Store for this package's tests only; the broker's
// metadata store is the real one.
type MemStore struct {
	mu   sync.Mutex
	m    map[string]Binding // by Key
	fail error              // returned by every mutating call while set
}

func NewMemStore() *MemStore { return &MemStore{m: map[string]Binding{}} }

func (s *MemStore) ACLs(context.Context) ([]Binding, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Binding, 0, len(s.m))
	for _, b := range s.m {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i], out[j]) })
	return out, nil
}

func (s *MemStore) CreateACLs(_ context.Context, bs []Binding) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	for _, b := range bs {
		s.m[b.Key()] = b
	}
	return nil
}

func (s *MemStore) DeleteACLs(_ context.Context, fs []Filter) ([][]Binding, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	out := make([][]Binding, len(fs))
	gone := map[string]bool{}
	for i, f := range fs {
		for k, b := range s.m {
			if f.Matches(b) {
				out[i] = append(out[i], b)
				gone[k] = true
			}
		}
	}
	for k := range gone {
		delete(s.m, k)
	}
	return out, nil
}

// parse reads a binding written as
//
//	PERMISSION PRINCIPAL OPERATION TYPE:PATTERN:NAME [HOST]
//
// e.g. "ALLOW User:alice READ TOPIC:LITERAL:orders 10.0.0.1" (host "*" when
// left out).
func parse(t testing.TB, s string) Binding {
	t.Helper()
	f := strings.Fields(s)
	if len(f) != 4 && len(f) != 5 {
		t.Fatalf("binding %q: want 4 or 5 fields", s)
	}
	res := strings.SplitN(f[3], ":", 3)
	if len(res) != 3 {
		t.Fatalf("binding %q: resource is TYPE:PATTERN:NAME", s)
	}
	perm, err1 := kmsg.ParseACLPermissionType(f[0])
	op, err2 := kmsg.ParseACLOperation(f[2])
	rt, err3 := kmsg.ParseACLResourceType(res[0])
	pt, err4 := kmsg.ParseACLResourcePatternType(res[1])
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			t.Fatalf("binding %q: %v", s, err)
		}
	}
	host := Wildcard
	if len(f) == 5 {
		host = f[4]
	}
	return Binding{ResourceType: rt, ResourceName: res[2], PatternType: pt, Principal: f[1], Host: host, Operation: op, Permission: perm}
}

func parseAll(t testing.TB, ss ...string) []Binding {
	t.Helper()
	out := make([]Binding, len(ss))
	for i, s := range ss {
		out[i] = parse(t, s)
		if err := out[i].Validate(); err != nil {
			t.Fatalf("binding %q: %v", s, err)
		}
	}
	return out
}

func newAuthorizer(t testing.TB, cfg Config, bindings ...string) *Authorizer {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.SetBindings(parseAll(t, bindings...))
	return a
}

func str(s string) *string { return &s }
