package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DenyEvent is one request (or part of one) the authorizer refused.
type DenyEvent struct {
	Principal string
	Host      string
	API       string
	Operation kmsg.ACLOperation
	Resource  kmsg.ACLResourceType
	Name      string
}

// AdminEvent is one change of state a client made: a topic created or
// deleted, a config altered, records deleted, an ACL or user changed.
type AdminEvent struct {
	Principal string
	Operation string // the Kafka API, e.g. "CreateTopics"
	Resource  string // what it changed, e.g. "topic orders"
	// Frequent: a change clients may also make routinely (a standalone
	// consumer's commit), which the audit may rate-limit like logins.
	Frequent bool
}

// SecurityObserver is told of authentications, authorization denials and
// changes of state (the audit trail). Calls come from many connections at
// once and must not block.
type SecurityObserver interface {
	Authentication(AuthEvent)
	Denied(DenyEvent)
	Admin(AdminEvent)
}

type noSecurityObserver struct{}

func (noSecurityObserver) Authentication(AuthEvent) {}
func (noSecurityObserver) Denied(DenyEvent)         {}
func (noSecurityObserver) Admin(AdminEvent)         {}

// allowed reports whether the connection's principal may perform op on a
// resource, as Kafka's authorizer decides it; without an authorizer every
// request is allowed. A denial is reported to the security observer. It
// runs on the reader goroutine, which owns the connection's principal.
func (c *conn) allowed(op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	a := c.b.acls
	if a == nil || a.Authorize(c.auth.principal, c.auth.host, op, rt, name) {
		return true
	}
	c.b.secObs.Denied(DenyEvent{Principal: c.auth.principal, Host: c.auth.host, API: c.api,
		Operation: op, Resource: rt, Name: name})
	return false
}

// allowedAny reports whether op is allowed on some resource of type rt
// (Kafka's authorizeByResourceType, e.g. KIP-679's Write on any topic).
func (c *conn) allowedAny(op kmsg.ACLOperation, rt kmsg.ACLResourceType) bool {
	a := c.b.acls
	return a == nil || a.AuthorizeAny(c.auth.principal, c.auth.host, op, rt)
}

// allowedQuiet is allowed without reporting a denial: for checks whose
// failure is not an error the client sees (Metadata leaving out the
// topics it may not describe).
func (c *conn) allowedQuiet(op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	a := c.b.acls
	return a == nil || a.Authorize(c.auth.principal, c.auth.host, op, rt, name)
}

// admin reports a change of state made by principal.
func (b *Broker) admin(principal, operation, resource string) {
	b.log.Info("admin operation", "principal", principal, "operation", operation, "resource", resource)
	b.secObs.Admin(AdminEvent{Principal: principal, Operation: operation, Resource: resource})
}
