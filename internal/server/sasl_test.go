package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/vigilhq/vigil/internal/certs/certstest"
	"github.com/vigilhq/vigil/internal/config"
)

// startSASLServer serves PLAINTEXT (for setting users up), SASL_PLAINTEXT
// and SASL_SSL, with every password mechanism.
func startSASLServer(t *testing.T, mod func(*config.Broker)) (*testServer, *certstest.CA) {
	t.Helper()
	ca := certstest.NewCA(t, "test-ca")
	pair := ca.Server("broker")
	ts := startServer(t, t.TempDir(), func(c *config.Broker) {
		c.Listen = "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0"
		c.Advertised = ""
		c.Security.TLSCert, c.Security.TLSKey = pair.Cert, pair.Key
		c.Security.SASLMechanisms = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
		if mod != nil {
			mod(c)
		}
	})
	return ts, ca
}

func addUsers(t *testing.T, addr string, users map[string]string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var ups []kadm.UpsertSCRAM
	for u, p := range users {
		for _, m := range []kadm.ScramMechanism{kadm.ScramSha256, kadm.ScramSha512} {
			ups = append(ups, kadm.UpsertSCRAM{User: u, Mechanism: m, Iterations: 4096, Password: p})
		}
	}
	res, err := kadm.NewClient(cl).AlterUserSCRAMs(context.Background(), nil, ups)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Error(); err != nil {
		t.Fatalf("alter SCRAM users: %v", err)
	}
}

// TestSASLMechanisms authenticates franz-go with every mechanism on both
// SASL listeners, produces and consumes, and checks the failures Kafka
// gives: a wrong password, an unknown user, an unknown mechanism, and a
// request before authentication.
func TestSASLMechanisms(t *testing.T) {
	ts, ca := startSASLServer(t, nil)
	plainAddr := ts.srv.ListenerAddr(config.Plaintext).String()
	addUsers(t, plainAddr, map[string]string{"alice": "alice-secret", "bob": "b0b-secret"})

	mechs := map[string]sasl.Mechanism{
		"PLAIN":         plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism(),
		"SCRAM-SHA-256": scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism(),
		"SCRAM-SHA-512": scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism(),
	}
	for _, proto := range []string{config.SASLPlaintext, config.SASLSSL} {
		addr := ts.srv.ListenerAddr(proto).String()
		for name, m := range mechs {
			t.Run(proto+"/"+name, func(t *testing.T) {
				opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.SASL(m), kgo.DefaultProduceTopic("sasl-" + proto),
					kgo.ConsumeTopics("sasl-" + proto), kgo.AllowAutoTopicCreation()}
				if proto == config.SASLSSL {
					opts = append(opts, kgo.DialTLSConfig(clientTLS(t, ca.File, nil)))
				}
				cl, err := kgo.NewClient(opts...)
				if err != nil {
					t.Fatal(err)
				}
				defer cl.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(name)}).FirstErr(); err != nil {
					t.Fatalf("produce: %v", err)
				}
				fs := cl.PollFetches(ctx)
				if err := fs.Err0(); err != nil || fs.NumRecords() == 0 {
					t.Fatalf("consume: %d records, %v", fs.NumRecords(), err)
				}
			})
		}
	}

	addr := ts.srv.ListenerAddr(config.SASLPlaintext).String()
	for name, m := range map[string]sasl.Mechanism{
		"wrong password":           scram.Auth{User: "alice", Pass: "guess"}.AsSha512Mechanism(),
		"unknown user":             scram.Auth{User: "mallory", Pass: "guess"}.AsSha256Mechanism(),
		"PLAIN wrong password":     plain.Auth{User: "bob", Pass: "alice-secret"}.AsMechanism(),
		"PLAIN authzid of another": plain.Auth{Zid: "alice", User: "bob", Pass: "b0b-secret"}.AsMechanism(),
	} {
		err := metadataErr(addr, kgo.SASL(m))
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Errorf("%s: %v, want SASL_AUTHENTICATION_FAILED", name, err)
		}
	}

	// An unknown mechanism: the handshake answers with the enabled ones.
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "GSSAPI"
	resp := roundTrip(t, nc, hs).(*kmsg.SASLHandshakeResponse)
	if resp.ErrorCode != kerr.UnsupportedSaslMechanism.Code || strings.Join(resp.SupportedMechanisms, ",") != "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512" {
		t.Errorf("handshake with GSSAPI: code %d, mechanisms %v", resp.ErrorCode, resp.SupportedMechanisms)
	}

	// Anything but ApiVersions or the handshake before authenticating
	// closes the connection, as Kafka does.
	nc2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 0
	if r := roundTrip(t, nc2, av).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
		t.Errorf("ApiVersions before authenticating: %d", r.ErrorCode)
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 1
	writeRequest(t, nc2, md, 2)
	nc2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := io.ReadFull(nc2, make([]byte, 4)); err == nil {
		t.Errorf("Metadata before authenticating was answered (%d bytes)", n)
	}

	// DescribeUserScramCredentials shows users and mechanisms.
	cl, err := kgo.NewClient(kgo.SeedBrokers(ts.srv.ListenerAddr(config.Plaintext).String()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	desc, err := kadm.NewClient(cl).DescribeUserSCRAMs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(desc) != 2 || len(desc["alice"].CredInfos) != 2 || desc["alice"].CredInfos[0].Iterations != 4096 {
		t.Errorf("described users: %+v", desc)
	}
	// A deleted credential stops working at once.
	del, err := kadm.NewClient(cl).AlterUserSCRAMs(context.Background(), []kadm.DeleteSCRAM{{User: "alice", Mechanism: kadm.ScramSha512}}, nil)
	if err != nil || del.Error() != nil {
		t.Fatalf("delete credential: %v %v", err, del.Error())
	}
	if err := metadataErr(addr, kgo.SASL(mechs["SCRAM-SHA-512"])); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("SCRAM-SHA-512 after deleting it: %v", err)
	}
	if err := metadataErr(addr, kgo.SASL(mechs["SCRAM-SHA-256"])); err != nil {
		t.Errorf("SCRAM-SHA-256 after deleting SHA-512: %v", err)
	}
	// Deleting what does not exist is RESOURCE_NOT_FOUND for that user.
	del, err = kadm.NewClient(cl).AlterUserSCRAMs(context.Background(), []kadm.DeleteSCRAM{{User: "nobody", Mechanism: kadm.ScramSha512}}, nil)
	if err != nil || !errors.Is(del.Error(), kerr.ResourceNotFound) {
		t.Errorf("delete of an unknown credential: %v %v", err, del.Error())
	}
}

