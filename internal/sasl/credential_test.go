package sasl

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/xdg-go/scram"
)

// TestScramRFC7677Vector runs the SCRAM-SHA-256 example of RFC 7677
// section 3 through the server, with its nonce and salt.
func TestScramRFC7677Vector(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	salted := must[[]byte](t)(saltedPassword(ScramSHA256, "pencil", salt, 4096))
	cred := must[ScramCredential](t)(ScramCredentialFromSalted(ScramSHA256, salt, salted, 4096))
	m := must[Mechanism](t)(NewScram(ScramSHA256, CredentialMap{"user": {ScramSHA256: cred}}, PasswordOptions{}))
	m.(*scramMech).nonce = func() string { return "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0" }

	s := m.Start()
	ctx := context.Background()
	out, done, err := s.Step(ctx, []byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"))
	if err != nil || done || string(out) != "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096" {
		t.Fatalf("server-first %q %v %v", out, done, err)
	}
	out, done, err = s.Step(ctx, []byte("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
	if err != nil || !done || string(out) != "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=" || s.Principal() != "User:user" {
		t.Fatalf("server-final %q %v %v", out, done, err)
	}
}

func TestNewScramCredential(t *testing.T) {
	for _, mech := range scramMechs {
		c, err := NewScramCredential(mech, "pässwörd", 0)
		if err != nil {
			t.Fatal(err)
		}
		if c.Iterations != DefaultScramIterations || c.Mechanism != mech || c.Validate() != nil {
			t.Fatalf("%+v", c)
		}
		// The keys are the ones xdg-go/scram's client derives (sarama,
		// kafka-go), so those clients and the server agree.
		h := map[string]scram.HashGeneratorFcn{ScramSHA256: scram.SHA256, ScramSHA512: scram.SHA512}[mech]
		cl, _ := h.NewClient("u", "pässwörd", "")
		sc := cl.GetStoredCredentials(scram.KeyFactors{Salt: string(c.Salt), Iters: c.Iterations})
		if !bytes.Equal(sc.StoredKey, c.StoredKey) || !bytes.Equal(sc.ServerKey, c.ServerKey) {
			t.Fatal("keys differ from xdg-go/scram's")
		}
		c2, _ := NewScramCredential(mech, "pässwörd", 0)
		if bytes.Equal(c.Salt, c2.Salt) {
			t.Fatal("salt is not random")
		}
	}
	for name, c := range map[string]struct {
		mech, pass string
		iters      int
	}{
		"too few iterations":  {ScramSHA256, "secret", 4095},
		"too many iterations": {ScramSHA512, "secret", 16385},
		"not SCRAM":           {"PLAIN", "secret", 4096},
		"SHA-1":               {"SCRAM-SHA-1", "secret", 4096},
		"empty password":      {ScramSHA256, "", 4096},
		"SASLprep changes it": {ScramSHA256, "pass\u00a0word", 4096},  // NO-BREAK SPACE maps to SPACE
		"SASLprep refuses it": {ScramSHA256, "pass\u0007word", 4096},  // a control character
		"not normalised":      {ScramSHA256, "caf\u0065\u0301", 4096}, // e + combining acute: NFKC composes it
	} {
		if _, err := NewScramCredential(c.mech, c.pass, c.iters); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestScramCredentialFromSalted(t *testing.T) {
	salted := bytes.Repeat([]byte{7}, 32)
	if _, err := ScramCredentialFromSalted(ScramSHA256, []byte("salt"), salted, 4096); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		salt, salted []byte
		iters        int
	}{
		"empty salt":            {nil, salted, 4096},
		"empty salted password": {[]byte("salt"), nil, 4096},
		"iterations":            {[]byte("salt"), salted, 100},
	} {
		if _, err := ScramCredentialFromSalted(ScramSHA256, c.salt, c.salted, c.iters); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	bad := ScramCredential{Mechanism: ScramSHA256, Salt: []byte("s"), Iterations: 4096, StoredKey: []byte{1}, ServerKey: []byte{2}}
	if bad.Validate() == nil {
		t.Error("short keys validate")
	}
}

func TestRegistry(t *testing.T) {
	r1, _, _, _ := keys(t)
	creds := users(t)
	oauth, _ := newOAuth(t, OAuthConfig{}, r1)
	plain := must[Mechanism](t)(NewPlain(creds, PasswordOptions{}))
	s512 := must[Mechanism](t)(NewScram(ScramSHA512, creds, PasswordOptions{}))
	s256 := must[Mechanism](t)(NewScram(ScramSHA256, creds, PasswordOptions{}))
	reg, err := NewRegistry(s512, plain, oauth, s256)
	if err != nil {
		t.Fatal(err)
	}
	names := reg.Names()
	if want := []string{"SCRAM-SHA-512", "PLAIN", "OAUTHBEARER", "SCRAM-SHA-256"}; len(names) != 4 || names[0] != want[0] || names[1] != want[1] || names[2] != want[2] || names[3] != want[3] {
		t.Fatalf("names %v", names)
	}
	if reg.Lookup("PLAIN") != plain || reg.Lookup("OAUTHBEARER") != Mechanism(oauth) {
		t.Fatal("lookup")
	}
	for _, n := range []string{"plain", "GSSAPI", "SCRAM-SHA-1", ""} {
		if reg.Lookup(n) != nil {
			t.Fatalf("%q is supported", n)
		}
	}
	if _, err := NewRegistry(plain, plain); err == nil {
		t.Fatal("duplicate accepted")
	}
	if _, err := NewRegistry(); err == nil {
		t.Fatal("empty registry accepted")
	}
	if _, err := NewScram("SCRAM-SHA-1", creds, PasswordOptions{}); err == nil {
		t.Fatal("SCRAM-SHA-1 accepted")
	}
	if _, err := NewPlain(nil, PasswordOptions{}); err == nil {
		t.Fatal("PLAIN without a store accepted")
	}
	if _, err := NewScram(ScramSHA256, creds, PasswordOptions{DecoyIterations: 10}); err == nil {
		t.Fatal("weak decoy accepted")
	}
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestErrorKinds(t *testing.T) {
	cause := errors.New("store down")
	e := error(failed("Authentication failed", cause))
	if !errors.Is(e, ErrAuthenticationFailed) || errors.Is(e, ErrMalformed) || !errors.Is(e, cause) {
		t.Fatal("errors.Is")
	}
	if e.Error() != "Authentication failed" || e.(*Error).Detail() != "Authentication failed: store down" {
		t.Fatalf("%q %q", e.Error(), e.(*Error).Detail())
	}
	if m := malformed("bad", nil); !errors.Is(m, ErrMalformed) || m.Detail() != "bad" {
		t.Fatal("malformed")
	}
}
