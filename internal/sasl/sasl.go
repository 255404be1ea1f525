// Package sasl is the server side of the SASL mechanisms a Kafka broker
// offers: PLAIN (RFC 4616), SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802,
// RFC 7677, KIP-84) and OAUTHBEARER (RFC 7628, KIP-255, KIP-768), spoken
// the way Apache Kafka's SaslServer implementations speak them, so that
// unmodified clients (Java, librdkafka, franz-go, sarama, kafka-python,
// KafkaJS) authenticate.
//
// The package knows nothing of the wire: the broker carries the bytes of
// SaslAuthenticate (or of the raw v0 frames) to a Session and back.
//
//   - A Mechanism is one enabled mechanism; Start begins one exchange.
//   - A Session is one exchange: Step takes the client's bytes and returns
//     the server's, until done. Principal and Lifetime are then the result.
//   - A Registry holds the enabled mechanisms in their configured order, for
//     SaslHandshake.
//   - Credentials is the user store behind PLAIN and SCRAM: one SCRAM
//     credential per user and mechanism, as Kafka keeps them (KIP-554).
//
// Failures are *Error values: errors.Is tells ErrAuthenticationFailed,
// ErrMalformed and ErrIllegalState apart, Error() is safe to send to the
// client, and Cause (never sent) says why, for the broker's log.
//
// Mapping to Kafka error codes (what Kafka's SaslServerAuthenticator does):
//
//   - ErrAuthenticationFailed and ErrMalformed: SASL_AUTHENTICATION_FAILED
//     (58) with Error() as the message, then close the connection. Kafka
//     does not tell a garbled token from a wrong password on the wire (both
//     are a SaslException); the two kinds exist here for logs and metrics.
//   - ErrIllegalState (Step on a session that already finished or failed):
//     ILLEGAL_SASL_STATE (34), then close. The broker itself answers 34 for
//     requests out of sequence (SaslAuthenticate before SaslHandshake, a
//     second SaslHandshake, another API before authentication completes).
//   - Registry.Lookup returning nil: UNSUPPORTED_SASL_MECHANISM (33) in the
//     SaslHandshake response, with Registry.Names as the enabled list.
//
// Concurrency: a Mechanism and a Registry are safe for concurrent use; a
// Session belongs to one connection and is not.
package sasl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Mechanism names as Kafka spells them (sasl.enabled.mechanisms).
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
	OAuthBearer = "OAUTHBEARER"
)

// MaxMessageSize is the largest client message a Session accepts: Kafka's
// sasl.server.max.receive.size default (524288). The broker should refuse a
// larger SaslAuthenticate before it reaches Step; Step refuses it too.
const MaxMessageSize = 524288

// Mechanism is one enabled SASL mechanism.
type Mechanism interface {
	// Name is the mechanism's name as Kafka spells it.
	Name() string
	// Start begins one authentication exchange (a connection's first
	// authentication or a KIP-368 re-authentication).
	Start() Session
}

// Session is one authentication exchange.
type Session interface {
	// Step takes the client's next message and returns the server's reply.
	// done is true once the client is authenticated; the reply must still
	// be sent (SCRAM's server-final message carries the server signature).
	// A non-nil error is an *Error: the exchange failed, send its message
	// and close the connection; serverMsg is then nil. ctx bounds the
	// credential lookups of this step.
	Step(ctx context.Context, clientMsg []byte) (serverMsg []byte, done bool, err error)
	// Principal is the authenticated principal, "User:name", once done;
	// "" before.
	Principal() string
	// Lifetime is how long the credential stays valid, measured when Step
	// returned done: an OAUTHBEARER token's remaining life (at least 1ms,
	// so that a token accepted within the clock skew still has a limit).
	// 0 means the credential sets no limit (PLAIN, SCRAM). See
	// SessionLifetime for the value to send the client.
	Lifetime() time.Duration
	// Claimed is the user name the client claimed so far ("" if none yet,
	// or if it cannot be read without checking the credential), so that a
	// failed attempt can be audited under the name it tried.
	Claimed() string
}

