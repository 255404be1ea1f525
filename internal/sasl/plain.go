package sasl

// PLAIN (RFC 4616), as Kafka's PlainSaslServer.
//
//   - One message, [authzid] NUL authcid NUL passwd, in UTF-8; the reply is
//     empty and the exchange is done. The principal is User:authcid.
//   - Anything but three fields, an empty username or password, invalid
//     UTF-8: ErrMalformed.
//   - A wrong password and an unknown user fail alike: "Authentication
//     failed: Invalid username or password", after the same PBKDF2 work
//     (an unknown user is checked against a decoy credential).
//   - An authzid that is neither empty nor the username fails with Kafka's
//     message, checked after the password as Kafka does.
//
// Deviation from Kafka: Kafka checks PLAIN passwords against its JAAS file
// (or a custom callback); here they are checked against the user's SCRAM
// credential, so one user store serves PLAIN and SCRAM. The salted password
// is derived with the stored salt and iterations of the user's
// SCRAM-SHA-512 credential, else SCRAM-SHA-256, and StoredKey compared in
// constant time. This costs one PBKDF2 (4096 iterations: a few ms of CPU)
// per PLAIN authentication. A password is tried as typed and, when SASLprep
// changes it, also SASLprepped (a credential a SASLprep-ing tool derived).
// Current Kafka truncates the password at a third NUL; this refuses the
// message (RFC 4616 forbids NUL in a password), as older Kafka did.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/xdg-go/stringprep"
)

type plainMech struct {
	creds  Credentials
	decoys decoys
}

// NewPlain is the PLAIN mechanism, checking passwords against creds' SCRAM
// credentials.
func NewPlain(creds Credentials, opts PasswordOptions) (Mechanism, error) {
	if creds == nil {
		return nil, errors.New("sasl: PLAIN needs Credentials")
	}
	d, err := newDecoys(opts)
	if err != nil {
		return nil, err
	}
	return &plainMech{creds: creds, decoys: d}, nil
}

func (m *plainMech) Name() string   { return Plain }
func (m *plainMech) Start() Session { return &plainSession{m: m} }

type plainSession struct {
	m         *plainMech
	over      bool
	principal string
	claimed   string
}

func (s *plainSession) Claimed() string { return s.claimed }

func (s *plainSession) Principal() string       { return s.principal }
func (s *plainSession) Lifetime() time.Duration { return 0 }

func (s *plainSession) Step(ctx context.Context, msg []byte) ([]byte, bool, error) {
	if s.over {
		return nil, false, illegalState(Plain)
	}
	s.over = true
	if len(msg) > MaxMessageSize {
		return nil, false, tooLong(Plain, len(msg))
	}
	if !utf8.Valid(msg) {
		return nil, false, malformed("Invalid SASL/PLAIN response: not UTF-8", nil)
	}
	fields := bytes.Split(msg, []byte{0})
	if len(fields) != 3 {
		return nil, false, malformed(fmt.Sprintf("Invalid SASL/PLAIN response: expected 3 tokens, got %d", len(fields)), nil)
	}
	authzid, user, pass := string(fields[0]), string(fields[1]), string(fields[2])
	if user == "" {
		return nil, false, malformed("Authentication failed: username not specified", nil)
	}
	s.claimed = user
	if pass == "" {
		return nil, false, malformed("Authentication failed: password not specified", nil)
	}
	if err := s.m.verify(ctx, user, pass); err != nil {
		return nil, false, err
	}
	if authzid != "" && authzid != user {
		return nil, false, failed("Authentication failed: Client requested an authorization id that is different from username",
			fmt.Errorf("user %q asked for authzid %q", user, authzid))
	}
	s.principal = "User:" + user
	return []byte{}, true, nil
}

// verify checks pass against user's SCRAM credential; nil means it matches.
func (m *plainMech) verify(ctx context.Context, user, pass string) *Error {
	var (
		cred  ScramCredential
		found bool
	)
	for _, mech := range []string{ScramSHA512, ScramSHA256} {
		c, ok, err := m.creds.Scram(ctx, user, mech)
		if err != nil {
			return failed("Authentication failed: credentials for user could not be verified",
				fmt.Errorf("looking up %s credential of %q: %w", mech, user, err))
		}
		if ok {
			cred, found = c, true
			break
		}
	}
	var why error
	switch {
	case !found:
		why = fmt.Errorf("user %q has no SCRAM credential", user)
	case cred.Validate() != nil:
		why = fmt.Errorf("stored credential of %q unusable: %w", user, cred.Validate())
	}
	if why != nil {
		cred = m.decoys.credential(ScramSHA512, user)
	}
	match := passwordMatches(cred, pass)
	if !match {
		if prepped, err := stringprep.SASLprep.Prepare(pass); err == nil && prepped != pass {
			match = passwordMatches(cred, prepped)
		}
	}
	if why == nil && !match {
		why = fmt.Errorf("wrong password for %q", user)
	}
	if why != nil {
		return failed("Authentication failed: Invalid username or password", why)
	}
	return nil
}

// passwordMatches derives StoredKey from pass with cred's salt and
// iterations and compares it with cred's in constant time.
func passwordMatches(cred ScramCredential, pass string) bool {
	salted, err := saltedPassword(cred.Mechanism, pass, cred.Salt, cred.Iterations)
	if err != nil {
		return false
	}
	h := scramHash(cred.Mechanism)
	stored := h()
	stored.Write(hmacSum(h, salted, "Client Key"))
	return hmac.Equal(stored.Sum(nil), cred.StoredKey)
}
