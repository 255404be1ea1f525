package ingest

import (
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/vigilhq/vigil/internal/certs"
)

// guardHTTP wraps the HTTP listener in TLS (and mTLS) when configured, and
// refuses an unguarded one on an address other hosts reach: telemetry
// posted there lands in the evidence, so who may post it must be decided.
func (s *Service) guardHTTP(ln net.Listener) (net.Listener, error) {
	c := s.cfg
	if (c.HTTPTLSCert == "") != (c.HTTPTLSKey == "") {
		ln.Close()
		return nil, fmt.Errorf("ingest: --http-tls-cert and --http-tls-key go together")
	}
	if c.HTTPClientCA != "" && c.HTTPTLSCert == "" {
		ln.Close()
		return nil, fmt.Errorf("ingest: --http-client-ca needs --http-tls-cert and --http-tls-key")
	}
	if c.HTTPToken == "" && c.HTTPClientCA == "" && !c.HTTPInsecure && !loopbackListener(ln) {
		ln.Close()
		return nil, fmt.Errorf("ingest: the HTTP listener on %s is reachable from other hosts: require a token (--http-token-file) or client certificates (--http-client-ca), or accept anyone with --http-insecure", ln.Addr())
	}
	if c.HTTPTLSCert == "" {
		return ln, nil
	}
	cert, err := certs.New(c.HTTPTLSCert, c.HTTPTLSKey, certs.Options{OnError: func(err error) {
		s.log.Error("HTTP TLS certificate not reloaded; serving the previous one", "err", err)
	}})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("ingest: http tls: %w", err)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cert.GetCertificate}
	if c.HTTPClientCA != "" {
		ca, err := certs.NewCAPool(c.HTTPClientCA, certs.Options{})
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("ingest: http client CA: %w", err)
		}
		base := conf.Clone()
		base.ClientAuth = tls.RequireAndVerifyClientCert
		conf.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cc := base.Clone()
			cc.ClientCAs = ca.Pool()
			return cc, nil
		}
	}
	return tls.NewListener(ln, conf), nil
}

func loopbackListener(ln net.Listener) bool {
	a, ok := ln.Addr().(*net.TCPAddr)
	return ok && a.IP.IsLoopback()
}

// requireToken guards a handler with the bearer token (when one is set).
func (s *Service) requireToken(h http.HandlerFunc) http.HandlerFunc {
	if s.cfg.HTTPToken == "" {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.HTTPToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigil ingest"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "a bearer token is required (Authorization: Bearer TOKEN)"})
			return
		}
		h(w, r)
	}
}
