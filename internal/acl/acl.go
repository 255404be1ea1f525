// Package acl holds Kafka's ACL authorization model: bindings (who may or
// may not do what on which resources), the filters that DescribeAcls and
// DeleteAcls select them with, and the Authorizer that answers "may this
// principal, from this host, do this operation on this resource?" with the
// rules of Kafka's StandardAuthorizer (KRaft), so that clients and tools
// (kadm, kafka-acls.sh) see no difference.
//
// # Bindings
//
// A Binding is a resource pattern (type, name, LITERAL or PREFIXED) and an
// entry (principal "Type:Name", host, operation, ALLOW or DENY). The literal
// name "*" is the wildcard resource, the principal "User:*" the wildcard
// principal (it matches every principal, whatever its type) and the host "*"
// the wildcard host. Validate applies CreateAcls' rules.
//
// # Authorization rules
//
// For a principal P from host H doing operation O on resource (T, N):
//
//   - a super user is allowed everything;
//   - the bindings that apply are those of type T that are LITERAL N,
//     LITERAL "*", or PREFIXED by a name that is a prefix of N;
//   - of those, an entry matches if its principal is P or "User:*", its host
//     is H or "*", and its operation is O or ALL; an ALLOW entry of READ,
//     WRITE, DELETE or ALTER also matches DESCRIBE, and one of ALTER_CONFIGS
//     also matches DESCRIBE_CONFIGS (implication is for ALLOW only: DENY READ
//     does not deny DESCRIBE);
//   - a matching DENY wins over any ALLOW; else a matching ALLOW allows;
//   - if no binding applies to the resource at all (of any principal, host
//     or operation), allow.everyone.if.no.acl.found decides; else denied.
//
// AuthorizeAny answers KIP-679's question (may P do O on at least one
// resource of type T?) with the algorithm of Kafka's default
// Authorizer.authorizeByResourceType.
//
// # Deviations from Kafka
//
//   - Hosts are compared as IP addresses: Kafka compares the ACL's text with
//     Java's getHostAddress, so in Kafka an IPv6 ACL only matches when
//     written as Java prints it (0:0:0:0:0:0:0:1, never ::1); here both work.
//   - CreateAcls refuses a host that is neither "*" nor an IP address
//     (INVALID_REQUEST). Kafka stores it, and it never matches a client.
//   - Kafka refuses an enum of code 0 (UNKNOWN) anywhere in an ACL request
//     while parsing it, closing the connection; an ANY or MATCH in a
//     creation fails every creation of the request with
//     UNKNOWN_SERVER_ERROR; a DescribeAcls filter with an out-of-range code
//     matches nothing. Here each is refused for its own creation or filter
//     with INVALID_REQUEST, as Kafka refuses an out-of-range code in a
//     creation or a DeleteAcls filter.
//
// Like Kafka's broker, CreateAcls does not check that an operation makes
// sense for the resource type (IDEMPOTENT_WRITE on a topic is accepted and
// never used): only kafka-acls.sh checks that, on the client side.
//
// # Stored form
//
// Encode writes a binding as one JSON object with stable field names and
// Kafka's enum names ({"resourceType":"TOPIC",...}); Key is a deterministic
// string unique per binding, so a store keeps one key per binding.
//
// # Concurrency
//
// An Authorizer holds an immutable snapshot (bindings indexed by resource
// type, a map of literal names and a radix trie of prefixes) behind an
// atomic pointer: Authorize never locks and never allocates, and a reload
// (SetBindings) swaps the whole snapshot, so a check sees either the old set
// or the new one.
package acl

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Wildcards and fixed names, as in Kafka.
const (
	// Wildcard is the LITERAL resource name that matches every resource of
	// its type, and the host that matches every host.
	Wildcard = "*"
	// WildcardPrincipal matches every principal.
	WildcardPrincipal = "User:*"
	// ClusterName is the only name of the CLUSTER resource.
	ClusterName = "kafka-cluster"
)

// Binding is one ACL: a resource pattern and an access control entry.
type Binding struct {
	ResourceType kmsg.ACLResourceType        `json:"resourceType"`
	ResourceName string                      `json:"resourceName"`
	PatternType  kmsg.ACLResourcePatternType `json:"patternType"`
	Principal    string                      `json:"principal"` // "Type:Name", e.g. "User:alice"
	Host         string                      `json:"host"`      // "*" or an IP address
	Operation    kmsg.ACLOperation           `json:"operation"`
	Permission   kmsg.ACLPermissionType      `json:"permission"`
}

func (b Binding) String() string {
	return fmt.Sprintf("(%s:%s:%s, principal=%s, host=%s, operation=%s, permission=%s)",
		b.ResourceType, b.PatternType, b.ResourceName, b.Principal, b.Host, b.Operation, b.Permission)
}

