package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"

	"github.com/vigilhq/vigil/internal/certs"
	"github.com/vigilhq/vigil/internal/config"
)

// wrapTLS wraps the SSL and SASL_SSL listeners in TLS 1.2+, with the
// certificate (and the client CA bundle, for mTLS) reread when their
// files change.
func (s *Server) wrapTLS(log *slog.Logger) error {
	sec := s.cfg.Security
	// Client certificates are asked for on SSL listeners only: on SASL_SSL
	// SASL names the client, and Kafka ignores ssl.client.auth there
	// unless a listener sets it for itself (KIP-684).
	var ssl, saslSSL *tls.Config
	for i, l := range s.cfg.Listeners {
		var conf *tls.Config
		var err error
		switch l.Protocol {
		case config.SSL:
			if ssl == nil {
				ssl, err = serverTLS(sec.TLSCert, sec.TLSKey, sec.TLSClientCA, sec.ClientAuth(), log)
			}
			conf = ssl
		case config.SASLSSL:
			if saslSSL == nil {
				saslSSL, err = serverTLS(sec.TLSCert, sec.TLSKey, "", "none", log)
			}
			conf = saslSSL
		default:
			continue
		}
		if err != nil {
			return err
		}
		s.lns[i] = tls.NewListener(s.lns[i], conf)
	}
	return nil
}

// serverTLS builds the listeners' TLS configuration.
func serverTLS(certFile, keyFile, caFile, clientAuth string, log *slog.Logger) (*tls.Config, error) {
	cert, err := certs.New(certFile, keyFile, certs.Options{OnError: func(err error) {
		log.Error("TLS certificate not reloaded; serving the previous one", "err", err)
	}})
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cert.GetCertificate}
	switch clientAuth {
	case "requested":
		conf.ClientAuth = tls.VerifyClientCertIfGiven
	case "required":
		conf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if caFile == "" {
		return conf, nil
	}
	ca, err := certs.NewCAPool(caFile, certs.Options{OnError: func(err error) {
		log.Error("TLS client CA bundle not reloaded; using the previous one", "err", err)
	}})
	if err != nil {
		return nil, fmt.Errorf("tls client CA: %w", err)
	}
	base := conf.Clone()
	// Each handshake gets the bundle as it is now, so a CA added to the
	// file is trusted without a restart.
	conf.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := base.Clone()
		c.ClientCAs = ca.Pool()
		return c, nil
	}
	return conf, nil
}
