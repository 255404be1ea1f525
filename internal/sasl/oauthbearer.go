package sasl

// OAUTHBEARER (RFC 7628, KIP-255) with the JWT validation of Kafka's
// OAuthBearerValidatorCallbackHandler and BrokerJwtValidator (KIP-768).
//
//   - Client initial response, in Kafka's grammar
//     (OAuthBearerClientInitialResponse):
//     n,[a=authzid],^Aauth=<scheme> <token>^A[key=value^A]*^A, scheme
//     "Bearer" in any case, token [-_.a-zA-Z0-9]+, keys [A-Za-z]+ ("auth"
//     once), values [\x21-\x7E \t\r\n]+. Anything else is ErrMalformed
//     with Kafka's message. Extensions are accepted and ignored, as
//     Kafka's validator accepts all.
//   - The token is a JWS-signed JWT checked against the JWK Set (jwks.go):
//     a signature by a key of the set (by kid, or any key if the token has
//     none), exp required and not past, iat required and not in the
//     future, nbf (if present) past, all with ClockSkew (default 30s);
//     the issuer and one audience when configured; the principal's claim
//     (SubClaim, default "sub") a non-empty string, trimmed.
//   - A token that fails is answered, as Kafka does, with the challenge
//     {"status":"invalid_token"} (not an error); the client then sends
//     ^A and Step fails with that JSON as the message. Anything but ^A
//     there is ErrMalformed (Kafka would start over; RFC 7628 3.2.3 says
//     the client must send ^A).
//   - An authzid other than the principal fails with Kafka's message.
//   - Success: an empty reply, done, principal User:<claim>, and Lifetime
//     the token's remaining life (exp - now), which Kafka reports as the
//     credential lifetime for KIP-368.
//
// Deviations from Kafka: signatures by HMAC keys (HS256/384/512, an "oct"
// key in the set) are refused, a JWK Set being for public keys; Kafka's
// jose4j accepts any algorithm but "none". Kafka's checks of the scope
// claim (sasl.oauthbearer.scope.claim.name) are not done: Vigil does not
// use scopes. iat in the future is refused (jose4j only requires it).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// OAuthConfig configures OAUTHBEARER; the Kafka broker settings they stand
// for are named.
type OAuthConfig struct {
	// JWKSFile is a JWK Set file, reread when it changes
	// (sasl.oauthbearer.jwks.endpoint.url=file:...).
	JWKSFile string
	// JWKSURL is an https URL serving the JWK Set
	// (sasl.oauthbearer.jwks.endpoint.url). Exactly one of the two is set.
	JWKSURL string
	// JWKSRefresh is how often JWKSURL is fetched again
	// (sasl.oauthbearer.jwks.endpoint.refresh.ms); default 1h.
	JWKSRefresh time.Duration
	// HTTPClient fetches JWKSURL (a private CA, a proxy); default a client
	// with a 10s timeout.
	HTTPClient *http.Client
	// Issuer, if set, must be the token's iss
	// (sasl.oauthbearer.expected.issuer).
	Issuer string
	// Audience, if set, must contain one of the token's aud
	// (sasl.oauthbearer.expected.audience).
	Audience []string
	// SubClaim names the claim holding the principal's name
	// (sasl.oauthbearer.sub.claim.name); default "sub".
	SubClaim string
	// ClockSkew is the slack allowed on exp, iat and nbf
	// (sasl.oauthbearer.clock.skew.seconds); default 30s, negative is an
	// error.
	ClockSkew time.Duration
	// OnError is told of a JWK Set reload or refresh that failed (the keys
	// in use are kept); default: ignore. It is called from the URL's
	// refresh goroutine too, so it must be safe for concurrent use.
	OnError func(error)
}

// Algorithms a token may be signed with: public-key ones only.
var oauthAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// invalidToken is Kafka's error challenge and final message for a token
// that does not validate.
const invalidToken = `{"status":"invalid_token"}`

