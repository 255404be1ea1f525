package acl

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

type request struct {
	principal string
	host      string
	op        kmsg.ACLOperation
	resType   kmsg.ACLResourceType
	name      string
}

// req reads "PRINCIPAL@HOST OPERATION TYPE:NAME".
func req(t testing.TB, s string) request {
	t.Helper()
	var who, opName, res string
	if _, err := fmt.Sscan(s, &who, &opName, &res); err != nil {
		t.Fatalf("request %q: %v", s, err)
	}
	r := request{}
	for i := len(who) - 1; i >= 0; i-- {
		if who[i] == '@' {
			r.principal, r.host = who[:i], who[i+1:]
			break
		}
	}
	var err error
	if r.op, err = kmsg.ParseACLOperation(opName); err != nil {
		t.Fatal(err)
	}
	for i := range res {
		if res[i] == ':' {
			if r.resType, err = kmsg.ParseACLResourceType(res[:i]); err != nil {
				t.Fatal(err)
			}
			r.name = res[i+1:]
			break
		}
	}
	return r
}

// TestAuthorize: each of Kafka's rules, and the documented examples.
func TestAuthorize(t *testing.T) {
	super := Config{SuperUsers: []string{"User:admin"}}
	everyone := Config{AllowEveryoneIfNoACLFound: true}
	tests := []struct {
		name     string
		cfg      Config
		bindings []string
		checks   map[string]bool // request -> allowed
	}{
		{
			name:     "literal allow applies to its principal, name and operation only",
			bindings: []string{"ALLOW User:alice READ TOPIC:LITERAL:orders"},
			checks: map[string]bool{
				"User:alice@10.0.0.1 READ TOPIC:orders":   true,
				"User:bob@10.0.0.1 READ TOPIC:orders":     false,
				"User:alice@10.0.0.1 READ TOPIC:payments": false,
				"User:alice@10.0.0.1 WRITE TOPIC:orders":  false,
				"User:alice@10.0.0.1 READ TOPIC:orders2":  false,
				"User:alice@10.0.0.1 READ TOPIC:order":    false,
				"User:alice@10.0.0.1 READ GROUP:orders":   false, // types are separate
				"User:Alice@10.0.0.1 READ TOPIC:orders":   false, // principals are case-sensitive
				"Group:alice@10.0.0.1 READ TOPIC:orders":  false, // and typed
			},
		},
		{
			name:     "User:* matches every principal, of any type",
			bindings: []string{"ALLOW User:* READ TOPIC:LITERAL:orders"},
			checks: map[string]bool{
				"User:bob@10.0.0.1 READ TOPIC:orders":       true,
				"Group:ops@10.0.0.1 READ TOPIC:orders":      true,
				"User:ANONYMOUS@10.0.0.1 READ TOPIC:orders": true,
			},
		},
		{
			name:     "Group:* is no wildcard",
			bindings: []string{"ALLOW Group:* READ TOPIC:LITERAL:orders"},
			checks: map[string]bool{
				"Group:ops@10.0.0.1 READ TOPIC:orders": false,
				"Group:*@10.0.0.1 READ TOPIC:orders":   true,
			},
		},
		{
			name:     "the literal * matches every name of its type",
			bindings: []string{"ALLOW User:alice READ TOPIC:LITERAL:*"},
			checks: map[string]bool{
				"User:alice@10.0.0.1 READ TOPIC:orders": true,
				"User:alice@10.0.0.1 READ TOPIC:*":      true,
				"User:alice@10.0.0.1 READ GROUP:orders": false,
			},
		},
		{
			name:     "prefixed foo matches foobar (KIP-290) and foo, not fo or barfoo",
			bindings: []string{"ALLOW User:alice READ TOPIC:PREFIXED:foo"},
			checks: map[string]bool{
				"User:alice@10.0.0.1 READ TOPIC:foobar": true,
				"User:alice@10.0.0.1 READ TOPIC:foo":    true,
				"User:alice@10.0.0.1 READ TOPIC:fo":     false,
				"User:alice@10.0.0.1 READ TOPIC:barfoo": false,
				"User:alice@10.0.0.1 READ TOPIC:Foobar": false,
			},
		},
		{
			name:     "a literal name is not a prefix",
			bindings: []string{"ALLOW User:alice READ TOPIC:LITERAL:foo"},
			checks:   map[string]bool{"User:alice@10.0.0.1 READ TOPIC:foobar": false},
		},
		{
			name: "prefixes nest: every prefix of the name applies",
			bindings: []string{
				"ALLOW User:alice READ TOPIC:PREFIXED:a",
				"DENY User:alice READ TOPIC:PREFIXED:abc",
				"ALLOW User:alice WRITE TOPIC:PREFIXED:abd",
				"ALLOW User:alice DESCRIBE TOPIC:PREFIXED:abcdef",
				"ALLOW User:bob READ TOPIC:PREFIXED:ab",
			},
			checks: map[string]bool{
				"User:alice@h READ TOPIC:ab":          true,
				"User:alice@h READ TOPIC:abc":         false,
				"User:alice@h READ TOPIC:abcdefg":     false,
				"User:alice@h READ TOPIC:abd":         true,
				"User:alice@h WRITE TOPIC:abdx":       true,
				"User:alice@h WRITE TOPIC:abc":        false,
				"User:alice@h DESCRIBE TOPIC:abcdefg": true, // DENY READ does not deny DESCRIBE
				"User:bob@h READ TOPIC:abc":           true,
				"User:bob@h READ TOPIC:a":             false,
			},
		},
		{
			name: "a DENY of User:* on a prefix beats a literal ALLOW",
			bindings: []string{
				"ALLOW User:alice READ TOPIC:LITERAL:foobar",
				"DENY User:* READ TOPIC:PREFIXED:foo",
			},
			checks: map[string]bool{"User:alice@10.0.0.1 READ TOPIC:foobar": false},
		},
		{
			name: "a DENY on the wildcard beats an ALLOW",
			bindings: []string{
				"ALLOW User:alice ALL TOPIC:LITERAL:orders",
				"DENY User:alice WRITE TOPIC:LITERAL:*",
			},
			checks: map[string]bool{
				"User:alice@10.0.0.1 WRITE TOPIC:orders": false,
				"User:alice@10.0.0.1 READ TOPIC:orders":  true,
			},
		},
		{
			name: "a DENY of another principal, host or operation does not deny",
			bindings: []string{
				"ALLOW User:alice READ TOPIC:LITERAL:orders",
				"DENY User:bob READ TOPIC:LITERAL:orders",
				"DENY User:alice READ TOPIC:LITERAL:orders 10.0.0.9",
				"DENY User:alice WRITE TOPIC:LITERAL:orders",
			},
			checks: map[string]bool{
				"User:alice@10.0.0.1 READ TOPIC:orders": true,
				"User:alice@10.0.0.9 READ TOPIC:orders": false,
				"User:bob@10.0.0.1 READ TOPIC:orders":   false,
			},
		},
		{
			name:     "a host-specific ALLOW",
			bindings: []string{"ALLOW User:alice READ TOPIC:LITERAL:orders 10.0.0.1"},
			checks: map[string]bool{
				"User:alice@10.0.0.1 READ TOPIC:orders": true,
				"User:alice@10.0.0.2 READ TOPIC:orders": false,
			},
		},
		{
			name: "a host-specific DENY",
			bindings: []string{
				"ALLOW User:* READ TOPIC:LITERAL:orders",
				"DENY User:* READ TOPIC:LITERAL:orders 10.0.0.2",
			},
			checks: map[string]bool{
				"User:alice@10.0.0.1 READ TOPIC:orders": true,
				"User:alice@10.0.0.2 READ TOPIC:orders": false,
			},
		},
		{
			name: "hosts compare as addresses",
			bindings: []string{
				"ALLOW User:alice READ TOPIC:LITERAL:a 0:0:0:0:0:0:0:1",
				"ALLOW User:alice READ TOPIC:LITERAL:b ::1",
				"ALLOW User:alice READ TOPIC:LITERAL:c 10.0.0.1",
				"ALLOW User:alice READ TOPIC:LITERAL:d ::ffff:10.0.0.1",
				"ALLOW User:alice READ TOPIC:LITERAL:e fe80::1",
			},
			checks: map[string]bool{
				"User:alice@::1 READ TOPIC:a":                true,
				"User:alice@0:0:0:0:0:0:0:1 READ TOPIC:b":    true,
				"User:alice@::ffff:10.0.0.1 READ TOPIC:c":    true,
				"User:alice@10.0.0.1 READ TOPIC:d":           true,
				"User:alice@FE80:0:0:0:0:0:0:1 READ TOPIC:e": true,
				"User:alice@::2 READ TOPIC:a":                false,
				"User:alice@not-an-ip READ TOPIC:c":          false,
			},
		},
		{
			name: "DENY ALL denies every operation, even against ALLOW ALL",
			bindings: []string{
				"ALLOW User:alice ALL TOPIC:LITERAL:orders",
				"DENY User:alice ALL TOPIC:PREFIXED:ord",
			},
			checks: map[string]bool{
				"User:alice@h READ TOPIC:orders":     false,
				"User:alice@h DESCRIBE TOPIC:orders": false,
			},
		},
		{
			name:     "ALLOW ALL allows every operation",
			bindings: []string{"ALLOW User:alice ALL CLUSTER:LITERAL:kafka-cluster"},
			checks: map[string]bool{
				"User:alice@h CLUSTER_ACTION CLUSTER:kafka-cluster":   true,
				"User:alice@h IDEMPOTENT_WRITE CLUSTER:kafka-cluster": true,
				"User:alice@h DESCRIBE CLUSTER:kafka-cluster":         true,
			},
		},
		{
			name: "a DENY of READ does not deny DESCRIBE, which the ALLOW of READ implies",
			bindings: []string{
				"ALLOW User:alice READ TOPIC:LITERAL:orders",
				"DENY User:alice READ TOPIC:LITERAL:orders",
			},
			checks: map[string]bool{
				"User:alice@h READ TOPIC:orders":     false,
				"User:alice@h DESCRIBE TOPIC:orders": true,
			},
		},
		{
			name: "a DENY of DESCRIBE does not deny READ",
			bindings: []string{
				"ALLOW User:alice READ TOPIC:LITERAL:orders",
				"DENY User:alice DESCRIBE TOPIC:LITERAL:orders",
			},
			checks: map[string]bool{
				"User:alice@h READ TOPIC:orders":     true,
				"User:alice@h DESCRIBE TOPIC:orders": false,
			},
		},
		{
			name:     "super users are allowed everything, despite DENYs",
			cfg:      super,
			bindings: []string{"DENY User:* ALL TOPIC:LITERAL:*", "DENY User:admin ALL CLUSTER:LITERAL:kafka-cluster"},
			checks: map[string]bool{
				"User:admin@h WRITE TOPIC:orders":                 true,
				"User:admin@h ALTER CLUSTER:kafka-cluster":        true,
				"User:admin@h READ GROUP:g":                       true, // no ACL there at all
				"User:Admin@h WRITE TOPIC:orders":                 false,
				"Group:admin@h WRITE TOPIC:orders":                false,
				"User:alice@h WRITE TOPIC:orders":                 false,
				"User:alice@h DESCRIBE DELEGATION_TOKEN:whatever": false,
			},
		},
		{
			name:     "no ACL found, allow.everyone.if.no.acl.found false: denied",
			bindings: []string{"ALLOW User:alice READ TOPIC:LITERAL:orders"},
			checks: map[string]bool{
				"User:bob@h READ TOPIC:payments": false,
				"User:bob@h READ GROUP:g":        false,
			},
		},
		{
			name: "no ACL found, allow.everyone.if.no.acl.found true: allowed",
			cfg:  everyone,
			bindings: []string{
				"ALLOW User:alice READ TOPIC:LITERAL:orders",
				"ALLOW User:alice READ TOPIC:PREFIXED:pay",
				"DENY User:alice WRITE GROUP:LITERAL:*",
			},
			checks: map[string]bool{
				"User:bob@h READ TOPIC:audit":        true,  // no binding applies
				"User:bob@h READ TRANSACTIONAL_ID:t": true,  // none of that type
				"User:bob@h READ TOPIC:orders":       false, // one applies, for another principal
				"User:bob@h READ TOPIC:payments":     false, // through a prefix
				"User:bob@h READ GROUP:g":            false, // through the wildcard
				"User:alice@h WRITE TOPIC:orders":    false, // for another operation
				"User:alice@h READ TOPIC:orders":     true,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAuthorizer(t, tt.cfg, tt.bindings...)
			for s, want := range tt.checks {
				r := req(t, s)
				if got := a.Authorize(r.principal, r.host, r.op, r.resType, r.name); got != want {
					t.Errorf("%s: %v, want %v", s, got, want)
				}
			}
		})
	}
}

