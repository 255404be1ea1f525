package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/vigilhq/vigil/internal/certs/certstest"
	"github.com/vigilhq/vigil/internal/config"
)

func clientTLS(t *testing.T, caFile string, pair *certstest.Pair) *tls.Config {
	t.Helper()
	raw, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(raw)
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if pair != nil {
		cert, err := tls.LoadX509KeyPair(pair.Cert, pair.Key)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc
}

// TestTLSListeners serves PLAINTEXT and SSL side by side: a TLS client
// round-trips records through the SSL listener, Metadata on each listener
// names that listener's address, and a plaintext client on the SSL port
// is turned away without harming the broker.
func TestTLSListeners(t *testing.T) {
	ca := certstest.NewCA(t, "test-ca")
	server := ca.Server("broker")
	ts := startServer(t, t.TempDir(), func(c *config.Broker) {
		c.Listen = "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0"
		c.Advertised = ""
		c.Security.TLSCert, c.Security.TLSKey = server.Cert, server.Key
	})
	sslAddr := ts.srv.ListenerAddr(config.SSL).String()
	plainAddr := ts.srv.ListenerAddr(config.Plaintext).String()
	if sslAddr == plainAddr {
		t.Fatalf("one address for both listeners: %s", sslAddr)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(sslAddr), kgo.DialTLSConfig(clientTLS(t, ca.File, nil)),
		kgo.DefaultProduceTopic("tls-topic"), kgo.ConsumeTopics("tls-topic"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 10; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatalf("produce over TLS: %v", err)
		}
	}
	got := 0
	for got < 10 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of 10 over TLS", got)
		}
		fs.EachRecord(func(*kgo.Record) { got++ })
	}

	// Metadata names each listener's own address: a TLS client must not
	// be sent to the plaintext port (it would fail to connect).
	for addr, want := range map[string]string{sslAddr: sslAddr, plainAddr: plainAddr} {
		var opts []kgo.Opt
		if addr == sslAddr {
			opts = append(opts, kgo.DialTLSConfig(clientTLS(t, ca.File, nil)))
		}
		mc, err := kgo.NewClient(append(opts, kgo.SeedBrokers(addr))...)
		if err != nil {
			t.Fatal(err)
		}
		brokers := metadataBrokers(t, mc)
		mc.Close()
		if len(brokers) != 1 || brokers[0] != want {
			t.Errorf("Metadata through %s lists %v, want [%s]", addr, brokers, want)
		}
	}

	// A plaintext client on the TLS port: its connection is closed.
	nc, err := net.Dial("tcp", sslAddr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	// An ApiVersions v0 request, as a plaintext client starts.
	nc.Write([]byte{0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0, 0})
	answer, err := io.ReadAll(nc)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("plaintext client on the TLS port: %v after %d bytes (want the connection closed)", err, len(answer))
	}
	if len(answer) > 0 && answer[0] != 0x15 { // only a TLS alert record may come back
		t.Errorf("plaintext client on the TLS port got %x", answer)
	}
	nc.Close()
	// ... and the listener still serves TLS clients.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("produce after a plaintext client on the TLS port: %v", err)
	}
}

func metadataBrokers(t *testing.T, cl *kgo.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	var out []string
	for _, b := range resp.Brokers {
		out = append(out, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))))
	}
	return out
}

// TestMutualTLS requires client certificates: a client without one is
// refused, one signed by the CA is served, and a renewed server
// certificate is served without a restart.
func TestMutualTLS(t *testing.T) {
	ca := certstest.NewCA(t, "test-ca")
	server := ca.Server("broker-one")
	ts := startServer(t, t.TempDir(), func(c *config.Broker) {
		c.Listen = "SSL://127.0.0.1:0"
		c.Advertised = ""
		c.Security.TLSCert, c.Security.TLSKey = server.Cert, server.Key
		c.Security.TLSClientCA = ca.File
	})
	addr := ts.srv.Addr().String()
	client := ca.Client(pkix.Name{CommonName: "alice", OrganizationalUnit: []string{"detect"}})

	// Without a certificate, or with one of another CA, the handshake
	// fails (with TLS 1.3 the client learns it on its first read).
	other := certstest.NewCA(t, "other-ca").Client(pkix.Name{CommonName: "mallory"})
	for name, pair := range map[string]*certstest.Pair{"no certificate": nil, "another CA's certificate": &other} {
		err := tlsRefused(addr, clientTLS(t, ca.File, pair))
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: not refused for its certificate: %v", name, err)
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTLSConfig(clientTLS(t, ca.File, &client)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if got := metadataBrokers(t, cl); len(got) != 1 {
		t.Fatalf("metadata over mTLS: %v", got)
	}

	// Renewal: new files, same paths; new handshakes get the new one.
	ca.Rewrite(server, "broker-two")
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := tls.Dial("tcp", addr, clientTLS(t, ca.File, &client))
		if err != nil {
			t.Fatal(err)
		}
		cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName
		c.Close()
		if cn == "broker-two" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving %q 10s after the certificate files were replaced", cn)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// tlsRefused dials and reads once; it returns the error that ended the
// connection (nil if the server kept it).
func tlsRefused(addr string, tc *tls.Config) error {
	c, err := tls.Dial("tcp", addr, tc)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return err
}

// TestSASLSSLAsksNoClientCertificate: with mTLS required on the SSL
// listener, the SASL_SSL listener still takes clients without one (SASL
// names them; KIP-684), while the SSL listener refuses them.
func TestSASLSSLAsksNoClientCertificate(t *testing.T) {
	ca := certstest.NewCA(t, "test-ca")
	server := ca.Server("broker")
	ts := startServer(t, t.TempDir(), func(c *config.Broker) {
		c.Listen = "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,SASL_SSL://127.0.0.1:0"
		c.Advertised = ""
		c.Security.TLSCert, c.Security.TLSKey = server.Cert, server.Key
		c.Security.TLSClientCA = ca.File
	})
	if err := tlsRefused(ts.srv.ListenerAddr(config.SASLSSL).String(), clientTLS(t, ca.File, nil)); err != nil {
		t.Errorf("SASL_SSL without a client certificate: %v", err)
	}
	if err := tlsRefused(ts.srv.ListenerAddr(config.SSL).String(), clientTLS(t, ca.File, nil)); err == nil {
		t.Error("SSL with mTLS required took a client without a certificate")
	}
}
