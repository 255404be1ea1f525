package objstore

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 is a Store over one bucket (and optionally a key prefix in it) of an
// S3-compatible service: AWS S3, MinIO, Ceph RGW, Versity, R2, GCS's XML
// API... It uses minio-go, which is maintained, has few dependencies, and
// speaks path-style requests and the AWS credential chain.
type S3 struct {
	client  *minio.Client
	core    minio.Core // the low-level GetObject, which reports errors before the body is read
	tr      *http.Transport
	bucket  string
	prefix  string // "" or ending in "/"
	timeout time.Duration
	name    string // s3://bucket/prefix/, for error messages (never holds credentials)
}

var _ Store = (*S3)(nil)

// S3 URL parameters and their defaults.
const (
	defaultS3Endpoint = "s3.amazonaws.com"
	defaultS3Region   = "us-east-1"
	defaultS3Timeout  = 30 * time.Second

	// perMiB is added to a call's timeout for every MiB it moves, so a
	// large object on a slow link is not cut off while a stalled small
	// call still fails after about the base timeout. 1 s/MiB is a floor
	// of 1 MiB/s, far below any healthy link.
	perMiB = time.Second

	// putPartSize: objects up to this size go in one PUT, which S3
	// applies atomically and which leaves no unfinished multipart upload
	// behind when the broker dies mid-call. Segment objects are at most
	// --segment-bytes (16 MiB) and compacted ones --compact-target-bytes
	// (64 MiB), so only unusually large settings reach multipart.
	putPartSize = 64 << 20

	// s3MaxRetries bounds minio-go's own attempts at one call (it retries
	// network errors and 5xx with backoff of up to 1 s; 1 would be none). The uploader
	// retries a failed upload itself with a longer backoff and logs each
	// failure, so a few quick retries here are enough to ride out a
	// dropped connection without hiding an outage.
	s3MaxRetries = 3
)

// errS3Timeout is the cause of a call canceled by its per-call timeout.
var errS3Timeout = errors.New("timed out")

// s3Config is what an s3:// URL says.
type s3Config struct {
	bucket, prefix string
	endpoint       string // host[:port]
	secure         bool
	region         string
	lookup         minio.BucketLookupType
	createBucket   bool
	timeout        time.Duration
}

// parseS3URL reads s3://bucket[/prefix][?endpoint=HOST:PORT&region=R&
// path_style=BOOL&tls=BOOL&create_bucket=BOOL&timeout=DURATION].
func parseS3URL(u *url.URL) (s3Config, error) {
	c := s3Config{
		bucket:  u.Host,
		region:  defaultS3Region,
		lookup:  minio.BucketLookupAuto,
		timeout: defaultS3Timeout,
		secure:  true,
	}
	if u.User != nil {
		// The URL is logged; credentials belong in flags or the environment.
		return c, errors.New("credentials must not be in the URL: use --s3-access-key-id/--s3-secret-access-key (VIGIL_S3_*) or the AWS environment")
	}
	if c.bucket == "" {
		return c, errors.New("missing bucket: the form is s3://bucket[/prefix][?endpoint=HOST:PORT&...]")
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		c.prefix = p + "/"
	}
	q := u.Query()
	var tlsParam string
	for k, vs := range q {
		v := vs[len(vs)-1]
		var err error
		switch k {
		case "endpoint":
			c.endpoint = v
		case "region":
			if v == "" {
				err = errors.New("must not be empty")
			}
			c.region = v
		case "path_style":
			var b bool
			if b, err = strconv.ParseBool(v); err == nil {
				c.lookup = minio.BucketLookupDNS
				if b {
					c.lookup = minio.BucketLookupPath
				}
			}
		case "tls":
			tlsParam = v
			c.secure, err = strconv.ParseBool(v)
		case "create_bucket":
			c.createBucket, err = strconv.ParseBool(v)
		case "timeout":
			c.timeout, err = time.ParseDuration(v)
			if err == nil && c.timeout <= 0 {
				err = errors.New("must be positive")
			}
		default:
			return c, fmt.Errorf("unknown parameter %q (known: endpoint, region, path_style, tls, create_bucket, timeout)", k)
		}
		if err != nil {
			return c, fmt.Errorf("parameter %s=%q: %w", k, v, err)
		}
	}
	// The endpoint may carry its scheme, which then decides TLS.
	switch {
	case c.endpoint == "":
		c.endpoint = defaultS3Endpoint
	case strings.Contains(c.endpoint, "://"):
		e, err := url.Parse(c.endpoint)
		if err != nil {
			return c, fmt.Errorf("parameter endpoint=%q: %w", c.endpoint, err)
		}
		var secure bool
		switch e.Scheme {
		case "http":
		case "https":
			secure = true
		default:
			return c, fmt.Errorf("parameter endpoint=%q: scheme must be http or https", c.endpoint)
		}
		if tlsParam != "" && secure != c.secure {
			return c, fmt.Errorf("parameter endpoint=%q contradicts tls=%s", c.endpoint, tlsParam)
		}
		if strings.Trim(e.Path, "/") != "" || e.RawQuery != "" || e.User != nil {
			return c, fmt.Errorf("parameter endpoint=%q: must be [http[s]://]HOST[:PORT], without path, query or credentials", c.endpoint)
		}
		c.endpoint, c.secure = e.Host, secure
	}
	if strings.ContainsAny(c.endpoint, "/?@") || c.endpoint == "" {
		return c, fmt.Errorf("parameter endpoint=%q: must be [http[s]://]HOST[:PORT]", c.endpoint)
	}
	return c, nil
}