// TestImpliedOperations: an ALLOW of an operation allows the operations it
// implies (READ, WRITE, DELETE, ALTER imply DESCRIBE; ALTER_CONFIGS implies
// DESCRIBE_CONFIGS; ALL implies all), and a DENY denies only its own
// operation (and ALL all).
func TestImpliedOperations(t *testing.T) {
	implied := map[kmsg.ACLOperation][]kmsg.ACLOperation{
		kmsg.ACLOperationDescribe:        {kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter},
		kmsg.ACLOperationDescribeConfigs: {kmsg.ACLOperationAlterConfigs},
	}
	impliedBy := func(requested, granted kmsg.ACLOperation) bool {
		for _, op := range implied[requested] {
			if op == granted {
				return true
			}
		}
		return false
	}
	for granted := kmsg.ACLOperationAll; granted <= kmsg.ACLOperationDescribeTokens; granted++ {
		for requested := kmsg.ACLOperationRead; requested <= kmsg.ACLOperationDescribeTokens; requested++ {
			allowOnly := newAuthorizer(t, Config{}, "ALLOW User:alice "+granted.String()+" TOPIC:LITERAL:t")
			want := granted == requested || granted == kmsg.ACLOperationAll || impliedBy(requested, granted)
			if got := allowOnly.Authorize("User:alice", "h", requested, kmsg.ACLResourceTypeTopic, "t"); got != want {
				t.Errorf("ALLOW %s, request %s: %v, want %v", granted, requested, got, want)
			}
			denied := newAuthorizer(t, Config{},
				"ALLOW User:alice ALL TOPIC:LITERAL:t",
				"DENY User:alice "+granted.String()+" TOPIC:LITERAL:t")
			want = !(granted == requested || granted == kmsg.ACLOperationAll)
			if got := denied.Authorize("User:alice", "h", requested, kmsg.ACLResourceTypeTopic, "t"); got != want {
				t.Errorf("ALLOW ALL, DENY %s, request %s: %v, want %v", granted, requested, got, want)
			}
		}
	}
	// The ones easiest to get wrong, spelled out.
	for _, c := range []struct {
		granted, requested kmsg.ACLOperation
		want               bool
	}{
		{kmsg.ACLOperationWrite, kmsg.ACLOperationIdempotentWrite, false},
		{kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs, false},
		{kmsg.ACLOperationDescribe, kmsg.ACLOperationRead, false},
		{kmsg.ACLOperationCreate, kmsg.ACLOperationDescribe, false},
		{kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationDescribe, false},
		{kmsg.ACLOperationAlter, kmsg.ACLOperationDescribeConfigs, false},
		{kmsg.ACLOperationDelete, kmsg.ACLOperationDescribe, true},
	} {
		a := newAuthorizer(t, Config{}, "ALLOW User:alice "+c.granted.String()+" TOPIC:LITERAL:t")
		if got := a.Authorize("User:alice", "h", c.requested, kmsg.ACLResourceTypeTopic, "t"); got != c.want {
			t.Errorf("ALLOW %s, request %s: %v, want %v", c.granted, c.requested, got, c.want)
		}
	}
}

