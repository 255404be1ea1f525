package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
)

// EtcdAccess is how a broker (or `vigil users --metadata`) reaches a
// secured etcd: TLS and a login.
type EtcdAccess struct {
	TLS                *tls.Config // nil: plain gRPC
	Username, Password string
}

// EtcdAccess reads the --etcd-* files.
func (c Broker) EtcdAccess() (EtcdAccess, error) {
	var a EtcdAccess
	if c.EtcdCA != "" || c.EtcdCert != "" {
		a.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if c.EtcdCA != "" {
		raw, err := os.ReadFile(c.EtcdCA)
		if err != nil {
			return a, fmt.Errorf("--etcd-ca: %w", err)
		}
		a.TLS.RootCAs = x509.NewCertPool()
		if !a.TLS.RootCAs.AppendCertsFromPEM(raw) {
			return a, fmt.Errorf("--etcd-ca %s holds no PEM certificate", c.EtcdCA)
		}
	}
	if c.EtcdCert != "" {
		cert, err := tls.LoadX509KeyPair(c.EtcdCert, c.EtcdKey)
		if err != nil {
			return a, fmt.Errorf("--etcd-cert/--etcd-key: %w", err)
		}
		a.TLS.Certificates = []tls.Certificate{cert}
	}
	if c.EtcdUsername != "" {
		raw, err := os.ReadFile(c.EtcdPasswordFile)
		if err != nil {
			return a, fmt.Errorf("--etcd-password-file: %w", err)
		}
		line, _, _ := strings.Cut(string(raw), "\n")
		a.Username, a.Password = c.EtcdUsername, strings.TrimRight(line, "\r")
	}
	return a, nil
}