// OpenS3 opens the bucket an s3:// URL names:
//
//	s3://BUCKET[/PREFIX][?PARAM=VALUE&...]
//
// PREFIX is prepended to every key (so several clusters can share a
// bucket). Parameters:
//
//   - endpoint: HOST[:PORT] of the service, optionally with http:// or
//     https:// (which then sets tls); default s3.amazonaws.com.
//   - region: the bucket's region, used for request signing; default
//     us-east-1. On AWS it must be the bucket's real region.
//   - path_style: true sends http://HOST/BUCKET/KEY, false
//     http://BUCKET.HOST/KEY; default: virtual-host style for AWS and
//     Google endpoints, path style for every other endpoint.
//   - tls: false speaks plain HTTP; default true, unless the endpoint
//     starts with http://.
//   - create_bucket: true creates a missing bucket; default false, a
//     missing bucket is an error (a typo should not start a new, empty log).
//   - timeout: the base deadline of every call, plus 1 s per MiB it
//     moves; default 30s.
//
// Credentials come from opts or, without them, the AWS chain (see
// Options). The bucket must exist (or be creatable) and be reachable
// with them, or OpenS3 fails.
func OpenS3(ctx context.Context, u *url.URL, opts Options) (*S3, error) {
	cfg, err := parseS3URL(u)
	if err != nil {
		return nil, fmt.Errorf("objstore: s3://%s%s: %w", u.Host, strings.TrimRight(u.Path, "/"), err)
	}
	name := "s3://" + cfg.bucket + "/" + cfg.prefix // ends in "/": errors print name+key
	s := &S3{bucket: cfg.bucket, prefix: cfg.prefix, timeout: cfg.timeout, name: name}
	if s.tr, err = minio.DefaultTransport(cfg.secure); err != nil {
		return nil, fmt.Errorf("objstore: %s: http transport: %w", name, err)
	}
	if opts.S3CA != "" {
		if s.tr.TLSClientConfig == nil {
			return nil, fmt.Errorf("objstore: %s: a CA bundle (%s) for a plain-HTTP endpoint", name, opts.S3CA)
		}
		raw, err := os.ReadFile(opts.S3CA)
		if err != nil {
			return nil, fmt.Errorf("objstore: %s: CA bundle: %w", name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(raw) {
			return nil, fmt.Errorf("objstore: %s: CA bundle %s holds no PEM certificate", name, opts.S3CA)
		}
		s.tr.TLSClientConfig.RootCAs = pool
	}
	if err := s.connect(ctx, cfg, opts); err != nil {
		s.tr.CloseIdleConnections()
		return nil, fmt.Errorf("objstore: %s: %w", name, err)
	}
	return s, nil
}

// connect makes the client and checks (or creates) the bucket.
func (s *S3) connect(ctx context.Context, cfg s3Config, opts Options) error {
	creds, err := s3Credentials(ctx, opts, s.tr, cfg.timeout)
	if err != nil {
		return err
	}
	s.client, err = minio.New(cfg.endpoint, &minio.Options{
		Creds:        creds,
		Secure:       cfg.secure,
		Transport:    s.tr,
		Region:       cfg.region,
		BucketLookup: cfg.lookup,
		MaxRetries:   s3MaxRetries,
	})
	if err != nil {
		return fmt.Errorf("client for %s: %w", cfg.endpoint, err)
	}
	s.core = minio.Core{Client: s.client}

	cctx, _, done := s.callCtx(ctx, 0)
	defer done()
	exists, err := s.client.BucketExists(cctx, cfg.bucket)
	if err != nil {
		return fmt.Errorf("check bucket at %s: %w", cfg.endpoint, s.callErr(cctx, err))
	}
	if exists {
		return nil
	}
	if !cfg.createBucket {
		return fmt.Errorf("bucket %q does not exist at %s (create it, or add create_bucket=true to the URL)", cfg.bucket, cfg.endpoint)
	}
	if err := s.client.MakeBucket(cctx, cfg.bucket, minio.MakeBucketOptions{Region: cfg.region}); err != nil {
		return fmt.Errorf("create bucket at %s: %w", cfg.endpoint, s.callErr(cctx, err))
	}
	return nil
}

// s3Credentials picks the explicit credentials or the AWS chain, and
// resolves the chain once so that a broker without any credentials fails
// at start with a message naming the places it looked, instead of with
// AccessDenied on its first upload.
func s3Credentials(ctx context.Context, opts Options, tr *http.Transport, timeout time.Duration) (*credentials.Credentials, error) {
	switch {
	case opts.S3AccessKeyID != "" && opts.S3SecretAccessKey != "":
		return credentials.NewStaticV4(opts.S3AccessKeyID, opts.S3SecretAccessKey, ""), nil
	case opts.S3AccessKeyID != "" || opts.S3SecretAccessKey != "":
		return nil, errors.New("an S3 access key id needs its secret access key and the other way round")
	}
	creds := credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.FileAWSCredentials{},
		&credentials.IAM{},
	})
	// The IAM provider asks the instance metadata service, which does not
	// answer off AWS: bound that wait.
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := creds.GetWithContext(&credentials.CredContext{Client: &http.Client{Transport: tr}, Context: rctx})
	if err != nil {
		return nil, fmt.Errorf("resolve credentials: %w", err)
	}
	if v.SignerType.IsAnonymous() {
		return nil, errors.New("no S3 credentials found: set --s3-access-key-id and --s3-secret-access-key " +
			"(VIGIL_S3_ACCESS_KEY_ID, VIGIL_S3_SECRET_ACCESS_KEY), AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, " +
			"a profile in ~/.aws/credentials, or run with an EC2/ECS/EKS role")
	}
	return creds, nil
}