// TestAuthorizeAny: Kafka's authorizeByResourceType, in the steps of
// Kafka's own AuthorizerTest cases (bindings added one step at a time).
func TestAuthorizeAny(t *testing.T) {
	type step struct {
		add    []string
		checks map[string]bool // "PRINCIPAL@HOST OPERATION TYPE:" -> allowed
	}
	const u1, u2 = "User:user1", "User:user2"
	const h1, h2 = "192.168.1.1", "192.168.1.2"
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{"deny takes precedence", Config{}, []step{
			{nil, map[string]bool{u1 + "@" + h1 + " WRITE TOPIC:": false}},
			{[]string{"ALLOW User:user1 WRITE TOPIC:LITERAL:sb1 " + h1}, map[string]bool{u1 + "@" + h1 + " WRITE TOPIC:": true}},
			{[]string{"DENY User:user1 WRITE TOPIC:LITERAL:sb1 " + h1}, map[string]bool{u1 + "@" + h1 + " WRITE TOPIC:": false}},
		}},
		{"unrelated denies do not dominate an allow", Config{}, []step{
			{[]string{
				"DENY User:user1 READ TOPIC:LITERAL:sb1 " + h1,
				"DENY User:user2 READ TOPIC:LITERAL:sb1 " + h1,
				"DENY User:user1 WRITE TOPIC:LITERAL:sb1 " + h2,
				"DENY User:user2 READ TOPIC:LITERAL:sb1 " + h2,
				"ALLOW User:user1 READ TOPIC:LITERAL:sb1 " + h2,
				"DENY User:user1 READ TOPIC:LITERAL:sb2 " + h2,
				"DENY User:user1 READ GROUP:PREFIXED:s " + h2,
			}, map[string]bool{
				u1 + "@" + h1 + " READ TOPIC:":            false,
				u1 + "@" + h1 + " READ GROUP:":            false,
				u1 + "@" + h1 + " READ TRANSACTIONAL_ID:": false,
				u1 + "@" + h1 + " READ CLUSTER:":          false,
				u1 + "@" + h2 + " READ TOPIC:":            true,
			}},
		}},
		{"a prefixed deny dominates longer allows", Config{}, []step{
			{[]string{"ALLOW User:user1 READ GROUP:PREFIXED:abcde " + h1}, map[string]bool{u1 + "@" + h1 + " READ GROUP:": true}},
			{[]string{"DENY User:user1 READ GROUP:PREFIXED:abcd " + h1}, map[string]bool{u1 + "@" + h1 + " READ GROUP:": false}},
			{[]string{"ALLOW User:user1 READ GROUP:PREFIXED:abc " + h1}, map[string]bool{u1 + "@" + h1 + " READ GROUP:": true}},
			{[]string{"DENY User:user1 READ GROUP:PREFIXED:a " + h1}, map[string]bool{u1 + "@" + h1 + " READ GROUP:": false}},
			{[]string{"ALLOW User:user1 READ GROUP:PREFIXED:ab " + h1}, map[string]bool{u1 + "@" + h1 + " READ GROUP:": false}},
		}},
		{"a wildcard deny dominates everything", Config{}, []step{
			{[]string{"ALLOW User:user1 WRITE GROUP:PREFIXED:hello " + h1}, map[string]bool{u1 + "@" + h1 + " WRITE GROUP:": true}},
			{[]string{"DENY User:user1 WRITE GROUP:LITERAL:* " + h1}, map[string]bool{u1 + "@" + h1 + " WRITE GROUP:": false}},
			{[]string{"ALLOW User:user1 WRITE GROUP:LITERAL:* " + h1}, map[string]bool{u1 + "@" + h1 + " WRITE GROUP:": false}},
			{[]string{"ALLOW User:user1 WRITE GROUP:LITERAL:aloha " + h1}, map[string]bool{u1 + "@" + h1 + " WRITE GROUP:": false}},
		}},
		{"ALL operations", Config{}, []step{
			{nil, map[string]bool{u1 + "@" + h1 + " READ TOPIC:": false}},
			{[]string{"DENY User:user1 WRITE TOPIC:LITERAL:sb1 " + h1, "ALLOW User:user1 ALL TOPIC:LITERAL:sb1 " + h1},
				map[string]bool{u1 + "@" + h1 + " READ TOPIC:": true, u1 + "@" + h1 + " WRITE TOPIC:": false}},
			{[]string{"DENY User:user1 ALL TOPIC:LITERAL:sb1 " + h1}, map[string]bool{u1 + "@" + h1 + " READ TOPIC:": false}},
		}},
		{"all hosts", Config{}, []step{
			{[]string{"ALLOW User:user1 READ TOPIC:LITERAL:sb1 " + h1}, map[string]bool{u1 + "@" + h1 + " READ TOPIC:": true}},
			{[]string{"DENY User:user1 READ TOPIC:LITERAL:sb1"}, map[string]bool{u1 + "@" + h1 + " READ TOPIC:": false}},
			{[]string{"DENY User:user1 READ TOPIC:LITERAL:sb2 " + h1}, map[string]bool{
				u1 + "@" + h1 + " READ TOPIC:": false,
				u1 + "@" + h2 + " READ TOPIC:": false,
			}},
			{[]string{"ALLOW User:user1 READ TOPIC:LITERAL:sb2"}, map[string]bool{u1 + "@" + h2 + " READ TOPIC:": true}},
			{[]string{"DENY User:user1 READ TOPIC:LITERAL:sb2"}, map[string]bool{u1 + "@" + h2 + " READ TOPIC:": false}},
		}},
		{"all principals", Config{}, []step{
			{[]string{"ALLOW User:user1 READ TOPIC:LITERAL:sb1 " + h1}, map[string]bool{u1 + "@" + h1 + " READ TOPIC:": true}},
			{[]string{"DENY User:* READ TOPIC:LITERAL:sb1 " + h1}, map[string]bool{u1 + "@" + h1 + " READ TOPIC:": false}},
			{[]string{"DENY User:user1 READ TOPIC:LITERAL:sb2 " + h1}, map[string]bool{
				u1 + "@" + h1 + " READ TOPIC:": false,
				u2 + "@" + h1 + " READ TOPIC:": false,
			}},
			{[]string{"ALLOW User:* READ TOPIC:LITERAL:sb2 " + h1}, map[string]bool{u2 + "@" + h1 + " READ TOPIC:": true}},
			{[]string{"DENY User:* READ TOPIC:LITERAL:sb2 " + h1}, map[string]bool{u2 + "@" + h1 + " READ TOPIC:": false}},
		}},
		{"a wildcard allow allows even where a deny covers the hardcoded name", Config{}, []step{
			{[]string{"ALLOW User:user1 WRITE TOPIC:LITERAL:*", "DENY User:user1 WRITE TOPIC:PREFIXED:h"},
				map[string]bool{u1 + "@" + h1 + " WRITE TOPIC:": true}},
		}},
		{"a literal deny does not dominate a prefixed allow of the same name", Config{}, []step{
			{[]string{"ALLOW User:user1 WRITE TOPIC:PREFIXED:foo", "DENY User:user1 WRITE TOPIC:LITERAL:foo"},
				map[string]bool{u1 + "@" + h1 + " WRITE TOPIC:": true}},
			{[]string{"DENY User:user1 WRITE TOPIC:PREFIXED:foo"}, map[string]bool{u1 + "@" + h1 + " WRITE TOPIC:": false}},
		}},
		{"a prefixed deny dominates a literal allow (KIP-679 producer)", Config{}, []step{
			{[]string{"ALLOW User:user1 WRITE TOPIC:LITERAL:topic", "DENY User:user1 WRITE TOPIC:PREFIXED:t"},
				map[string]bool{u1 + "@" + h1 + " WRITE TOPIC:": false}},
			{[]string{"ALLOW User:user1 WRITE TOPIC:LITERAL:other"}, map[string]bool{u1 + "@" + h1 + " WRITE TOPIC:": true}},
		}},
		{"operations are exact apart from the hardcoded check", Config{}, []step{
			{[]string{"ALLOW User:user1 READ TOPIC:LITERAL:orders"}, map[string]bool{
				u1 + "@" + h1 + " DESCRIBE TOPIC:": false, // READ implies DESCRIBE on orders, but Kafka does not look
				u1 + "@" + h1 + " WRITE TOPIC:":    false,
			}},
			{[]string{"ALLOW User:user1 READ TOPIC:LITERAL:*"}, map[string]bool{
				u1 + "@" + h1 + " DESCRIBE TOPIC:": true, // now "hardcode" is describable
			}},
		}},
		{"super users", Config{SuperUsers: []string{"User:superuser1"}}, []step{
			{[]string{"DENY User:* ALL TOPIC:LITERAL:*", "DENY User:* ALL CLUSTER:LITERAL:kafka-cluster"}, map[string]bool{
				"User:superuser1@192.0.4.4 READ TOPIC:":               true,
				"User:superuser1@192.0.4.4 IDEMPOTENT_WRITE CLUSTER:": true,
				"User:superuser1@192.0.4.4 WRITE TRANSACTIONAL_ID:":   true,
				u1 + "@192.0.4.4 READ TOPIC:":                         false,
			}},
		}},
		{"allow.everyone.if.no.acl.found", Config{AllowEveryoneIfNoACLFound: true}, []step{
			{nil, map[string]bool{u1 + "@" + h1 + " READ TOPIC:": true}},
			{[]string{"DENY User:user1 READ TOPIC:LITERAL:sb1"}, map[string]bool{u1 + "@" + h1 + " READ TOPIC:": true}},
			{[]string{"DENY User:* READ TOPIC:PREFIXED:h"}, map[string]bool{u1 + "@" + h1 + " READ TOPIC:": false}},
		}},
		{"invalid arguments are never allowed", Config{SuperUsers: []string{"User:admin"}}, []step{
			{nil, map[string]bool{
				"User:admin@h READ ANY:":   false,
				"User:admin@h ANY TOPIC:":  false,
				"User:admin@h READ TOPIC:": true,
			}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var bs []string
			for i, s := range tt.steps {
				bs = append(bs, s.add...)
				a.SetBindings(parseAll(t, bs...))
				for c, want := range s.checks {
					r := req(t, c)
					if got := a.AuthorizeAny(r.principal, r.host, r.op, r.resType); got != want {
						t.Errorf("step %d, %s: %v, want %v", i, c, got, want)
					}
				}
			}
		})
	}
}

