package admincli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/vigilhq/vigil/internal/admincli"
	"github.com/vigilhq/vigil/internal/certs/certstest"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/server/servertest"
)

// externalEnv points the group tests at another Kafka-compatible cluster
// instead of an in-process Vigil, to check the commands against a second
// implementation. Unset, every test runs against a real Vigil broker.
const externalEnv = "VIGIL_ADMINCLI_TEST_BROKERS"

// startBroker runs a real Vigil broker on a random loopback port, as
// internal/server's tests do, and returns its address.
func startBroker(t *testing.T) string {
	t.Helper()
	return runBroker(t, brokerConfig(t, t.TempDir())).Addr
}

// brokerConfig is a broker on random loopback ports with its data in dir.
func brokerConfig(t *testing.T, dir string) config.Broker {
	t.Helper()
	cfg := servertest.Config(dir)
	// The commands must never create topics as a side effect of looking.
	cfg.AutoCreateTopics = false
	return cfg
}

// runningBroker is a broker started in this process; stop it to reuse
// its data directory (it is stopped when the test ends anyway).
type runningBroker struct {
	*servertest.Broker
	t *testing.T
}

func runBroker(t *testing.T, cfg config.Broker) *runningBroker {
	t.Helper()
	return &runningBroker{servertest.Start(t, cfg), t}
}

func (b *runningBroker) stop() { b.Close() }

// addr is the listener of a security protocol.
func (b *runningBroker) addr(protocol string) string {
	a := b.Server.ListenerAddr(protocol)
	if a == nil {
		b.t.Fatalf("the broker has no %s listener", protocol)
	}
	return a.String()
}

// Secured brokers: --authorizer acl with User:admin the only super user,
// and a PLAINTEXT (ANONYMOUS, allowed nothing), a SASL_PLAINTEXT and a
// SASL_SSL listener.
const (
	adminUser     = "admin"
	adminPassword = "admin-secret-1"
)

// securedConfig is brokerConfig secured as an operator would do it.
func securedConfig(t *testing.T, dir string, ca *certstest.CA) config.Broker {
	t.Helper()
	cfg := brokerConfig(t, dir)
	pair := ca.Server("broker")
	cfg.Listen = "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0"
	cfg.Advertised = ""
	cfg.Security.TLSCert, cfg.Security.TLSKey = pair.Cert, pair.Key
	cfg.Security.SASLMechanisms = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
	cfg.Security.Authorizer = "acl"
	cfg.Security.SuperUsers = "User:" + adminUser
	return cfg
}

// securedBroker is a running secured broker and how to reach it as admin.
type securedBroker struct {
	*runningBroker
	dir       string
	ca        *certstest.CA
	adminPass string // file holding adminPassword
}

// startSecuredBroker makes the first administrator the way the docs say,
// with `vigil users add --data-dir` before the broker's first start, then
// starts the broker.
func startSecuredBroker(t *testing.T) *securedBroker {
	t.Helper()
	dir := t.TempDir()
	sb := &securedBroker{dir: dir, ca: certstest.NewCA(t, "test-ca"), adminPass: writeFile(t, "admin.pass", adminPassword+"\n")}
	run(t, nil, adminPassword+"\n", "users", "add", adminUser, "--password-stdin", "--data-dir", dir).must(t)
	sb.runningBroker = runBroker(t, securedConfig(t, dir, sb.ca))
	return sb
}

// adminEnv is the environment that makes every command authenticate as
// admin over SASL_PLAINTEXT.
func (sb *securedBroker) adminEnv() map[string]string {
	return sb.userEnv(adminUser, sb.adminPass)
}

// userEnv authenticates as user with the password in passFile.
func (sb *securedBroker) userEnv(user, passFile string) map[string]string {
	return map[string]string{
		"VIGIL_BROKERS":            sb.addr(config.SASLPlaintext),
		"VIGIL_SECURITY_PROTOCOL":  "SASL_PLAINTEXT",
		"VIGIL_SASL_MECHANISM":     "SCRAM-SHA-512",
		"VIGIL_SASL_USERNAME":      user,
		"VIGIL_SASL_PASSWORD_FILE": passFile,
	}
}

// scramClient is a franz-go client authenticated with SCRAM-SHA-512.
func scramClient(t *testing.T, addr, user, password string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return client(t, addr, append([]kgo.Opt{kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha512Mechanism())}, opts...)...)
}

// authErr is the error of one Metadata request as user; nil when the
// broker accepted the credentials.
func authErr(addr string, m sasl.Mechanism) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.SASL(m), kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	return err
}

func scram512(user, password string) sasl.Mechanism {
	return scram.Auth{User: user, Pass: password}.AsSha512Mechanism()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// brokerFor is startBroker unless externalEnv names another cluster.
func brokerFor(t *testing.T) string {
	if addr := os.Getenv(externalEnv); addr != "" {
		return addr
	}
	return startBroker(t)
}

// result is one finished command.
type result struct {
	code   int
	stdout string
	stderr string
	args   []string
}

// cli runs `vigil ARGS...` with VIGIL_BROKERS set to addr, exactly as the
// binary would, and returns what it printed.
func cli(t *testing.T, addr string, args ...string) result {
	t.Helper()
	return run(t, map[string]string{"VIGIL_BROKERS": addr}, "", args...)
}

// run runs `vigil ARGS...` with only env as its environment and stdin as
// its standard input.
func run(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := admincli.Main(ctx, args, admincli.Env{
		Stdin:  strings.NewReader(stdin),
		Stdout: &out,
		Stderr: &errOut,
		Getenv: func(k string) string { return env[k] },
	})
	r := result{code: code, stdout: out.String(), stderr: errOut.String(), args: args}
	t.Logf("vigil %s -> %d\nstdout:\n%sstderr:\n%s", strings.Join(args, " "), code, r.stdout, r.stderr)
	return r
}

// mustCLI runs a command that has to succeed.
func mustCLI(t *testing.T, addr string, args ...string) result {
	t.Helper()
	return cli(t, addr, args...).must(t)
}

// must fails the test unless the command succeeded.
func (r result) must(t *testing.T) result {
	t.Helper()
	if r.code != admincli.ExitOK {
		t.Fatalf("vigil %s: exit %d, stderr: %s", strings.Join(r.args, " "), r.code, r.stderr)
	}
	return r
}

func wantCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
}

// decode parses a command's --json output into v.
func decode(t *testing.T, r result, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, r.stdout)
	}
}

// hasRow reports whether the table has a line whose whitespace-separated
// cells start with cells (tabwriter pads with spaces, so exact widths are
// not part of the contract).
func hasRow(table string, cells ...string) bool {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) < len(cells) {
			continue
		}
		match := true
		for i, c := range cells {
			if f[i] != c {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

func wantRow(t *testing.T, r result, cells ...string) {
	t.Helper()
	if !hasRow(r.stdout, cells...) {
		t.Errorf("no row %q in:\n%s", cells, r.stdout)
	}
}

func wantNoRow(t *testing.T, r result, cells ...string) {
	t.Helper()
	if hasRow(r.stdout, cells...) {
		t.Errorf("unexpected row %q in:\n%s", cells, r.stdout)
	}
}

func wantMatch(t *testing.T, what, s, pattern string) {
	t.Helper()
	if !regexp.MustCompile(pattern).MatchString(s) {
		t.Errorf("%s does not match %q:\n%s", what, pattern, s)
	}
}

func client(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.DisableIdempotentWrite(), // Vigil has no idempotent producers yet
		kgo.RetryTimeout(20 * time.Second),
	}, opts...)...)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
