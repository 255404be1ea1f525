// Package objstore is the one interface over blob storage that holds every
// record durably. Backends: a local directory (the embedded default, dir.go)
// and, for clusters, S3-compatible stores (s3.go).
package objstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// ErrNotExist is returned (wrapped) for a missing object.
var ErrNotExist = errors.New("objstore: object does not exist")

// ErrExist is returned (wrapped) by Create for a key that holds an object.
var ErrExist = errors.New("objstore: object exists")

// Object describes one stored object.
type Object struct {
	Key  string
	Size int64
	// Modified is when the object was last written, as the store's
	// clock says.
	Modified time.Time
}

// Store is a flat key space of immutable objects. Keys use '/' as separator.
type Store interface {
	// Put stores data under key durably: when Put returns nil the object
	// survives a crash of this process and of the machine, and data is no
	// longer used, so the caller may reuse its memory.
	Put(ctx context.Context, key string, data []byte) error
	// Create is Put of a key that holds no object: if one exists, or
	// another Create of the key wins a race, it fails with ErrExist and
	// changes nothing. This is the one atomic check an object store
	// offers (S3's If-None-Match: *, a link on a filesystem); table
	// commits rely on it to refuse a version another committer wrote.
	// Objects are at most 64 MiB (one PUT).
	Create(ctx context.Context, key string, data []byte) error
	// GetRange reads length bytes at off; length < 0 reads to the end.
	// Reading past the end returns the bytes that exist.
	GetRange(ctx context.Context, key string, off, length int64) ([]byte, error)
	// List returns the objects whose key starts with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	Close() error
}

// Options are the settings of Open that must not be part of the URL,
// because the URL is logged: credentials.
type Options struct {
	// S3AccessKeyID and S3SecretAccessKey are explicit credentials for an
	// s3:// store; both or neither. Without them the AWS chain is used:
	// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, then the
	// shared files (~/.aws/credentials, ~/.aws/config, AWS_PROFILE), then
	// an EC2/ECS/EKS role.
	S3AccessKeyID     string
	S3SecretAccessKey string
	// S3CA, if set, is a PEM bundle the store's certificate is verified
	// against instead of the system's (a private CA in front of MinIO,
	// Ceph RGW, an on-premises gateway).
	S3CA string
}

// Open opens the store named by rawURL: "file:///abs/dir", a plain path,
// or "s3://bucket[/prefix][?params]" (see OpenS3 for the parameters).
func Open(ctx context.Context, rawURL string, opts Options) (Store, error) {
	if !strings.Contains(rawURL, "://") {
		abs, err := filepath.Abs(rawURL)
		if err != nil {
			return nil, fmt.Errorf("objstore: resolve %q: %w", rawURL, err)
		}
		return OpenDir(abs)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("objstore: parse url %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "file":
		return OpenDir(filepath.Join(u.Host, u.Path))
	case "s3":
		return OpenS3(ctx, u, opts)
	default:
		return nil, fmt.Errorf("objstore: unsupported object store scheme %q in %q (supported: file://, s3://, or a directory path)", u.Scheme, rawURL)
	}
}