// Name is the store's s3://bucket/prefix/ (without the parameters).
func (s *S3) Name() string { return s.name }

// callCtx derives one call's context from ctx: its deadline is the base
// timeout plus perMiB for each MiB of n, so that a store that hangs
// (accepts the connection, never answers) fails the call instead of
// blocking the uploader or a fetch forever. The deadline is a timer, not
// context.WithDeadline, so that a call can restart it (extend) once it
// learns how much it will move.
func (s *S3) callCtx(ctx context.Context, n int64) (cctx context.Context, extend func(n int64), done func()) {
	cctx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(s.budget(n), func() { cancel(errS3Timeout) })
	extend = func(n int64) { timer.Reset(s.budget(n)) }
	done = func() {
		timer.Stop()
		cancel(context.Canceled)
	}
	return cctx, extend, done
}

func (s *S3) budget(n int64) time.Duration {
	return s.timeout + time.Duration(n>>20)*perMiB
}

// callErr names a timeout as such: minio-go only sees a canceled context.
func (s *S3) callErr(ctx context.Context, err error) error {
	if errors.Is(context.Cause(ctx), errS3Timeout) {
		return fmt.Errorf("%w (per-call timeout, base %s): %w", errS3Timeout, s.timeout, err)
	}
	return err
}

func (s *S3) objectKey(key string) (string, error) {
	if key == "" {
		return "", errors.New("objstore: empty key")
	}
	return s.prefix + key, nil
}

