package acl

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// roundTrip encodes r at version v and decodes it as the broker does.
func roundTrip[T interface {
	kmsg.Request
	SetVersion(int16)
}](t *testing.T, r T, decoded T, v int16) T {
	t.Helper()
	r.SetVersion(v)
	data := r.AppendTo(nil)
	decoded.SetVersion(v)
	if err := decoded.ReadFrom(data); err != nil {
		t.Fatal(err)
	}
	return decoded
}

// TestFromCreationV0: a v0 creation carries no pattern type and is LITERAL.
func TestFromCreationV0(t *testing.T) {
	req := kmsg.NewPtrCreateACLsRequest()
	c := kmsg.NewCreateACLsRequestCreation()
	c.ResourceType, c.ResourceName = kmsg.ACLResourceTypeTopic, "orders"
	c.ResourcePatternType = kmsg.ACLResourcePatternTypePrefixed // not sent at v0
	c.Principal, c.Host = "User:alice", "*"
	c.Operation, c.PermissionType = kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
	req.Creations = append(req.Creations, c)

	for v, want := range map[int16]kmsg.ACLResourcePatternType{0: kmsg.ACLResourcePatternTypeLiteral, 1: kmsg.ACLResourcePatternTypePrefixed, 3: kmsg.ACLResourcePatternTypePrefixed} {
		got := roundTrip(t, req, kmsg.NewPtrCreateACLsRequest(), v)
		b, err := FromCreation(got.Creations[0])
		if err != nil {
			t.Fatal(err)
		}
		wantB := Binding{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: "orders", PatternType: want,
			Principal: "User:alice", Host: "*", Operation: kmsg.ACLOperationRead, Permission: kmsg.ACLPermissionTypeAllow}
		if b != wantB {
			t.Errorf("v%d: %s, want %s", v, b, wantB)
		}
	}
	c.ResourceName = ""
	if _, err := FromCreation(c); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("FromCreation with an empty name: %v", err)
	}
}

func TestFilterFromDescribe(t *testing.T) {
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType, req.ResourceName = kmsg.ACLResourceTypeTopic, str("orders")
	req.ResourcePatternType = kmsg.ACLResourcePatternTypeMatch
	req.Principal, req.Host = str("User:alice"), nil
	req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeDeny

	f, err := FilterFromDescribe(roundTrip(t, req, kmsg.NewPtrDescribeACLsRequest(), 3))
	if err != nil {
		t.Fatal(err)
	}
	want := Filter{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: str("orders"), PatternType: kmsg.ACLResourcePatternTypeMatch,
		Principal: str("User:alice"), Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeDeny}
	if fmt.Sprint(deref(f)) != fmt.Sprint(deref(want)) {
		t.Fatalf("filter %v, want %v", deref(f), deref(want))
	}
	// v0 has no pattern type: LITERAL, as Kafka normalizes it.
	f, err = FilterFromDescribe(roundTrip(t, req, kmsg.NewPtrDescribeACLsRequest(), 0))
	if err != nil || f.PatternType != kmsg.ACLResourcePatternTypeLiteral {
		t.Fatalf("v0 filter %v, %v; want LITERAL", deref(f), err)
	}
	req.Operation = kmsg.ACLOperationUnknown
	if _, err := FilterFromDescribe(req); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("UNKNOWN operation: %v, want INVALID_REQUEST", err)
	}
}

func deref(f Filter) []any {
	s := func(p *string) any {
		if p == nil {
			return nil
		}
		return *p
	}
	return []any{f.ResourceType, s(f.ResourceName), f.PatternType, s(f.Principal), s(f.Host), f.Operation, f.Permission}
}

