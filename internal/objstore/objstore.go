// Package objstore is the one interface over blob storage that holds every
// record durably. Backends: a local directory (the embedded default) and,
// for clusters, S3-compatible stores.
package objstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// ErrNotExist is returned (wrapped) for a missing object.
var ErrNotExist = errors.New("objstore: object does not exist")

// Object describes one stored object.
type Object struct {
	Key  string
	Size int64
}

// Store is a flat key space of immutable objects. Keys use '/' as separator.
type Store interface {
	// Put stores data under key durably: when Put returns nil the object
	// survives a crash of this process and of the machine.
	Put(ctx context.Context, key string, data []byte) error
	// GetRange reads length bytes at off; length < 0 reads to the end.
	// Reading past the end returns the bytes that exist.
	GetRange(ctx context.Context, key string, off, length int64) ([]byte, error)
	// List returns the objects whose key starts with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	Close() error
}

// Open opens the store named by rawURL: "file:///abs/dir", or a plain path.
func Open(ctx context.Context, rawURL string) (Store, error) {
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
	default:
		return nil, fmt.Errorf("objstore: unsupported object store scheme %q in %q (supported: file://, or a directory path)", u.Scheme, rawURL)
	}
}
