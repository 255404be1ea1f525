// Package clientsec is the client side of a Kafka listener's security
// protocol for Vigil's own clients (vigil detect, ingest, topics, groups,
// acls, users, bench): the flags and VIGIL_* variables every command
// takes, turned into franz-go's TLS dialer and SASL mechanism. A command
// that reaches a second cluster (vigil mirror verify's source) takes a
// second set under a prefix (RegisterPrefixed).
package clientsec

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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

	// prefix and envPrefix are RegisterPrefixed's, so errors name the
	// flags the user typed; empty for Register's and literal Configs.
	prefix, envPrefix string
}

// Register adds the flags to fs with their defaults from the environment
// (VIGIL_SECURITY_PROTOCOL, VIGIL_SASL_MECHANISM, VIGIL_SASL_USERNAME,
// VIGIL_SASL_PASSWORD_FILE, VIGIL_SASL_PASSWORD, VIGIL_SASL_TOKEN_FILE,
// VIGIL_TLS_CA, VIGIL_TLS_CERT, VIGIL_TLS_KEY, VIGIL_TLS_SERVER_NAME).
func Register(fs *flag.FlagSet, getenv func(string) string) *Config {
	return RegisterPrefixed(fs, getenv, "", "VIGIL_")
}

// RegisterPrefixed is Register for a command that talks to a second
// cluster with its own credentials (vigil mirror verify's source): every
// flag is named with prefix ("source-" gives --source-tls-ca) and
// defaults to its variable with envPrefix in place of VIGIL_
// ("VIGIL_SOURCE_" gives VIGIL_SOURCE_TLS_CA). Validate's and Opts'
// errors name the prefixed flags.
func RegisterPrefixed(fs *flag.FlagSet, getenv func(string) string, prefix, envPrefix string) *Config {
	c := &Config{Password: getenv(envPrefix + "SASL_PASSWORD"), prefix: prefix, envPrefix: envPrefix}
	str := func(p *string, name, def, usage string) {
		env := envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if v := getenv(env); v != "" {
			def = v
		}
		fs.StringVar(p, prefix+name, def, strings.ReplaceAll(usage, "ENV", env))
	}
	str(&c.Protocol, "security-protocol", "PLAINTEXT", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (env ENV)")
	str(&c.Mechanism, "sasl-mechanism", "SCRAM-SHA-512", "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (env ENV)")
	str(&c.Username, "sasl-username", "", "SASL user name (env ENV)")
	str(&c.PasswordFile, "sasl-password-file", "", "file whose first line is the SASL password (env ENV; or the password itself in "+envPrefix+"SASL_PASSWORD)")
	str(&c.TokenFile, "sasl-token-file", "", "OAUTHBEARER: file holding the JWT, reread at each authentication (env ENV)")
	str(&c.CA, "tls-ca", "", "PEM CA bundle the brokers' certificates are verified against (default: the system's; env ENV)")
	str(&c.Cert, "tls-cert", "", "PEM client certificate for mTLS (env ENV)")
	str(&c.Key, "tls-key", "", "PEM private key of --"+prefix+"tls-cert (env ENV)")
	str(&c.ServerName, "tls-server-name", "", "name the brokers' certificates must carry (default: the host dialed; env ENV)")
	return c
}

// flag is the command-line name of one of the settings: "--tls-ca", or
// "--source-tls-ca" for a Config of RegisterPrefixed.
func (c *Config) flag(name string) string { return "--" + c.prefix + name }

// passwordEnv is the variable that may hold the SASL password.
func (c *Config) passwordEnv() string {
	if c.envPrefix == "" {
		return "VIGIL_SASL_PASSWORD"
	}
	return c.envPrefix + "SASL_PASSWORD"
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
		return fmt.Errorf("%s %q: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", c.flag("security-protocol"), c.Protocol)
	}
	if !c.TLS() {
		for _, s := range []struct{ flag, value string }{{"tls-ca", c.CA}, {"tls-cert", c.Cert}, {"tls-key", c.Key}, {"tls-server-name", c.ServerName}} {
			if s.value != "" {
				return fmt.Errorf("%s with %s %s, which does not use TLS (want SSL or SASL_SSL)", c.flag(s.flag), c.flag("security-protocol"), c.Protocol)
			}
		}
	} else if (c.Cert == "") != (c.Key == "") {
		return fmt.Errorf("%s and %s go together", c.flag("tls-cert"), c.flag("tls-key"))
	}
	if !c.SASL() {
		for _, s := range []struct{ flag, value string }{{"sasl-username", c.Username}, {"sasl-password-file", c.PasswordFile}, {"sasl-token-file", c.TokenFile}} {
			if s.value != "" {
				return fmt.Errorf("%s with %s %s, which does not use SASL (want SASL_PLAINTEXT or SASL_SSL)", c.flag(s.flag), c.flag("security-protocol"), c.Protocol)
			}
		}
		return nil
	}
	switch c.Mechanism {
	case "OAUTHBEARER":
		if c.TokenFile == "" {
			return fmt.Errorf("%s OAUTHBEARER needs %s", c.flag("sasl-mechanism"), c.flag("sasl-token-file"))
		}
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.Username == "" {
			return fmt.Errorf("%s %s needs %s", c.flag("sasl-mechanism"), c.Mechanism, c.flag("sasl-username"))
		}
		if c.PasswordFile == "" && c.Password == "" {
			return fmt.Errorf("a SASL password is needed: %s FILE or %s", c.flag("sasl-password-file"), c.passwordEnv())
		}
	default:
		return fmt.Errorf("%s %q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", c.flag("sasl-mechanism"), c.Mechanism)
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
			return nil, fmt.Errorf("%s: %w", c.flag("tls-ca"), err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(raw) {
			return nil, fmt.Errorf("%s %s holds no PEM certificate", c.flag("tls-ca"), c.CA)
		}
		tc.RootCAs = pool
	}
	if c.Cert != "" {
		cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", c.flag("tls-cert"), c.flag("tls-key"), err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// mechanism builds the SASL mechanism of a validated configuration.
func (c *Config) mechanism() (sasl.Mechanism, error) {
	if c.Mechanism == "OAUTHBEARER" {
		file, flagName := c.TokenFile, c.flag("sasl-token-file")
		// Read once now, so a wrong path fails the command rather than
		// every connection attempt.
		if _, err := os.ReadFile(file); err != nil {
			return nil, fmt.Errorf("%s: %w", c.flag("sasl-token-file"), err)
		}
		return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
			raw, err := os.ReadFile(file)
			if err != nil {
				return oauth.Auth{}, fmt.Errorf("read %s: %w", flagName, err)
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
		return nil, fmt.Errorf("%s %q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", c.flag("sasl-mechanism"), c.Mechanism)
	}
}

// password reads the first line of PasswordFile, or takes Password.
func (c *Config) password() (string, error) {
	if c.PasswordFile == "" {
		if c.Password == "" {
			return "", fmt.Errorf("a SASL password is needed: %s FILE or %s", c.flag("sasl-password-file"), c.passwordEnv())
		}
		return c.Password, nil
	}
	raw, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("%s: %w", c.flag("sasl-password-file"), err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return "", fmt.Errorf("%s %s: the first line is empty", c.flag("sasl-password-file"), c.PasswordFile)
	}
	return line, nil
}
