package export

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TLS is a sink's client TLS: the CA bundle the server's certificate is
// verified against (empty: the system's), a client certificate and key
// (mutual TLS), the name to verify, and an escape hatch for test
// servers.
type TLS struct {
	CA                 string `yaml:"ca"`
	Cert               string `yaml:"cert"`
	Key                string `yaml:"key"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Config builds the crypto/tls configuration, reading the files.
func (t TLS) Config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CA != "" {
		raw, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(raw) {
			return nil, fmt.Errorf("tls ca %s: no PEM certificate in it", t.CA)
		}
		tc.RootCAs = pool
	}
	if (t.Cert == "") != (t.Key == "") {
		return nil, errors.New("tls cert and key go together")
	}
	if t.Cert != "" {
		c, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}

// NewHTTPClient is the client a sink sends its requests with: TLS as
// configured, keep-alive connections, and a timeout per request.
func NewHTTPClient(t TLS, timeout time.Duration) (*http.Client, error) {
	tc, err := t.Config()
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.MaxIdleConnsPerHost = 4
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// RequestError is a request the sink answered with an error status as a
// whole.
type RequestError struct {
	Status     int
	RetryAfter time.Duration // from the Retry-After header
	Body       string        // the start of the answer, for the log and dead letters
}

func (e *RequestError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body)
}

// Throttled reports whether the sink said it is overloaded.
func (e *RequestError) Throttled() bool {
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable
}

// Transient reports whether the same request may succeed later: the sink
// is overloaded or failed (429, 5xx, 408).
func (e *RequestError) Transient() bool {
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout || e.Status >= 500
}

// Malformed reports whether the sink refused the request for its content
// (400, 413, 422): a smaller request, or one without the record it
// refuses, may pass.
func (e *RequestError) Malformed() bool {
	return e.Status == http.StatusBadRequest || e.Status == http.StatusRequestEntityTooLarge || e.Status == http.StatusUnprocessableEntity
}

// ErrorFromResponse reads a failed answer into a RequestError.
func ErrorFromResponse(resp *http.Response) *RequestError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return &RequestError{Status: resp.StatusCode, RetryAfter: RetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		Body: strings.TrimSpace(string(body))}
}

// RetryAfter parses a Retry-After header: seconds, or an HTTP date. 0
// when absent or unreadable.
func RetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// ItemResult classifies one item's HTTP status as the sinks' per-item
// answers do: 2xx delivered, 429 and 5xx retried, the rest dead.
func ItemResult(status int, reason string) Result {
	switch {
	case status >= 200 && status < 300:
		return Result{Outcome: Delivered}
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		return Result{Outcome: Retry, Reason: reason, Throttled: true}
	case status >= 500 || status == http.StatusRequestTimeout:
		return Result{Outcome: Retry, Reason: reason}
	}
	return Result{Outcome: Dead, Reason: reason}
}

// Secret is a credential given inline or in a file (its first line); the
// file wins, so a config file can be shared without its secrets.
func Secret(inline, file string) (string, error) {
	if file == "" {
		return inline, nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	return strings.TrimSpace(line), nil
}

// NewPost builds a POST of body, a buffer its caller pools, and calls
// release once net/http is done with it. Client.Do may return while its
// transport still writes the body (a server that answers before reading
// the whole request; RoundTrip "may [close the body] in a separate
// goroutine even after RoundTrip returns"), so a buffer handed back to its
// pool when Do returns could be rewritten by the next request while the
// transport still sends it. The transport closes a request's body once it
// is done with it, even on errors; release runs then, and on the error
// path here.
func NewPost(ctx context.Context, url string, body []byte, release func()) (*http.Request, error) {
	b := &pooledBody{release: release}
	b.r.Reset(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, b)
	if err != nil {
		b.Close()
		return nil, err
	}
	// net/http knows the length of its own readers only.
	req.ContentLength = int64(len(body))
	if len(body) == 0 {
		b.Close()
		req.Body = http.NoBody
	}
	return req, nil
}

// pooledBody is a request body that calls release when closed, once.
type pooledBody struct {
	r       bytes.Reader
	once    sync.Once
	release func()
}

func (b *pooledBody) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *pooledBody) Close() error {
	b.once.Do(func() {
		if b.release != nil {
			b.release()
		}
	})
	return nil
}