func TestNewRefusesBadSuperUser(t *testing.T) {
	if _, err := New(Config{SuperUsers: []string{"admin"}}); err == nil {
		t.Fatal("New accepted super user \"admin\"")
	}
	a := newAuthorizer(t, Config{})
	if err := a.SetConfig(Config{SuperUsers: []string{"admin"}}); err == nil {
		t.Fatal("SetConfig accepted super user \"admin\"")
	}
}

// TestSetBindingsReplaces: a reload replaces every binding; config changes
// keep them.
func TestSetBindingsReplaces(t *testing.T) {
	a := newAuthorizer(t, Config{}, "ALLOW User:alice READ TOPIC:LITERAL:orders")
	if !a.Authorize("User:alice", "h", kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, "orders") {
		t.Fatal("not allowed before reload")
	}
	a.SetBindings(parseAll(t, "ALLOW User:bob READ TOPIC:LITERAL:orders"))
	if a.Authorize("User:alice", "h", kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, "orders") {
		t.Fatal("old binding still applies after reload")
	}
	if err := a.SetConfig(Config{AllowEveryoneIfNoACLFound: true}); err != nil {
		t.Fatal(err)
	}
	if !a.Authorize("User:bob", "h", kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, "orders") {
		t.Fatal("SetConfig dropped the bindings")
	}
	if !a.Authorize("User:carol", "h", kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, "other") {
		t.Fatal("SetConfig did not apply allow.everyone.if.no.acl.found")
	}
	a.SetBindings(nil)
	if got := a.Bindings(Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny,
		Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}); len(got) != 0 {
		t.Fatalf("Bindings after SetBindings(nil) = %v", got)
	}
}

