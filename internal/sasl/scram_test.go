package sasl

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"hash"
	"strconv"
	"strings"
	"testing"

	fsasl "github.com/twmb/franz-go/pkg/sasl"
	fscram "github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/xdg-go/scram"
)

func scramClient(mech, zid, user, pass string, token bool) fsasl.Mechanism {
	a := fscram.Auth{Zid: zid, User: user, Pass: pass, IsToken: token}
	if mech == ScramSHA512 {
		return a.AsSha512Mechanism()
	}
	return a.AsSha256Mechanism()
}

var scramMechs = []string{ScramSHA256, ScramSHA512}

func TestScramSuccess(t *testing.T) {
	creds := users(t)
	creds["odd,name=x"] = map[string]ScramCredential{} // escaped as odd=2Cname=3Dx on the wire
	for _, mech := range scramMechs {
		if err := creds.Add("odd,name=x", mech, "odd-secret", 8192); err != nil {
			t.Fatal(err)
		}
	}
	for _, mech := range scramMechs {
		t.Run(mech, func(t *testing.T) {
			m := must[Mechanism](t)(NewScram(mech, creds, PasswordOptions{}))
			if m.Name() != mech {
				t.Fatalf("name %q", m.Name())
			}
			r := exchange(t, scramClient(mech, "", "alice", "alice-secret", false), m, nil)
			wantOK(t, r, "User:alice")
			if r.step != 1 || r.sess.Lifetime() != 0 {
				t.Fatalf("finished at step %d with lifetime %v, want step 1 and none", r.step, r.sess.Lifetime())
			}
			wantOK(t, exchange(t, scramClient(mech, "alice", "alice", "alice-secret", false), m, nil), "User:alice")
			wantOK(t, exchange(t, scramClient(mech, "", "odd,name=x", "odd-secret", false), m, nil), "User:odd,name=x")

			// sarama and kafka-go use xdg-go/scram's client.
			h := map[string]scram.HashGeneratorFcn{ScramSHA256: scram.SHA256, ScramSHA512: scram.SHA512}[mech]
			wantOK(t, xdgExchange(t, h, "alice", "alice-secret", m), "User:alice")
		})
	}
}

func TestScramWrongPasswordAndUnknownUser(t *testing.T) {
	creds := users(t)
	for _, mech := range scramMechs {
		t.Run(mech, func(t *testing.T) {
			m := must[Mechanism](t)(NewScram(mech, creds, PasswordOptions{}))
			want := "Authentication failed due to invalid credentials with SASL mechanism " + mech

			wrong := exchange(t, scramClient(mech, "", "alice", "wrong", false), m, nil)
			wantFail(t, wrong, ErrAuthenticationFailed, want)
			unknown := exchange(t, scramClient(mech, "", "mallory", "alice-secret", false), m, nil)
			wantFail(t, unknown, ErrAuthenticationFailed, want)
			// Same message, same step: the client cannot tell them apart.
			if wrong.err.Error() != unknown.err.Error() || wrong.step != 1 || unknown.step != 1 {
				t.Fatalf("wrong password %q at step %d, unknown user %q at step %d", wrong.err, wrong.step, unknown.err, unknown.step)
			}
			// A user with only the other mechanism's credential is unknown here.
			other := map[string]string{ScramSHA256: "carol", ScramSHA512: "bob"}[mech]
			wantFail(t, exchange(t, scramClient(mech, "", other, other+"-secret", false), m, nil), ErrAuthenticationFailed, want)
		})
	}
}

// TestScramDecoySalt: an unknown user's server-first looks like a real
// one's and stays the same from one exchange to the next.
func TestScramDecoySalt(t *testing.T) {
	m := must[Mechanism](t)(NewScram(ScramSHA256, users(t), PasswordOptions{DecoySecret: []byte("cluster secret")}))
	first := func(user string) (salt, iters string) {
		out, _, err := m.Start().Step(context.Background(), []byte("n,,n="+user+",r=clientnonce"))
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Split(string(out), ",")
		if len(f) != 3 || !strings.HasPrefix(f[0], "r=clientnonce") || len(f[0]) <= len("r=clientnonce") {
			t.Fatalf("server-first %q", out)
		}
		return f[1], f[2]
	}
	s1, i1 := first("mallory")
	s2, i2 := first("mallory")
	s3, _ := first("trudy")
	sa, ia := first("alice")
	if s1 != s2 || s1 == s3 || i1 != i2 || i1 != ia || len(s1) != len(sa) {
		t.Fatalf("decoys %s %s %s %s, alice %s %s", s1, i1, s2, s3, sa, ia)
	}
	// Another broker with the same secret shows the same decoy.
	m2 := must[Mechanism](t)(NewScram(ScramSHA256, users(t), PasswordOptions{DecoySecret: []byte("cluster secret")}))
	out, _, err := m2.Start().Step(context.Background(), []byte("n,,n=mallory,r=x"))
	if err != nil || !strings.Contains(string(out), ","+s1+",") {
		t.Fatalf("other broker: %q %v, want salt %s", out, err, s1)
	}
}

