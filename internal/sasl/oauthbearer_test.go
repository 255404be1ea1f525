package sasl

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	fsasl "github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
)

// testKey is a signing key and the kid and alg it is published under.
type testKey struct {
	kid    string
	method jwt.SigningMethod
	priv   crypto.Signer
}

var (
	keyOnce              sync.Once
	rsaA, rsaB, ecA, ecB testKey
)

// keys makes the test keys once: RSA keys are slow to generate.
func keys(t testing.TB) (rsa1, rsa2, ec1, ec2 testKey) {
	t.Helper()
	keyOnce.Do(func() {
		r1, err1 := rsa.GenerateKey(rand.Reader, 2048)
		r2, err2 := rsa.GenerateKey(rand.Reader, 2048)
		e1, err3 := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		e2, err4 := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			panic(err)
		}
		rsaA = testKey{"rsa-a", jwt.SigningMethodRS256, r1}
		rsaB = testKey{"rsa-b", jwt.SigningMethodRS256, r2}
		ecA = testKey{"ec-a", jwt.SigningMethodES256, e1}
		ecB = testKey{"ec-b", jwt.SigningMethodES256, e2}
	})
	return rsaA, rsaB, ecA, ecB
}

// jwksJSON is a JWK Set publishing the keys' public halves.
func jwksJSON(t testing.TB, ks ...testKey) []byte {
	t.Helper()
	set := jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{}}
	for _, k := range ks {
		j, err := jwkset.NewJWKFromKey(k.priv.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
			KID: k.kid, ALG: jwkset.ALG(k.method.Alg()), USE: jwkset.UseSig,
		}})
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, j.Marshal())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeJWKS(t testing.TB, path string, ks ...testKey) {
	t.Helper()
	if err := os.WriteFile(path, jwksJSON(t, ks...), 0o600); err != nil {
		t.Fatal(err)
	}
}

// sign makes a JWT signed by k, with k's kid unless the claims map holds
// a "kid" header override under the key "-kid" ("" for none).
func sign(t testing.TB, k testKey, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.method, claims)
	tok.Header["kid"] = k.kid
	if kid, ok := claims["-kid"]; ok {
		delete(claims, "-kid")
		if kid == "" {
			delete(tok.Header, "kid")
		} else {
			tok.Header["kid"] = kid
		}
	}
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testNow is the clock of the OAuth tests.
var testNow = time.Unix(1_800_000_000, 0)

// claimsAt are valid claims for testNow: alice, issued a minute ago,
// expiring in an hour, from the expected issuer to the expected audience.
func claimsAt() jwt.MapClaims {
	return jwt.MapClaims{
		"sub": "alice",
		"iss": "https://idp.example",
		"aud": []string{"other", "vigil"},
		"iat": testNow.Add(-time.Minute).Unix(),
		"exp": testNow.Add(time.Hour).Unix(),
	}
}

// newOAuth is an OAUTHBEARER mechanism on a JWKS file of keys, at testNow.
func newOAuth(t testing.TB, cfg OAuthConfig, ks ...testKey) (*OAuthMechanism, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeJWKS(t, path, ks...)
	cfg.JWKSFile = path
	m, err := NewOAuthBearer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	m.now = func() time.Time { return testNow }
	return m, path
}

var idpConfig = OAuthConfig{Issuer: "https://idp.example", Audience: []string{"vigil"}}

func oauthClient(zid, token string, ext map[string]string) fsasl.Mechanism {
	return oauth.Auth{Zid: zid, Token: token, Extensions: ext}.AsMechanism()
}