func TestBindingsDeduplicatedAndSorted(t *testing.T) {
	a := newAuthorizer(t, Config{},
		"ALLOW User:bob READ TOPIC:LITERAL:b",
		"ALLOW User:alice READ TOPIC:LITERAL:b",
		"ALLOW User:alice READ GROUP:LITERAL:a",
		"ALLOW User:bob READ TOPIC:LITERAL:b",
		"ALLOW User:alice READ TOPIC:LITERAL:a",
	)
	got := a.Bindings(Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny,
		Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny})
	want := parseAll(t,
		"ALLOW User:alice READ TOPIC:LITERAL:a",
		"ALLOW User:alice READ TOPIC:LITERAL:b",
		"ALLOW User:bob READ TOPIC:LITERAL:b",
		"ALLOW User:alice READ GROUP:LITERAL:a",
	)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Bindings =\n%v\nwant\n%v", got, want)
	}
}

func TestReload(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	if err := s.CreateACLs(ctx, parseAll(t, "ALLOW User:alice READ TOPIC:LITERAL:orders")); err != nil {
		t.Fatal(err)
	}
	a := newAuthorizer(t, Config{})
	if err := a.Reload(ctx, s); err != nil {
		t.Fatal(err)
	}
	if !a.Authorize("User:alice", "h", kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, "orders") {
		t.Fatal("binding from the store does not apply")
	}
}

