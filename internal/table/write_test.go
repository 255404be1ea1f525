package table

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/iceberg-go"
	itable "github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/ocsf/ocsfschema"
)

// TestPartsSameRows: a commit's rows written a batch per partition, each
// file with only the columns of its class and those its rows fill
// (parts, appendBatches), read back through iceberg-go's scan exactly
// as the same records written the plain way, one batch of every column
// through Transaction.Append; a snapshot per commit; and each file holds
// the columns it should. The records: the three classes over two days, an
// Authentication event with a Process Activity attribute, values of the
// wrong type, a class without columns, an event without time or class,
// and a record that is not JSON.
func TestPartsSameRows(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := objstore.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	cat := NewCatalog(ctx, store, "file://"+dir)
	sc := unionSchema(true)
	spec, err := newSpec(sc)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	add := func(v string) {
		recs = append(recs, &kgo.Record{Partition: int32(len(recs) % 2), Offset: int64(len(recs)), Value: []byte(v),
			Timestamp: time.Date(2026, 11, 3, 1, 0, 0, 0, time.UTC)})
	}
	for i := range 150 {
		add(string(benchEvent(i * 1201))) // the three classes over 50 hours: three days
	}
	add(`{"class_uid":3002,"time":1764590400000,"user":{"name":"eve"},"process":{"pid":7,"name":"sshd"}}`)
	add(`{"class_uid":3002,"time":1764590400000,"user":{"name":"mallory","type_id":"admin"},"src_endpoint":{"ip":"10.9.9.9","port":22.5},"logon_type_id":"2","service":7}`)
	add(`{"class_uid":9999,"time":1764590400000,"message":"a class without columns","process":{"pid":8}}`)
	add(`{"message":"no time, no class","user":{"name":"x"}}`)
	add(`{"class_uid":"3002","time":"yesterday"}`)
	add("not json at all")

	write := func(name string, parted bool) *itable.Table {
		t.Helper()
		tbl, err := cat.Create(ctx, Ident(name), sc, spec, tableProperties(name))
		if err != nil {
			t.Fatal(err)
		}
		// Two commits: the first of the first two days, the second of the
		// second and third (the first day's builders serve the third's).
		var p *parts
		if parted {
			if p, err = newParts(tbl.Schema(), baseColumns, ocsfschema.Load()); err != nil {
				t.Fatal(err)
			}
			defer p.release()
		}
		batches := 0
		for _, commit := range [][]*kgo.Record{recs[:100], recs[100:]} {
			var tx *itable.Transaction
			if parted {
				for _, r := range commit {
					p.scan(r)
					p.append(r)
				}
				recs := p.records()
				batches += len(recs)
				if tx, err = appendBatches(ctx, cat, tbl, recs, iceberg.Properties{"vigil.test": name}); err != nil {
					t.Fatal(err)
				}
			} else {
				rw, err := newRows(tbl.Schema(), baseColumns, len(commit))
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range commit {
					rw.scan(r)
					rw.append(r)
				}
				rec := rw.record()
				rw.release()
				rdr, err := array.NewRecordReader(rec.Schema(), []arrow.RecordBatch{rec})
				if err != nil {
					t.Fatal(err)
				}
				tx = tbl.NewTransaction()
				err = tx.Append(ctx, rdr, iceberg.Properties{"vigil.test": name})
				rdr.Release()
				rec.Release()
				if err != nil {
					t.Fatal(err)
				}
			}
			if tbl, err = tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if parted && batches < 14 {
			t.Fatalf("%d batches, want one per day and class of each commit (14 or more)", batches)
		}
		return tbl
	}
	plain, parted := write("plain", false), write("parted", true)

	if n := len(parted.Metadata().Snapshots()); n != 2 {
		t.Errorf("%d snapshots, want 2: one per commit", n)
	}
	if got := parted.CurrentSnapshot().Summary.Properties["vigil.test"]; got != "parted" {
		t.Errorf("snapshot summary vigil.test = %q", got)
	}
	want, got := scanRows(t, plain), scanRows(t, parted)
	if len(want) != len(recs) {
		t.Fatalf("plain table: %d rows, want %d", len(want), len(recs))
	}
	for off, w := range want {
		if g, ok := got[off]; !ok {
			t.Errorf("offset %d: missing", off)
		} else if g != w {
			t.Errorf("offset %d:\n got %s\nwant %s", off, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d rows, want %d", len(got), len(want))
	}

	// The files: an Authentication file has Authentication's columns
	// (logon_type_id, null in every row of the events here) and not
	// Process Activity's (exit_code), but process where a row has one.
	tasks, err := parted.Scan().PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var sawProcess bool
	for _, task := range tasks {
		path := strings.TrimPrefix(task.File.FilePath(), "file://")
		cols := parquetColumns(t, path)
		class := task.File.Partition()[1001]
		switch class {
		case int32(3002):
			if !slices.Contains(cols, "logon_type_id") || slices.Contains(cols, "exit_code") {
				t.Errorf("%s: columns %v: want logon_type_id, not exit_code", path, cols)
			}
			sawProcess = sawProcess || slices.Contains(cols, "process")
		case int32(1007):
			if !slices.Contains(cols, "exit_code") || slices.Contains(cols, "logon_type_id") {
				t.Errorf("%s: columns %v: want exit_code, not logon_type_id", path, cols)
			}
		}
		if !slices.Contains(cols, "raw") || !slices.Contains(cols, "kafka_key") {
			t.Errorf("%s: columns %v: want every base column", path, cols)
		}
	}
	if !sawProcess {
		t.Error("no Authentication file has the process column of the event that has one")
	}
}

// scanRows reads the table through iceberg-go's scan: each row as JSON,
// by Kafka offset.
func scanRows(t *testing.T, tbl *itable.Table) map[int64]string {
	t.Helper()
	at, err := tbl.Scan().ToArrowTable(context.Background())
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	defer at.Release()
	tr := array.NewTableReader(at, 0)
	defer tr.Release()
	out := map[int64]string{}
	for tr.Next() {
		rec := tr.RecordBatch()
		offsets := rec.Column(rec.Schema().FieldIndices("kafka_offset")[0]).(*array.Int64)
		for i := range int(rec.NumRows()) {
			row := map[string]any{}
			for j, f := range rec.Schema().Fields() {
				row[f.Name] = rec.Column(j).GetOneForMarshal(i)
			}
			b, err := json.Marshal(row)
			if err != nil {
				t.Fatal(err)
			}
			out[offsets.Value(i)] = string(b)
		}
	}
	return out
}

// parquetColumns are the top-level columns of a Parquet file.
func parquetColumns(t *testing.T, path string) []string {
	t.Helper()
	r, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer r.Close()
	root := r.MetaData().Schema.Root()
	var out []string
	for i := range root.NumFields() {
		out = append(out, root.Field(i).Name())
	}
	return out
}