// TestSASLReauthentication: with connections.max.reauth set, franz-go
// authenticates again on its own (KIP-368) and keeps producing, while a
// raw connection that does not is closed at its next request.
func TestSASLReauthentication(t *testing.T) {
	ts, _ := startSASLServer(t, func(c *config.Broker) { c.Security.ConnectionsMaxReauth = 1500 * time.Millisecond })
	addUsers(t, ts.srv.ListenerAddr(config.Plaintext).String(), map[string]string{"carol": "carol-secret"})
	addr := ts.srv.ListenerAddr(config.SASLPlaintext).String()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.SASL(scram.Auth{User: "carol", Pass: "carol-secret"}.AsSha256Mechanism()),
		kgo.DefaultProduceTopic("reauth"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	deadline := time.Now().Add(4 * time.Second)
	n := 0
	for time.Now().Before(deadline) {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(n))}).FirstErr(); err != nil {
			t.Fatalf("produce %d across re-authentications: %v", n, err)
		}
		n++
		time.Sleep(50 * time.Millisecond)
	}

	// A raw client that authenticates once and never again.
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	if r := roundTrip(t, nc, hs).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
		t.Fatalf("handshake: %d", r.ErrorCode)
	}
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.Version = 1
	auth.SASLAuthBytes = []byte("\x00carol\x00carol-secret")
	ar := roundTrip(t, nc, auth).(*kmsg.SASLAuthenticateResponse)
	if ar.ErrorCode != 0 || ar.SessionLifetimeMillis <= 0 || ar.SessionLifetimeMillis > 1500 {
		t.Fatalf("authenticate: code %d, session lifetime %d ms (want 1..1500)", ar.ErrorCode, ar.SessionLifetimeMillis)
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 1
	if r := roundTrip(t, nc, md); r == nil {
		t.Fatal("metadata within the session was not answered")
	}
	time.Sleep(1600 * time.Millisecond)
	writeRequest(t, nc, md, 9)
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(nc, make([]byte, 4)); err == nil {
		t.Error("a request after the session expired was answered")
	}
}

// metadataErr runs one Metadata request with opts and returns its error.
func metadataErr(addr string, opts ...kgo.Opt) error {
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(addr), kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	return err
}

// writeRequest frames req (its version set) with correlation id corr.
func writeRequest(t *testing.T, nc net.Conn, req kmsg.Request, corr int32) {
	t.Helper()
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw-test"))
	if _, err := nc.Write(f.AppendRequest(nil, req, corr)); err != nil {
		t.Fatalf("write %s: %v", kmsg.NameForKey(req.Key()), err)
	}
}

// roundTrip writes req and reads its response.
func roundTrip(t *testing.T, nc net.Conn, req kmsg.Request) kmsg.Response {
	t.Helper()
	writeRequest(t, nc, req, 1)
	return readResponse(t, nc, req)
}

// TestQuotasPerSASLUser: a user quota applies to the connections that
// authenticated as that user, and not to another user's.
func TestQuotasPerSASLUser(t *testing.T) {
	ts, _ := startSASLServer(t, nil)
	plainAddr := ts.srv.ListenerAddr(config.Plaintext).String()
	addUsers(t, plainAddr, map[string]string{"slow": "slow-secret", "fast": "fast-secret"})
	ctx := testCtx(t, time.Minute)
	adm := kadm.NewClient(ts.client(t, kgo.SeedBrokers(plainAddr)))
	createTopics(t, ctx, adm, 1, nil, "per-user")
	slow := "slow"
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &slow}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 10_000}},
	}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("alter quotas: %v %+v", err, res)
	}
	addr := ts.srv.ListenerAddr(config.SASLPlaintext).String()
	throttle := func(user, pass string) int32 {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var ms int32
		for i := 0; i < 4; i++ { // 160 kB: well past 10 s x 10 kB/s
			resp, err := cl.Request(ctx, produceReq("per-user", 0, -1, makeBatch(40, 1000)))
			if err != nil {
				t.Fatalf("%s: produce: %v", user, err)
			}
			pr := resp.(*kmsg.ProduceResponse)
			if code := pr.Topics[0].Partitions[0].ErrorCode; code != 0 {
				t.Fatalf("%s: produce: %v", user, kerr.ErrorForCode(code))
			}
			ms = max(ms, pr.ThrottleMillis)
		}
		return ms
	}
	if ms := throttle("fast", "fast-secret"); ms != 0 {
		t.Errorf("a user without a quota was throttled %d ms", ms)
	}
	if ms := throttle("slow", "slow-secret"); ms <= 0 {
		t.Error("the user with a 10 kB/s quota was not throttled after 160 kB")
	}
}
