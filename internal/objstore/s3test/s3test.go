// Package s3test runs a real S3-compatible server for tests: Versity's
// gateway (versitygw) over a temporary directory, on a free loopback
// port. Tests talk to it through the same minio-go client as production,
// so nothing about S3 is faked.
//
// The binary is looked up on PATH, then in $GOPATH/bin. Install it with
//
//	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
//
// (.ci/install does). Without it the tests that need it skip, unless
// VIGIL_REQUIRE_S3=1, which makes them fail instead: CI must not pass by
// skipping.
package s3test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/objstore"
)

// Fixed test credentials of the gateway's root account.
const (
	AccessKey = "VIGILTESTACCESSKEY"
	SecretKey = "vigil-test-secret-key-0123456789"
)

// Server is one versitygw process. Stop and Start simulate an outage: the
// process is killed (connections drop, as when a store or the network
// dies) and restarted on the same port and directory, so objects written
// before the outage are still there.
type Server struct {
	t    testing.TB
	bin  string
	root string // one subdirectory per bucket
	addr string // 127.0.0.1:port
	// tlsCert and tlsKey, when set, make the gateway speak https.
	tlsCert, tlsKey string

	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *output    // the gateway's stdout and stderr, for failures
	exit chan error // the running process's Wait result
}

// Binary returns the path of versitygw, or "" if it is not installed.
func Binary() string {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		gopath = build.Default.GOPATH
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "versitygw")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

// Start starts a gateway for t and stops it at t's cleanup. Without the
// binary it skips t (fails it with VIGIL_REQUIRE_S3=1).
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, "", "")
}

// StartTLS starts a gateway that serves https with the certificate and
// key given (PEM files).
func StartTLS(t testing.TB, certFile, keyFile string) *Server {
	t.Helper()
	return start(t, certFile, keyFile)
}

func start(t testing.TB, certFile, keyFile string) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		msg := "versitygw not found on PATH or in $GOPATH/bin; install it with " +
			"`go install github.com/versity/versitygw/cmd/versitygw@v1.8.0` to run the S3 tests"
		if os.Getenv("VIGIL_REQUIRE_S3") == "1" {
			t.Fatal(msg + " (VIGIL_REQUIRE_S3=1)")
		}
		t.Skip(msg)
	}
	s := &Server{t: t, bin: bin, root: t.TempDir(), tlsCert: certFile, tlsKey: keyFile}
	// Ask the kernel for a free port, then hand it to the gateway. Another
	// process could take it in between; on loopback in a test run that is
	// rare enough, and the failure would be a clear "address in use".
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("s3test: find a free port: %v", err)
	}
	s.addr = ln.Addr().String()
	ln.Close()
	t.Cleanup(s.Stop)
	s.Start()
	return s
}

// Addr is the gateway's host:port.
func (s *Server) Addr() string { return s.addr }

// Root is the directory holding the buckets.
func (s *Server) Root() string { return s.root }

// Options are the credentials for objstore.Open.
func (s *Server) Options() objstore.Options {
	return objstore.Options{S3AccessKeyID: AccessKey, S3SecretAccessKey: SecretKey}
}

// URL is the s3:// URL of prefix in bucket on this server; extra query
// parameters (e.g. "timeout=2s") are appended.
func (s *Server) URL(bucket, prefix string, extra ...string) string {
	u := fmt.Sprintf("s3://%s/%s?endpoint=%s://%s&path_style=true", bucket, strings.TrimPrefix(prefix, "/"), s.scheme(), s.addr)
	for _, e := range extra {
		u += "&" + e
	}
	return u
}

func (s *Server) scheme() string {
	if s.tlsCert != "" {
		return "https"
	}
	return "http"
}

// Bucket creates a bucket (a directory of the posix backend) and returns
// its name.
func (s *Server) Bucket(name string) string {
	s.t.Helper()
	if err := os.Mkdir(filepath.Join(s.root, name), 0o755); err != nil {
		s.t.Fatalf("s3test: create bucket %s: %v", name, err)
	}
	return name
}

// Open opens prefix of bucket through objstore.Open and closes it at t's
// cleanup.
func (s *Server) Open(t testing.TB, bucket, prefix string, extra ...string) objstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := objstore.Open(ctx, s.URL(bucket, prefix, extra...), s.Options())
	if err != nil {
		t.Fatalf("s3test: open %s: %v", s.URL(bucket, prefix, extra...), err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Start (re)starts the gateway on its port and directory and waits until
// it answers HTTP. It is a no-op while the gateway runs.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	var lastErr error
	// The port of a just-killed gateway can take a moment to free up.
	for attempt := 0; attempt < 5; attempt++ {
		if lastErr = s.startLocked(); lastErr == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("s3test: %v", lastErr)
}

func (s *Server) startLocked() error {
	out := &output{}
	args := []string{"--port", s.addr, "--access", AccessKey, "--secret", SecretKey, "--quiet"}
	if s.tlsCert != "" {
		args = append(args, "--cert", s.tlsCert, "--key", s.tlsKey)
	}
	cmd := exec.Command(s.bin, append(args, "posix", s.root)...)
	// Only what the gateway needs: an inherited ROOT_ACCESS_KEY or VGW_*
	// variable would change its configuration.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.root}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exit := make(chan error, 1)
	go func() { exit <- cmd.Wait() }()

	deadline := time.Now().Add(20 * time.Second)
	// The probe only asks whether it answers; the tests check the
	// certificate through the store's own client.
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for {
		select {
		case err := <-exit:
			return fmt.Errorf("versitygw exited at start (%v); output:\n%s", err, out.String())
		default:
		}
		// Any HTTP answer (403 for an unsigned request) means it serves.
		resp, err := client.Get(s.scheme() + "://" + s.addr + "/")
		if err == nil {
			resp.Body.Close()
			s.cmd, s.out, s.exit = cmd, out, exit
			return nil
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exit
			return fmt.Errorf("versitygw on %s did not answer within 20s (%v); output:\n%s", s.addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the gateway (a no-op if it is not running) and waits until
// it is gone. Its output is logged if the test failed.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exit, out := s.cmd, s.exit, s.out
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-exit
	if s.t.Failed() {
		s.t.Logf("s3test: versitygw output:\n%s", out.String())
	}
}

// Pause freezes the gateway (SIGSTOP): the kernel still accepts its
// connections, but nothing answers, which is what a hung store looks like
// to a client. Resume undoes it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused gateway.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatalf("s3test: %v: gateway is not running", sig)
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Fatalf("s3test: %v: %v", sig, err)
	}
}

// output collects the gateway's stdout and stderr, written by exec's
// copying goroutines and read by Stop.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
