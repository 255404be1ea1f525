// Package webhook is the webhook sink of `vigil export`, meant for
// findings: one JSON POST per record, as the record (format raw), a
// Slack message (slack: Block Kit, for an incoming webhook) or a
// Microsoft Teams message (teams: an Adaptive Card, for a Workflows
// webhook), at most Rate requests per second.
//
// Each request names its record in X-Vigil-Delivery
// ("topic:partition:offset"): a webhook has no ids of its own, so a
// receiver that must not act twice on a record sent again after a crash
// deduplicates on it. With a secret the body is signed, HMAC-SHA256 in
// hex, in X-Vigil-Signature-256 as "sha256=<hex>" (GitHub's scheme, which
// most receivers can check). 2xx is delivered, 429 and 5xx are retried
// (honouring Retry-After), other statuses dead-lettered.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/vigilhq/vigil/internal/export"
)

// Header names of a delivery.
const (
	HeaderDelivery         = "X-Vigil-Delivery"
	DefaultSignatureHeader = "X-Vigil-Signature-256"
)

// Formats of the body.
const (
	FormatRaw   = "raw"
	FormatSlack = "slack"
	FormatTeams = "teams"
)

// Config is the `webhook:` section of a sink.
type Config struct {
	URL string `yaml:"url"`
	// Format is raw (default), slack or teams.
	Format string `yaml:"format"`
	// Secret signs each body (HMAC-SHA256) in SignatureHeader.
	Secret          string            `yaml:"secret"`
	SecretFile      string            `yaml:"secret_file"`
	SignatureHeader string            `yaml:"signature_header"`
	Headers         map[string]string `yaml:"headers"`
	// Rate is requests per second (default 1; Slack's incoming webhooks
	// allow about one per second), Burst how many may go at once
	// (default 1).
	Rate    float64       `yaml:"rate"`
	Burst   int           `yaml:"burst"`
	TLS     export.TLS    `yaml:"tls"`
	Timeout time.Duration `yaml:"timeout"`
}

// Sink posts records to a webhook.
type Sink struct {
	cfg     Config
	secret  []byte
	limiter *rate.Limiter
	client  *http.Client
}

// New checks the configuration.
func New(c Config) (*Sink, error) {
	if c.URL == "" {
		return nil, errors.New("webhook: url is required")
	}
	switch c.Format {
	case "":
		c.Format = FormatRaw
	case FormatRaw, FormatSlack, FormatTeams:
	default:
		return nil, fmt.Errorf("webhook: format %q: want raw, slack or teams", c.Format)
	}
	if c.SignatureHeader == "" {
		c.SignatureHeader = DefaultSignatureHeader
	}
	if c.Rate < 0 || c.Burst < 0 {
		return nil, errors.New("webhook: rate and burst must not be negative")
	}
	if c.Rate == 0 {
		c.Rate = 1
	}
	if c.Burst == 0 {
		c.Burst = 1
	}
	secret, err := export.Secret(c.Secret, c.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("webhook: secret_file: %w", err)
	}
	s := &Sink{cfg: c, secret: []byte(secret), limiter: rate.NewLimiter(rate.Limit(c.Rate), c.Burst)}
	if s.client, err = export.NewHTTPClient(c.TLS, c.Timeout); err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	return s, nil
}

// Close closes idle connections.
func (s *Sink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// DefaultMaxInFlight is 1: the rate limit bounds a webhook's throughput,
// not the answers' latency, and one request at a time keeps a
// partition's records in order at the receiver.
func (s *Sink) DefaultMaxInFlight() int { return 1 }

// Sign is the signature header's value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Deliver posts each doc in turn. After a 429 or a 5xx the rest of the
// batch is not sent: it is retried with the failed one, after the
// backoff.
func (s *Sink) Deliver(ctx context.Context, docs []*export.Doc, res []export.Result) error {
	for i, d := range docs {
		if err := s.limiter.Wait(ctx); err != nil {
			return err
		}
		body, err := Body(s.cfg.Format, d)
		if err != nil {
			res[i] = export.Result{Outcome: export.Dead, Reason: err.Error()}
			continue
		}
		r := s.post(ctx, d, body)
		res[i] = r
		if r.Outcome == export.Retry {
			for k := i + 1; k < len(docs); k++ {
				res[k] = export.Result{Outcome: export.Retry, Reason: "not sent: an earlier record is retried"}
			}
			return nil
		}
	}
	return nil
}

func (s *Sink) post(ctx context.Context, d *export.Doc, body []byte) export.Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return export.Result{Outcome: export.Dead, Reason: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range s.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set(HeaderDelivery, d.ID)
	if len(s.secret) > 0 {
		req.Header.Set(s.cfg.SignatureHeader, Sign(s.secret, body))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return export.Result{Outcome: export.Retry, Reason: err.Error()}
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	r := export.ItemResult(resp.StatusCode, strings.TrimSpace(fmt.Sprintf("HTTP %d %s", resp.StatusCode, msg)))
	r.RetryAfter = export.RetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return r
}

var (
	_ export.Sink              = (*Sink)(nil)
	_ export.InFlightDefaulter = (*Sink)(nil)
)