// OAuthMechanism is the OAUTHBEARER mechanism. Close stops its key refresh.
type OAuthMechanism struct {
	keys     keyfunc.Keyfunc
	stop     func()
	parser   *jwt.Parser
	subClaim string
	now      func() time.Time // tests move the clock

	closeOnce sync.Once
}

// NewOAuthBearer loads the keys and returns the mechanism; an error is a
// configuration error (no or two key sources, a URL that is not https, an
// unreadable or keyless JWK Set, a negative ClockSkew).
func NewOAuthBearer(cfg OAuthConfig) (*OAuthMechanism, error) {
	if cfg.ClockSkew < 0 {
		return nil, errors.New("sasl: OAUTHBEARER ClockSkew is negative")
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = 30 * time.Second
	}
	if cfg.SubClaim == "" {
		cfg.SubClaim = "sub"
	}
	for _, a := range cfg.Audience {
		if a == "" {
			return nil, errors.New("sasl: OAUTHBEARER Audience holds an empty value")
		}
	}
	onError := cfg.OnError
	if onError == nil {
		onError = func(error) {}
	}
	keys, stop, err := newKeySource(cfg, onError)
	if err != nil {
		return nil, err
	}
	m := &OAuthMechanism{keys: keys, stop: stop, subClaim: cfg.SubClaim, now: time.Now}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(oauthAlgorithms),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.ClockSkew),
		jwt.WithTimeFunc(func() time.Time { return m.now() }),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if len(cfg.Audience) > 0 {
		opts = append(opts, jwt.WithAudience(cfg.Audience...))
	}
	m.parser = jwt.NewParser(opts...)
	return m, nil
}

// Name is OAUTHBEARER.
func (m *OAuthMechanism) Name() string { return OAuthBearer }

// Start begins an exchange.
func (m *OAuthMechanism) Start() Session { return &oauthSession{m: m} }

// Close stops refreshing the JWK Set from its URL.
func (m *OAuthMechanism) Close() error {
	m.closeOnce.Do(m.stop)
	return nil
}

// validate checks a token and returns the principal's name and expiry.
func (m *OAuthMechanism) validate(ctx context.Context, token string) (string, time.Time, error) {
	claims := jwt.MapClaims{}
	if _, err := m.parser.ParseWithClaims(token, claims, m.keys.KeyfuncCtx(ctx)); err != nil {
		return "", time.Time{}, err
	}
	if _, ok := claims["iat"]; !ok {
		return "", time.Time{}, errors.New("token has no iat claim")
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return "", time.Time{}, errors.New("token has no valid exp claim")
	}
	raw, ok := claims[m.subClaim]
	if !ok {
		return "", time.Time{}, fmt.Errorf("token has no %q claim", m.subClaim)
	}
	sub, ok := raw.(string)
	if sub = strings.TrimSpace(sub); !ok || sub == "" {
		return "", time.Time{}, fmt.Errorf("token's %q claim is not a non-empty string", m.subClaim)
	}
	return sub, exp.Time, nil
}

type oauthState int

const (
	oauthStart    oauthState = iota
	oauthRejected            // sent invalid_token, waiting for ^A
	oauthOver
)

type oauthSession struct {
	m         *OAuthMechanism
	state     oauthState
	rejected  error // why the token was rejected
	principal string
	lifetime  time.Duration
}

func (s *oauthSession) Principal() string { return s.principal }

// Claimed is empty: a token's subject is not believed before its signature
// is checked, and a rejected token's claims are the attacker's words.
func (s *oauthSession) Claimed() string         { return "" }
func (s *oauthSession) Lifetime() time.Duration { return s.lifetime }