func TestOAuthValid(t *testing.T) {
	r1, _, e1, _ := keys(t)
	m, _ := newOAuth(t, idpConfig, r1, e1)
	for _, k := range []testKey{r1, e1} {
		t.Run(k.method.Alg(), func(t *testing.T) {
			r := exchange(t, oauthClient("", sign(t, k, claimsAt()), nil), m, nil)
			wantOK(t, r, "User:alice")
			if r.step != 0 || r.sess.Lifetime() != time.Hour {
				t.Fatalf("step %d, lifetime %v: want one step and the token's remaining hour", r.step, r.sess.Lifetime())
			}
		})
	}
	t.Run("authzid and extensions", func(t *testing.T) {
		wantOK(t, exchange(t, oauthClient("alice", sign(t, r1, claimsAt()), map[string]string{"traceId": "abc 123", "logicalCluster": "lkc-1"}), m, nil), "User:alice")
	})
	t.Run("no kid", func(t *testing.T) {
		c := claimsAt()
		c["-kid"] = ""
		wantOK(t, exchange(t, oauthClient("", sign(t, e1, c), nil), m, nil), "User:alice")
	})
	t.Run("single audience, padded sub", func(t *testing.T) {
		c := claimsAt()
		c["aud"], c["sub"] = "vigil", " alice "
		wantOK(t, exchange(t, oauthClient("", sign(t, r1, c), nil), m, nil), "User:alice")
	})
	t.Run("within the clock skew", func(t *testing.T) {
		c := claimsAt()
		c["exp"] = testNow.Add(-20 * time.Second).Unix()
		c["nbf"] = testNow.Add(20 * time.Second).Unix()
		c["iat"] = testNow.Add(20 * time.Second).Unix()
		r := exchange(t, oauthClient("", sign(t, r1, c), nil), m, nil)
		wantOK(t, r, "User:alice")
		if r.sess.Lifetime() != time.Millisecond {
			t.Fatalf("lifetime of a token past exp: %v, want the 1ms floor", r.sess.Lifetime())
		}
	})
	t.Run("no issuer or audience configured", func(t *testing.T) {
		m2, _ := newOAuth(t, OAuthConfig{}, r1)
		c := claimsAt()
		delete(c, "iss")
		c["aud"] = "anyone"
		wantOK(t, exchange(t, oauthClient("", sign(t, r1, c), nil), m2, nil), "User:alice")
	})
}