func (s *S3) Put(ctx context.Context, key string, data []byte) error {
	k, err := s.objectKey(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: put %s: %w", key, err)
	}
	cctx, _, done := s.callCtx(ctx, int64(len(data)))
	defer done()
	// S3 acknowledges a PUT only once the object is stored durably, so a
	// nil error here meets Store's contract. Content-MD5 makes the service
	// check the bytes it stored whatever the transport (the payload is not
	// signed over TLS).
	info, err := s.client.PutObject(cctx, s.bucket, k, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		ContentType:    "application/octet-stream",
		SendContentMd5: true,
		PartSize:       putPartSize,
	})
	if err != nil {
		return fmt.Errorf("objstore: put %s%s (%d bytes): %w", s.name, key, len(data), s.callErr(cctx, err))
	}
	if info.Size != int64(len(data)) {
		return fmt.Errorf("objstore: put %s%s: service stored %d bytes of %d", s.name, key, info.Size, len(data))
	}
	return nil
}

// Create puts with If-None-Match: *, which AWS S3, MinIO and Versity
// (among others) honour with 412 Precondition Failed for a key that
// exists. AWS answers 409 ConditionalRequestConflict while another
// conditional write of the key is in flight: that one may win, so it is
// ErrExist too (the caller's commit fails and is tried again from what
// is stored). A service that ignores the header overwrites; the table
// catalog probes for that once (table.Catalog.CheckCreate).
func (s *S3) Create(ctx context.Context, key string, data []byte) error {
	k, err := s.objectKey(key)
	if err != nil {
		return err
	}
	if len(data) > putPartSize {
		return fmt.Errorf("objstore: create %s: %d bytes is more than one PUT (%d)", key, len(data), putPartSize)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: create %s: %w", key, err)
	}
	cctx, _, done := s.callCtx(ctx, int64(len(data)))
	defer done()
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream", SendContentMd5: true, PartSize: putPartSize}
	opts.SetMatchETagExcept("*")
	info, err := s.client.PutObject(cctx, s.bucket, k, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		r := minio.ToErrorResponse(err)
		if r.StatusCode == http.StatusPreconditionFailed || r.StatusCode == http.StatusConflict {
			return fmt.Errorf("objstore: create %s%s: %w (%s)", s.name, key, ErrExist, r.Code)
		}
		return fmt.Errorf("objstore: create %s%s (%d bytes): %w", s.name, key, len(data), s.callErr(cctx, err))
	}
	if info.Size != int64(len(data)) {
		return fmt.Errorf("objstore: create %s%s: service stored %d bytes of %d", s.name, key, info.Size, len(data))
	}
	return nil
}

