// Package clientsec is the client side of a Kafka listener's security
// protocol for Vigil's own clients (vigil detect, ingest, topics, groups,
// acls, users, bench): the flags and VIGIL_* variables every command
// takes, turned into franz-go's TLS dialer and SASL mechanism.
package clientsec

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Config is how a client connects: the listener's security protocol and
// what it needs to pass it.
type Config struct {
	Protocol  string // PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
	Mechanism string // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER
	Username  string
	// The password comes from PasswordFile (first line), else from
	// Password (VIGIL_SASL_PASSWORD only: a flag would show in ps).
	PasswordFile string
	Password     string
	// TokenFile holds an OAUTHBEARER JWT; it is reread for every
	// authentication, so a token refreshed on disk is used on the next one.
	TokenFile string
	// TLS: the CA bundle the brokers' certificates are verified against
	// (empty: the system's), a client certificate and key for mTLS, and
	// the name to verify (empty: the host dialed).
	CA, Cert, Key string
	ServerName    string
}

// Register adds the flags to fs with their defaults from the environment
// (VIGIL_SECURITY_PROTOCOL, VIGIL_SASL_MECHANISM, VIGIL_SASL_USERNAME,
// VIGIL_SASL_PASSWORD_FILE, VIGIL_SASL_PASSWORD, VIGIL_SASL_TOKEN_FILE,
// VIGIL_TLS_CA, VIGIL_TLS_CERT, VIGIL_TLS_KEY, VIGIL_TLS_SERVER_NAME).
func Register(fs *flag.FlagSet, getenv func(string) string) *Config {
	c := &Config{Password: getenv("VIGIL_SASL_PASSWORD")}
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&c.Protocol, "security-protocol", env("VIGIL_SECURITY_PROTOCOL", "PLAINTEXT"), "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (env VIGIL_SECURITY_PROTOCOL)")
	fs.StringVar(&c.Mechanism, "sasl-mechanism", env("VIGIL_SASL_MECHANISM", "SCRAM-SHA-512"), "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (env VIGIL_SASL_MECHANISM)")
	fs.StringVar(&c.Username, "sasl-username", env("VIGIL_SASL_USERNAME", ""), "SASL user name (env VIGIL_SASL_USERNAME)")
	fs.StringVar(&c.PasswordFile, "sasl-password-file", env("VIGIL_SASL_PASSWORD_FILE", ""), "file whose first line is the SASL password (env VIGIL_SASL_PASSWORD_FILE; or the password itself in VIGIL_SASL_PASSWORD)")
	fs.StringVar(&c.TokenFile, "sasl-token-file", env("VIGIL_SASL_TOKEN_FILE", ""), "OAUTHBEARER: file holding the JWT, reread at each authentication (env VIGIL_SASL_TOKEN_FILE)")
	fs.StringVar(&c.CA, "tls-ca", env("VIGIL_TLS_CA", ""), "PEM CA bundle the brokers' certificates are verified against (default: the system's; env VIGIL_TLS_CA)")
	fs.StringVar(&c.Cert, "tls-cert", env("VIGIL_TLS_CERT", ""), "PEM client certificate for mTLS (env VIGIL_TLS_CERT)")
	fs.StringVar(&c.Key, "tls-key", env("VIGIL_TLS_KEY", ""), "PEM private key of --tls-cert (env VIGIL_TLS_KEY)")
	fs.StringVar(&c.ServerName, "tls-server-name", env("VIGIL_TLS_SERVER_NAME", ""), "name the brokers' certificates must carry (default: the host dialed; env VIGIL_TLS_SERVER_NAME)")
	return c
}

// TLS reports whether the protocol speaks TLS.
func (c *Config) TLS() bool { return c.Protocol == "SSL" || c.Protocol == "SASL_SSL" }

// SASL reports whether the protocol authenticates with SASL.
func (c *Config) SASL() bool { return c.Protocol == "SASL_PLAINTEXT" || c.Protocol == "SASL_SSL" }

