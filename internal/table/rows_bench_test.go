package table

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/ocsf/ocsfschema"
)

// BenchmarkAppend writes batches of BenchmarkRows' events into a table
// in a local directory, as a commit does (rows, Parquet, manifests; not
// the metadata version),
// with the base columns alone and with the three classes' columns.
func BenchmarkAppend(b *testing.B) {
	for _, classes := range []bool{false, true} {
		b.Run(fmt.Sprintf("classes=%v", classes), func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			store, err := objstore.OpenDir(dir)
			if err != nil {
				b.Fatal(err)
			}
			s := unionSchema(classes)
			spec, err := newSpec(s)
			if err != nil {
				b.Fatal(err)
			}
			cat := NewCatalog(ctx, store, "file://"+dir)
			tbl, err := cat.Create(ctx, Ident("bench"), s, spec, tableProperties("bench"))
			if err != nil {
				b.Fatal(err)
			}
			const batch = 20000
			var recs []*kgo.Record
			for i := range batch {
				recs = append(recs, &kgo.Record{Value: benchEvent(i), Timestamp: time.Now()})
			}
			rw, err := newParts(tbl.Schema(), slices.Clone(baseColumns), ocsfschema.Load())
			if err != nil {
				b.Fatal(err)
			}
			defer rw.release()
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				r := recs[n%batch]
				rw.scan(r)
				rw.append(r)
				if rw.n == batch || n == b.N-1 {
					if _, err := appendBatches(ctx, cat, tbl, rw.records(), nil); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkRows builds rows of events of three classes with the union of
// their columns, a batch per partition: the maintainer's per-record work
// before Parquet.
func BenchmarkRows(b *testing.B) {
	s := unionSchema(true)
	var recs []*kgo.Record
	for i := range 3000 {
		recs = append(recs, &kgo.Record{Value: benchEvent(i), Timestamp: time.Now()})
	}
	rw, err := newParts(s, slices.Clone(baseColumns), ocsfschema.Load())
	if err != nil {
		b.Fatal(err)
	}
	defer rw.release()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		r := recs[n%len(recs)]
		rw.scan(r)
		rw.append(r)
		if rw.n == 3000 {
			for _, rec := range rw.records() {
				rec.Release()
			}
		}
	}
}

func benchEvent(i int) []byte {
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second).UnixMilli()
	switch i % 3 {
	case 0:
		return fmt.Appendf(nil, `{"class_uid":3002,"category_uid":3,"activity_id":1,"time":%d,"severity_id":1,"status_id":2,"user":{"name":"user-%d","uid":"S-1-5-21-%d"},"src_endpoint":{"ip":"10.0.0.1","port":%d},"device":{"hostname":"ws","os":{"name":"Linux"}},"auth_protocol":"password","message":"Failed password","metadata":{"version":"1.3.0","product":{"name":"Linux","vendor_name":"OpenSSH"},"log_name":"auth","uid":"%016x"}}`, at, i, i, 1024+i, i)
	case 1:
		return fmt.Appendf(nil, `{"class_uid":1007,"category_uid":1,"activity_id":1,"time":%d,"severity_id":1,"process":{"pid":%d,"name":"curl","cmd_line":"curl -s https://x","file":{"path":"/usr/bin/curl"},"parent_process":{"pid":%d,"name":"bash"}},"actor":{"user":{"name":"user-%d"}},"metadata":{"version":"1.3.0","product":{"name":"auditd","vendor_name":"Linux"},"uid":"%016x"}}`, at, i, i, i, i)
	}
	return fmt.Appendf(nil, `{"class_uid":4001,"category_uid":4,"activity_id":6,"time":%d,"severity_id":1,"src_endpoint":{"ip":"10.0.0.2","port":%d},"dst_endpoint":{"ip":"203.0.113.1","port":443},"connection_info":{"protocol_name":"tcp","direction_id":2},"traffic":{"bytes_in":%d,"bytes_out":%d},"metadata":{"version":"1.3.0","product":{"name":"Zeek","vendor_name":"Zeek"},"uid":"C%015x"}}`, at, 1024+i, i, i, i)
}

// renumber gives fields and their nested fields unique ids.
func renumber(fs []iceberg.NestedField, id *int) []iceberg.NestedField {
	out := slices.Clone(fs)
	for i := range out {
		*id++
		out[i].ID = *id
		if st, ok := out[i].Type.(*iceberg.StructType); ok {
			out[i].Type = &iceberg.StructType{FieldList: renumber(st.FieldList, id)}
		}
	}
	return out
}

// unionSchema is the schema of the base columns and, with classes, those
// of Authentication, Process Activity and Network Activity.
func unionSchema(classes bool) *iceberg.Schema {
	var fields []iceberg.NestedField
	names := map[string]bool{}
	for _, c := range baseColumns {
		fields = append(fields, iceberg.NestedField{Name: c.name, Type: c.typ, Required: c.required})
		names[c.name] = true
	}
	for _, uid := range []int{3002, 1007, 4001} {
		if !classes {
			break
		}
		for _, f := range classFields(ocsfschema.Load(), uid) {
			if !names[f.Name] {
				names[f.Name] = true
				fields = append(fields, f)
			}
		}
	}
	id := 0
	return iceberg.NewSchema(0, renumber(fields, &id)...)
}