func (s *oauthSession) Step(ctx context.Context, msg []byte) ([]byte, bool, error) {
	state := s.state
	s.state = oauthOver // until a step succeeds
	switch {
	case state == oauthOver:
		return nil, false, illegalState(OAuthBearer)
	case len(msg) > MaxMessageSize:
		return nil, false, tooLong(OAuthBearer, len(msg))
	case state == oauthRejected:
		if len(msg) != 1 || msg[0] != 0x01 {
			return nil, false, malformed("Invalid OAUTHBEARER client message: expected %x01 after the server's error", s.rejected)
		}
		return nil, false, failed(invalidToken, s.rejected)
	}
	ir, err := parseOAuthInitial(msg)
	if err != nil {
		return nil, false, malformed(err.Error(), nil)
	}
	name, exp, err := s.m.validate(ctx, ir.token)
	if err != nil {
		s.state, s.rejected = oauthRejected, err
		return []byte(invalidToken), false, nil
	}
	if ir.authzid != "" && ir.authzid != name {
		return nil, false, failed(fmt.Sprintf("Authentication failed: Client requested an authorization id (%s) "+
			"that is different from the token's principal name (%s)", ir.authzid, name), nil)
	}
	s.principal = "User:" + name
	s.lifetime = max(exp.Sub(s.m.now()), time.Millisecond)
	return []byte{}, true, nil
}

// oauthInitial is a parsed client initial response.
type oauthInitial struct {
	authzid, token string
	extensions     map[string]string
}

// parseOAuthInitial parses Kafka's grammar; its errors are Kafka's
// messages, safe for the client.
//
//	"n," ["a=" saslname] "," ^A ( key "=" value ^A )* ^A
func parseOAuthInitial(msg []byte) (oauthInitial, error) {
	const bad = "Invalid OAUTHBEARER client first message"
	var ir oauthInitial
	if !utf8.Valid(msg) {
		return ir, errors.New(bad)
	}
	rest, ok := strings.CutPrefix(string(msg), "n,")
	if !ok {
		return ir, errors.New(bad)
	}
	if after, ok := strings.CutPrefix(rest, "a="); ok {
		name, tail, ok := strings.Cut(after, ",")
		if !ok {
			return ir, errors.New(bad)
		}
		if ir.authzid, ok = decodeSaslName(name); !ok {
			return ir, errors.New(bad)
		}
		rest = tail
	} else if rest, ok = strings.CutPrefix(rest, ","); !ok {
		return ir, errors.New(bad)
	}
	// ^A kvpairs ^A, each pair ending in ^A: so rest is ^A pairs ^A.
	if len(rest) < 2 || rest[0] != 0x01 || rest[len(rest)-1] != 0x01 {
		return ir, errors.New(bad)
	}
	pairs := rest[1 : len(rest)-1]
	props := make(map[string]string)
	for pairs != "" {
		kv, tail, ok := strings.Cut(pairs, "\x01")
		if !ok {
			return ir, errors.New(bad)
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !isAlpha(k) || !isOAuthValue(v) {
			return ir, errors.New(bad)
		}
		props[k] = v
		pairs = tail
	}
	auth, ok := props["auth"]
	if !ok {
		return ir, errors.New(bad + ": 'auth' not specified")
	}
	delete(props, "auth")
	scheme, token, ok := strings.Cut(auth, " ")
	token = strings.TrimLeft(token, " ")
	if !ok || !isWord(scheme) || !isTokenChars(token) {
		return ir, errors.New(bad + ": invalid 'auth' format")
	}
	if !strings.EqualFold(scheme, "bearer") {
		return ir, errors.New("Invalid scheme in OAUTHBEARER client first message: " + scheme)
	}
	ir.token, ir.extensions = token, props
	return ir, nil
}

// isOAuthValue: one or more of 0x21-0x7E, space, tab, CR, LF.
func isOAuthValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x21 || c > 0x7e) && c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return s != ""
}

// isWord: one or more of [A-Za-z0-9_] (a regexp \w).
func isWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return s != ""
}

// isTokenChars: one or more of [-_.a-zA-Z0-9], the compact JWT alphabet.
func isTokenChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return s != ""
}
