package table

import (
	"context"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	itable "github.com/apache/iceberg-go/table"
)

// appendBatches writes a commit's batches (see writeFiles) and returns a
// transaction of tbl that adds their files as one snapshot, with props
// in its summary.
func appendBatches(ctx context.Context, cat *Catalog, tbl *itable.Table, recs []arrow.RecordBatch, props iceberg.Properties) (*itable.Transaction, error) {
	files, err := writeFiles(ctx, cat, tbl, recs)
	if err != nil {
		return nil, err
	}
	tx := tbl.NewTransaction()
	// The files are new (no duplicate to look for in the manifests), and
	// the table's schema names its columns (no name mapping to add).
	if err := tx.AddDataFiles(ctx, files, props, itable.WithoutDuplicateCheck(), itable.WithoutAutoNameMapping()); err != nil {
		return nil, fmt.Errorf("add data files: %w", err)
	}
	return tx, nil
}

// writeFiles writes a commit's batches (parts.records: one partition
// each, with the columns its rows fill) as data files of tbl, and
// releases them. A batch's file has the batch's columns: a column it
// leaves out (another class's, null in each of its rows) reads as null,
// as it does in files written before the column was added. The files
// belong to no snapshot until a transaction adds them.
//
// iceberg-go writes a file with every column of the table's current
// schema, nulls for those its input lacks, and each costs the Parquet
// writer per row. So the batches are written through a copy of the
// table's metadata whose current schema is theirs: the same field ids,
// the same spec, properties and location.
func writeFiles(ctx context.Context, cat *Catalog, tbl *itable.Table, recs []arrow.RecordBatch) ([]iceberg.DataFile, error) {
	// Batches of the same columns (a class's partitions) are written
	// together: iceberg-go writes them in parallel.
	var order []string
	groups := map[string][]arrow.RecordBatch{}
	for _, rec := range recs {
		k := columnsKey(rec.Schema())
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], rec)
	}
	var files []iceberg.DataFile
	var err error
	for _, k := range order {
		batches := groups[k]
		if err != nil {
			for _, rec := range batches {
				rec.Release()
			}
			continue
		}
		var view *itable.Table
		if view, err = projected(cat, tbl, batches[0].Schema()); err != nil {
			for _, rec := range batches {
				rec.Release()
			}
			continue
		}
		// WriteRecords releases each batch it takes.
		next := 0
		seq := func(yield func(arrow.RecordBatch, error) bool) {
			for next < len(batches) {
				next++
				if !yield(batches[next-1], nil) {
					return
				}
			}
		}
		for df, werr := range itable.WriteRecords(ctx, view, batches[0].Schema(), seq) {
			if werr != nil {
				err = werr
				break
			}
			files = append(files, df)
		}
		for _, rec := range batches[next:] {
			rec.Release()
		}
	}
	return files, err
}

func columnsKey(as *arrow.Schema) string {
	names := make([]string, as.NumFields())
	for i, f := range as.Fields() {
		names[i] = f.Name
	}
	return strings.Join(names, "\x00")
}

// projected is tbl with a current schema of the top-level columns of as
// (in the table's schema, with their ids), for writing files of those
// columns alone; tbl itself where as has them all. Nothing commits it.
func projected(cat *Catalog, tbl *itable.Table, as *arrow.Schema) (*itable.Table, error) {
	sc := tbl.Schema()
	if as.NumFields() == sc.NumFields() {
		return tbl, nil
	}
	byName := make(map[string]iceberg.NestedField, sc.NumFields())
	for _, f := range sc.Fields() {
		byName[f.Name] = f
	}
	fields := make([]iceberg.NestedField, 0, as.NumFields())
	for _, f := range as.Fields() {
		nf, ok := byName[f.Name]
		if !ok {
			return nil, fmt.Errorf("table: column %s is not in the table's schema", f.Name)
		}
		fields = append(fields, nf)
	}
	b, err := itable.MetadataBuilderFromBase(tbl.Metadata(), tbl.MetadataLocation())
	if err != nil {
		return nil, fmt.Errorf("table: metadata of %s: %w", strings.Join(tbl.Identifier(), "."), err)
	}
	if err := b.AddSchema(iceberg.NewSchema(0, fields...)); err != nil {
		return nil, fmt.Errorf("table: schema of a batch: %w", err)
	}
	if err := b.SetCurrentSchemaID(-1); err != nil {
		return nil, fmt.Errorf("table: schema of a batch: %w", err)
	}
	md, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("table: metadata of a batch: %w", err)
	}
	return itable.New(tbl.Identifier(), md, tbl.MetadataLocation(), cat.fsys, cat), nil
}
