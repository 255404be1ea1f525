package sasl

// The keys OAUTHBEARER tokens are checked against: a JWK Set (RFC 7517)
// from a file or an https URL, as Kafka's sasl.oauthbearer.jwks.endpoint.url
// (file: or https:).
//
//   - File: read at start (an error then is a configuration error), then
//     reread when its size or modification time changes, checked at most
//     once a second and at once when a token names a kid the set lacks (a
//     key just rotated in). A file that fails to load (half written, bad
//     JSON, no usable key) keeps the keys in use and is reported to
//     OnError. Kafka's JwksFileVerificationKeyResolver rereads a changed
//     file likewise.
//   - URL: fetched at start (a failure is an error, as Kafka's broker fails
//     to start), refreshed every JWKSRefresh (Kafka's
//     sasl.oauthbearer.jwks.endpoint.refresh.ms, default 1h) and, at most
//     once a minute, when a token names an unknown kid. A failed refresh
//     keeps the keys in use and is reported to OnError.
//   - Keys whose type the JWK library does not know are skipped; keys whose
//     use is "enc" never verify a token.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"golang.org/x/time/rate"
)

// newKeySource builds the Keyfunc of cfg's JWKSFile or JWKSURL; stop ends
// the URL's refresh goroutine.
func newKeySource(cfg OAuthConfig, onError func(error)) (kf keyfunc.Keyfunc, stop func(), err error) {
	use := []jwkset.USE{jwkset.UseSig, ""}
	switch {
	case cfg.JWKSFile != "" && cfg.JWKSURL != "":
		return nil, nil, errors.New("sasl: OAUTHBEARER needs JWKSFile or JWKSURL, not both")
	case cfg.JWKSFile != "":
		f, err := newFileJWKS(cfg.JWKSFile, onError)
		if err != nil {
			return nil, nil, err
		}
		kf, err := keyfunc.New(keyfunc.Options{Storage: f, UseWhitelist: use})
		return kf, func() {}, err
	case cfg.JWKSURL != "":
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, nil, fmt.Errorf("sasl: OAUTHBEARER JWKSURL %q is not an https URL", cfg.JWKSURL)
		}
		client := cfg.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: 10 * time.Second}
		}
		refresh := cfg.JWKSRefresh
		if refresh <= 0 {
			refresh = time.Hour
		}
		ctx, cancel := context.WithCancel(context.Background())
		noFirstErr := false
		kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
			Client:                    client,
			HTTPTimeout:               10 * time.Second,
			NoErrorReturnFirstHTTPReq: &noFirstErr,
			RefreshInterval:           refresh,
			RefreshUnknownKID:         rate.NewLimiter(rate.Every(time.Minute), 1),
			// The wait bounds the unknown-kid refresh too, so it is the
			// fetch's budget; a token that finds the limiter empty fails
			// at once rather than waiting for it.
			RateLimitWaitMax: 10 * time.Second,
			RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
				return func(_ context.Context, err error) { onError(fmt.Errorf("refreshing JWKS from %s: %w", u, err)) }
			},
		})
		if err != nil {
			cancel()
			return nil, nil, fmt.Errorf("sasl: OAUTHBEARER JWKS from %s: %w", cfg.JWKSURL, err)
		}
		kf, err = keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: kf.Storage(), UseWhitelist: use})
		if err != nil {
			cancel()
			return nil, nil, err
		}
		return kf, cancel, nil
	default:
		return nil, nil, errors.New("sasl: OAUTHBEARER needs JWKSFile or JWKSURL")
	}
}

// fileJWKS is a JWK Set file kept in memory and reread when it changes.
type fileJWKS struct {
	*jwkset.MemoryJWKSet
	path       string
	checkEvery time.Duration
	onError    func(error)
	now        func() time.Time

	mu        sync.Mutex
	stamp     stamp
	lastCheck time.Time
}

// stamp identifies one version of a file without reading it.
type stamp struct {
	size int64
	mod  time.Time
}

func newFileJWKS(path string, onError func(error)) (*fileJWKS, error) {
	f := &fileJWKS{MemoryJWKSet: jwkset.NewMemoryStorage(), path: path, checkEvery: time.Second, onError: onError, now: time.Now}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("sasl: OAUTHBEARER JWKSFile: %w", err)
	}
	if err := f.load(); err != nil {
		return nil, fmt.Errorf("sasl: OAUTHBEARER JWKSFile %s: %w", path, err)
	}
	f.stamp, f.lastCheck = stamp{st.Size(), st.ModTime()}, f.now()
	return f, nil
}

// KeyRead finds kid, rereading a changed file first; an unknown kid checks
// the file at once.
func (f *fileJWKS) KeyRead(ctx context.Context, kid string) (jwkset.JWK, error) {
	f.check(false)
	k, err := f.MemoryJWKSet.KeyRead(ctx, kid)
	if errors.Is(err, jwkset.ErrKeyNotFound) && f.check(true) {
		k, err = f.MemoryJWKSet.KeyRead(ctx, kid)
	}
	return k, err
}

// KeyReadAll is every key, rereading a changed file first (a token without
// a kid).
func (f *fileJWKS) KeyReadAll(ctx context.Context) ([]jwkset.JWK, error) {
	f.check(false)
	return f.MemoryJWKSet.KeyReadAll(ctx)
}

// check rereads the file if it changed, at most once per checkEvery unless
// now; it reports whether the keys were replaced.
func (f *fileJWKS) check(now bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.now()
	if !now && t.Sub(f.lastCheck) < f.checkEvery {
		return false
	}
	f.lastCheck = t
	st, err := os.Stat(f.path)
	if err != nil {
		f.onError(fmt.Errorf("JWKS file: %w", err))
		return false
	}
	s := stamp{st.Size(), st.ModTime()}
	if s == f.stamp {
		return false
	}
	if err := f.load(); err != nil {
		f.onError(fmt.Errorf("JWKS file %s (keeping the keys in use): %w", f.path, err))
		return false
	}
	f.stamp = s
	return true
}

// load replaces the keys with the file's.
func (f *fileJWKS) load() error {
	raw, err := os.ReadFile(f.path)
	if err != nil {
		return err
	}
	keys, err := parseJWKS(raw)
	if err != nil {
		return err
	}
	return f.MemoryJWKSet.KeyReplaceAll(context.Background(), keys)
}

// parseJWKS parses a JWK Set, skipping key types the library does not
// know; a set with no usable key is an error.
func parseJWKS(raw []byte) ([]jwkset.JWK, error) {
	var set jwkset.JWKSMarshal
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&set); err != nil {
		return nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	var keys []jwkset.JWK
	for _, m := range set.Keys {
		k, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{Private: true}, jwkset.JWKValidateOptions{})
		switch {
		case errors.Is(err, jwkset.ErrUnsupportedKey):
			continue
		case err != nil:
			return nil, fmt.Errorf("key %q: %w", m.KID, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no usable key")
	}
	return keys, nil
}