// The kinds of *Error, for errors.Is.
var (
	// ErrAuthenticationFailed: the client is not who it says (wrong
	// password, unknown user, invalid token, authzid not the user's own),
	// or its credential could not be checked.
	ErrAuthenticationFailed = errors.New("SASL authentication failed")
	// ErrMalformed: the client's message does not follow the mechanism's
	// grammar (truncated, garbled, a field missing, too long).
	ErrMalformed = errors.New("malformed SASL message")
	// ErrIllegalState: Step was called on a session that already finished
	// or failed.
	ErrIllegalState = errors.New("illegal SASL state")
)

// Error is a failed Step.
type Error struct {
	// Kind is ErrAuthenticationFailed, ErrMalformed or ErrIllegalState.
	Kind error
	// Message is safe to send to the client: it never tells whether a user
	// exists. Kafka's wording where Kafka sends one.
	Message string
	// Cause is why, for the broker's log only: it may name the user, the
	// key or the store's error. May be nil.
	Cause error
}

// Error returns the message for the client.
func (e *Error) Error() string { return e.Message }

// Unwrap exposes Kind (and Cause) to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Cause}
}

// Detail is the message with its cause, for the broker's log.
func (e *Error) Detail() string {
	if e.Cause == nil {
		return e.Message
	}
	return e.Message + ": " + e.Cause.Error()
}

func failed(msg string, cause error) *Error {
	return &Error{Kind: ErrAuthenticationFailed, Message: msg, Cause: cause}
}

func malformed(msg string, cause error) *Error {
	return &Error{Kind: ErrMalformed, Message: msg, Cause: cause}
}

func illegalState(mechanism string) *Error {
	return &Error{Kind: ErrIllegalState, Message: "Unexpected SASL/" + mechanism + " message: the exchange is over"}
}

// invalidCredentials is Kafka's message for a SaslException, which Kafka
// hides behind a fixed text (it "may contain sensitive data like the
// existence of the user").
func invalidCredentials(mechanism string) string {
	return "Authentication failed due to invalid credentials with SASL mechanism " + mechanism
}

func tooLong(mechanism string, n int) *Error {
	return malformed(fmt.Sprintf("SASL/%s message of %d bytes is over the %d byte limit", mechanism, n, MaxMessageSize), nil)
}

// SessionLifetime is the session lifetime the broker sends in
// SaslAuthenticateResponse.SessionLifetimeMillis and after which it closes
// a connection that has not re-authenticated (KIP-368): the shorter of the
// credential's own lifetime (Session.Lifetime) and maxReauth
// (connections.max.reauth.ms); 0 when neither is set, meaning no
// re-authentication is required.
func SessionLifetime(credential, maxReauth time.Duration) time.Duration {
	switch {
	case credential <= 0 && maxReauth <= 0:
		return 0
	case credential <= 0:
		return maxReauth
	case maxReauth <= 0:
		return credential
	default:
		return min(credential, maxReauth)
	}
}

// Registry is the set of enabled mechanisms, in the order SaslHandshake
// lists them.
type Registry struct {
	mechs  []Mechanism
	byName map[string]Mechanism
}

// NewRegistry builds a Registry of mechs, in that order. Two mechanisms of
// the same name, or none at all, are a configuration error.
func NewRegistry(mechs ...Mechanism) (*Registry, error) {
	if len(mechs) == 0 {
		return nil, errors.New("sasl: no mechanism enabled")
	}
	r := &Registry{byName: make(map[string]Mechanism, len(mechs))}
	for _, m := range mechs {
		if m == nil {
			return nil, errors.New("sasl: nil mechanism")
		}
		if _, dup := r.byName[m.Name()]; dup {
			return nil, fmt.Errorf("sasl: mechanism %s enabled twice", m.Name())
		}
		r.byName[m.Name()] = m
		r.mechs = append(r.mechs, m)
	}
	return r, nil
}

// Lookup returns the enabled mechanism of that name (case-sensitive, as in
// Kafka), or nil: the broker then answers UNSUPPORTED_SASL_MECHANISM with
// Names.
func (r *Registry) Lookup(name string) Mechanism { return r.byName[name] }

// Names lists the enabled mechanisms in order.
func (r *Registry) Names() []string {
	names := make([]string, len(r.mechs))
	for i, m := range r.mechs {
		names[i] = m.Name()
	}
	return names
}

// Close releases what the mechanisms hold (the OAUTHBEARER key refresher).
func (r *Registry) Close() error {
	var errs []error
	for _, m := range r.mechs {
		if c, ok := m.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
