package ingest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/internal/certs/certstest"
	"github.com/vigilhq/vigil/internal/server/servertest"
)

// hostAddr is a non-loopback address of this machine with port 0, or "".
func hostAddr() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return net.JoinHostPort(n.IP.String(), "0")
		}
	}
	return ""
}

// TestHTTPGuard: an HTTP listener other hosts reach needs a token or
// client certificates (or --http-insecure); with a token, /v1/events
// answers 401 without it; with mTLS, a client without a certificate is
// refused and one with a certificate of the CA is served.
func TestHTTPGuard(t *testing.T) {
	b := startBroker(t, t.TempDir(), "")
	addr := hostAddr()
	if addr == "" {
		t.Skip("no non-loopback address")
	}
	cfg := DefaultConfig()
	cfg.Brokers, cfg.SyslogTCP, cfg.SyslogUDP, cfg.HTTP = []string{b.Addr}, "", "", addr
	if svc, err := Start(context.Background(), cfg, servertest.Logger(t)); err == nil {
		svc.Close()
		t.Fatal("an HTTP listener on a non-loopback address started with no token, no client CA and no --http-insecure")
	} else if !strings.Contains(err.Error(), "--http-token-file") {
		t.Errorf("refusal does not say what to do: %v", err)
	}

	const token = "0123456789abcdef-ingest"
	svc := startIngest(t, b.Addr, func(c *Config) { c.HTTP, c.HTTPToken = addr, token })
	url := "http://" + svc.HTTPAddr().String() + "/v1/events?source=syslog&format=raw"
	line := []byte("Nov 26 10:15:07 web-1 sshd[2240]: Failed password for root from 203.0.113.9 port 40022 ssh2\n")
	for _, tc := range []struct {
		auth string
		code int
	}{{"", 401}, {"Bearer wrong-token-wrong", 401}, {"Bearer " + token, 202}} {
		h := map[string]string{}
		if tc.auth != "" {
			h["Authorization"] = tc.auth
		}
		if resp, body := post(t, url, line, h); resp.StatusCode != tc.code {
			t.Errorf("POST with %q: %d %s, want %d", tc.auth, resp.StatusCode, body, tc.code)
		}
	}
	resp, err := http.Get("http://" + svc.HTTPAddr().String() + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("healthz without a token: %v %v", err, resp)
	}

	// mTLS instead of a token.
	ca := certstest.NewCA(t, "ingest-ca")
	server, client := ca.Server("ingest"), ca.Client(pkix.Name{CommonName: "forwarder"})
	svc = startIngest(t, b.Addr, func(c *Config) {
		c.HTTP, c.HTTPTLSCert, c.HTTPTLSKey, c.HTTPClientCA = "127.0.0.1:0", server.Cert, server.Key, ca.File
	})
	raw, err := os.ReadFile(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(raw)
	murl := "https://" + svc.HTTPAddr().String() + "/v1/events?source=syslog&format=raw"
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if resp, err := noCert.Post(murl, "text/plain", strings.NewReader(string(line))); err == nil {
		resp.Body.Close()
		t.Errorf("a client without a certificate was answered %d", resp.StatusCode)
	}
	cert, err := tls.LoadX509KeyPair(client.Cert, client.Key)
	if err != nil {
		t.Fatal(err)
	}
	withCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	resp, err = withCert.Post(murl, "text/plain", strings.NewReader(string(line)))
	if err != nil {
		t.Fatalf("a client with a certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("a client with a certificate: %d", resp.StatusCode)
	}
}
