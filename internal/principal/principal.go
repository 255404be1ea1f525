// Package principal names who is on the other end of a connection, as
// Kafka names it: "User:" and a name, from SASL, from a client
// certificate, or ANONYMOUS. Client certificate subjects become names
// through Kafka's ssl.principal.mapping.rules.
package principal

import (
	"crypto/x509"
	"fmt"
	"regexp"
	"strings"
)

// Anonymous is the principal of a connection that did not authenticate
// (PLAINTEXT, or SSL without a client certificate), as Kafka calls it.
const Anonymous = "User:ANONYMOUS"

// User is the principal of a user name.
func User(name string) string { return "User:" + name }

// SSLMapper applies ssl.principal.mapping.rules to certificate subjects.
type SSLMapper struct {
	rules []rule
}

type rule struct {
	deflt       bool
	pattern     *regexp.Regexp
	replacement string
	lower       bool
	upper       bool
}

// ParseSSLRules reads Kafka's rule list: comma-separated
// RULE:pattern/replacement/[L|U] entries and DEFAULT, tried in order; the
// first whose pattern matches the whole subject names the principal, and
// DEFAULT takes the subject as it is. "/" and "\" inside a pattern or
// replacement are escaped with "\". "" is DEFAULT alone.
func ParseSSLRules(s string) (*SSLMapper, error) {
	m := &SSLMapper{}
	rest := strings.TrimSpace(s)
	if rest == "" {
		rest = "DEFAULT"
	}
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, "DEFAULT"):
			m.rules = append(m.rules, rule{deflt: true})
			rest = rest[len("DEFAULT"):]
		case strings.HasPrefix(rest, "RULE:"):
			r, after, err := parseRule(rest[len("RULE:"):])
			if err != nil {
				return nil, fmt.Errorf("ssl principal mapping rules %q: %w", s, err)
			}
			m.rules = append(m.rules, r)
			rest = after
		default:
			return nil, fmt.Errorf("ssl principal mapping rules %q: %q is neither RULE:... nor DEFAULT", s, rest)
		}
		rest = strings.TrimSpace(rest)
		if rest == "" {
			break
		}
		if rest[0] != ',' {
			return nil, fmt.Errorf("ssl principal mapping rules %q: want a comma before %q", s, rest)
		}
		rest = strings.TrimSpace(rest[1:])
	}
	return m, nil
}

// parseRule reads "pattern/replacement/[LU]" and returns what follows.
func parseRule(s string) (rule, string, error) {
	pattern, s, ok := cutUnescaped(s)
	if !ok {
		return rule{}, "", fmt.Errorf("RULE:%s: want RULE:pattern/replacement/", s)
	}
	replacement, s, ok := cutUnescaped(s)
	if !ok {
		return rule{}, "", fmt.Errorf("RULE:%s/...: want RULE:pattern/replacement/", pattern)
	}
	re, err := regexp.Compile("^(?:" + pattern + ")$")
	if err != nil {
		return rule{}, "", fmt.Errorf("RULE pattern %q: %w", pattern, err)
	}
	r := rule{pattern: re, replacement: javaReplacement(replacement)}
	if strings.HasPrefix(s, "L") {
		r.lower, s = true, s[1:]
	} else if strings.HasPrefix(s, "U") {
		r.upper, s = true, s[1:]
	}
	return r, s, nil
}

// cutUnescaped splits s at its first "/" not escaped by "\", keeping
// escapes of other characters (the pattern is a regular expression) and
// unescaping "\/".
func cutUnescaped(s string) (before, after string, ok bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			if s[i+1] == '/' {
				b.WriteByte('/')
			} else {
				b.WriteString(s[i : i+2])
			}
			i++
		case s[i] == '/':
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", false
}

// javaReplacement turns Java's "$1" group references into Go's "${1}",
// so "$1x" means group 1 then "x" as it does in Kafka.
func javaReplacement(s string) string {
	return regexp.MustCompile(`\$(\d+)`).ReplaceAllString(s, "$${$1}")
}

// Name maps a certificate subject (RFC 2253 form) to a principal name.
func (m *SSLMapper) Name(subject string) (string, error) {
	for _, r := range m.rules {
		if r.deflt {
			return subject, nil
		}
		match := r.pattern.FindStringSubmatchIndex(subject)
		if match == nil {
			continue
		}
		name := string(r.pattern.ExpandString(nil, r.replacement, subject, match))
		switch {
		case r.lower:
			name = strings.ToLower(name)
		case r.upper:
			name = strings.ToUpper(name)
		}
		return name, nil
	}
	return "", fmt.Errorf("no ssl principal mapping rule matches %q", subject)
}

// FromCertificate is the principal of a verified client certificate.
func (m *SSLMapper) FromCertificate(c *x509.Certificate) (string, error) {
	name, err := m.Name(c.Subject.String())
	if err != nil {
		return "", err
	}
	return User(name), nil
}
