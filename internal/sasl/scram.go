package sasl

// SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677, KIP-84), as Kafka's
// ScramSaslServer; the cryptographic conversation is xdg-go/scram's.
//
//   - client-first: n,[a=authzid],n=user,r=nonce[,ext=value]*, in Kafka's
//     grammar (ScramMessages): gs2 flag "n" only (no channel binding), an
//     ASCII SASLname with =2C and =3D escapes, a printable nonce. Anything
//     else, and the reserved m= (a mandatory extension), is ErrMalformed.
//   - Extensions: tokenauth=true (KIP-48, a delegation token) fails, as
//     Vigil has no delegation tokens; any other extension is ignored, as
//     Kafka ignores it ("Unsupported extensions will be ignored").
//   - authzid, if given, must equal the username (Kafka's message).
//   - server-first: r=cnonce+snonce,s=salt,i=iterations; client-final:
//     c=,r=,p= (Kafka's grammar; c= must be the gs2 header, the nonce the
//     one sent); server-final: v=signature, and the exchange is done with
//     principal User:user. Lifetime is 0: Kafka sets one only for
//     delegation tokens.
//   - Every failure but a malformed message carries Kafka's fixed text
//     ("... invalid credentials with SASL mechanism SCRAM-SHA-256"); no
//     e= server-final is sent: Kafka answers SASL_AUTHENTICATION_FAILED.
//
// Deviation from Kafka, on purpose: an unknown user (or a stored
// credential that is unusable, e.g. under 4096 iterations) is not refused
// at client-first, which would tell a client the user does not exist.
// Server-first carries a decoy salt (stable per user, see
// PasswordOptions.DecoySecret) and the exchange fails at client-final like
// a wrong password, after the same work.

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/xdg-go/scram"
)

type scramMech struct {
	name   string
	hash   scram.HashGeneratorFcn
	creds  Credentials
	decoys decoys
	nonce  func() string // the server nonce; nil: xdg-go/scram's (24 random bytes); tests fix it
}

// NewScram is the SCRAM mechanism of that name (ScramSHA256 or
// ScramSHA512) over creds.
func NewScram(mechanism string, creds Credentials, opts PasswordOptions) (Mechanism, error) {
	var h scram.HashGeneratorFcn
	switch mechanism {
	case ScramSHA256:
		h = scram.SHA256
	case ScramSHA512:
		h = scram.SHA512
	default:
		return nil, fmt.Errorf("sasl: %q is not a SCRAM mechanism (%s, %s)", mechanism, ScramSHA256, ScramSHA512)
	}
	if creds == nil {
		return nil, fmt.Errorf("sasl: %s needs Credentials", mechanism)
	}
	d, err := newDecoys(opts)
	if err != nil {
		return nil, err
	}
	return &scramMech{name: mechanism, hash: h, creds: creds, decoys: d}, nil
}

func (m *scramMech) Name() string { return m.name }

func (m *scramMech) Start() Session { return &scramSession{m: m} }

type scramState int

const (
	scramFirst scramState = iota
	scramFinal
	scramOver
)

type scramSession struct {
	m         *scramMech
	state     scramState
	conv      *scram.ServerConversation
	user      string
	cnonce    string // the client's nonce, from client-first
	c1b, s1   string // client-first-message-bare and server-first, for the AuthMessage
	cred      scram.StoredCredentials
	decoy     error // why this exchange runs on a decoy credential and must fail
	principal string

	// Set only while conv.Step runs, for the credential lookup callback.
	ctx       context.Context
	lookupErr error
}

func (s *scramSession) Principal() string       { return s.principal }
func (s *scramSession) Claimed() string         { return s.user }
func (s *scramSession) Lifetime() time.Duration { return 0 }

func (s *scramSession) Step(ctx context.Context, msg []byte) ([]byte, bool, error) {
	state := s.state
	s.state = scramOver // until the step succeeds
	switch {
	case state == scramOver:
		return nil, false, illegalState(s.m.name)
	case len(msg) > MaxMessageSize:
		return nil, false, tooLong(s.m.name, len(msg))
	case state == scramFirst:
		out, err := s.first(ctx, string(msg))
		if err != nil {
			return nil, false, err
		}
		s.state = scramFinal
		return []byte(out), false, nil
	default:
		out, err := s.final(string(msg))
		if err != nil {
			return nil, false, err
		}
		s.principal = "User:" + s.user
		return []byte(out), true, nil
	}
}

