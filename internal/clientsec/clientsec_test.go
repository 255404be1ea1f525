package clientsec

import (
	"crypto/x509/pkix"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilhq/vigil/internal/certs/certstest"
)

func parse(t *testing.T, env map[string]string, args ...string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := Register(fs, func(k string) string { return env[k] })
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return c, c.Validate()
}

func write(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsAndEnvironment(t *testing.T) {
	c, err := parse(t, nil)
	if err != nil || c.Protocol != "PLAINTEXT" || c.Mechanism != "SCRAM-SHA-512" || c.TLS() || c.SASL() {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	if opts, err := c.Opts(); err != nil || len(opts) != 0 {
		t.Errorf("PLAINTEXT gives %d options, %v; want none", len(opts), err)
	}

	env := map[string]string{"VIGIL_SECURITY_PROTOCOL": "sasl_plaintext", "VIGIL_SASL_MECHANISM": "scram-sha-256",
		"VIGIL_SASL_USERNAME": "env-user", "VIGIL_SASL_PASSWORD": "env-pass"}
	c, err = parse(t, env)
	if err != nil || c.Protocol != "SASL_PLAINTEXT" || c.Mechanism != "SCRAM-SHA-256" || c.Username != "env-user" || c.Password != "env-pass" {
		t.Fatalf("from the environment: %+v, %v", c, err)
	}
	// A flag wins over its variable; a password file over VIGIL_SASL_PASSWORD.
	c, err = parse(t, env, "--sasl-username", "flag-user", "--sasl-password-file", write(t, "file-pass\nsecond\n"))
	if err != nil || c.Username != "flag-user" {
		t.Fatalf("flags over the environment: %+v, %v", c, err)
	}
	if p, err := c.password(); err != nil || p != "file-pass" {
		t.Errorf("password %q, %v; want the file's first line", p, err)
	}
	if opts, err := c.Opts(); err != nil || len(opts) != 1 {
		t.Errorf("SASL_PLAINTEXT: %d options, %v; want the SASL one", len(opts), err)
	}
}

func TestPasswordFile(t *testing.T) {
	for content, want := range map[string]string{
		"secret\n":          "secret",
		"secret\r\nnext\n":  "secret",
		"secret":            "secret",
		" spaced secret \n": " spaced secret ",
	} {
		c := &Config{PasswordFile: write(t, content)}
		if got, err := c.password(); err != nil || got != want {
			t.Errorf("file %q: %q, %v; want %q", content, got, err, want)
		}
	}
	c := &Config{PasswordFile: write(t, "\nsecret\n")}
	if _, err := c.password(); err == nil || !strings.Contains(err.Error(), "first line is empty") {
		t.Errorf("an empty first line: %v", err)
	}
	c = &Config{PasswordFile: filepath.Join(t.TempDir(), "missing")}
	if _, err := c.password(); err == nil || !strings.Contains(err.Error(), "--sasl-password-file") {
		t.Errorf("a missing file: %v", err)
	}
}

func TestValidate(t *testing.T) {
	pass := write(t, "secret\n")
	for _, tc := range []struct {
		args []string
		want string // "" for valid
	}{
		{[]string{"--security-protocol", "ssl"}, ""},
		{[]string{"--security-protocol", "SASL_SSL", "--sasl-username", "u", "--sasl-password-file", pass, "--tls-server-name", "kafka"}, ""},
		{[]string{"--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "oauthbearer", "--sasl-token-file", pass}, ""},
		{[]string{"--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "plain", "--sasl-username", "u", "--sasl-password-file", pass}, ""},
		{[]string{"--security-protocol", "TLS"}, `--security-protocol "TLS"`},
		{[]string{"--sasl-username", "u"}, "--sasl-username with --security-protocol PLAINTEXT, which does not use SASL"},
		{[]string{"--security-protocol", "SSL", "--sasl-password-file", pass}, "--sasl-password-file with --security-protocol SSL"},
		{[]string{"--sasl-token-file", pass}, "--sasl-token-file with --security-protocol PLAINTEXT"},
		{[]string{"--tls-ca", pass}, "--tls-ca with --security-protocol PLAINTEXT, which does not use TLS"},
		{[]string{"--security-protocol", "SASL_PLAINTEXT", "--tls-server-name", "k", "--sasl-username", "u", "--sasl-password-file", pass}, "--tls-server-name with"},
		{[]string{"--security-protocol", "SSL", "--tls-key", pass}, "--tls-cert and --tls-key go together"},
		{[]string{"--security-protocol", "SASL_SSL", "--sasl-password-file", pass}, "--sasl-mechanism SCRAM-SHA-512 needs --sasl-username"},
		{[]string{"--security-protocol", "SASL_SSL", "--sasl-username", "u"}, "a SASL password is needed"},
		{[]string{"--security-protocol", "SASL_SSL", "--sasl-mechanism", "OAUTHBEARER"}, "needs --sasl-token-file"},
		{[]string{"--security-protocol", "SASL_SSL", "--sasl-mechanism", "SCRAM-SHA-1", "--sasl-username", "u"}, `--sasl-mechanism "SCRAM-SHA-1"`},
	} {
		_, err := parse(t, nil, tc.args...)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestTLSFiles(t *testing.T) {
	ca := certstest.NewCA(t, "ca")
	pair := ca.Client(pkixName("ops"))
	c, err := parse(t, nil, "--security-protocol", "SSL", "--tls-ca", ca.File, "--tls-cert", pair.Cert, "--tls-key", pair.Key, "--tls-server-name", "kafka-1")
	if err != nil {
		t.Fatal(err)
	}
	tc, err := c.tlsConfig()
	if err != nil || tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.ServerName != "kafka-1" || tc.MinVersion == 0 {
		t.Fatalf("tls config %+v, %v", tc, err)
	}
	for name, args := range map[string][]string{
		"holds no PEM certificate": {"--tls-ca", write(t, "not a certificate")},
		"--tls-ca: open":           {"--tls-ca", filepath.Join(t.TempDir(), "missing")},
		"--tls-cert/--tls-key":     {"--tls-cert", pair.Cert, "--tls-key", pair.Cert},
	} {
		c, err := parse(t, nil, append([]string{"--security-protocol", "SSL"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Opts(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%q: %v, want %q", args, err, name)
		}
	}
	c, _ = parse(t, nil, "--security-protocol", "SASL_SSL", "--sasl-mechanism", "OAUTHBEARER", "--sasl-token-file", filepath.Join(t.TempDir(), "missing"))
	if _, err := c.Opts(); err == nil || !strings.Contains(err.Error(), "--sasl-token-file") {
		t.Errorf("a missing token file: %v", err)
	}
}

func pkixName(cn string) pkix.Name { return pkix.Name{CommonName: cn} }

// TestPrefixed: a second cluster's flags (vigil mirror verify's source)
// sit beside the first's with their own names, variables and errors.
func TestPrefixed(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	env := map[string]string{"VIGIL_SOURCE_SECURITY_PROTOCOL": "SASL_SSL", "VIGIL_SOURCE_SASL_USERNAME": "mirror",
		"VIGIL_SOURCE_SASL_PASSWORD": "source-pass", "VIGIL_SASL_PASSWORD": "dest-pass"}
	getenv := func(k string) string { return env[k] }
	src := RegisterPrefixed(fs, getenv, "source-", "VIGIL_SOURCE_")
	dst := Register(fs, getenv)
	if err := fs.Parse([]string{"--source-sasl-mechanism", "PLAIN", "--tls-ca", "/ca.pem"}); err != nil {
		t.Fatal(err)
	}
	if src.Protocol != "SASL_SSL" || src.Mechanism != "PLAIN" || src.Username != "mirror" || src.Password != "source-pass" || src.CA != "" {
		t.Errorf("source: %+v", src)
	}
	if dst.Protocol != "PLAINTEXT" || dst.Password != "dest-pass" || dst.CA != "/ca.pem" {
		t.Errorf("destination: %+v", dst)
	}
	if err := src.Validate(); err != nil {
		t.Errorf("source: %v", err)
	}
	if err := dst.Validate(); err == nil || err.Error() != "--tls-ca with --security-protocol PLAINTEXT, which does not use TLS (want SSL or SASL_SSL)" {
		t.Errorf("destination: %v", err)
	}
	src.Username = ""
	if err := src.Validate(); err == nil || err.Error() != "--source-sasl-mechanism PLAIN needs --source-sasl-username" {
		t.Errorf("source without a user: %v", err)
	}
	src.Username, src.Password = "mirror", ""
	if err := src.Validate(); err == nil || !strings.Contains(err.Error(), "--source-sasl-password-file FILE or VIGIL_SOURCE_SASL_PASSWORD") {
		t.Errorf("source without a password: %v", err)
	}
	if f := fs.Lookup("source-tls-key"); f == nil || !strings.Contains(f.Usage, "--source-tls-cert") || !strings.Contains(f.Usage, "VIGIL_SOURCE_TLS_KEY") {
		t.Errorf("--source-tls-key's usage: %+v", f)
	}
}