// TestDescribeResources: grouped by resource pattern, as Kafka's
// DescribeAclsResponse.aclsResources groups them, in a stable order.
func TestDescribeResources(t *testing.T) {
	bs := parseAll(t,
		"ALLOW User:bob READ TOPIC:LITERAL:orders",
		"DENY User:* WRITE TOPIC:PREFIXED:orders 10.0.0.1",
		"ALLOW User:alice READ TOPIC:LITERAL:orders",
		"ALLOW User:alice READ GROUP:LITERAL:orders",
	)
	got := DescribeResources(bs)
	type acl struct {
		p, h    string
		op      kmsg.ACLOperation
		allowed kmsg.ACLPermissionType
	}
	type res struct {
		rt   kmsg.ACLResourceType
		name string
		pt   kmsg.ACLResourcePatternType
		acls []acl
	}
	want := []res{
		{kmsg.ACLResourceTypeTopic, "orders", kmsg.ACLResourcePatternTypeLiteral, []acl{
			{"User:alice", "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow},
			{"User:bob", "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow},
		}},
		{kmsg.ACLResourceTypeTopic, "orders", kmsg.ACLResourcePatternTypePrefixed, []acl{
			{"User:*", "10.0.0.1", kmsg.ACLOperationWrite, kmsg.ACLPermissionTypeDeny},
		}},
		{kmsg.ACLResourceTypeGroup, "orders", kmsg.ACLResourcePatternTypeLiteral, []acl{
			{"User:alice", "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow},
		}},
	}
	var gotRes []res
	for _, r := range got {
		x := res{r.ResourceType, r.ResourceName, r.ResourcePatternType, nil}
		for _, a := range r.ACLs {
			x.acls = append(x.acls, acl{a.Principal, a.Host, a.Operation, a.PermissionType})
		}
		gotRes = append(gotRes, x)
	}
	if fmt.Sprint(gotRes) != fmt.Sprint(want) {
		t.Fatalf("resources\n%v\nwant\n%v", gotRes, want)
	}
	if DescribeResources(nil) != nil {
		t.Fatal("no bindings, resources not empty")
	}
}

func TestDeleteMatches(t *testing.T) {
	bs := parseAll(t, "DENY User:* WRITE TOPIC:PREFIXED:orders 10.0.0.1", "ALLOW User:alice READ GROUP:LITERAL:g")
	got := DeleteMatches(bs)
	if len(got) != 2 {
		t.Fatalf("%d matches", len(got))
	}
	m := got[0]
	if m.ErrorCode != 0 || m.ResourceType != kmsg.ACLResourceTypeTopic || m.ResourceName != "orders" ||
		m.ResourcePatternType != kmsg.ACLResourcePatternTypePrefixed || m.Principal != "User:*" || m.Host != "10.0.0.1" ||
		m.Operation != kmsg.ACLOperationWrite || m.PermissionType != kmsg.ACLPermissionTypeDeny {
		t.Fatalf("match %+v", m)
	}
	if got[1].ResourceType != kmsg.ACLResourceTypeGroup {
		t.Fatalf("matches not sorted: %+v", got)
	}
}

func TestErrorCode(t *testing.T) {
	for _, c := range []struct {
		err     error
		code    int16
		message bool
	}{
		{nil, 0, false},
		{invalid("bad"), kerr.InvalidRequest.Code, true},
		{fmt.Errorf("wrapped: %w", invalid("bad")), kerr.InvalidRequest.Code, true},
		{fmt.Errorf("store: %w", kerr.NotController), kerr.NotController.Code, false},
		{errors.New("disk on fire"), kerr.UnknownServerError.Code, false},
	} {
		code, msg := ErrorCode(c.err)
		if code != c.code || (msg != nil) != c.message {
			t.Errorf("ErrorCode(%v) = %d, %v; want %d, message %v", c.err, code, msg, c.code, c.message)
		}
	}
}

func creation(t *testing.T, s string) kmsg.CreateACLsRequestCreation {
	b := parse(t, s)
	c := kmsg.NewCreateACLsRequestCreation()
	c.ResourceType, c.ResourceName, c.ResourcePatternType = b.ResourceType, b.ResourceName, b.PatternType
	c.Principal, c.Host, c.Operation, c.PermissionType = b.Principal, b.Host, b.Operation, b.Permission
	return c
}

// TestCreate: results in order, invalid creations refused alone, identical
// bindings stored once, a store failure answered on the valid ones.
func TestCreate(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	results := Create(ctx, s, []kmsg.CreateACLsRequestCreation{
		creation(t, "ALLOW User:alice READ TOPIC:LITERAL:orders"),
		creation(t, "ALLOW alice READ TOPIC:LITERAL:orders"),
		creation(t, "ALLOW User:alice READ TOPIC:LITERAL:orders"),
		creation(t, "ALLOW User:alice READ CLUSTER:LITERAL:other"),
		creation(t, "DENY User:* WRITE TOPIC:PREFIXED:orders 10.0.0.1"),
	})
	wantCodes := []int16{0, kerr.InvalidRequest.Code, 0, kerr.InvalidRequest.Code, 0}
	for i, r := range results {
		if r.ErrorCode != wantCodes[i] {
			t.Errorf("creation %d: code %d, want %d (%v)", i, r.ErrorCode, wantCodes[i], r.ErrorMessage)
		}
		if (r.ErrorMessage != nil) != (wantCodes[i] != 0) {
			t.Errorf("creation %d: message %v", i, r.ErrorMessage)
		}
	}
	// Creating again is idempotent.
	Create(ctx, s, []kmsg.CreateACLsRequestCreation{creation(t, "ALLOW User:alice READ TOPIC:LITERAL:orders")})
	stored, _ := s.ACLs(ctx)
	if len(stored) != 2 {
		t.Fatalf("stored %v, want 2 bindings", stored)
	}

	s.fail = kerr.NotController
	results = Create(ctx, s, []kmsg.CreateACLsRequestCreation{
		creation(t, "ALLOW User:bob READ TOPIC:LITERAL:orders"),
		creation(t, "ALLOW User:bob READ TOPIC:LITERAL:"),
	})
	if results[0].ErrorCode != kerr.NotController.Code || results[1].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("store failure: %+v", results)
	}
}

func deletion(f Filter) kmsg.DeleteACLsRequestFilter {
	d := kmsg.NewDeleteACLsRequestFilter()
	d.ResourceType, d.ResourceName, d.ResourcePatternType = f.ResourceType, f.ResourceName, f.PatternType
	d.Principal, d.Host, d.Operation, d.PermissionType = f.Principal, f.Host, f.Operation, f.Permission
	return d
}

// TestDelete: MATCH and ANY filters as Kafka applies them, a binding two
// filters match listed for both, invalid filters refused alone.
func TestDelete(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	all := parseAll(t,
		"ALLOW User:alice READ TOPIC:LITERAL:foobar",
		"ALLOW User:alice READ TOPIC:LITERAL:*",
		"ALLOW User:alice READ TOPIC:PREFIXED:foo",
		"ALLOW User:alice READ TOPIC:PREFIXED:foobarbaz",
		"ALLOW User:alice READ TOPIC:LITERAL:foo",
		"ALLOW User:alice READ GROUP:LITERAL:foobar",
	)
	if err := s.CreateACLs(ctx, all); err != nil {
		t.Fatal(err)
	}
	match := Filter{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: str("foobar"), PatternType: kmsg.ACLResourcePatternTypeMatch,
		Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
	anyFoo := Filter{ResourceType: kmsg.ACLResourceTypeAny, ResourceName: str("foo"), PatternType: kmsg.ACLResourcePatternTypeAny,
		Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
	bad := match
	bad.Permission = kmsg.ACLPermissionTypeUnknown

	results := Delete(ctx, s, []kmsg.DeleteACLsRequestFilter{deletion(match), deletion(bad), deletion(anyFoo)})
	names := func(r kmsg.DeleteACLsResponseResult) []string {
		var out []string
		for _, m := range r.MatchingACLs {
			out = append(out, fmt.Sprintf("%s:%s:%s", m.ResourceType, m.ResourcePatternType, m.ResourceName))
		}
		return out
	}
	if got, want := fmt.Sprint(names(results[0])), "[TOPIC:LITERAL:* TOPIC:PREFIXED:foo TOPIC:LITERAL:foobar]"; got != want || results[0].ErrorCode != 0 {
		t.Errorf("MATCH foobar deleted %s (code %d), want %s", got, results[0].ErrorCode, want)
	}
	if results[1].ErrorCode != kerr.InvalidRequest.Code || len(results[1].MatchingACLs) != 0 {
		t.Errorf("invalid filter: %+v", results[1])
	}
	if got, want := fmt.Sprint(names(results[2])), "[TOPIC:LITERAL:foo TOPIC:PREFIXED:foo]"; got != want {
		t.Errorf("ANY foo deleted %s, want %s", got, want)
	}
	left, _ := s.ACLs(ctx)
	if got, want := fmt.Sprint(left), fmt.Sprint(parseAll(t,
		"ALLOW User:alice READ TOPIC:PREFIXED:foobarbaz",
		"ALLOW User:alice READ GROUP:LITERAL:foobar",
	)); got != want {
		t.Errorf("left %s, want %s", got, want)
	}

	s.fail = errors.New("etcd unreachable")
	results = Delete(ctx, s, []kmsg.DeleteACLsRequestFilter{deletion(anyFoo)})
	if results[0].ErrorCode != kerr.UnknownServerError.Code {
		t.Errorf("store failure: %+v", results[0])
	}
}

// TestDescribeThroughAuthorizer: a DescribeAcls request answered from the
// authorizer's bindings, as Kafka answers from its authorizer.
func TestDescribeThroughAuthorizer(t *testing.T) {
	a := newAuthorizer(t, Config{},
		"ALLOW User:alice READ TOPIC:LITERAL:foobar",
		"ALLOW User:alice READ TOPIC:PREFIXED:foo",
		"ALLOW User:alice READ TOPIC:PREFIXED:bar",
	)
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType, req.ResourceName = kmsg.ACLResourceTypeTopic, str("foobar")
	req.ResourcePatternType = kmsg.ACLResourcePatternTypeMatch
	req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	f, err := FilterFromDescribe(req)
	if err != nil {
		t.Fatal(err)
	}
	res := DescribeResources(a.Bindings(f))
	if len(res) != 2 || res[0].ResourceName != "foo" || res[0].ResourcePatternType != kmsg.ACLResourcePatternTypePrefixed ||
		res[1].ResourceName != "foobar" || res[1].ResourcePatternType != kmsg.ACLResourcePatternTypeLiteral {
		t.Fatalf("resources %+v", res)
	}
}
