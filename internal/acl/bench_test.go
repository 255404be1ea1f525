package acl

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// benchBindings is a 10,000-binding set shaped like a multi-tenant cluster:
// per-service literal topic grants, team prefixes (and DENYs under them),
// groups, transactional ids, host-pinned grants and a few wildcards.
func benchBindings() []Binding {
	var bs []Binding
	add := func(perm kmsg.ACLPermissionType, principal string, op kmsg.ACLOperation, rt kmsg.ACLResourceType, pt kmsg.ACLResourcePatternType, name, host string) {
		bs = append(bs, Binding{ResourceType: rt, ResourceName: name, PatternType: pt, Principal: principal, Host: host, Operation: op, Permission: perm})
	}
	allow, deny := kmsg.ACLPermissionTypeAllow, kmsg.ACLPermissionTypeDeny
	lit, pre := kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLResourcePatternTypePrefixed
	topic, group, txn := kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeGroup, kmsg.ACLResourceTypeTransactionalId
	for i := range 4000 { // services: read and write their own topics
		op := kmsg.ACLOperationRead
		if i%2 == 1 {
			op = kmsg.ACLOperationWrite
		}
		add(allow, fmt.Sprintf("User:svc-%d", i%400), op, topic, lit, fmt.Sprintf("events.svc-%d.%d", i%400, i/400), "*")
	}
	for i := range 2000 { // teams: prefixes of several depths
		add(allow, fmt.Sprintf("User:team-%d", i%100), kmsg.ACLOperationAll, topic, pre, fmt.Sprintf("team-%d.%d.", i%100, i/100), "*")
	}
	for i := range 500 {
		add(deny, "User:*", kmsg.ACLOperationWrite, topic, pre, fmt.Sprintf("team-%d.%d.frozen.", i%100, i/100), "*")
	}
	for i := range 1500 {
		add(allow, fmt.Sprintf("User:svc-%d", i%400), kmsg.ACLOperationRead, group, lit, fmt.Sprintf("cg-svc-%d-%d", i%400, i/400), "*")
	}
	for i := range 1000 {
		add(allow, fmt.Sprintf("User:svc-%d", i%400), kmsg.ACLOperationWrite, txn, pre, fmt.Sprintf("tx-svc-%d-%d", i%400, i/400), "*")
	}
	for i := range 996 { // host-pinned grants
		add(allow, fmt.Sprintf("User:edge-%d", i%50), kmsg.ACLOperationWrite, topic, lit, fmt.Sprintf("ingest.%d", i), fmt.Sprintf("10.0.%d.%d", i/250, i%250))
	}
	add(allow, "User:*", kmsg.ACLOperationDescribe, topic, lit, "*", "*")
	add(deny, "User:guest", kmsg.ACLOperationAll, topic, lit, "*", "*")
	add(allow, "User:monitor", kmsg.ACLOperationDescribe, group, lit, "*", "*")
	add(allow, "User:ops", kmsg.ACLOperationAll, kmsg.ACLResourceTypeCluster, lit, ClusterName, "*")
	return bs
}

func BenchmarkAuthorize(b *testing.B) {
	bs := benchBindings()
	if len(bs) != 10000 {
		b.Fatalf("%d bindings", len(bs))
	}
	a, err := New(Config{SuperUsers: []string{"User:admin"}})
	if err != nil {
		b.Fatal(err)
	}
	a.SetBindings(bs)
	cases := []struct {
		name string
		r    request
		want bool
	}{
		{"literal", request{"User:svc-17", "10.1.2.3", kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, "events.svc-17.3"}, true},
		{"prefix", request{"User:team-42", "10.1.2.3", kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, "team-42.7.orders.v2"}, true},
		{"prefix-deny", request{"User:team-42", "10.1.2.3", kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, "team-42.3.frozen.x"}, false},
		{"no-grant", request{"User:svc-18", "10.1.2.3", kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, "events.svc-17.3"}, false},
		{"wildcard-describe", request{"User:anyone", "10.1.2.3", kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, "events.svc-17.3"}, true},
		{"host-pinned", request{"User:edge-7", "10.0.0.57", kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, "ingest.57"}, true},
		{"super-user", request{"User:admin", "10.1.2.3", kmsg.ACLOperationAlter, kmsg.ACLResourceTypeCluster, ClusterName}, true},
	}
	for _, c := range cases {
		if got := a.Authorize(c.r.principal, c.r.host, c.r.op, c.r.resType, c.r.name); got != c.want {
			b.Fatalf("%s: %v, want %v", c.name, got, c.want)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a.Authorize(c.r.principal, c.r.host, c.r.op, c.r.resType, c.r.name)
			}
		})
	}
}

func BenchmarkAuthorizeAny(b *testing.B) {
	a, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	a.SetBindings(benchBindings())
	for _, c := range []struct {
		name      string
		principal string
		want      bool
	}{
		{"granted", "User:svc-17", true},
		{"none", "User:nobody", false},
	} {
		if got := a.AuthorizeAny(c.principal, "10.1.2.3", kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic); got != c.want {
			b.Fatalf("%s: %v, want %v", c.name, got, c.want)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a.AuthorizeAny(c.principal, "10.1.2.3", kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic)
			}
		})
	}
}

// BenchmarkSetBindings is the cost of a reload of 10,000 bindings.
func BenchmarkSetBindings(b *testing.B) {
	bs := benchBindings()
	a, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		a.SetBindings(bs)
	}
}
