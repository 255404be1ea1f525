package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/vigilhq/vigil/internal/principal"
)

// Security protocols of a listener, as Kafka names them.
const (
	Plaintext     = "PLAINTEXT"
	SSL           = "SSL"
	SASLPlaintext = "SASL_PLAINTEXT"
	SASLSSL       = "SASL_SSL"
)

// Listener is one address the broker accepts Kafka clients on, with its
// security protocol.
type Listener struct {
	Protocol   string // Plaintext, SSL, SASLPlaintext or SASLSSL
	Addr       string // host:port bound
	Advertised string // host:port Metadata gives the clients of this listener
}

// TLS reports whether the listener speaks TLS.
func (l Listener) TLS() bool { return l.Protocol == SSL || l.Protocol == SASLSSL }

// SASL reports whether clients must authenticate with SASL first.
func (l Listener) SASL() bool { return l.Protocol == SASLPlaintext || l.Protocol == SASLSSL }

// String is the listener as --listen spells it.
func (l Listener) String() string { return l.Protocol + "://" + l.Addr }

// splitListener reads PROTOCOL://host:port, or a bare host:port as
// PLAINTEXT (how --listen was written before it took protocols).
func splitListener(s string) (protocol, addr string, err error) {
	protocol, addr = Plaintext, s
	if p, a, ok := strings.Cut(s, "://"); ok {
		protocol, addr = strings.ToUpper(p), a
	}
	switch protocol {
	case Plaintext, SSL, SASLPlaintext, SASLSSL:
	default:
		return "", "", fmt.Errorf("unknown security protocol %q (want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)", protocol)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", "", fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return protocol, addr, nil
}

// ParseListeners pairs --listen with --advertised (empty: each listener
// advertises its own address). Each protocol appears once: a client's
// listener is found by protocol on every broker of a cluster, as Kafka
// finds it by listener name.
func ParseListeners(listen, advertised string) ([]Listener, error) {
	var out []Listener
	seen := map[string]bool{}
	for _, s := range splitList(listen) {
		p, a, err := splitListener(s)
		if err != nil {
			return nil, fmt.Errorf("--listen %q: %w", s, err)
		}
		if seen[p] {
			return nil, fmt.Errorf("--listen %q: a second %s listener (each protocol once)", listen, p)
		}
		seen[p] = true
		out = append(out, Listener{Protocol: p, Addr: a, Advertised: a})
	}
	if len(out) == 0 {
		return nil, errors.New("--listen: at least one listener is needed")
	}
	adv := splitList(advertised)
	if len(adv) == 0 {
		return out, nil
	}
	if len(adv) != len(out) {
		return nil, fmt.Errorf("--advertised %q: %d addresses for %d listeners (give one per --listen entry, in its order)", advertised, len(adv), len(out))
	}
	for i, s := range adv {
		p, a, err := splitListener(s)
		if err != nil {
			return nil, fmt.Errorf("--advertised %q: %w", s, err)
		}
		if strings.Contains(s, "://") && p != out[i].Protocol {
			return nil, fmt.Errorf("--advertised %q: protocol %s where --listen has %s", s, p, out[i].Protocol)
		}
		if _, port, _ := net.SplitHostPort(a); port == "0" && !strings.HasSuffix(out[i].Addr, ":0") {
			return nil, fmt.Errorf("--advertised %q: port 0", s)
		}
		out[i].Advertised = a
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Mechanisms is --sasl-mechanisms as a list.
func (s Security) Mechanisms() []string { return splitList(s.SASLMechanisms) }

// SuperUserList is --super-users as a list.
func (s Security) SuperUserList() []string {
	var out []string
	for _, p := range strings.Split(s.SuperUsers, ";") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ClientAuth is --tls-client-auth with its default applied.
func (s Security) ClientAuth() string {
	if s.TLSClientAuth == "" {
		if s.TLSClientCA != "" {
			return "required"
		}
		return "none"
	}
	return s.TLSClientAuth
}

// check validates the security settings against the listeners that use
// them.
func (s Security) check(ls []Listener, adminTLS bool) []error {
	var errs []error
	var tls, sasl bool
	for _, l := range ls {
		tls = tls || l.TLS()
		sasl = sasl || l.SASL()
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	if (tls || adminTLS) && s.TLSCert == "" {
		errs = append(errs, errors.New("an SSL or SASL_SSL listener, and --admin-tls, need --tls-cert and --tls-key"))
	}
	switch s.ClientAuth() {
	case "none":
	case "requested", "required":
		if s.TLSClientCA == "" {
			errs = append(errs, fmt.Errorf("--tls-client-auth %s needs --tls-client-ca", s.TLSClientAuth))
		}
	default:
		errs = append(errs, fmt.Errorf("--tls-client-auth %q: want none, requested or required", s.TLSClientAuth))
	}
	if s.TLSClientCA != "" && !tls {
		errs = append(errs, errors.New("--tls-client-ca without an SSL or SASL_SSL listener"))
	}
	mechs := s.Mechanisms()
	for _, m := range mechs {
		switch m {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER":
		default:
			errs = append(errs, fmt.Errorf("--sasl-mechanisms: unknown mechanism %q (want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)", m))
		}
		if m == "OAUTHBEARER" && s.OAuthJWKS == "" {
			errs = append(errs, errors.New("--sasl-mechanisms OAUTHBEARER needs --sasl-oauthbearer-jwks"))
		}
	}
	if sasl && len(mechs) == 0 {
		errs = append(errs, errors.New("a SASL listener needs at least one --sasl-mechanisms"))
	}
	if s.ConnectionsMaxReauth < 0 {
		errs = append(errs, fmt.Errorf("--connections-max-reauth %s: must not be negative", s.ConnectionsMaxReauth))
	}
	if _, err := principal.ParseSSLRules(s.SSLPrincipalMappingRules); err != nil {
		errs = append(errs, fmt.Errorf("--ssl-principal-mapping-rules: %w", err))
	}
	if s.InterBrokerProtocol != "" {
		found := false
		for _, l := range ls {
			found = found || l.Protocol == strings.ToUpper(s.InterBrokerProtocol)
		}
		if !found {
			errs = append(errs, fmt.Errorf("--inter-broker-protocol %s: no --listen entry has that protocol", s.InterBrokerProtocol))
		}
	}
	if (s.InterBrokerUsername == "") != (s.InterBrokerPasswordFile == "") {
		errs = append(errs, errors.New("--inter-broker-sasl-username and --inter-broker-sasl-password-file go together"))
	}
	if s.AuditRate < 1 || s.AuditBurst < 1 {
		errs = append(errs, fmt.Errorf("--audit-rate %d and --audit-burst %d: must be positive", s.AuditRate, s.AuditBurst))
	}
	switch s.Authorizer {
	case "none", "acl":
	default:
		errs = append(errs, fmt.Errorf("--authorizer %q: want none or acl", s.Authorizer))
	}
	for _, p := range s.SuperUserList() {
		if typ, name, ok := strings.Cut(p, ":"); !ok || typ == "" || name == "" {
			errs = append(errs, fmt.Errorf("--super-users: %q is not a principal like User:admin", p))
		}
	}
	return errs
}

// InterBroker is the protocol brokers connect to each other over.
func (c Broker) InterBroker() string {
	if c.Security.InterBrokerProtocol != "" {
		return strings.ToUpper(c.Security.InterBrokerProtocol)
	}
	if len(c.Listeners) > 0 {
		return c.Listeners[0].Protocol
	}
	return Plaintext
}