// TestScramTampered changes one part of the client-final message; each
// must fail as bad credentials.
func TestScramTampered(t *testing.T) {
	m := must[Mechanism](t)(NewScram(ScramSHA256, users(t), PasswordOptions{}))
	edit := func(field string, f func(string) string) tamperFn {
		return func(step int, msg []byte) []byte {
			if step != 1 {
				return msg
			}
			parts := strings.Split(string(msg), ",")
			for i, p := range parts {
				if v, ok := strings.CutPrefix(p, field+"="); ok {
					parts[i] = field + "=" + f(v)
				}
			}
			return []byte(strings.Join(parts, ","))
		}
	}
	flipProof := func(p string) string {
		b, _ := base64.StdEncoding.DecodeString(p)
		b[0] ^= 1
		return base64.StdEncoding.EncodeToString(b)
	}
	for name, tamper := range map[string]tamperFn{
		"proof":           edit("p", flipProof),
		"proof too short": edit("p", func(p string) string { return base64.StdEncoding.EncodeToString([]byte("short")) }),
		"nonce": edit("r", func(r string) string {
			if strings.HasSuffix(r, "x") {
				return r[:len(r)-1] + "y"
			}
			return r[:len(r)-1] + "x"
		}),
		"client nonce only": edit("r", func(r string) string {
			return r[:10] // the client's part without the server's
		}),
		"channel binding": edit("c", func(string) string { return base64.StdEncoding.EncodeToString([]byte("n,a=alice,")) }),
	} {
		t.Run(name, func(t *testing.T) {
			wantFail(t, exchange(t, scramClient(ScramSHA256, "", "alice", "alice-secret", false), m, tamper),
				ErrAuthenticationFailed, "invalid credentials with SASL mechanism SCRAM-SHA-256")
		})
	}
	t.Run("replayed final", func(t *testing.T) {
		// The final message of one exchange does not authenticate another:
		// the server's nonce differs.
		var final []byte
		record := func(step int, msg []byte) []byte {
			if step == 1 {
				final = bytes.Clone(msg)
			}
			return msg
		}
		wantOK(t, exchange(t, scramClient(ScramSHA256, "", "alice", "alice-secret", false), m, record), "User:alice")
		replay := func(step int, msg []byte) []byte {
			if step == 1 {
				return final
			}
			return msg
		}
		wantFail(t, exchange(t, scramClient(ScramSHA256, "", "alice", "alice-secret", false), m, replay),
			ErrAuthenticationFailed, "invalid credentials")
	})
}

func TestScramAuthzidAndExtensions(t *testing.T) {
	m := must[Mechanism](t)(NewScram(ScramSHA512, users(t), PasswordOptions{}))
	wantFail(t, exchange(t, scramClient(ScramSHA512, "bob", "alice", "alice-secret", false), m, nil),
		ErrAuthenticationFailed, "Client requested an authorization id that is different from username")
	// KIP-48 delegation tokens: not supported, so a token login fails.
	r := exchange(t, scramClient(ScramSHA512, "", "alice", "alice-secret", true), m, nil)
	wantFail(t, r, ErrAuthenticationFailed, "invalid credentials")
	if r.step != 0 {
		t.Fatalf("tokenauth failed at step %d", r.step)
	}
	// Other extensions are ignored, as Kafka ignores them; the exchange
	// completes with them in the AuthMessage.
	s := m.Start()
	bare := "n=alice,r=abcdef,foo=bar,tokenauth=false"
	sf, done, err := s.Step(context.Background(), []byte("n,,"+bare))
	if err != nil || done {
		t.Fatalf("client-first with extensions: %v", err)
	}
	final, wantSig := handFinal(t, ScramSHA512, "alice-secret", "n,,", bare, string(sf))
	sfinal, done, err := s.Step(context.Background(), []byte(final))
	if err != nil || !done || string(sfinal) != "v="+wantSig || s.Principal() != "User:alice" {
		t.Fatalf("client-final: %q %v %v", sfinal, done, err)
	}
}

