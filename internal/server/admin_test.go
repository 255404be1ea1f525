package server

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilhq/vigil/internal/certs/certstest"
	"github.com/vigilhq/vigil/internal/config"
)

// hostIP is a non-loopback address of this machine, or "" (then the tests
// of what other hosts see are skipped).
func hostIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

func get(t *testing.T, c *http.Client, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestAdminListenerGuard: probes stay open; with a token everything else
// needs it (but /metrics from the broker's host); without one, profiles
// (which show the command line) are for the broker's host only.
func TestAdminListenerGuard(t *testing.T) {
	token := "0123456789abcdef-admin"
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := certstest.NewCA(t, "admin-ca")
	pair := ca.Server("broker")
	ts := startServer(t, t.TempDir(), func(c *config.Broker) {
		c.AdminListen = "0.0.0.0:0"
		c.AdminTokenFile = file
		c.AdminTLS = true
		c.Security.TLSCert, c.Security.TLSKey = pair.Cert, pair.Key
	})
	_, port, _ := net.SplitHostPort(ts.srv.AdminAddr())
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS(t, ca.File, nil)}}
	local := "https://127.0.0.1:" + port
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/healthz", "", 200},
		{"/readyz", "", 200},
		{"/metrics", "", 200},
		{"/debug/pprof/cmdline", "", 401},
		{"/debug/pprof/cmdline", "wrong-token-wrong-token", 401},
		{"/debug/pprof/cmdline", token, 200},
	} {
		if got := get(t, c, local+tc.path, tc.token); got != tc.want {
			t.Errorf("GET %s (token %q) from the broker's host: %d, want %d", tc.path, tc.token, got, tc.want)
		}
	}
	// Plain HTTP is not served.
	if resp, err := http.Get("http://127.0.0.1:" + port + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("the TLS admin listener answered plain HTTP")
		}
	}
	ip := hostIP()
	if ip == "" {
		t.Skip("no non-loopback address to test what other hosts see")
	}
	other := "https://" + net.JoinHostPort(ip, port)
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/healthz", "", 200},
		{"/metrics", "", 401},
		{"/metrics", token, 200},
	} {
		if got := get(t, c, other+tc.path, tc.token); got != tc.want {
			t.Errorf("GET %s (token %q) from %s: %d, want %d", tc.path, tc.token, ip, got, tc.want)
		}
	}
}

// TestAdminProfilesNeedLoopbackWithoutToken: with no token, /metrics is
// open to all and /debug/pprof/ to the broker's own host only.
func TestAdminProfilesNeedLoopbackWithoutToken(t *testing.T) {
	ts := startServer(t, t.TempDir(), func(c *config.Broker) { c.AdminListen = "0.0.0.0:0" })
	_, port, _ := net.SplitHostPort(ts.srv.AdminAddr())
	c := http.DefaultClient
	if got := get(t, c, "http://127.0.0.1:"+port+"/debug/pprof/cmdline", ""); got != 200 {
		t.Errorf("profiles from the broker's host: %d", got)
	}
	ip := hostIP()
	if ip == "" {
		t.Skip("no non-loopback address to test what other hosts see")
	}
	if got := get(t, c, "http://"+net.JoinHostPort(ip, port)+"/debug/pprof/cmdline", ""); got != http.StatusForbidden {
		t.Errorf("profiles from %s without a token: %d, want 403", ip, got)
	}
	if got := get(t, c, "http://"+net.JoinHostPort(ip, port)+"/metrics", ""); got != 200 {
		t.Errorf("metrics from %s without a token configured: %d, want 200", ip, got)
	}
}
