package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/quota"
)

// SASL is the server side of the enabled SASL mechanisms (package sasl).
type SASL interface {
	// Mechanisms lists the enabled mechanisms, as SaslHandshake answers.
	Mechanisms() []string
	// Start begins an exchange of a mechanism; false if it is not enabled.
	Start(mechanism string) (SASLSession, bool)
}

// SASLSession is one exchange of a mechanism.
type SASLSession interface {
	// Step takes the client's next message and returns the server's
	// answer; done once the client is authenticated. An error fails the
	// authentication; its text is sent to the client.
	Step(ctx context.Context, client []byte) (server []byte, done bool, err error)
	// Principal is who authenticated, once done.
	Principal() string
	// Lifetime is how long the credential stays valid (an OAUTHBEARER
	// token's remaining life), 0 if it has no limit of its own.
	Lifetime() time.Duration
	// Claimed is the user name the client claimed, "" if none (for the
	// audit of a failed attempt).
	Claimed() string
}

// failedAuthDelay is Kafka's connection.failed.authentication.delay.ms
// default: how long a connection whose authentication failed stays open
// before it is closed, so a client retrying a wrong password in a loop is
// slowed (Broker.failedAuthDelay; the fuzz test sets it to 0).
const failedAuthDelay = 100 * time.Millisecond

// authState is a connection's authentication: who it is and, on a SASL
// listener, where its exchange stands. Only the reader goroutine uses it
// (requests are decoded, and SASL requests handled, there in order).
type authState struct {
	principal string // "User:..."; principal.Anonymous until authenticated
	host      string // the client's IP, for ACL host matching
	// On a SASL listener: authenticated once an exchange succeeded.
	authenticated bool
	mechanism     string      // of the handshake in progress or the last exchange
	session       SASLSession // the exchange in progress; nil between exchanges
	handshakeV    int16       // version of the last SaslHandshake
	// raw: after a v0 handshake the client sends bare SASL tokens, framed
	// only by a length, instead of SaslAuthenticate requests.
	raw bool
	// expires is when the session must have authenticated again (KIP-368;
	// zero: never). A request other than re-authentication after it
	// closes the connection, as Kafka does.
	expires time.Time
}

func clientHost(nc net.Conn) string {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, _ := strings.Cut(nc.RemoteAddr().String(), ":")
	return host
}

// errBeforeAuth closes a SASL connection that sends anything but the
// handshake before authenticating, as Kafka does.
var errBeforeAuth = errors.New("unexpected request during SASL authentication")

// gate checks a decoded request against the connection's authentication
// before it is handled: on a SASL listener only ApiVersions and the SASL
// exchange may come before authentication, and an expired session may
// only re-authenticate.
func (c *conn) gate(key int16) error {
	sasl := key == kmsg.SASLHandshake.Int16() || key == kmsg.SASLAuthenticate.Int16()
	if !c.listener.SASL() || sasl {
		return nil
	}
	if !c.auth.authenticated {
		if key == kmsg.ApiVersions.Int16() {
			return nil
		}
		return fmt.Errorf("%w: %s before the client authenticated", errBeforeAuth, kmsg.NameForKey(key))
	}
	if !c.auth.expires.IsZero() && time.Now().After(c.auth.expires) {
		return fmt.Errorf("SASL session of %s expired at %s without re-authentication (connections.max.reauth.ms); closing the connection",
			c.auth.principal, c.auth.expires.Format(time.RFC3339))
	}
	return nil
}

func (b *Broker) handleSASLHandshake(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	a := &c.auth
	if !c.listener.SASL() || b.sasl == nil {
		// Kafka answers a handshake outside SASL (or after it, at v0) so.
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.SupportedMechanisms = []string{}
		return func() kmsg.Response { return resp }
	}
	resp.SupportedMechanisms = b.sasl.Mechanisms()
	if a.session != nil || (a.authenticated && h.version < 1) {
		// A second handshake inside an exchange; re-authentication
		// (KIP-368) needs v1.
		resp.ErrorCode = kerr.IllegalSaslState.Code
		c.closeAfter(fmt.Errorf("SaslHandshake v%d while %s", h.version, a.stage()))
		return func() kmsg.Response { return resp }
	}
	if a.authenticated && req.Mechanism != a.mechanism {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		c.closeAfter(fmt.Errorf("re-authentication with %s after authenticating with %s", req.Mechanism, a.mechanism))
		return func() kmsg.Response { return resp }
	}
	session, ok := b.sasl.Start(req.Mechanism)
	if !ok {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		c.authEvent(req.Mechanism, false, fmt.Sprintf("unsupported SASL mechanism %q (enabled: %s)", req.Mechanism, strings.Join(resp.SupportedMechanisms, ", ")))
		c.closeAfter(fmt.Errorf("unsupported SASL mechanism %q", req.Mechanism))
		return func() kmsg.Response { return resp }
	}
	a.session, a.mechanism, a.handshakeV = session, req.Mechanism, h.version
	a.raw = h.version == 0
	return func() kmsg.Response { return resp }
}

func (a *authState) stage() string {
	switch {
	case a.session != nil:
		return "an exchange is in progress"
	case a.authenticated:
		return "authenticated"
	default:
		return "not authenticated"
	}
}