// handFinal is a hand-made SCRAM client's final message for one
// exchange, and the server signature it expects.
func handFinal(t testing.TB, mech, pass, gs2, bare, serverFirst string) (final, serverSig string) {
	t.Helper()
	f := strings.Split(serverFirst, ",")
	nonce := strings.TrimPrefix(f[0], "r=")
	salt, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(f[1], "s="))
	var iters int
	for _, c := range strings.TrimPrefix(f[2], "i=") {
		iters = iters*10 + int(c-'0')
	}
	h := scramHash(mech)
	salted := must[[]byte](t)(saltedPassword(mech, pass, salt, iters))
	clientKey := hmacSum(h, salted, "Client Key")
	sk := h()
	sk.Write(clientKey)
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(gs2)) + ",r=" + nonce
	authMsg := bare + "," + serverFirst + "," + withoutProof
	sig := hmac.New(h, sk.Sum(nil))
	sig.Write([]byte(authMsg))
	proof := sig.Sum(nil)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	ssig := hmac.New(h, hmacSum(h, salted, "Server Key"))
	ssig.Write([]byte(authMsg))
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), base64.StdEncoding.EncodeToString(ssig.Sum(nil))
}

func TestScramMalformed(t *testing.T) {
	m := must[Mechanism](t)(NewScram(ScramSHA256, users(t), PasswordOptions{}))
	ctx := context.Background()
	for _, msg := range []string{
		"",
		"n",
		"n,",
		"n,,",
		"n,,n=alice",
		"n,,n=alice,r=",
		"n,,n=,r=abc",
		"n,,r=abc,n=alice",
		"y,,n=alice,r=abc",                    // Kafka takes gs2 flag n only
		"p=tls-unique,,n=alice,r=abc",         // channel binding
		"n,,m=ext,n=alice,r=abc",              // mandatory extension
		"n,,n=al=ice,r=abc",                   // bare '=' in a name
		"n,,n=al\xc3\xa9ice,r=abc",            // not ASCII
		"n,a=al=ice,n=alice,r=abc",            // bad authzid
		"n,a=alice",                           // truncated gs2 header
		"n,,n=alice,r=ab c",                   // nonce not printable
		"n,,n=alice,r=abc,=x",                 // empty extension name
		"n,,n=alice,r=abc,f00=x",              // extension name not alpha
		"n,,n=alice,r=abc,foo=",               // empty extension value
		"n,,n=alice,r=abc,foo",                // extension without value
		"\x00\x01\x02garbage\xff",             // garbage
		strings.Repeat("n,,", MaxMessageSize), // too long
	} {
		out, done, err := m.Start().Step(ctx, []byte(msg))
		if !errors.Is(err, ErrMalformed) || done || out != nil {
			t.Errorf("client-first %.40q: got %q %v %v, want ErrMalformed", msg, out, done, err)
		}
	}
	// A valid first message, then a bad final one.
	for _, final := range []string{
		"",
		"c=biws",
		"c=biws,r=abc",
		"c=biws,r=abc,p=",
		"c=biws,r=abc,p=!!!!",
		"c=bi\nws,r=abc,p=AAAA",
		"c=biws,p=AAAA,r=abc",
		"r=abc,c=biws,p=AAAA",
		"c=biws,r=abc,9=x,p=AAAA",
		"\xff\xfe",
	} {
		s := m.Start()
		if _, _, err := s.Step(ctx, []byte("n,,n=alice,r=abc")); err != nil {
			t.Fatal(err)
		}
		out, done, err := s.Step(ctx, []byte(final))
		if !errors.Is(err, ErrMalformed) || done || out != nil {
			t.Errorf("client-final %q: got %q %v %v, want ErrMalformed", final, out, done, err)
		}
		if _, _, err := s.Step(ctx, []byte(final)); !errors.Is(err, ErrIllegalState) {
			t.Errorf("step after failure: %v, want ErrIllegalState", err)
		}
	}
}