// Error is a refused binding or filter: the Kafka error to answer it with
// and a message for the client.
type Error struct {
	Err     *kerr.Error
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap gives the Kafka error, so errors.Is(err, kerr.InvalidRequest) works.
func (e *Error) Unwrap() error { return e.Err }

func invalid(format string, args ...any) error {
	return &Error{Err: kerr.InvalidRequest, Message: fmt.Sprintf(format, args...)}
}

// concreteType reports whether t names a resource (TOPIC through USER).
func concreteType(t kmsg.ACLResourceType) bool {
	return t >= kmsg.ACLResourceTypeTopic && t <= kmsg.ACLResourceTypeUser
}

// concreteOp reports whether o is an operation a binding can hold (ALL
// through DESCRIBE_TOKENS).
func concreteOp(o kmsg.ACLOperation) bool {
	return o >= kmsg.ACLOperationAll && o <= kmsg.ACLOperationDescribeTokens
}

// Validate checks b as Kafka checks an ACL to create; the error is an
// *Error (INVALID_REQUEST).
func (b Binding) Validate() error {
	if !concreteType(b.ResourceType) {
		return invalid("Invalid resourceType %s", b.ResourceType)
	}
	if b.PatternType != kmsg.ACLResourcePatternTypeLiteral && b.PatternType != kmsg.ACLResourcePatternTypePrefixed {
		return invalid("Invalid patternType %s", b.PatternType)
	}
	if !concreteOp(b.Operation) {
		return invalid("Invalid operation %s", b.Operation)
	}
	if b.Permission != kmsg.ACLPermissionTypeAllow && b.Permission != kmsg.ACLPermissionTypeDeny {
		return invalid("Invalid permissionType %s", b.Permission)
	}
	if b.ResourceType == kmsg.ACLResourceTypeCluster && b.ResourceName != ClusterName {
		return invalid("The only valid name for the CLUSTER resource is %s", ClusterName)
	}
	if b.ResourceName == "" {
		return invalid("Invalid empty resource name")
	}
	// Kafka (KAFKA-18051) only requires the colon: "User:" and ":x" pass.
	if !strings.Contains(b.Principal, ":") {
		return invalid("Could not parse principal from `%s` (no colon is present separating the principal type from the principal name)", b.Principal)
	}
	if b.Host != Wildcard {
		if _, err := netip.ParseAddr(b.Host); err != nil {
			return invalid("Invalid host %q: an ACL's host is * or an IP address", b.Host)
		}
	}
	return nil
}

// Filter selects bindings, as DescribeAcls and DeleteAcls do (Kafka's
// AclBindingFilter). A nil string and the ANY values match everything.
type Filter struct {
	ResourceType kmsg.ACLResourceType // ANY matches every type
	ResourceName *string              // nil matches every name
	// PatternType ANY matches the exact name under any pattern type; MATCH
	// matches every binding that applies to the resource named
	// ResourceName: LITERAL of that name, LITERAL "*", and PREFIXED by a
	// prefix of it; LITERAL and PREFIXED match that type and exact name.
	PatternType kmsg.ACLResourcePatternType
	Principal   *string // exact: "User:*" matches only the wildcard binding
	Host        *string // exact
	Operation   kmsg.ACLOperation
	Permission  kmsg.ACLPermissionType
}

// Validate refuses a filter with an UNKNOWN value (Kafka's
// AclBindingFilter.isUnknown), as INVALID_REQUEST.
func (f Filter) Validate() error {
	if f.ResourceType != kmsg.ACLResourceTypeAny && !concreteType(f.ResourceType) {
		return invalid("Unknown resourceType %s in filter", f.ResourceType)
	}
	if f.PatternType < kmsg.ACLResourcePatternTypeAny || f.PatternType > kmsg.ACLResourcePatternTypePrefixed {
		return invalid("Unknown patternType %s in filter", f.PatternType)
	}
	if f.Operation != kmsg.ACLOperationAny && !concreteOp(f.Operation) {
		return invalid("Unknown operation %s in filter", f.Operation)
	}
	if f.Permission < kmsg.ACLPermissionTypeAny || f.Permission > kmsg.ACLPermissionTypeAllow {
		return invalid("Unknown permissionType %s in filter", f.Permission)
	}
	return nil
}

// Matches reports whether f selects b, with the rules of Kafka's
// ResourcePatternFilter and AccessControlEntryFilter.
func (f Filter) Matches(b Binding) bool {
	return f.matchesPattern(b) && f.matchesEntry(b)
}

func (f Filter) matchesPattern(b Binding) bool {
	if f.ResourceType != kmsg.ACLResourceTypeAny && f.ResourceType != b.ResourceType {
		return false
	}
	if f.PatternType != kmsg.ACLResourcePatternTypeAny && f.PatternType != kmsg.ACLResourcePatternTypeMatch && f.PatternType != b.PatternType {
		return false
	}
	if f.ResourceName == nil {
		return true
	}
	name := *f.ResourceName
	if f.PatternType != kmsg.ACLResourcePatternTypeMatch {
		return name == b.ResourceName
	}
	switch b.PatternType {
	case kmsg.ACLResourcePatternTypeLiteral:
		return name == b.ResourceName || b.ResourceName == Wildcard
	case kmsg.ACLResourcePatternTypePrefixed:
		return strings.HasPrefix(name, b.ResourceName)
	}
	return false
}

func (f Filter) matchesEntry(b Binding) bool {
	switch {
	case f.Principal != nil && *f.Principal != b.Principal:
		return false
	case f.Host != nil && *f.Host != b.Host:
		return false
	case f.Operation != kmsg.ACLOperationAny && f.Operation != b.Operation:
		return false
	case f.Permission != kmsg.ACLPermissionTypeAny && f.Permission != b.Permission:
		return false
	}
	return true
}

// Select returns the bindings of bs that f matches, in their order.
func Select(bs []Binding, f Filter) []Binding {
	var out []Binding
	for _, b := range bs {
		if f.Matches(b) {
			out = append(out, b)
		}
	}
	return out
}
