package server

import (
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
)

// adminHandler guards the admin listener. /healthz and /readyz stay open
// (load balancers probe them). With --admin-token-file every other path
// needs "Authorization: Bearer TOKEN", except /metrics asked from the
// broker's own host; without it, /metrics is open and the profiles under
// /debug/pprof/ (which show the command line, flags included, and the
// broker's internals) answer only clients on the broker's own host.
func adminHandler(next http.Handler, token string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz" || r.URL.Path == "/readyz":
		case token != "" && bearerMatches(r, token):
		case token != "" && r.URL.Path == "/metrics" && fromLoopback(r):
		case token != "":
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigil admin"`)
			http.Error(w, "a bearer token is needed (vigil serve --admin-token-file)", http.StatusUnauthorized)
			return
		case strings.HasPrefix(r.URL.Path, "/debug/") && !fromLoopback(r):
			http.Error(w, "profiles are served to the broker's own host only; set --admin-token-file to serve them to others with a token", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func bearerMatches(r *http.Request, token string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readToken reads the first line of a token file.
func readToken(file string) (string, error) {
	if file == "" {
		return "", nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--admin-token-file: %w", err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	line = strings.TrimSpace(line)
	if len(line) < 16 {
		return "", fmt.Errorf("--admin-token-file %s: the token must be at least 16 characters", file)
	}
	return line, nil
}

// adminTLS is the admin listener's TLS: the Kafka listeners' certificate,
// without requiring client certificates (a Prometheus scraper rarely has
// one; the bearer token guards what needs guarding).
func (s *Server) adminTLS() (*tls.Config, error) {
	sec := s.cfg.Security
	return serverTLS(sec.TLSCert, sec.TLSKey, "", "none", s.log)
}
