package table

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	icebergio "github.com/apache/iceberg-go/io"

	"github.com/vigilhq/vigil/internal/objstore"
)

// objIO is iceberg-go's file system over Vigil's object store: every
// file Iceberg names (metadata, manifest lists, manifests, data files)
// is an object whose key is its location less the store's base URL.
// Files are read whole and written whole (an object store has no
// appends); Vigil's data files are bounded by the commit size, so that
// is a few MB at a time.
type objIO struct {
	ctx   context.Context
	store objstore.Store
	base  string // the store's URL: file:///abs/dir or s3://bucket/prefix
}

var (
	_ icebergio.ReadFileIO  = (*objIO)(nil)
	_ icebergio.WriteFileIO = (*objIO)(nil)
)

func (o *objIO) key(op, name string) (string, error) {
	k, ok := strings.CutPrefix(name, o.base+"/")
	if !ok || k == "" {
		return "", &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("%w: not under the object store %s", fs.ErrInvalid, o.base)}
	}
	return k, nil
}

func (o *objIO) ReadFile(name string) ([]byte, error) {
	k, err := o.key("read", name)
	if err != nil {
		return nil, err
	}
	data, err := o.store.GetRange(o.ctx, k, 0, -1)
	if errors.Is(err, objstore.ErrNotExist) {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return data, nil
}

func (o *objIO) Open(name string) (icebergio.File, error) {
	data, err := o.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return &objFile{Reader: bytes.NewReader(data), name: name, size: int64(len(data))}, nil
}

func (o *objIO) Remove(name string) error {
	k, err := o.key("remove", name)
	if err != nil {
		return err
	}
	if err := o.store.Delete(o.ctx, k); err != nil {
		return &fs.PathError{Op: "remove", Path: name, Err: err}
	}
	return nil
}

func (o *objIO) WriteFile(name string, p []byte) error {
	k, err := o.key("write", name)
	if err != nil {
		return err
	}
	if err := o.store.Put(o.ctx, k, p); err != nil {
		return &fs.PathError{Op: "write", Path: name, Err: err}
	}
	return nil
}

func (o *objIO) Create(name string) (icebergio.FileWriter, error) {
	if _, err := o.key("create", name); err != nil {
		return nil, err
	}
	return &objWriter{io: o, name: name}, nil
}

// objFile is an object read into memory.
type objFile struct {
	*bytes.Reader
	name string
	size int64
}

func (f *objFile) Stat() (fs.FileInfo, error) { return objInfo{f}, nil }
func (f *objFile) Close() error               { return nil }

type objInfo struct{ f *objFile }

func (i objInfo) Name() string       { return i.f.name[strings.LastIndexByte(i.f.name, '/')+1:] }
func (i objInfo) Size() int64        { return i.f.size }
func (i objInfo) Mode() fs.FileMode  { return 0o444 }
func (i objInfo) ModTime() time.Time { return time.Time{} }
func (i objInfo) IsDir() bool        { return false }
func (i objInfo) Sys() any           { return nil }

// objWriter buffers a file and puts it as one object on Close: the
// object appears whole or not at all.
type objWriter struct {
	io   *objIO
	name string
	buf  bytes.Buffer
}

func (w *objWriter) Write(p []byte) (int, error)         { return w.buf.Write(p) }
func (w *objWriter) ReadFrom(r io.Reader) (int64, error) { return w.buf.ReadFrom(r) }
func (w *objWriter) Close() error                        { return w.io.WriteFile(w.name, w.buf.Bytes()) }