func (s *scramSession) first(ctx context.Context, msg string) (string, *Error) {
	cf, err := parseClientFirst(msg)
	if err != nil {
		return "", malformed("Invalid SCRAM client first message", err)
	}
	if cf.authzid != "" && cf.authzid != cf.user {
		return "", failed("Authentication failed: Client requested an authorization id that is different from username",
			fmt.Errorf("user %q asked for authzid %q", cf.user, cf.authzid))
	}
	if v, ok := cf.extensions["tokenauth"]; ok && strings.EqualFold(v, "true") {
		return "", failed(invalidCredentials(s.m.name), errors.New("delegation token authentication is not supported"))
	}
	s.user, s.cnonce = cf.user, cf.nonce
	s.c1b = msg[strings.Index(msg, "n="):]
	srv, err := s.m.hash.NewServer(s.lookup)
	if err != nil {
		return "", failed(invalidCredentials(s.m.name), err)
	}
	if s.m.nonce != nil {
		srv = srv.WithNonceGenerator(s.m.nonce)
	}
	s.conv = srv.NewConversation()
	s.ctx = ctx
	out, err := s.conv.Step(msg)
	s.ctx = nil
	switch {
	case s.lookupErr != nil:
		return "", failed(invalidCredentials(s.m.name), s.lookupErr)
	case err != nil: // our grammar accepted what xdg-go/scram did not
		return "", malformed("Invalid SCRAM client first message", err)
	}
	s.s1 = out
	return out, nil
}

// lookup is xdg-go/scram's CredentialLookup: the user's credential, or a
// decoy when there is none or it is unusable.
func (s *scramSession) lookup(user string) (scram.StoredCredentials, error) {
	c, ok, err := s.m.creds.Scram(s.ctx, user, s.m.name)
	if err != nil {
		s.lookupErr = fmt.Errorf("looking up %s credential of %q: %w", s.m.name, user, err)
		return scram.StoredCredentials{}, s.lookupErr
	}
	switch {
	case !ok:
		s.decoy = fmt.Errorf("user %q has no %s credential", user, s.m.name)
	case c.Mechanism != s.m.name:
		s.decoy = fmt.Errorf("stored credential of %q is for %s, not %s", user, c.Mechanism, s.m.name)
	case c.Validate() != nil:
		s.decoy = fmt.Errorf("stored credential of %q unusable: %w", user, c.Validate())
	}
	if s.decoy != nil {
		c = s.m.decoys.credential(s.m.name, user)
	}
	s.cred = scram.StoredCredentials{
		KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: c.Iterations},
		StoredKey:  c.StoredKey,
		ServerKey:  c.ServerKey,
	}
	return s.cred, nil
}

func (s *scramSession) final(msg string) (string, *Error) {
	if err := checkClientFinal(msg); err != nil {
		return "", malformed("Invalid SCRAM client final message", err)
	}
	if out, ok := s.librdkafkaFinal(msg); ok {
		if out == "" {
			return "", failed(invalidCredentials(s.m.name), errors.Join(s.decoy, fmt.Errorf("user %q: invalid proof", s.user)))
		}
		return out, nil
	}
	out, err := s.conv.Step(msg)
	switch {
	case err != nil && s.decoy != nil:
		return "", failed(invalidCredentials(s.m.name), s.decoy)
	case err != nil: // wrong proof, nonce or channel binding
		return "", failed(invalidCredentials(s.m.name), fmt.Errorf("user %q: %w", s.user, err))
	case s.decoy != nil || !s.conv.Valid(): // a proof cannot match a decoy; never trust one that does
		return "", failed(invalidCredentials(s.m.name), errors.Join(s.decoy, errors.New("decoy credential matched")))
	}
	return out, nil
}

// clientFirst is a parsed client-first message.
type clientFirst struct {
	authzid, user, nonce string
	extensions           map[string]string
}

// parseClientFirst parses Kafka's grammar (ScramMessages.ClientFirstMessage)
// less the reserved m= field:
//
//	"n," ["a=" saslname] "," "n=" saslname ",r=" printable ("," alpha "=" value)*
func parseClientFirst(msg string) (clientFirst, error) {
	var cf clientFirst
	rest, ok := strings.CutPrefix(msg, "n,")
	if !ok {
		return cf, errors.New(`gs2 header is not "n," (channel binding is not supported)`)
	}
	if after, ok := strings.CutPrefix(rest, "a="); ok {
		name, tail, ok := strings.Cut(after, ",")
		if !ok {
			return cf, errors.New("authzid not followed by ','")
		}
		if cf.authzid, ok = decodeSaslName(name); !ok {
			return cf, errors.New("invalid authzid")
		}
		rest = tail
	} else if rest, ok = strings.CutPrefix(rest, ","); !ok {
		return cf, errors.New("gs2 header not closed by ','")
	}
	if strings.HasPrefix(rest, "m=") {
		return cf, errors.New("mandatory extension (m=) not supported")
	}
	fields := strings.Split(rest, ",")
	if len(fields) < 2 {
		return cf, errors.New("missing username or nonce")
	}
	name, ok := strings.CutPrefix(fields[0], "n=")
	if !ok {
		return cf, errors.New("missing n=")
	}
	if cf.user, ok = decodeSaslName(name); !ok {
		return cf, errors.New("invalid username")
	}
	if cf.nonce, ok = strings.CutPrefix(fields[1], "r="); !ok || !isPrintable(cf.nonce) {
		return cf, errors.New("missing or invalid nonce")
	}
	cf.extensions = make(map[string]string)
	for _, f := range fields[2:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok || !isAlpha(k) || !isValue(v) {
			return cf, fmt.Errorf("invalid extension %q", f)
		}
		cf.extensions[k] = v
	}
	return cf, nil
}