func TestOAuthRejected(t *testing.T) {
	r1, r2, e1, e2 := keys(t)
	m, _ := newOAuth(t, idpConfig, r1, e1)
	hsKey := x509.MarshalPKCS1PublicKey(r1.priv.Public().(*rsa.PublicKey))
	for name, c := range map[string]struct {
		token func() string
		why   error // in the cause, for errors.Is; nil: only the message is checked
	}{
		"expired": {func() string {
			c := claimsAt()
			c["exp"] = testNow.Add(-31 * time.Second).Unix()
			return sign(t, r1, c)
		}, jwt.ErrTokenExpired},
		"not yet valid": {func() string {
			c := claimsAt()
			c["nbf"] = testNow.Add(31 * time.Second).Unix()
			return sign(t, r1, c)
		}, jwt.ErrTokenNotValidYet},
		"issued in the future": {func() string {
			c := claimsAt()
			c["iat"] = testNow.Add(31 * time.Second).Unix()
			return sign(t, r1, c)
		}, jwt.ErrTokenUsedBeforeIssued},
		"no exp": {func() string {
			c := claimsAt()
			delete(c, "exp")
			return sign(t, r1, c)
		}, jwt.ErrTokenRequiredClaimMissing},
		"no iat": {func() string {
			c := claimsAt()
			delete(c, "iat")
			return sign(t, r1, c)
		}, nil},
		"wrong issuer": {func() string {
			c := claimsAt()
			c["iss"] = "https://evil.example"
			return sign(t, r1, c)
		}, jwt.ErrTokenInvalidIssuer},
		"no issuer": {func() string {
			c := claimsAt()
			delete(c, "iss")
			return sign(t, r1, c)
		}, jwt.ErrTokenRequiredClaimMissing},
		"wrong audience": {func() string {
			c := claimsAt()
			c["aud"] = []string{"kafka", "other"}
			return sign(t, r1, c)
		}, jwt.ErrTokenInvalidAudience},
		"no audience": {func() string {
			c := claimsAt()
			delete(c, "aud")
			return sign(t, r1, c)
		}, jwt.ErrTokenRequiredClaimMissing},
		"bad signature": {func() string {
			c := claimsAt()
			c["-kid"] = r1.kid // signed by r2 under r1's kid
			return sign(t, r2, c)
		}, jwt.ErrTokenSignatureInvalid},
		"bad signature, no kid": {func() string {
			c := claimsAt()
			c["-kid"] = ""
			return sign(t, e2, c)
		}, jwt.ErrTokenSignatureInvalid},
		"unknown kid": {func() string { return sign(t, r2, claimsAt()) }, jwkset.ErrKeyNotFound},
		"no sub": {func() string {
			c := claimsAt()
			delete(c, "sub")
			return sign(t, r1, c)
		}, nil},
		"blank sub": {func() string {
			c := claimsAt()
			c["sub"] = "  "
			return sign(t, r1, c)
		}, nil},
		"sub not a string": {func() string {
			c := claimsAt()
			c["sub"] = 42
			return sign(t, r1, c)
		}, nil},
		"alg none": {func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, claimsAt())
			tok.Header["kid"] = r1.kid
			s, _ := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			return s + "AAAA" // a none token ends in '.', which Kafka's token grammar refuses: give it a signature
		}, jwt.ErrTokenSignatureInvalid},
		"HS256 keyed with the RSA public key": {func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claimsAt())
			tok.Header["kid"] = r1.kid
			s, _ := tok.SignedString(hsKey)
			return s
		}, jwt.ErrTokenSignatureInvalid},
		"not a JWT": {func() string { return "abc.def.ghi" }, jwt.ErrTokenMalformed},
		"two parts": {func() string { return "abc.def" }, jwt.ErrTokenMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			r := exchange(t, oauthClient("", c.token(), nil), m, nil)
			wantFail(t, r, ErrAuthenticationFailed, invalidToken)
			if r.err.Error() != `{"status":"invalid_token"}` || r.step != 1 {
				t.Fatalf("failed with %q at step %d, want Kafka's JSON after the client's ^A", r.err, r.step)
			}
			if c.why != nil && !errors.Is(r.err, c.why) {
				t.Fatalf("cause %s, want %v", r.err.(*Error).Detail(), c.why)
			}
		})
	}
}

func TestOAuthCustomSubClaim(t *testing.T) {
	r1, _, _, _ := keys(t)
	m, _ := newOAuth(t, OAuthConfig{SubClaim: "preferred_username"}, r1)
	c := claimsAt()
	c["preferred_username"] = "svc-orders"
	wantOK(t, exchange(t, oauthClient("", sign(t, r1, c), nil), m, nil), "User:svc-orders")
	delete(c, "preferred_username") // sub alone is not enough then
	wantFail(t, exchange(t, oauthClient("", sign(t, r1, c), nil), m, nil), ErrAuthenticationFailed, invalidToken)
}

func TestOAuthAuthzidMismatch(t *testing.T) {
	r1, _, _, _ := keys(t)
	m, _ := newOAuth(t, idpConfig, r1)
	r := exchange(t, oauthClient("bob", sign(t, r1, claimsAt()), nil), m, nil)
	wantFail(t, r, ErrAuthenticationFailed, "Client requested an authorization id (bob) that is different from the token's principal name (alice)")
	if r.step != 0 {
		t.Fatalf("failed at step %d", r.step)
	}
}

