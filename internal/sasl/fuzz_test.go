package sasl

// Fuzz targets: every server Step takes arbitrary bytes without panicking,
// fails only with a well-formed *Error, and never returns a reply with an
// error or a principal without success. Run one with
//
//	go test -run '^$' -fuzz FuzzScram -fuzztime 30s ./internal/sasl/

import (
	"context"
	"strings"
	"testing"
	"time"
)

// checkStep asserts the contract of one Step's results.
func checkStep(t *testing.T, s Session, out []byte, done bool, err error) {
	t.Helper()
	switch {
	case err != nil:
		checkErr(t, err)
		if out != nil || done {
			t.Fatalf("error %v with reply %q done %v", err, out, done)
		}
	case done && !strings.HasPrefix(s.Principal(), "User:"):
		t.Fatalf("done with principal %q", s.Principal())
	case !done && s.Principal() != "":
		t.Fatalf("principal %q before done", s.Principal())
	}
}

// fuzzSteps runs up to three steps, stopping at the first failure or done,
// then checks a further step is refused.
func fuzzSteps(t *testing.T, m Mechanism, msgs ...[]byte) {
	ctx := context.Background()
	s := m.Start()
	for _, msg := range msgs {
		out, done, err := s.Step(ctx, msg)
		checkStep(t, s, out, done, err)
		if err != nil || done {
			if _, _, err := s.Step(ctx, msg); err == nil {
				t.Fatal("a finished session took another step")
			}
			return
		}
	}
}

func FuzzPlain(f *testing.F) {
	m := must[Mechanism](f)(NewPlain(users(f), PasswordOptions{}))
	for _, s := range []string{"\x00alice\x00alice-secret", "alice\x00alice\x00alice-secret", "\x00alice\x00wrong",
		"\x00mallory\x00x", "", "\x00", "\x00\x00", "a\x00b\x00c\x00d", "\xff\x00\xfe\x00\xfd"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) { fuzzSteps(t, m, msg) })
}

func FuzzScram(f *testing.F) {
	creds := users(f)
	m := must[Mechanism](f)(NewScram(ScramSHA256, creds, PasswordOptions{}))
	// A fixed server nonce, so the seeds hold a client-final that
	// authenticates and mutations start from a real exchange.
	m.(*scramMech).nonce = func() string { return "SERVERNONCE" }
	const bare = "n=alice,r=CLIENTNONCE"
	sf, _, err := m.Start().Step(context.Background(), []byte("n,,"+bare))
	if err != nil {
		f.Fatal(err)
	}
	final, _ := handFinal(f, ScramSHA256, "alice-secret", "n,,", bare, string(sf))
	f.Add([]byte("n,,"+bare), []byte(final))
	f.Add([]byte("n,,"+bare+",tokenauth=true"), []byte(final))
	f.Add([]byte("n,a=alice,"+bare), []byte(final))
	f.Add([]byte("n,,n=mallory,r=CLIENTNONCE"), []byte(final))
	f.Add([]byte("n,,n=al=2Cice,r=x,ext=1"), []byte("c=biws,r=xSERVERNONCE,p=AAAA"))
	f.Add([]byte("y,,n=alice,r=x"), []byte(""))
	f.Add([]byte(""), []byte("c=,r=,p="))
	f.Fuzz(func(t *testing.T, first, final []byte) { fuzzSteps(t, m, first, final) })
}

func FuzzOAuthBearer(f *testing.F) {
	r1, _, e1, _ := keys(f)
	m, _ := newOAuth(f, idpConfig, r1, e1)
	valid := sign(f, r1, claimsAt())
	expired := claimsAt()
	expired["exp"] = testNow.Add(-time.Hour).Unix()
	for _, s := range [][2]string{
		{"n,,\x01auth=Bearer " + valid + "\x01\x01", ""},
		{"n,a=alice,\x01auth=Bearer " + valid + "\x01traceId=x y\x01\x01", ""},
		{"n,,\x01auth=Bearer " + sign(f, e1, expired) + "\x01\x01", "\x01"},
		{"n,,\x01auth=Bearer abc.def.ghi\x01\x01", "\x01"},
		{"n,,\x01auth=Bearer abc.def.ghi\x01\x01", "n,,\x01auth=Bearer " + valid + "\x01\x01"},
		{"n,,\x01\x01", ""},
		{"\x01", "\x01"},
		{"", ""},
	} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, first, second []byte) { fuzzSteps(t, m, first, second) })
}
