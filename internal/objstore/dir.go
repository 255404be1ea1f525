package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Dir is a Store over a local directory. It is written by hand rather than
// with gocloud.dev's fileblob because the WAL is trimmed as soon as Put
// returns, so Put must fsync the file and its directory; fileblob does not.
type Dir struct {
	root string
}

var _ Store = (*Dir)(nil)

// OpenDir opens (creating if needed) a directory store.
func OpenDir(root string) (*Dir, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("objstore: create %s: %w", root, err)
	}
	return &Dir{root: root}, nil
}

// Root is the directory holding the objects.
func (d *Dir) Root() string { return d.root }

func (d *Dir) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "..") || strings.Contains(key, "\\") {
		return "", fmt.Errorf("objstore: invalid key %q", key)
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

func (d *Dir) Put(ctx context.Context, key string, data []byte) error {
	return d.write(ctx, key, data, false)
}

// Create links the written file to its name, which fails if the name
// exists: a rename would replace it.
func (d *Dir) Create(ctx context.Context, key string, data []byte) error {
	return d.write(ctx, key, data, true)
}

func (d *Dir) write(ctx context.Context, key string, data []byte, exclusive bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := d.path(key)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("objstore: put %s: %w", key, err)
	}
	// Write to a temporary name and rename, so a reader never sees a
	// partial object and a crash leaves either nothing or the whole object.
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("objstore: put %s: %w", key, err)
	}
	tmp := f.Name()
	// CreateTemp makes 0600 files; objects are as readable as any data file.
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("objstore: put %s: %w", key, err)
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("objstore: put %s: %w", key, err)
	}
	direct, err := writeDirect(tmp, data)
	if err != nil {
		return fail(err)
	}
	for off := direct; off < len(data); off += flushChunk {
		chunk := data[off:min(off+flushChunk, len(data))]
		if _, err := f.WriteAt(chunk, int64(off)); err != nil {
			return fail(err)
		}
		if err := flushRange(f, int64(off), int64(len(chunk))); err != nil {
			return fail(err)
		}
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("objstore: put %s: %w", key, err)
	}
	if exclusive {
		err := os.Link(tmp, p)
		os.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("objstore: create %s: %w", key, ErrExist)
		}
		if err != nil {
			return fmt.Errorf("objstore: create %s: %w", key, err)
		}
		return syncDir(dir)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("objstore: put %s: %w", key, err)
	}
	return syncDir(dir)
}

// flushChunk is how much of an object Put writes back at a time. Measured
// on the development machine (150 KiB WAL fsyncs every millisecond while
// a 20 MiB object is written every 250 ms): WAL fsync p99 0.9 ms alone,
// 5.7-6.6 ms beside one fsync per object, 1.3-3 ms with 128 KiB-1 MiB
// chunks.
const flushChunk = 512 << 10

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("objstore: sync dir %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("objstore: sync dir %s: %w", dir, err)
	}
	return nil
}

func (d *Dir) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("objstore: get %s: %w", key, ErrNotExist)
		}
		return nil, fmt.Errorf("objstore: get %s: %w", key, err)
	}
	defer f.Close()
	if length < 0 {
		st, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("objstore: get %s: %w", key, err)
		}
		length = max(st.Size()-off, 0)
	}
	buf := make([]byte, length)
	n, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("objstore: get %s [%d,+%d): %w", key, off, length, err)
	}
	return buf[:n], nil
}

func (d *Dir) List(ctx context.Context, prefix string) ([]Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Object
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".tmp-") {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return nil // removed while listing
		}
		out = append(out, Object{Key: key, Size: info.Size(), Modified: info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("objstore: list %q: %w", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (d *Dir) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("objstore: delete %s: %w", key, err)
	}
	return nil
}

func (d *Dir) Close() error { return nil }
