package table

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	itable "github.com/apache/iceberg-go/table"

	"github.com/vigilhq/vigil/internal/objstore"
)

// Warehouse is the key prefix of the tables in the object store; a
// table's directory is Warehouse/Namespace/<topic>.
const (
	Warehouse = "tables"
	Namespace = "vigil"
)

// ErrNoTable is returned (wrapped) by Load for a table not created yet.
var ErrNoTable = errors.New("table: no such table")

// ErrCreateNotAtomic is CheckCreate's finding that the object store
// overwrote an object a conditional create should have refused.
var ErrCreateNotAtomic = errors.New("table: the object store overwrote an object a conditional create (If-None-Match: *) should have refused")

// Catalog is a Hadoop-style file catalog over the object store: a
// table's versions are metadata/v<N>.metadata.json under its directory,
// with metadata/version-hint.text naming the newest for engines that
// read the hint (Spark's and Trino's Hadoop catalogs, DuckDB's
// iceberg_scan, iceberg-go's hadoop package). Vigil itself finds the
// newest version by listing, which an object store answers
// consistently, and uses the hint only as other engines do.
//
// A commit creates v<N+1> with the object store's conditional create,
// which fails if v<N+1> exists: the atomic step the Hadoop catalog takes
// from a filesystem's rename, so a second committer can never replace a
// version (see the package doc).
type Catalog struct {
	store objstore.Store
	io    *objIO
	// BeforeCommit, if set, runs after a commit's data files and
	// manifests are written and before its metadata version is: an error
	// aborts the commit there. Tests crash the committer with it.
	BeforeCommit func() error
}

// NewCatalog returns the catalog of the tables in store, whose URL (a
// file:// directory or s3://bucket/prefix) is base: locations in the
// table metadata are base + "/" + key, so that other engines find the
// files.
func NewCatalog(ctx context.Context, store objstore.Store, base string) *Catalog {
	return &Catalog{store: store, io: &objIO{ctx: ctx, store: store, base: strings.TrimRight(base, "/")}}
}

// Ident is the identifier of a topic's table.
func Ident(topic string) itable.Identifier { return itable.Identifier{Namespace, topic} }

func (c *Catalog) dir(ident itable.Identifier) string {
	return Warehouse + "/" + strings.Join(ident, "/")
}

// Location is the table's directory as other engines name it.
func (c *Catalog) Location(ident itable.Identifier) string { return c.io.base + "/" + c.dir(ident) }

func (c *Catalog) fsys(context.Context) (icebergio.IO, error) { return c.io, nil }

// newest finds the table's newest metadata version by listing; 0 if none.
func (c *Catalog) newest(ctx context.Context, ident itable.Identifier) (int, error) {
	vs, err := c.versions(ctx, ident)
	if err != nil || len(vs) == 0 {
		return 0, err
	}
	return slices.Max(vs), nil
}

// versions lists the table's metadata versions.
func (c *Catalog) versions(ctx context.Context, ident itable.Identifier) ([]int, error) {
	prefix := c.dir(ident) + "/metadata/v"
	objs, err := c.store.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("table: list %s: %w", prefix, err)
	}
	var vs []int
	for _, o := range objs {
		s, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, prefix), ".metadata.json")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			vs = append(vs, n)
		}
	}
	return vs, nil
}

func (c *Catalog) metadataKey(ident itable.Identifier, v int) string {
	return fmt.Sprintf("%s/metadata/v%d.metadata.json", c.dir(ident), v)
}

// load reads the newest metadata version.
func (c *Catalog) load(ctx context.Context, ident itable.Identifier) (itable.Metadata, string, int, error) {
	v, err := c.newest(ctx, ident)
	if err != nil {
		return nil, "", 0, err
	}
	if v == 0 {
		return nil, "", 0, fmt.Errorf("%w: %s", ErrNoTable, strings.Join(ident, "."))
	}
	key := c.metadataKey(ident, v)
	raw, err := c.store.GetRange(ctx, key, 0, -1)
	if err != nil {
		return nil, "", 0, fmt.Errorf("table: read %s: %w", key, err)
	}
	md, err := itable.ParseMetadataBytes(raw)
	if err != nil {
		return nil, "", 0, fmt.Errorf("table: parse %s: %w", key, err)
	}
	return md, c.io.base + "/" + key, v, nil
}

// LoadTable implements iceberg-go's table.CatalogIO.
func (c *Catalog) LoadTable(ctx context.Context, ident itable.Identifier) (*itable.Table, error) {
	md, loc, _, err := c.load(ctx, ident)
	if err != nil {
		return nil, err
	}
	return itable.New(ident, md, loc, c.fsys, c), nil
}