// TestAuthorizeDoesNotAllocate: the produce and fetch paths authorize every
// topic of every request.
func TestAuthorizeDoesNotAllocate(t *testing.T) {
	a := newAuthorizer(t, Config{SuperUsers: []string{"User:admin"}},
		"ALLOW User:alice READ TOPIC:LITERAL:orders",
		"ALLOW User:alice READ TOPIC:PREFIXED:ord",
		"DENY User:* WRITE TOPIC:PREFIXED:orders-",
		"ALLOW User:* DESCRIBE TOPIC:LITERAL:*",
		"ALLOW User:alice WRITE TOPIC:LITERAL:orders 0:0:0:0:0:0:0:1",
		"ALLOW User:alice WRITE TOPIC:LITERAL:audit 10.0.0.1",
	)
	cases := []request{
		{"User:alice", "10.0.0.1", kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, "orders"},
		{"User:alice", "10.0.0.1", kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, "orders-eu"},
		{"User:alice", "::1", kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, "orders"},
		{"User:alice", "10.0.0.2", kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, "audit"},
		{"User:bob", "10.0.0.1", kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, "anything"},
		{"User:admin", "10.0.0.1", kmsg.ACLOperationAlter, kmsg.ACLResourceTypeCluster, ClusterName},
		{"User:bob", "10.0.0.1", kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, "g"},
	}
	for _, c := range cases {
		allocs := testing.AllocsPerRun(100, func() {
			a.Authorize(c.principal, c.host, c.op, c.resType, c.name)
		})
		if allocs != 0 {
			t.Errorf("Authorize(%+v): %v allocations", c, allocs)
		}
		allocs = testing.AllocsPerRun(100, func() {
			a.AuthorizeAny(c.principal, c.host, c.op, c.resType)
		})
		if allocs != 0 {
			t.Errorf("AuthorizeAny(%+v): %v allocations", c, allocs)
		}
	}
}

