package acl

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestValidate: CreateAcls' rules, each refused as INVALID_REQUEST, and what
// Kafka accepts although it may look wrong.
func TestValidate(t *testing.T) {
	valid := parse(t, "ALLOW User:alice READ TOPIC:LITERAL:orders")
	tests := []struct {
		name    string
		change  func(*Binding)
		wantErr string // "" means valid
	}{
		{"valid", func(*Binding) {}, ""},
		{"resource type unknown", func(b *Binding) { b.ResourceType = kmsg.ACLResourceTypeUnknown }, "Invalid resourceType"},
		{"resource type any", func(b *Binding) { b.ResourceType = kmsg.ACLResourceTypeAny }, "Invalid resourceType"},
		{"resource type out of range", func(b *Binding) { b.ResourceType = 42 }, "Invalid resourceType"},
		{"resource type user (KIP-373)", func(b *Binding) {
			b.ResourceType, b.Operation = kmsg.ACLResourceTypeUser, kmsg.ACLOperationCreateTokens
		}, ""},
		{"delegation token", func(b *Binding) {
			b.ResourceType, b.Operation = kmsg.ACLResourceTypeDelegationToken, kmsg.ACLOperationDescribe
		}, ""},
		{"transactional id", func(b *Binding) { b.ResourceType = kmsg.ACLResourceTypeTransactionalId }, ""},
		{"pattern unknown", func(b *Binding) { b.PatternType = kmsg.ACLResourcePatternTypeUnknown }, "Invalid patternType"},
		{"pattern any", func(b *Binding) { b.PatternType = kmsg.ACLResourcePatternTypeAny }, "Invalid patternType"},
		{"pattern match", func(b *Binding) { b.PatternType = kmsg.ACLResourcePatternTypeMatch }, "Invalid patternType"},
		{"pattern out of range", func(b *Binding) { b.PatternType = 9 }, "Invalid patternType"},
		{"prefixed", func(b *Binding) { b.PatternType = kmsg.ACLResourcePatternTypePrefixed }, ""},
		{"prefixed star is accepted, as in Kafka", func(b *Binding) {
			b.PatternType, b.ResourceName = kmsg.ACLResourcePatternTypePrefixed, Wildcard
		}, ""},
		{"operation unknown", func(b *Binding) { b.Operation = kmsg.ACLOperationUnknown }, "Invalid operation"},
		{"operation any", func(b *Binding) { b.Operation = kmsg.ACLOperationAny }, "Invalid operation"},
		{"operation out of range", func(b *Binding) { b.Operation = 15 }, "Invalid operation"},
		{"operation all", func(b *Binding) { b.Operation = kmsg.ACLOperationAll }, ""},
		{"operation meaningless for the type is accepted, as in Kafka", func(b *Binding) {
			b.Operation = kmsg.ACLOperationIdempotentWrite
		}, ""},
		{"permission unknown", func(b *Binding) { b.Permission = kmsg.ACLPermissionTypeUnknown }, "Invalid permissionType"},
		{"permission any", func(b *Binding) { b.Permission = kmsg.ACLPermissionTypeAny }, "Invalid permissionType"},
		{"permission out of range", func(b *Binding) { b.Permission = 4 }, "Invalid permissionType"},
		{"deny", func(b *Binding) { b.Permission = kmsg.ACLPermissionTypeDeny }, ""},
		{"cluster named kafka-cluster", func(b *Binding) {
			b.ResourceType, b.ResourceName = kmsg.ACLResourceTypeCluster, ClusterName
		}, ""},
		{"cluster named otherwise", func(b *Binding) {
			b.ResourceType, b.ResourceName = kmsg.ACLResourceTypeCluster, "my-cluster"
		}, "only valid name for the CLUSTER resource is kafka-cluster"},
		{"cluster named star", func(b *Binding) {
			b.ResourceType, b.ResourceName = kmsg.ACLResourceTypeCluster, Wildcard
		}, "only valid name for the CLUSTER resource"},
		{"empty name", func(b *Binding) { b.ResourceName = "" }, "Invalid empty resource name"},
		{"literal wildcard name", func(b *Binding) { b.ResourceName = Wildcard }, ""},
		{"principal without colon", func(b *Binding) { b.Principal = "alice" }, "Could not parse principal"},
		{"principal empty", func(b *Binding) { b.Principal = "" }, "Could not parse principal"},
		{"principal other type", func(b *Binding) { b.Principal = "Group:ops" }, ""},
		{"principal with colon in name", func(b *Binding) { b.Principal = "User:CN=a:b" }, ""},
		{"principal empty name is accepted, as in Kafka", func(b *Binding) { b.Principal = "User:" }, ""},
		{"wildcard principal", func(b *Binding) { b.Principal = WildcardPrincipal }, ""},
		{"host ipv4", func(b *Binding) { b.Host = "10.0.0.1" }, ""},
		{"host ipv6", func(b *Binding) { b.Host = "::1" }, ""},
		{"host ipv6 as java prints it", func(b *Binding) { b.Host = "0:0:0:0:0:0:0:1" }, ""},
		{"host name", func(b *Binding) { b.Host = "broker.example.com" }, "Invalid host"},
		{"host cidr", func(b *Binding) { b.Host = "10.0.0.0/8" }, "Invalid host"},
		{"host empty", func(b *Binding) { b.Host = "" }, "Invalid host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := valid
			tt.change(&b)
			err := b.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate(%s) = %v, want nil", b, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate(%s) = %v, want %q", b, err, tt.wantErr)
			}
			if !errors.Is(err, kerr.InvalidRequest) {
				t.Fatalf("Validate(%s) = %v, not INVALID_REQUEST", b, err)
			}
		})
	}
}