// Create creates the table with its first metadata version.
func (c *Catalog) Create(ctx context.Context, ident itable.Identifier, sc *iceberg.Schema, spec iceberg.PartitionSpec, props iceberg.Properties) (*itable.Table, error) {
	md, err := itable.NewMetadata(sc, &spec, itable.UnsortedSortOrder, c.Location(ident), props)
	if err != nil {
		return nil, fmt.Errorf("table: new metadata of %s: %w", strings.Join(ident, "."), err)
	}
	loc, err := c.put(ctx, ident, 1, md)
	if err != nil {
		return nil, err
	}
	return itable.New(ident, md, loc, c.fsys, c), nil
}

// CommitTable implements iceberg-go's table.CatalogIO: it checks the
// transaction's requirements against the newest version and writes the
// next.
func (c *Catalog) CommitTable(ctx context.Context, ident itable.Identifier, reqs []itable.Requirement, updates []itable.Update) (itable.Metadata, string, error) {
	cur, curLoc, v, err := c.load(ctx, ident)
	if err != nil {
		return nil, "", err
	}
	for _, r := range reqs {
		if err := r.Validate(cur); err != nil {
			return nil, "", fmt.Errorf("table: commit to %s: %w: %w", strings.Join(ident, "."), itable.ErrCommitFailed, err)
		}
	}
	md, err := itable.UpdateTableMetadata(cur, updates, curLoc)
	if err != nil {
		return nil, "", fmt.Errorf("table: apply commit to %s: %w", strings.Join(ident, "."), err)
	}
	if c.BeforeCommit != nil {
		if err := c.BeforeCommit(); err != nil {
			return nil, "", err
		}
	}
	loc, err := c.put(ctx, ident, v+1, md)
	if err != nil {
		return nil, "", err
	}
	c.prune(ctx, ident, v+1, md)
	return md, loc, nil
}

// prune deletes the metadata versions older than the newest
// write.metadata.previous-versions-max (100 by default), as Iceberg's
// catalogs do with write.metadata.delete-after-commit.enabled: a commit
// every few seconds would otherwise pile up versions without end, and
// the listing that finds the newest with them. Only old versions of the
// metadata go: the snapshots and files they name are the newest's too,
// until snapshot expiry. A failure is left for the next commit.
func (c *Catalog) prune(ctx context.Context, ident itable.Identifier, newest int, md itable.Metadata) {
	keep := md.Properties().GetInt(itable.MetadataPreviousVersionsMaxKey, itable.MetadataPreviousVersionsMaxDefault)
	if newest <= keep+1 {
		return
	}
	vs, err := c.versions(ctx, ident)
	if err != nil {
		return
	}
	for _, v := range vs {
		if v < newest-keep {
			c.store.Delete(ctx, c.metadataKey(ident, v))
		}
	}
}

// put writes metadata version v, refusing to replace one, then the hint.
// The refusal is the object store's Create, atomic where the store
// honours it (CheckCreate): of two committers writing the same version,
// one fails, rebuilds from the version the other wrote and finds its
// offsets moved on.
func (c *Catalog) put(ctx context.Context, ident itable.Identifier, v int, md itable.Metadata) (string, error) {
	key := c.metadataKey(ident, v)
	raw, err := json.Marshal(md)
	if err != nil {
		return "", fmt.Errorf("table: encode metadata of %s: %w", strings.Join(ident, "."), err)
	}
	if err := c.store.Create(ctx, key, raw); errors.Is(err, objstore.ErrExist) {
		return "", fmt.Errorf("table: %w: %s exists: another committer wrote this version", itable.ErrCommitFailed, key)
	} else if err != nil {
		return "", fmt.Errorf("table: put %s: %w", key, err)
	}
	// The hint is for other engines; a failure to write it leaves them a
	// version behind until the next commit, and costs Vigil nothing.
	_ = c.store.Put(ctx, c.dir(ident)+"/metadata/version-hint.text", []byte(strconv.Itoa(v)))
	return c.io.base + "/" + key, nil
}

// CheckCreate reports whether the object store refuses to create an
// object that exists (objstore.Store.Create): an S3-compatible service
// that ignores If-None-Match overwrites instead, and then two committers
// of a table, briefly both running while its ownership moves, could
// both write the same version. It creates one probe object twice.
func (c *Catalog) CheckCreate(ctx context.Context) error {
	key := fmt.Sprintf("%s/.create-probe-%d", Warehouse, time.Now().UnixNano())
	if err := c.store.Create(ctx, key, []byte("1")); err != nil {
		return fmt.Errorf("table: probe conditional create: %w", err)
	}
	defer c.store.Delete(context.WithoutCancel(ctx), key)
	err := c.store.Create(ctx, key, []byte("2"))
	switch {
	case errors.Is(err, objstore.ErrExist):
		return nil
	case err == nil:
		return ErrCreateNotAtomic
	default:
		return fmt.Errorf("table: probe conditional create: %w", err)
	}
}