// TestConcurrentReload: checks run while the bindings are replaced; run
// with -race. Every check sees one whole set: either alice may read orders
// (set A) or bob may (set B), never both or neither.
func TestConcurrentReload(t *testing.T) {
	setA := parseAll(t, "ALLOW User:alice READ TOPIC:LITERAL:orders", "DENY User:bob READ TOPIC:PREFIXED:ord")
	setB := parseAll(t, "ALLOW User:bob READ TOPIC:LITERAL:orders", "DENY User:alice READ TOPIC:PREFIXED:ord")
	a := newAuthorizer(t, Config{})
	a.SetBindings(setA)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				// One snapshot per pair of checks, as a handler holds none:
				// check the invariant on one Authorizer state at a time.
				s := a.snap.Load()
				alice := s.authorize("User:alice", "h", kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, "orders")
				bob := s.authorize("User:bob", "h", kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, "orders")
				if alice == bob {
					t.Errorf("alice %v, bob %v: a check saw a mixed set", alice, bob)
					return
				}
				a.Authorize("User:carol", "h", kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, "orders")
			}
		}()
	}
	for i := range 200 {
		if i%2 == 0 {
			a.SetBindings(setB)
		} else {
			a.SetBindings(setA)
		}
	}
	close(stop)
	wg.Wait()
}

func TestZeroAuthorizer(t *testing.T) {
	var a Authorizer
	if a.Authorize("User:alice", "h", kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, "orders") {
		t.Fatal("zero Authorizer allowed")
	}
	a.SetBindings(parseAll(t, "ALLOW User:alice READ TOPIC:LITERAL:orders"))
	if !a.Authorize("User:alice", "h", kmsg.ACLOperationRead, kmsg.ACLResourceTypeTopic, "orders") {
		t.Fatal("zero Authorizer ignored SetBindings")
	}
}