func TestFilterValidate(t *testing.T) {
	valid := Filter{
		ResourceType: kmsg.ACLResourceTypeAny,
		PatternType:  kmsg.ACLResourcePatternTypeAny,
		Operation:    kmsg.ACLOperationAny,
		Permission:   kmsg.ACLPermissionTypeAny,
	}
	tests := []struct {
		name   string
		change func(*Filter)
		ok     bool
	}{
		{"all any", func(*Filter) {}, true},
		{"concrete values", func(f *Filter) {
			*f = Filter{ResourceType: kmsg.ACLResourceTypeUser, ResourceName: str("x"), PatternType: kmsg.ACLResourcePatternTypePrefixed,
				Principal: str("User:a"), Host: str("*"), Operation: kmsg.ACLOperationDescribeTokens, Permission: kmsg.ACLPermissionTypeAllow}
		}, true},
		{"match", func(f *Filter) { f.PatternType = kmsg.ACLResourcePatternTypeMatch }, true},
		{"resource type unknown", func(f *Filter) { f.ResourceType = kmsg.ACLResourceTypeUnknown }, false},
		{"resource type out of range", func(f *Filter) { f.ResourceType = 8 }, false},
		{"pattern unknown", func(f *Filter) { f.PatternType = kmsg.ACLResourcePatternTypeUnknown }, false},
		{"pattern out of range", func(f *Filter) { f.PatternType = 5 }, false},
		{"operation unknown", func(f *Filter) { f.Operation = kmsg.ACLOperationUnknown }, false},
		{"operation out of range", func(f *Filter) { f.Operation = 15 }, false},
		{"permission unknown", func(f *Filter) { f.Permission = kmsg.ACLPermissionTypeUnknown }, false},
		{"permission out of range", func(f *Filter) { f.Permission = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := valid
			tt.change(&f)
			err := f.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, kerr.InvalidRequest) {
				t.Fatalf("Validate = %v, not INVALID_REQUEST", err)
			}
		})
	}
}

