// Package etcdtest runs a real, single-member etcd server inside a test
// process (go.etcd.io/etcd/server/v3/embed), for the tests of the etcd
// metadata backend and of brokers that use it. Only tests import it, so
// the server code is never linked into the vigil binary.
package etcdtest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Start starts a member in a temporary directory of t and returns its
// client endpoint (host:port); it stops when the test ends.
func Start(t testing.TB) string {
	t.Helper()
	ep, stop, err := StartServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return ep
}

// Member is a member a test can stop and start again on the same data
// directory and ports (an etcd restart during load).
type Member struct {
	dir          string
	client, peer url.URL
	mu           sync.Mutex
	e            *embed.Etcd // nil while stopped
	Endpoint     string      // client host:port, the same across restarts
}

// StartMember starts a restartable member for t; it stops when the test
// ends.
func StartMember(t testing.TB) *Member {
	t.Helper()
	client, err := freeURL()
	if err != nil {
		t.Fatal(err)
	}
	peer, err := freeURL()
	if err != nil {
		t.Fatal(err)
	}
	m := &Member{dir: t.TempDir(), client: client, peer: peer, Endpoint: client.Host}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

// Start starts the (stopped) member again.
func (m *Member) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.e != nil {
		return nil
	}
	e, err := startEtcd(m.dir, m.client, m.peer)
	if err != nil {
		return err
	}
	m.e = e
	return nil
}

// Stop stops the member; its data stays for Start.
func (m *Member) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.e != nil {
		// Like a crash: no graceful drain of client streams, which would
		// keep the member half-up for seconds.
		m.e.Server.HardStop()
		m.e.Close()
		m.e = nil
	}
}

// StartServer starts a member with its data in dir, listening on free
// 127.0.0.1 ports, and returns its client endpoint and a stop function.
// For TestMain, where there is no testing.TB.
func StartServer(dir string) (endpoint string, stop func(), err error) {
	client, err := freeURL()
	if err != nil {
		return "", nil, err
	}
	peer, err := freeURL()
	if err != nil {
		return "", nil, err
	}
	e, err := startEtcd(dir, client, peer)
	if err != nil {
		return "", nil, err
	}
	return client.Host, e.Close, nil
}

// TLS configures a member's client port: its certificate and the CA it
// verifies client certificates against (etcd's --client-cert-auth).
type TLS struct {
	CertFile, KeyFile string
	ClientCAFile      string
}

// StartTLS starts a member whose client port speaks TLS and requires a
// client certificate signed by the CA; it stops when the test ends.
func StartTLS(t testing.TB, tc TLS) string {
	t.Helper()
	client, err := freeURL()
	if err != nil {
		t.Fatal(err)
	}
	peer, err := freeURL()
	if err != nil {
		t.Fatal(err)
	}
	client.Scheme = "https"
	e, err := startEtcdWith(t.TempDir(), client, peer, func(cfg *embed.Config) {
		cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = tc.CertFile, tc.KeyFile
		cfg.ClientTLSInfo.TrustedCAFile, cfg.ClientTLSInfo.ClientCertAuth = tc.ClientCAFile, true
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return client.Host
}

func startEtcd(dir string, client, peer url.URL) (*embed.Etcd, error) {
	return startEtcdWith(dir, client, peer, nil)
}

func startEtcdWith(dir string, client, peer url.URL, mod func(*embed.Config)) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = "vigil-test"
	cfg.Dir = dir
	// Closing a member logs its listeners' "use of closed network
	// connection" at error level; failures reach the caller as errors.
	cfg.LogLevel = "fatal"
	cfg.LogOutputs = []string{"stderr"}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	if mod != nil {
		mod(cfg)
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, errors.New("embedded etcd not ready after 30s")
	}
	return e, nil
}

// freeURL reserves a free port by binding and releasing it; the tiny
// window before etcd binds it again is acceptable in tests.
func freeURL() (url.URL, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return url.URL{}, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return url.URL{Scheme: "http", Host: ln.Addr().String()}, nil
}
