package sasl

// The test harness: real client-side mechanisms (franz-go's, xdg-go/scram's
// as sarama and kafka-go use it) driven against a server Session in
// memory, the way a client drives a broker over SaslAuthenticate.

import (
	"context"
	"errors"
	"strings"
	"testing"

	fsasl "github.com/twmb/franz-go/pkg/sasl"
	"github.com/xdg-go/scram"
)

// result is how one exchange ended.
type result struct {
	sess Session
	err  error // the server's failure, nil on success
	step int   // the server step (0-based) that failed or finished
}

// tamperFn rewrites the client's message of one step before the server
// sees it; nil leaves every message alone.
type tamperFn func(step int, msg []byte) []byte

// exchange runs client against server with the loop of franz-go's
// brokerCxn.sasl: send the client's bytes, pass the server's reply to the
// client's Challenge until the client is done and has nothing left to
// send. A client that refuses the server's reply fails the test.
func exchange(t testing.TB, client fsasl.Mechanism, server Mechanism, tamper tamperFn) result {
	t.Helper()
	ctx := context.Background()
	cs, clientWrite, err := client.Authenticate(ctx, "localhost:9092")
	if err != nil {
		t.Fatalf("client Authenticate: %v", err)
	}
	ss := server.Start()
	done, serverDone := false, false
	step := 0
	for ; !done || len(clientWrite) > 0; step++ {
		if step > 5 {
			t.Fatal("exchange does not end")
		}
		if tamper != nil {
			clientWrite = tamper(step, clientWrite)
		}
		challenge, sdone, err := ss.Step(ctx, clientWrite)
		if err != nil {
			checkErr(t, err)
			if challenge != nil {
				t.Errorf("Step returned %q with its error", challenge)
			}
			return result{sess: ss, err: err, step: step}
		}
		serverDone = sdone
		clientWrite = nil
		if !done {
			if done, clientWrite, err = cs.Challenge(challenge); err != nil {
				t.Fatalf("client refused the server's step %d %q: %v", step, challenge, err)
			}
		}
	}
	if !serverDone {
		t.Fatal("the client finished but the server did not")
	}
	return result{sess: ss, step: step - 1}
}

// xdgExchange runs xdg-go/scram's client (sarama's and kafka-go's) against
// server.
func xdgExchange(t testing.TB, h scram.HashGeneratorFcn, user, pass string, server Mechanism) result {
	t.Helper()
	c, err := h.NewClient(user, pass, "")
	if err != nil {
		t.Fatal(err)
	}
	conv := c.NewConversation()
	ss := server.Start()
	in := ""
	for step := 0; ; step++ {
		out, err := conv.Step(in)
		if err != nil {
			t.Fatalf("xdg client step %d: %v", step, err)
		}
		if conv.Done() {
			if !conv.Valid() {
				t.Fatal("xdg client did not accept the server signature")
			}
			return result{sess: ss, step: step - 1}
		}
		reply, _, serr := ss.Step(context.Background(), []byte(out))
		if serr != nil {
			checkErr(t, serr)
			return result{sess: ss, err: serr, step: step}
		}
		in = string(reply)
	}
}

// checkErr asserts what every Step error must be: an *Error of a known kind
// with a message.
func checkErr(t testing.TB, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Step error %T %v is not an *Error", err, err)
	}
	if !errors.Is(err, ErrAuthenticationFailed) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrIllegalState) {
		t.Fatalf("Step error %v has kind %v", err, e.Kind)
	}
	if e.Message == "" {
		t.Fatal("Step error without a message")
	}
}

// wantFail asserts the exchange failed with that kind and a message
// containing msg.
func wantFail(t testing.TB, r result, kind error, msg string) {
	t.Helper()
	if r.err == nil {
		t.Fatalf("authenticated as %q, want a failure", r.sess.Principal())
	}
	if !errors.Is(r.err, kind) {
		t.Fatalf("error %q (%v) is not %v", r.err, r.err.(*Error).Detail(), kind)
	}
	if !strings.Contains(r.err.Error(), msg) {
		t.Fatalf("error %q does not contain %q", r.err, msg)
	}
	if p := r.sess.Principal(); p != "" {
		t.Fatalf("failed session has principal %q", p)
	}
}

// wantOK asserts the exchange authenticated principal.
func wantOK(t testing.TB, r result, principal string) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("failed at step %d: %v", r.step, r.err.(*Error).Detail())
	}
	if p := r.sess.Principal(); p != principal {
		t.Fatalf("principal %q, want %q", p, principal)
	}
}

// users is a credential store with alice (both SCRAM mechanisms), bob (only
// SCRAM-SHA-256) and carol (only SCRAM-SHA-512).
func users(t testing.TB) CredentialMap {
	t.Helper()
	m := CredentialMap{}
	for _, u := range []struct{ user, mech, pass string }{
		{"alice", ScramSHA256, "alice-secret"},
		{"alice", ScramSHA512, "alice-secret"},
		{"bob", ScramSHA256, "bob-secret"},
		{"carol", ScramSHA512, "carol-secret"},
	} {
		if err := m.Add(u.user, u.mech, u.pass, 0); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// failingStore is a store that cannot answer.
type failingStore struct{}

func (failingStore) Scram(context.Context, string, string) (ScramCredential, bool, error) {
	return ScramCredential{}, false, errors.New("store unavailable")
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