// TestFilterMatches: Kafka's ResourcePatternFilter and
// AccessControlEntryFilter, over one set of bindings.
func TestFilterMatches(t *testing.T) {
	all := parseAll(t,
		"ALLOW User:alice READ TOPIC:LITERAL:foobar",      // 0
		"ALLOW User:alice READ TOPIC:LITERAL:foo",         // 1
		"ALLOW User:alice READ TOPIC:LITERAL:*",           // 2
		"ALLOW User:alice READ TOPIC:PREFIXED:foo",        // 3
		"ALLOW User:alice READ TOPIC:PREFIXED:foob",       // 4
		"ALLOW User:alice READ TOPIC:PREFIXED:foobarbaz",  // 5
		"ALLOW User:alice READ TOPIC:PREFIXED:bar",        // 6
		"DENY User:* WRITE TOPIC:LITERAL:foobar 10.0.0.1", // 7
		"ALLOW User:bob READ GROUP:LITERAL:foobar",        // 8
		"ALLOW User:bob ALL TOPIC:PREFIXED:*",             // 9
	)
	any := Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny,
		Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
	with := func(change func(*Filter)) Filter { f := any; change(&f); return f }
	topic := func(f *Filter) { f.ResourceType = kmsg.ACLResourceTypeTopic }
	tests := []struct {
		name   string
		filter Filter
		want   []int
	}{
		{"everything", any, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"resource type", with(func(f *Filter) { f.ResourceType = kmsg.ACLResourceTypeGroup }), []int{8}},
		{"MATCH foobar: literal, wildcard, prefixes of it", with(func(f *Filter) {
			topic(f)
			f.ResourceName, f.PatternType = str("foobar"), kmsg.ACLResourcePatternTypeMatch
		}), []int{0, 2, 3, 4, 7}},
		{"MATCH without a name matches all patterns", with(func(f *Filter) {
			topic(f)
			f.PatternType = kmsg.ACLResourcePatternTypeMatch
		}), []int{0, 1, 2, 3, 4, 5, 6, 7, 9}},
		{"MATCH star: the wildcard, and a prefixed star", with(func(f *Filter) {
			topic(f)
			f.ResourceName, f.PatternType = str("*"), kmsg.ACLResourcePatternTypeMatch
		}), []int{2, 9}},
		{"ANY foobar: exact name, any pattern type, no wildcard", with(func(f *Filter) {
			f.ResourceName = str("foobar")
		}), []int{0, 7, 8}},
		{"ANY foo", with(func(f *Filter) { topic(f); f.ResourceName = str("foo") }), []int{1, 3}},
		{"LITERAL foo", with(func(f *Filter) {
			topic(f)
			f.ResourceName, f.PatternType = str("foo"), kmsg.ACLResourcePatternTypeLiteral
		}), []int{1}},
		{"LITERAL star is only the wildcard binding", with(func(f *Filter) {
			f.ResourceName, f.PatternType = str("*"), kmsg.ACLResourcePatternTypeLiteral
		}), []int{2}},
		{"PREFIXED foo is only that prefix", with(func(f *Filter) {
			f.ResourceName, f.PatternType = str("foo"), kmsg.ACLResourcePatternTypePrefixed
		}), []int{3}},
		{"PREFIXED without a name", with(func(f *Filter) { f.PatternType = kmsg.ACLResourcePatternTypePrefixed }), []int{3, 4, 5, 6, 9}},
		{"principal exact", with(func(f *Filter) { f.Principal = str("User:bob") }), []int{8, 9}},
		{"principal wildcard is literal in a filter", with(func(f *Filter) { f.Principal = str("User:*") }), []int{7}},
		{"host exact", with(func(f *Filter) { f.Host = str("10.0.0.1") }), []int{7}},
		{"host wildcard is literal in a filter", with(func(f *Filter) { f.Host = str("*"); f.ResourceType = kmsg.ACLResourceTypeGroup }), []int{8}},
		{"operation exact, ALL only matches ALL", with(func(f *Filter) { f.Operation = kmsg.ACLOperationAll }), []int{9}},
		{"operation write", with(func(f *Filter) { f.Operation = kmsg.ACLOperationWrite }), []int{7}},
		{"permission deny", with(func(f *Filter) { f.Permission = kmsg.ACLPermissionTypeDeny }), []int{7}},
		{"permission allow", with(func(f *Filter) { f.Permission = kmsg.ACLPermissionTypeAllow }), []int{0, 1, 2, 3, 4, 5, 6, 8, 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			for i, b := range all {
				if tt.filter.Matches(b) {
					got = append(got, i)
				}
			}
			if !equalInts(got, tt.want) {
				t.Fatalf("matched %v, want %v", got, tt.want)
			}
			if n := len(Select(all, tt.filter)); n != len(tt.want) {
				t.Fatalf("Select: %d bindings, want %d", n, len(tt.want))
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