// TestScramTruncated cuts the real client's messages at every length:
// nothing may panic, and no cut final message may authenticate.
func TestScramTruncated(t *testing.T) {
	m := must[Mechanism](t)(NewScram(ScramSHA256, users(t), PasswordOptions{}))
	ctx := context.Background()
	_, first, err := scramClient(ScramSHA256, "", "alice", "alice-secret", false).Authenticate(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for cut := range len(first) {
		// A cut inside the nonce is still a valid client-first; the
		// client would then refuse the server's nonce.
		if _, _, err := m.Start().Step(ctx, first[:cut]); err != nil {
			checkErr(t, err)
		}
	}
	for cut := 0; ; cut++ {
		cutIt := false
		r := exchange(t, scramClient(ScramSHA256, "", "alice", "alice-secret", false), m, func(step int, msg []byte) []byte {
			if step == 1 && cut < len(msg) {
				cutIt = true
				return msg[:cut]
			}
			return msg
		})
		if !cutIt {
			break
		}
		if r.err == nil {
			t.Fatalf("client-final cut at %d authenticated", cut)
		}
	}
}

func TestScramStoreAndCredentialErrors(t *testing.T) {
	want := "invalid credentials with SASL mechanism SCRAM-SHA-256"
	m := must[Mechanism](t)(NewScram(ScramSHA256, failingStore{}, PasswordOptions{}))
	r := exchange(t, scramClient(ScramSHA256, "", "alice", "alice-secret", false), m, nil)
	wantFail(t, r, ErrAuthenticationFailed, want)
	if r.step != 0 || !strings.Contains(r.err.(*Error).Detail(), "store unavailable") {
		t.Fatalf("store error at step %d: %s", r.step, r.err.(*Error).Detail())
	}

	// A stored credential under Kafka's minimum iterations fails like a
	// wrong password (at the last step).
	creds := users(t)
	c := creds["alice"][ScramSHA256]
	c.Iterations = 1000
	creds["alice"][ScramSHA256] = c
	m = must[Mechanism](t)(NewScram(ScramSHA256, creds, PasswordOptions{}))
	r = exchange(t, scramClient(ScramSHA256, "", "alice", "alice-secret", false), m, nil)
	wantFail(t, r, ErrAuthenticationFailed, want)
	if r.step != 1 || !strings.Contains(r.err.(*Error).Detail(), "iterations") {
		t.Fatalf("weak credential failed at step %d: %s", r.step, r.err.(*Error).Detail())
	}
}

// TestScramLibrdkafkaNonce: librdkafka before 2.6.1 sends its client nonce
// twice in the final message, r=<cnonce><cnonce><snonce>. That form is
// accepted with a right proof (computed over the message as sent), and
// refused with a wrong one, for a decoy user, and with any other nonce.
func TestScramLibrdkafkaNonce(t *testing.T) {
	creds := users(t)
	for _, mech := range scramMechs {
		t.Run(mech, func(t *testing.T) {
			m := must[Mechanism](t)(NewScram(mech, creds, PasswordOptions{DecoySecret: []byte("0123456789abcdef0123456789abcdef")}))
			h := map[string]func() hash.Hash{ScramSHA256: sha256.New, ScramSHA512: sha512.New}[mech]
			run := func(user, pass, nonceForm string) error {
				sess := m.Start()
				const cnonce = "rOprNGfwEbeRWgbNEkqO"
				c1b := "n=" + user + ",r=" + cnonce
				s1raw, _, err := sess.Step(context.Background(), []byte("n,,"+c1b))
				if err != nil {
					t.Fatalf("first step: %v", err)
				}
				s1 := string(s1raw)
				var snonce, salt string
				var iters int
				for _, f := range strings.Split(s1, ",") {
					switch {
					case strings.HasPrefix(f, "r="):
						snonce = f[2:]
					case strings.HasPrefix(f, "s="):
						salt = f[2:]
					case strings.HasPrefix(f, "i="):
						iters, _ = strconv.Atoi(f[2:])
					}
				}
				nonce := map[string]string{"doubled": cnonce + snonce, "other": "x" + snonce}[nonceForm]
				bare := "c=biws,r=" + nonce
				rawSalt, _ := base64.StdEncoding.DecodeString(salt)
				salted, err := pbkdf2.Key(h, pass, rawSalt, iters, h().Size())
				if err != nil {
					t.Fatal(err)
				}
				mac := func(key []byte, msg string) []byte {
					m := hmac.New(h, key)
					m.Write([]byte(msg))
					return m.Sum(nil)
				}
				clientKey := mac(salted, "Client Key")
				stored := h()
				stored.Write(clientKey)
				sig := mac(stored.Sum(nil), c1b+","+s1+","+bare)
				proof := make([]byte, len(clientKey))
				for i := range proof {
					proof[i] = clientKey[i] ^ sig[i]
				}
				out, done, err := sess.Step(context.Background(), []byte(bare+",p="+base64.StdEncoding.EncodeToString(proof)))
				if err != nil {
					return err
				}
				want := "v=" + base64.StdEncoding.EncodeToString(mac(mac(salted, "Server Key"), c1b+","+s1+","+bare))
				if !done || string(out) != want {
					t.Fatalf("accepted, but done %v and server-final %q (want %q)", done, out, want)
				}
				return nil
			}
			if err := run("alice", "alice-secret", "doubled"); err != nil {
				t.Errorf("librdkafka's doubled nonce with the right password: %v", err)
			}
			for _, c := range []struct{ user, pass, nonce string }{
				{"alice", "wrong", "doubled"},
				{"nobody", "alice-secret", "doubled"},
				{"alice", "alice-secret", "other"},
			} {
				if err := run(c.user, c.pass, c.nonce); !errors.Is(err, ErrAuthenticationFailed) {
					t.Errorf("%s/%s with the %s nonce: %v, want an authentication failure", c.user, c.pass, c.nonce, err)
				}
			}
		})
	}
}
