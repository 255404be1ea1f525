package sasl

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha512"
	"errors"
	"sort"
	"testing"
	"time"

	fsasl "github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

func plainClient(zid, user, pass string) fsasl.Mechanism {
	return plain.Auth{Zid: zid, User: user, Pass: pass}.AsMechanism()
}

func TestPlainAgainstScramCredentials(t *testing.T) {
	creds := users(t)
	// dave's credential came from AlterUserScramCredentials (KIP-554): the
	// client salted the password itself.
	salt := []byte("kafka-style-salt-26-chars")
	salted := must[[]byte](t)(pbkdf2.Key(sha512.New, "dave-secret", salt, 8192, sha512.Size))
	creds["dave"] = map[string]ScramCredential{ScramSHA512: must[ScramCredential](t)(ScramCredentialFromSalted(ScramSHA512, salt, salted, 8192))}
	m := must[Mechanism](t)(NewPlain(creds, PasswordOptions{}))

	for _, c := range []struct{ user, pass string }{
		{"alice", "alice-secret"}, // both mechanisms: SCRAM-SHA-512 is used
		{"bob", "bob-secret"},     // SCRAM-SHA-256 only
		{"carol", "carol-secret"}, // SCRAM-SHA-512 only
		{"dave", "dave-secret"},   // salted by the client, 8192 iterations
	} {
		t.Run(c.user, func(t *testing.T) {
			r := exchange(t, plainClient("", c.user, c.pass), m, nil)
			wantOK(t, r, "User:"+c.user)
			if r.step != 0 || r.sess.Lifetime() != 0 {
				t.Fatalf("step %d lifetime %v, want one step and no lifetime", r.step, r.sess.Lifetime())
			}
		})
	}
	t.Run("authzid equal to the user", func(t *testing.T) {
		wantOK(t, exchange(t, plainClient("alice", "alice", "alice-secret"), m, nil), "User:alice")
	})
}

func TestPlainFailures(t *testing.T) {
	m := must[Mechanism](t)(NewPlain(users(t), PasswordOptions{}))
	const badCreds = "Authentication failed: Invalid username or password"

	wrong := exchange(t, plainClient("", "alice", "not-her-secret"), m, nil)
	wantFail(t, wrong, ErrAuthenticationFailed, badCreds)
	unknown := exchange(t, plainClient("", "mallory", "alice-secret"), m, nil)
	wantFail(t, unknown, ErrAuthenticationFailed, badCreds)
	if wrong.err.Error() != unknown.err.Error() {
		t.Fatalf("wrong password %q and unknown user %q differ", wrong.err, unknown.err)
	}
	// The other mechanism's password does not open this one's door.
	wantFail(t, exchange(t, plainClient("", "bob", "alice-secret"), m, nil), ErrAuthenticationFailed, badCreds)

	wantFail(t, exchange(t, plainClient("bob", "alice", "alice-secret"), m, nil), ErrAuthenticationFailed,
		"Client requested an authorization id that is different from username")
	// Kafka checks the password before the authzid.
	wantFail(t, exchange(t, plainClient("bob", "alice", "wrong"), m, nil), ErrAuthenticationFailed, badCreds)

	store := must[Mechanism](t)(NewPlain(failingStore{}, PasswordOptions{}))
	r := exchange(t, plainClient("", "alice", "alice-secret"), store, nil)
	wantFail(t, r, ErrAuthenticationFailed, "credentials for user could not be verified")
	if r.err.(*Error).Cause == nil {
		t.Fatal("store error lost")
	}
}

func TestPlainMalformed(t *testing.T) {
	m := must[Mechanism](t)(NewPlain(users(t), PasswordOptions{}))
	for _, msg := range []string{
		"",
		"alice",
		"\x00alice",
		"\x00alice\x00secret\x00more",
		"\x00\x00secret",
		"\x00alice\x00",
		"\x00al\xffice\x00alice-secret",
		string(make([]byte, MaxMessageSize+1)),
	} {
		s := m.Start()
		out, done, err := s.Step(context.Background(), []byte(msg))
		if !errors.Is(err, ErrMalformed) || done || out != nil {
			t.Errorf("%q: got %q %v %v, want ErrMalformed", msg, out, done, err)
		}
		checkErr(t, err)
		if _, _, err := s.Step(context.Background(), []byte("\x00alice\x00alice-secret")); !errors.Is(err, ErrIllegalState) {
			t.Errorf("step after failure: %v, want ErrIllegalState", err)
		}
	}
}

func TestPlainStepAfterDone(t *testing.T) {
	m := must[Mechanism](t)(NewPlain(users(t), PasswordOptions{}))
	r := exchange(t, plainClient("", "alice", "alice-secret"), m, nil)
	wantOK(t, r, "User:alice")
	if _, _, err := r.sess.Step(context.Background(), []byte("\x00alice\x00alice-secret")); !errors.Is(err, ErrIllegalState) {
		t.Fatalf("step after success: %v, want ErrIllegalState", err)
	}
	if r.sess.Principal() != "User:alice" {
		t.Fatal("a refused step changed the principal")
	}
}

// TestPlainSASLprepFallback: a credential derived from the SASLprepped
// password (a tool that prepares passwords) accepts the password as typed.
func TestPlainSASLprepFallback(t *testing.T) {
	typed, prepped := "pass\u00a0word", "pass word" // SASLprep maps NO-BREAK SPACE to SPACE
	salt := []byte("0123456789abcdef")
	salted := must[[]byte](t)(pbkdf2.Key(sha512.New, prepped, salt, 4096, sha512.Size))
	creds := CredentialMap{"erin": {ScramSHA512: must[ScramCredential](t)(ScramCredentialFromSalted(ScramSHA512, salt, salted, 4096))}}
	m := must[Mechanism](t)(NewPlain(creds, PasswordOptions{}))
	wantOK(t, exchange(t, plainClient("", "erin", typed), m, nil), "User:erin")
	wantOK(t, exchange(t, plainClient("", "erin", prepped), m, nil), "User:erin")
}

// TestPlainUnknownUserTiming: an unknown user costs the same PBKDF2 as a
// wrong password, so the time to fail does not tell them apart.
func TestPlainUnknownUserTiming(t *testing.T) {
	m := must[Mechanism](t)(NewPlain(users(t), PasswordOptions{}))
	ctx := context.Background()
	timeOf := func(msg string) time.Duration {
		start := time.Now()
		if _, _, err := m.Start().Step(ctx, []byte(msg)); err == nil {
			t.Fatal("authenticated")
		}
		return time.Since(start)
	}
	var wrong, unknown []time.Duration
	for range 9 { // interleaved, so load hits both alike
		wrong = append(wrong, timeOf("\x00alice\x00wrong"))
		unknown = append(unknown, timeOf("\x00mallory\x00wrong"))
	}
	median := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	w, u := median(wrong), median(unknown)
	// Without the decoy an unknown user fails in microseconds, a thousand
	// times faster; the bound leaves room for a loaded machine.
	if u*3 < w || w*3 < u {
		t.Fatalf("median time to fail: wrong password %v, unknown user %v", w, u)
	}
}