func TestOAuthKeyRotationFile(t *testing.T) {
	r1, r2, e1, _ := keys(t)
	var errs []error
	cfg := idpConfig
	cfg.OnError = func(err error) { errs = append(errs, err) }
	m, path := newOAuth(t, cfg, r1, e1)
	oldTok, newTok := sign(t, r1, claimsAt()), sign(t, r2, claimsAt())
	wantOK(t, exchange(t, oauthClient("", oldTok, nil), m, nil), "User:alice")
	wantFail(t, exchange(t, oauthClient("", newTok, nil), m, nil), ErrAuthenticationFailed, invalidToken)

	// The IdP rotates: r2 in, r1 out. The new kid is found at once.
	writeJWKS(t, path, r2, e1)
	wantOK(t, exchange(t, oauthClient("", newTok, nil), m, nil), "User:alice")
	r := exchange(t, oauthClient("", oldTok, nil), m, nil)
	wantFail(t, r, ErrAuthenticationFailed, invalidToken)
	if !errors.Is(r.err, jwkset.ErrKeyNotFound) {
		t.Fatalf("retired key: %s", r.err.(*Error).Detail())
	}

	// A half-written file keeps the keys in use and is reported.
	if err := os.WriteFile(path, []byte(`{"keys":[{"kty":`), 0o600); err != nil {
		t.Fatal(err)
	}
	wantFail(t, exchange(t, oauthClient("", oldTok, nil), m, nil), ErrAuthenticationFailed, invalidToken) // forces a check
	wantOK(t, exchange(t, oauthClient("", newTok, nil), m, nil), "User:alice")
	if len(errs) == 0 || !strings.Contains(errs[0].Error(), "keeping the keys in use") {
		t.Fatalf("OnError got %v", errs)
	}
}