// Validate checks the settings against each other without reading any
// file: a known protocol and mechanism, what the mechanism needs, and no
// TLS or SASL setting the protocol would silently ignore (a client that
// meant to authenticate must not connect as ANONYMOUS instead). Its errors
// are mistakes on the command line; Opts' others are files that cannot
// be read.
func (c *Config) Validate() error {
	c.Protocol = strings.ToUpper(strings.TrimSpace(c.Protocol))
	c.Mechanism = strings.ToUpper(strings.TrimSpace(c.Mechanism))
	switch c.Protocol {
	case "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL":
	default:
		return fmt.Errorf("--security-protocol %q: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", c.Protocol)
	}
	if !c.TLS() {
		for _, s := range []struct{ flag, value string }{{"tls-ca", c.CA}, {"tls-cert", c.Cert}, {"tls-key", c.Key}, {"tls-server-name", c.ServerName}} {
			if s.value != "" {
				return fmt.Errorf("--%s with --security-protocol %s, which does not use TLS (want SSL or SASL_SSL)", s.flag, c.Protocol)
			}
		}
	} else if (c.Cert == "") != (c.Key == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if !c.SASL() {
		for _, s := range []struct{ flag, value string }{{"sasl-username", c.Username}, {"sasl-password-file", c.PasswordFile}, {"sasl-token-file", c.TokenFile}} {
			if s.value != "" {
				return fmt.Errorf("--%s with --security-protocol %s, which does not use SASL (want SASL_PLAINTEXT or SASL_SSL)", s.flag, c.Protocol)
			}
		}
		return nil
	}
	switch c.Mechanism {
	case "OAUTHBEARER":
		if c.TokenFile == "" {
			return errors.New("--sasl-mechanism OAUTHBEARER needs --sasl-token-file")
		}
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.Username == "" {
			return fmt.Errorf("--sasl-mechanism %s needs --sasl-username", c.Mechanism)
		}
		if c.PasswordFile == "" && c.Password == "" {
			return errors.New("a SASL password is needed: --sasl-password-file FILE or VIGIL_SASL_PASSWORD")
		}
	default:
		return fmt.Errorf("--sasl-mechanism %q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", c.Mechanism)
	}
	return nil
}

// Opts turns the configuration into franz-go client options, after
// Validate; the error says which setting or file is wrong.
func (c *Config) Opts() ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var opts []kgo.Opt
	if c.TLS() {
		tc, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if c.SASL() {
		m, err := c.mechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

func (c *Config) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CA != "" {
		raw, err := os.ReadFile(c.CA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(raw) {
			return nil, fmt.Errorf("--tls-ca %s holds no PEM certificate", c.CA)
		}
		tc.RootCAs = pool
	}
	if c.Cert != "" {
		cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// mechanism builds the SASL mechanism of a validated configuration.
func (c *Config) mechanism() (sasl.Mechanism, error) {
	if c.Mechanism == "OAUTHBEARER" {
		file := c.TokenFile
		// Read once now, so a wrong path fails the command rather than
		// every connection attempt.
		if _, err := os.ReadFile(file); err != nil {
			return nil, fmt.Errorf("--sasl-token-file: %w", err)
		}
		return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
			raw, err := os.ReadFile(file)
			if err != nil {
				return oauth.Auth{}, fmt.Errorf("read --sasl-token-file: %w", err)
			}
			return oauth.Auth{Token: strings.TrimSpace(string(raw))}, nil
		}), nil
	}
	pass, err := c.password()
	if err != nil {
		return nil, err
	}
	switch c.Mechanism {
	case "PLAIN":
		return plain.Auth{User: c.Username, Pass: pass}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: c.Username, Pass: pass}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: c.Username, Pass: pass}.AsSha512Mechanism(), nil
	default:
		return nil, fmt.Errorf("--sasl-mechanism %q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", c.Mechanism)
	}
}

// password reads the first line of PasswordFile, or takes Password.
func (c *Config) password() (string, error) {
	if c.PasswordFile == "" {
		if c.Password == "" {
			return "", errors.New("a SASL password is needed: --sasl-password-file FILE or VIGIL_SASL_PASSWORD")
		}
		return c.Password, nil
	}
	raw, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("--sasl-password-file: %w", err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return "", fmt.Errorf("--sasl-password-file %s: the first line is empty", c.PasswordFile)
	}
	return line, nil
}