func (b *Broker) handleSASLAuthenticate(c *conn, h header, r kmsg.Request) func() kmsg.Response {
	req := r.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	a := &c.auth
	if !c.listener.SASL() || a.session == nil || a.handshakeV < 1 {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate without a SaslHandshake v1 before it"
		resp.ErrorMessage = &msg
		c.closeAfter(errors.New(msg))
		return func() kmsg.Response { return resp }
	}
	out, done, err := c.step(req.SASLAuthBytes)
	if err != nil {
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := err.Error()
		resp.ErrorMessage = &msg
		return func() kmsg.Response { return resp }
	}
	resp.SASLAuthBytes = out
	if done {
		resp.SessionLifetimeMillis = c.sessionLifetime()
	}
	return func() kmsg.Response { return resp }
}

// step runs one message of the exchange in progress. On failure the
// connection is closed once the answer is written (after
// failedAuthDelay); on success the connection takes the principal.
func (c *conn) step(msg []byte) ([]byte, bool, error) {
	a := &c.auth
	out, done, err := a.session.Step(c.ctx, msg)
	if err != nil {
		who := a.principal
		if cl := a.session.Claimed(); cl != "" && !a.authenticated {
			who = "User:" + cl
		}
		reason := err.Error()
		var d interface{ Detail() string }
		if errors.As(err, &d) {
			reason = d.Detail()
		}
		a.session = nil
		c.authEventAs(who, a.mechanism, false, reason)
		c.closeAfter(fmt.Errorf("SASL %s authentication of %s failed: %s", a.mechanism, who, reason))
		return nil, false, fmt.Errorf("Authentication failed during authentication due to invalid credentials with SASL mechanism %s", a.mechanism)
	}
	if !done {
		return out, false, nil
	}
	p := a.session.Principal()
	lifetime := a.session.Lifetime()
	a.session, a.raw = nil, false
	if a.authenticated && p != a.principal {
		// KIP-368: re-authentication may not change who the connection is.
		c.authEvent(a.mechanism, false, fmt.Sprintf("re-authentication as %s on a connection of %s", p, a.principal))
		c.closeAfter(fmt.Errorf("re-authentication as %s on a connection of %s", p, a.principal))
		return nil, false, fmt.Errorf("re-authentication must keep the principal %s", a.principal)
	}
	a.authenticated = true
	c.setPrincipal(p)
	a.expires = time.Time{}
	if max := c.b.cfg.Security.ConnectionsMaxReauth; max > 0 {
		if lifetime <= 0 || lifetime > max {
			lifetime = max
		}
		a.expires = time.Now().Add(lifetime)
	}
	c.log = c.b.log.With("remote", c.nc.RemoteAddr().String(), "listener", c.listener.Protocol, "principal", p)
	c.authEvent(a.mechanism, true, "")
	return out, true, nil
}

// sessionLifetime is SaslAuthenticate v1's session_lifetime_ms: the time
// left before the client must authenticate again, 0 for never.
func (c *conn) sessionLifetime() int64 {
	if c.auth.expires.IsZero() {
		return 0
	}
	return max(1, time.Until(c.auth.expires).Milliseconds())
}

// rawToken handles one bare SASL token of a v0 exchange. A failure
// closes the connection without an answer: the v0 framing has no way to
// carry an error, and Kafka closes it so.
func (c *conn) rawToken(token []byte) (pending, error) {
	out, _, err := c.step(token)
	if err != nil {
		return pending{}, err
	}
	return pending{raw: out, isRaw: true}, nil
}

// AuthEvent is one authentication attempt, for the audit trail.
type AuthEvent struct {
	Principal string // who authenticated, or who the connection was when it failed
	Mechanism string // SASL mechanism, or "SSL" for a client certificate
	Listener  string // the listener's security protocol
	Remote    string // the client's address
	OK        bool
	Reason    string // why it failed
}

func (c *conn) authEvent(mechanism string, ok bool, reason string) {
	c.authEventAs(c.auth.principal, mechanism, ok, reason)
}

// authEventAs reports an attempt as principal (a failed one: who the
// client claimed to be).
func (c *conn) authEventAs(principal, mechanism string, ok bool, reason string) {
	e := AuthEvent{Principal: principal, Mechanism: mechanism, Listener: c.listener.Protocol,
		Remote: c.nc.RemoteAddr().String(), OK: ok, Reason: reason}
	if ok {
		c.log.Info("authenticated", "mechanism", mechanism)
	} else {
		c.log.Warn("authentication failed", "principal", principal, "mechanism", mechanism, "reason", reason)
	}
	c.b.secObs.Authentication(e)
}

// setPrincipal names who the connection is, for authorization and quotas.
func (c *conn) setPrincipal(p string) {
	c.auth.principal = p
	user := strings.TrimPrefix(p, "User:")
	c.quotaUser.Store(&user)
}

// user is the principal's name as quotas know users (Kafka's
// KafkaPrincipal.getName): ANONYMOUS until someone authenticates.
func (c *conn) user() string {
	if u := c.quotaUser.Load(); u != nil {
		return *u
	}
	return quota.Anonymous
}