func (s *S3) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("objstore: get %s: negative offset %d", key, off)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("objstore: get %s: %w", key, err)
	}
	if length == 0 {
		// No range can say "nothing"; a HEAD still tells a missing key.
		cctx, _, done := s.callCtx(ctx, 0)
		defer done()
		if _, err := s.client.StatObject(cctx, s.bucket, k, minio.StatObjectOptions{}); err != nil {
			return nil, s.getErr(cctx, key, off, length, err)
		}
		return []byte{}, nil
	}
	var opts minio.GetObjectOptions
	switch {
	case length > 0:
		err = opts.SetRange(off, off+length-1)
	case off > 0:
		err = opts.SetRange(off, 0) // bytes=off-
	}
	if err != nil {
		return nil, fmt.Errorf("objstore: get %s: %w", key, err)
	}
	cctx, extend, done := s.callCtx(ctx, max(length, 0))
	defer done()
	body, info, _, err := s.core.GetObject(cctx, s.bucket, k, opts)
	if err != nil {
		if minio.ToErrorResponse(err).Code == minio.InvalidRange {
			// The range starts at or past the end: S3 says 416, Store
			// says "the bytes that exist", which are none.
			return []byte{}, nil
		}
		return nil, s.getErr(cctx, key, off, length, err)
	}
	defer body.Close()
	// info.Size is the length of the answer (the range that exists); a
	// read to the end learns only now how long the body is.
	extend(info.Size)
	buf := bytes.NewBuffer(make([]byte, 0, max(info.Size, 0)))
	if _, err := buf.ReadFrom(body); err != nil {
		return nil, s.getErr(cctx, key, off, length, err)
	}
	if info.Size >= 0 && int64(buf.Len()) != info.Size {
		return nil, fmt.Errorf("objstore: get %s%s %s: read %d of %d bytes", s.name, key, rangeString(off, length), buf.Len(), info.Size)
	}
	return buf.Bytes(), nil
}

func (s *S3) getErr(ctx context.Context, key string, off, length int64, err error) error {
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return fmt.Errorf("objstore: get %s%s: %w", s.name, key, ErrNotExist)
	}
	return fmt.Errorf("objstore: get %s%s %s: %w", s.name, key, rangeString(off, length), s.callErr(ctx, err))
}

func rangeString(off, length int64) string {
	if length < 0 {
		return fmt.Sprintf("[%d,end)", off)
	}
	return fmt.Sprintf("[%d,+%d)", off, length)
}

func (s *S3) List(ctx context.Context, prefix string) ([]Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("objstore: list %q: %w", prefix, err)
	}
	// A listing is one call per 1,000 keys: the timeout restarts with
	// every key received, so a long listing is not cut off while a
	// stalled page still is.
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(context.Canceled)
	timer := time.AfterFunc(s.timeout, func() { cancel(errS3Timeout) })
	defer timer.Stop()
	var out []Object
	for o := range s.client.ListObjectsIter(cctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("objstore: list %s%s: %w", s.name, prefix, s.callErr(cctx, o.Err))
		}
		timer.Reset(s.timeout)
		key, ok := strings.CutPrefix(o.Key, s.prefix)
		// Keys ending in "/" are directory markers some tools (and
		// filesystem-backed gateways) create; Vigil never writes them
		// and the directory backend cannot hold them.
		if !ok || key == "" || strings.HasSuffix(key, "/") {
			continue
		}
		out = append(out, Object{Key: key, Size: o.Size, Modified: o.LastModified})
	}
	if err := cctx.Err(); err != nil {
		return nil, fmt.Errorf("objstore: list %s%s: %w", s.name, prefix, s.callErr(cctx, err))
	}
	// S3 lists in UTF-8 binary order already; not every compatible
	// service does, and callers rely on the order.
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (s *S3) Delete(ctx context.Context, key string) error {
	k, err := s.objectKey(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: delete %s: %w", key, err)
	}
	cctx, _, done := s.callCtx(ctx, 0)
	defer done()
	// S3 answers 204 for a missing key; some compatible services say
	// NoSuchKey, which is not an error here either.
	if err := s.client.RemoveObject(cctx, s.bucket, k, minio.RemoveObjectOptions{}); err != nil &&
		minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		return fmt.Errorf("objstore: delete %s%s: %w", s.name, key, s.callErr(cctx, err))
	}
	return nil
}

// Close drops idle connections; calls in flight finish on their own.
func (s *S3) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}
