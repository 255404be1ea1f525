package admincli_test

import (
	"crypto/x509/pkix"
	"strings"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/admincli"
	"github.com/vigilhq/vigil/internal/certs/certstest"
	"github.com/vigilhq/vigil/internal/config"
)

// TestSASLClientFlags runs the topic commands against the SASL listeners
// with the client security flags on the command line, and checks what an
// operator sees when they do not match the listener.
func TestSASLClientFlags(t *testing.T) {
	sb := startSecuredBroker(t)
	saslAddr := sb.addr(config.SASLPlaintext)
	asAdmin := []string{"--brokers", saslAddr, "--security-protocol", "SASL_PLAINTEXT",
		"--sasl-username", adminUser, "--sasl-password-file", sb.adminPass}

	r := run(t, nil, "", append([]string{"topics", "create", "audit", "--partitions", "2"}, asAdmin...)...).must(t)
	wantRow(t, r, "audit", "2", "1", "created")
	r = run(t, nil, "", append([]string{"topics", "list"}, asAdmin...)...).must(t)
	wantRow(t, r, "audit", "2", "1")
	// SCRAM-SHA-256 is not among admin's mechanisms; PLAIN checks the
	// same credential.
	run(t, nil, "", append([]string{"groups", "list", "--sasl-mechanism", "PLAIN"}, asAdmin...)...).must(t)
	run(t, nil, "", append([]string{"cluster", "status"}, asAdmin...)...).must(t)

	// The same over SASL_SSL, verifying the broker's certificate.
	r = run(t, nil, "", "topics", "list", "--brokers", sb.addr(config.SASLSSL), "--security-protocol", "sasl_ssl",
		"--tls-ca", sb.ca.File, "--sasl-username", adminUser, "--sasl-password-file", sb.adminPass).must(t)
	wantRow(t, r, "audit", "2", "1")
	// And with the password in VIGIL_SASL_PASSWORD instead of a file.
	run(t, map[string]string{"VIGIL_SASL_PASSWORD": adminPassword}, "", "topics", "list", "--brokers", saslAddr,
		"--security-protocol", "SASL_PLAINTEXT", "--sasl-username", adminUser).must(t)

	wrong := writeFile(t, "wrong", "guess\n")
	start := time.Now()
	r = run(t, nil, "", "topics", "list", "--brokers", saslAddr, "--security-protocol", "SASL_PLAINTEXT",
		"--sasl-username", adminUser, "--sasl-password-file", wrong)
	wantCode(t, r, admincli.ExitFailed)
	wantMatch(t, "stderr", r.stderr, `refused the SASL credentials.*SASL_AUTHENTICATION_FAILED`)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a wrong password took %s to report", d)
	}

	// PLAINTEXT against the SASL listener: the broker closes the
	// connection; the message points at --security-protocol.
	r = run(t, nil, "", "topics", "list", "--brokers", saslAddr, "--timeout", "5s")
	wantCode(t, r, admincli.ExitFailed)
	wantMatch(t, "stderr", r.stderr, `does --security-protocol PLAINTEXT match the listener\?`)
	// SASL_SSL without the CA: the certificate cannot be verified.
	r = run(t, nil, "", "topics", "list", "--brokers", sb.addr(config.SASLSSL), "--security-protocol", "SASL_SSL",
		"--sasl-username", adminUser, "--sasl-password-file", sb.adminPass, "--timeout", "5s")
	wantCode(t, r, admincli.ExitFailed)
	wantMatch(t, "stderr", r.stderr, `certificate`)

	// ANONYMOUS on the PLAINTEXT listener may not describe the cluster's
	// ACLs.
	r = cli(t, sb.addr(config.Plaintext), "acls", "list")
	wantCode(t, r, admincli.ExitFailed)
	wantMatch(t, "stderr", r.stderr, `CLUSTER_AUTHORIZATION_FAILED`)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--security-protocol", "KERBEROS"}, `--security-protocol "KERBEROS": want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL`},
		{[]string{"--sasl-username", "admin"}, `--sasl-username with --security-protocol PLAINTEXT, which does not use SASL`},
		{[]string{"--tls-ca", sb.ca.File}, `--tls-ca with --security-protocol PLAINTEXT, which does not use TLS`},
		{[]string{"--security-protocol", "SASL_PLAINTEXT", "--sasl-password-file", sb.adminPass}, `needs --sasl-username`},
		{[]string{"--security-protocol", "SASL_PLAINTEXT", "--sasl-username", "admin"}, `a SASL password is needed`},
		{[]string{"--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "GSSAPI", "--sasl-username", "a"}, `--sasl-mechanism "GSSAPI"`},
		{[]string{"--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "OAUTHBEARER"}, `needs --sasl-token-file`},
		{[]string{"--security-protocol", "SSL", "--tls-cert", sb.ca.File}, `--tls-cert and --tls-key go together`},
	} {
		r := run(t, nil, "", append([]string{"topics", "list", "--brokers", saslAddr}, tc.args...)...)
		if r.code != admincli.ExitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("topics list %s: exit %d, want %d with %q:\n%s", strings.Join(tc.args, " "), r.code, admincli.ExitUsage, tc.want, r.stderr)
		}
	}
	// A password file that cannot be read fails the command, not its usage.
	r = run(t, nil, "", "topics", "list", "--brokers", saslAddr, "--security-protocol", "SASL_PLAINTEXT",
		"--sasl-username", "admin", "--sasl-password-file", sb.dir+"/no-such-file")
	wantCode(t, r, admincli.ExitFailed)
	wantMatch(t, "stderr", r.stderr, `--sasl-password-file: open .*no-such-file`)
}

// TestMutualTLSClientFlags: an SSL listener that requires client
// certificates, with the certificate's subject as the principal.
func TestMutualTLSClientFlags(t *testing.T) {
	ca := certstest.NewCA(t, "test-ca")
	pair := ca.Server("broker")
	cfg := brokerConfig(t, t.TempDir())
	cfg.Listen, cfg.Advertised = "SSL://127.0.0.1:0", ""
	cfg.Security.TLSCert, cfg.Security.TLSKey = pair.Cert, pair.Key
	cfg.Security.TLSClientCA = ca.File
	cfg.Security.Authorizer = "acl"
	cfg.Security.SuperUsers = "User:CN=ops"
	b := runBroker(t, cfg)
	addr := b.addr(config.SSL)
	ops := ca.Client(pkix.Name{CommonName: "ops"})
	guest := ca.Client(pkix.Name{CommonName: "guest"})
	tlsFlags := func(p *certstest.Pair) []string {
		args := []string{"--brokers", addr, "--security-protocol", "SSL", "--tls-ca", ca.File, "--timeout", "10s"}
		if p != nil {
			args = append(args, "--tls-cert", p.Cert, "--tls-key", p.Key)
		}
		return args
	}

	r := run(t, nil, "", append([]string{"topics", "create", "audit"}, tlsFlags(&ops)...)...).must(t)
	wantRow(t, r, "audit", "1", "1", "created")
	run(t, nil, "", append([]string{"acls", "add", "--allow-principal", "User:CN=guest", "--operation", "Describe", "--topic", "audit"}, tlsFlags(&ops)...)...).must(t)
	r = run(t, nil, "", append([]string{"acls", "list"}, tlsFlags(&ops)...)...).must(t)
	wantRow(t, r, "TOPIC", "audit", "LITERAL", "User:CN=guest", "*", "DESCRIBE", "ALLOW")

	// Another principal: authenticated by its certificate, refused by the
	// authorizer.
	r = run(t, nil, "", append([]string{"acls", "list"}, tlsFlags(&guest)...)...)
	wantCode(t, r, admincli.ExitFailed)
	wantMatch(t, "stderr", r.stderr, `CLUSTER_AUTHORIZATION_FAILED`)
	// No certificate: the handshake fails.
	r = run(t, nil, "", append([]string{"topics", "list"}, tlsFlags(nil)...)...)
	wantCode(t, r, admincli.ExitFailed)
	wantMatch(t, "stderr", r.stderr, `certificate`)
}