func TestOAuthJWKSURL(t *testing.T) {
	r1, r2, _, _ := keys(t)
	var mu sync.Mutex
	served := jwksJSON(t, r1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(served)
	}))
	defer srv.Close()

	m, err := NewOAuthBearer(OAuthConfig{JWKSURL: srv.URL + "/jwks", HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.now = func() time.Time { return testNow }
	wantOK(t, exchange(t, oauthClient("", sign(t, r1, claimsAt()), nil), m, nil), "User:alice")

	// Rotation at the IdP: an unknown kid fetches the set again.
	mu.Lock()
	served = jwksJSON(t, r2)
	mu.Unlock()
	wantOK(t, exchange(t, oauthClient("", sign(t, r2, claimsAt()), nil), m, nil), "User:alice")
	wantFail(t, exchange(t, oauthClient("", sign(t, r1, claimsAt()), nil), m, nil), ErrAuthenticationFailed, invalidToken)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// The IdP down at start is a start-up error, as in Kafka.
	down := httptest.NewTLSServer(http.NotFoundHandler())
	down.Close()
	if _, err := NewOAuthBearer(OAuthConfig{JWKSURL: down.URL, HTTPClient: down.Client()}); err == nil {
		t.Fatal("started without keys")
	}
}

func TestOAuthConfigErrors(t *testing.T) {
	r1, _, _, _ := keys(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "jwks.json")
	writeJWKS(t, good, r1)
	empty := filepath.Join(dir, "empty.json")
	os.WriteFile(empty, []byte(`{"keys":[]}`), 0o600)
	junk := filepath.Join(dir, "junk.json")
	os.WriteFile(junk, []byte(`not json`), 0o600)
	for name, cfg := range map[string]OAuthConfig{
		"no source":      {},
		"two sources":    {JWKSFile: good, JWKSURL: "https://idp.example/jwks"},
		"http URL":       {JWKSURL: "http://idp.example/jwks"},
		"not a URL":      {JWKSURL: "::"},
		"missing file":   {JWKSFile: filepath.Join(dir, "nope.json")},
		"no keys":        {JWKSFile: empty},
		"not JSON":       {JWKSFile: junk},
		"negative skew":  {JWKSFile: good, ClockSkew: -time.Second},
		"empty audience": {JWKSFile: good, Audience: []string{""}},
	} {
		if m, err := NewOAuthBearer(cfg); err == nil {
			m.Close()
			t.Errorf("%s: no error", name)
		}
	}
}

func TestOAuthMalformed(t *testing.T) {
	r1, _, _, _ := keys(t)
	m, _ := newOAuth(t, idpConfig, r1)
	tok := sign(t, r1, claimsAt())
	ctx := context.Background()
	for _, msg := range []string{
		"",
		"\x01",
		"n,,",
		"n,,\x01\x01",                           // no auth
		"n,,\x01auth=Bearer\x01\x01",            // no token
		"n,,\x01auth=Bearer \x01\x01",           // empty token
		"n,,\x01auth=Basic " + tok + "\x01\x01", // not Bearer
		"n,,\x01auth=Bearer " + tok + "\x01",    // last ^A missing
		"n,,\x01auth=Bearer " + tok,             // no ^A at all
		"n,,auth=Bearer " + tok + "\x01\x01",    // first ^A missing
		"y,,\x01auth=Bearer " + tok + "\x01\x01",
		"n,a=,\x01auth=Bearer " + tok + "\x01\x01",
		"n,a=al,ice,\x01auth=Bearer " + tok + "\x01\x01",
		"n,,\x01auth=Bearer " + tok + "\x011x=y\x01\x01",   // key not alpha
		"n,,\x01auth=Bearer " + tok + "\x01x=\x00\x01\x01", // value not printable
		"n,,\x01auth=Bearer " + tok + "\x01x\x01\x01",      // pair without '='
		"n,,\x01auth=Bearer " + tok + "!\x01\x01",          // token outside [-_.a-zA-Z0-9]
		"n,,\x01auth=Bearer " + tok + "\x01\xff=\xfe\x01\x01",
		strings.Repeat("n", MaxMessageSize+1),
	} {
		out, done, err := m.Start().Step(ctx, []byte(msg))
		if !errors.Is(err, ErrMalformed) || done || out != nil {
			t.Errorf("%.60q: got %q %v %v, want ErrMalformed", msg, out, done, err)
		}
	}
	// Kafka's messages.
	_, _, err := m.Start().Step(ctx, []byte("n,,\x01\x01"))
	if err.Error() != "Invalid OAUTHBEARER client first message: 'auth' not specified" {
		t.Errorf("message %q", err)
	}
	_, _, err = m.Start().Step(ctx, []byte("n,,\x01auth=Basic abc\x01\x01"))
	if err.Error() != "Invalid scheme in OAUTHBEARER client first message: Basic" {
		t.Errorf("message %q", err)
	}
	// Bearer in any case, several spaces: accepted as Kafka's grammar does.
	_, done, err := m.Start().Step(ctx, []byte("n,,\x01auth=bEaReR   "+tok+"\x01\x01"))
	if err != nil || !done {
		t.Errorf("scheme case and spaces: %v", err)
	}

	// After invalid_token the client must send ^A.
	s := m.Start()
	out, done, err := s.Step(ctx, []byte("n,,\x01auth=Bearer abc.def.ghi\x01\x01"))
	if err != nil || done || string(out) != invalidToken {
		t.Fatalf("bad token: %q %v %v", out, done, err)
	}
	if _, _, err := s.Step(ctx, []byte("n,,\x01auth=Bearer "+tok+"\x01\x01")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("retry after invalid_token: %v, want ErrMalformed", err)
	}
	if _, _, err := s.Step(ctx, []byte{1}); !errors.Is(err, ErrIllegalState) {
		t.Fatalf("step after failure: %v, want ErrIllegalState", err)
	}
}

func TestSessionLifetime(t *testing.T) {
	for _, c := range []struct{ cred, max, want time.Duration }{
		{0, 0, 0},
		{time.Hour, 0, time.Hour},
		{0, time.Minute, time.Minute},
		{time.Hour, time.Minute, time.Minute},
		{time.Second, time.Minute, time.Second},
	} {
		if got := SessionLifetime(c.cred, c.max); got != c.want {
			t.Errorf("SessionLifetime(%v, %v) = %v, want %v", c.cred, c.max, got, c.want)
		}
	}
}