// checkClientFinal checks Kafka's grammar (ScramMessages.ClientFinalMessage):
//
//	"c=" base64 ",r=" printable ("," alpha "=" value)* ",p=" base64
func checkClientFinal(msg string) error {
	fields := strings.Split(msg, ",")
	if len(fields) < 3 {
		return errors.New("missing channel binding, nonce or proof")
	}
	if c, ok := strings.CutPrefix(fields[0], "c="); !ok || !isBase64(c) {
		return errors.New("missing or invalid channel binding")
	}
	if r, ok := strings.CutPrefix(fields[1], "r="); !ok || !isPrintable(r) {
		return errors.New("missing or invalid nonce")
	}
	last := len(fields) - 1
	for _, f := range fields[2:last] {
		if k, v, ok := strings.Cut(f, "="); !ok || !isAlpha(k) || !isValue(v) {
			return fmt.Errorf("invalid extension %q", f)
		}
	}
	if p, ok := strings.CutPrefix(fields[last], "p="); !ok || p == "" || !isBase64(p) {
		return errors.New("missing or invalid proof")
	}
	return nil
}

// decodeSaslName undoes RFC 5802's =2C and =3D escapes of a name made of
// ASCII 0x01-0x7F, as Kafka's SASLNAME: one or more characters, no bare '='
// or ','.
func decodeSaslName(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '=':
			switch {
			case strings.HasPrefix(s[i:], "=2C"):
				b.WriteByte(',')
			case strings.HasPrefix(s[i:], "=3D"):
				b.WriteByte('=')
			default:
				return "", false
			}
			i += 2
		case c == ',' || c == 0 || c > 0x7f:
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// isPrintable: one or more of 0x21-0x7E but ','.
func isPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return s != ""
}

// isAlpha: one or more ASCII letters.
func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return s != ""
}

// isValue: one or more of 0x01-0x7F but ','.
func isValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == 0 || c > 0x7f || c == ',' {
			return false
		}
	}
	return s != ""
}

// isBase64: padded standard base64 and nothing else (Go's decoder would
// skip CR and LF).
func isBase64(s string) bool {
	if len(s)%4 != 0 {
		return false
	}
	pad := len(s) - len(strings.TrimRight(s, "="))
	if pad > 2 {
		return false
	}
	for i := 0; i < len(s)-pad; i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

// librdkafkaFinal verifies a client-final whose nonce is <client
// nonce><nonce sent> (the client's nonce twice), as librdkafka before
// 2.6.1 sends it (librdkafka#4895): Debian 12's kcat and confluent-kafka.
// Kafka 3.8.1 to 3.9 accept it too (their fix of CVE-2024-56128 compares
// the nonce with endsWith; this takes only that one form); the proof is checked in
// full over the message as the client sent it, and the server's nonce is
// still in it, so nothing is weakened. ok is false for any other nonce
// (the normal path decides); out is "" when the proof is wrong.
func (s *scramSession) librdkafkaFinal(msg string) (out string, ok bool) {
	sent := strings.TrimPrefix(strings.Split(s.s1, ",")[0], "r=")
	fields := strings.Split(msg, ",")
	if fields[1] != "r="+s.cnonce+sent {
		return "", false
	}
	if s.decoy != nil {
		return "", true
	}
	i := strings.LastIndex(msg, ",p=")
	proof, err := base64.StdEncoding.DecodeString(msg[i+3:])
	h := s.m.hash
	if err != nil || len(proof) != h().Size() {
		return "", true
	}
	authMsg := s.c1b + "," + s.s1 + "," + msg[:i]
	mac := hmac.New(h, s.cred.StoredKey)
	mac.Write([]byte(authMsg))
	sig := mac.Sum(nil)
	for j := range proof {
		proof[j] ^= sig[j]
	}
	d := h()
	d.Write(proof)
	if !hmac.Equal(d.Sum(nil), s.cred.StoredKey) {
		return "", true
	}
	mac = hmac.New(h, s.cred.ServerKey)
	mac.Write([]byte(authMsg))
	return "v=" + base64.StdEncoding.EncodeToString(mac.Sum(nil)), true
}
