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
	_ icebergio.ListableIO  = (*objIO)(nil)
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
	return &objFile{Reader: bytes.NewReader(data), info: objInfo{name: name, size: int64(len(data))}}, nil
}

// WalkDir lists the objects under root, for iceberg-go's orphan-file
// planner: root first (as a directory), then every object as a file with
// its size and the store's modification time, which is what the
// planner's age cutoff reads.
func (o *objIO) WalkDir(root string, fn fs.WalkDirFunc) error {
	root = strings.TrimRight(root, "/")
	k, err := o.key("walk", root)
	if err != nil {
		return err
	}
	if err := fn(root, fs.FileInfoToDirEntry(objInfo{name: root, dir: true}), nil); err != nil {
		if errors.Is(err, fs.SkipDir) || errors.Is(err, fs.SkipAll) {
			return nil
		}
		return err
	}
	objs, err := o.store.List(o.ctx, k+"/")
	if err != nil {
		return fn(root, nil, &fs.PathError{Op: "walk", Path: root, Err: err})
	}
	for _, obj := range objs {
		err := fn(o.base+"/"+obj.Key, fs.FileInfoToDirEntry(objInfo{name: obj.Key, size: obj.Size, mod: obj.Modified}), nil)
		if errors.Is(err, fs.SkipAll) {
			return nil
		}
		if err != nil && !errors.Is(err, fs.SkipDir) {
			return err
		}
	}
	return nil
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
	info objInfo
}

func (f *objFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *objFile) Close() error               { return nil }

// objInfo describes an object, or a directory (a key prefix) when dir.
type objInfo struct {
	name string
	size int64
	mod  time.Time
	dir  bool
}

func (i objInfo) Name() string { return i.name[strings.LastIndexByte(i.name, '/')+1:] }
func (i objInfo) Size() int64  { return i.size }
func (i objInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}
func (i objInfo) ModTime() time.Time { return i.mod }
func (i objInfo) IsDir() bool        { return i.dir }
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
