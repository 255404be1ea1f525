package table

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/ocsf"
	"github.com/vigilhq/vigil/internal/ocsf/ocsfschema"
)

func TestPromotedColumnTypes(t *testing.T) {
	sc := ocsfschema.Load()
	for path, want := range map[string]iceberg.Type{
		"src_endpoint.port":     iceberg.PrimitiveTypes.Int32,
		"src_endpoint.ip":       iceberg.PrimitiveTypes.String,
		"traffic.bytes_in":      iceberg.PrimitiveTypes.Int64,
		"is_remote":             iceberg.PrimitiveTypes.Bool,
		"process.created_time":  iceberg.PrimitiveTypes.TimestampTz,
		"actor.user.name":       iceberg.PrimitiveTypes.String,
		"user":                  iceberg.PrimitiveTypes.String, // an object: JSON
		"metadata.profiles":     iceberg.PrimitiveTypes.String, // an array: JSON
		"vendor.custom.field":   iceberg.PrimitiveTypes.String, // not OCSF
		"src_endpoint.port.sub": iceberg.PrimitiveTypes.String,
	} {
		c := promotedColumn(sc, path)
		if !c.typ.Equals(want) || c.path != path {
			t.Errorf("promotedColumn(%s) = %s %s, want %s", path, c.name, c.typ, want)
		}
	}
}

// The union of classes is consistent: a top-level name has the same type
// in every class, so whichever class adds a column, the next finds it as
// it would have added it.
func TestClassFieldsUnion(t *testing.T) {
	sc := ocsfschema.Load()
	seen := map[string]iceberg.Type{}
	from := map[string]int{}
	for _, c := range append(ocsf.Classes(), ocsf.DetectionFinding) {
		fs := classFields(sc, c.UID)
		if len(fs) == 0 {
			t.Errorf("class %s has no columns", c.Name)
		}
		for _, f := range fs {
			if t0, ok := seen[f.Name]; ok && !t0.Equals(f.Type) {
				t.Errorf("%s: %s in class %d, %s in class %d", f.Name, t0, from[f.Name], f.Type, c.UID)
			}
			seen[f.Name], from[f.Name] = f.Type, c.UID
			for _, b := range baseColumns {
				if b.name == f.Name {
					t.Errorf("class %s redefines base column %s", c.Name, f.Name)
				}
			}
		}
	}
	if _, ok := seen["process"]; !ok {
		t.Error("no class has process")
	}
	t.Logf("%d top-level columns in the union of %d classes", len(seen), len(ocsf.Classes())+1)
}

// leaves counts the primitive fields under fs: the Parquet columns.
func leaves(fs []iceberg.NestedField) int {
	n := 0
	for _, f := range fs {
		if st, ok := f.Type.(*iceberg.StructType); ok {
			n += leaves(st.FieldList)
		} else {
			n++
		}
	}
	return n
}

func TestClassLeaves(t *testing.T) {
	sc := ocsfschema.Load()
	seen := map[string]iceberg.NestedField{}
	for _, uid := range []int{3002, 1007, 4001} {
		fs := classFields(sc, uid)
		t.Logf("class %d: %d columns, %d leaves", uid, len(fs), leaves(fs))
		for _, f := range fs {
			seen[f.Name] = f
		}
	}
	var all []iceberg.NestedField
	for _, f := range seen {
		all = append(all, f)
	}
	t.Logf("union of 3002, 1007, 4001: %d columns, %d leaves", len(all), leaves(all))
}

// TestRowsNullRuns: nulls are appended lazily, in runs; a struct's
// fields owe nulls for rows where the struct has a value without them,
// the struct for rows where it has none, and each row still reads back
// its own values, across batches.
func TestRowsNullRuns(t *testing.T) {
	sc := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "src_endpoint", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 3, Name: "ip", Type: iceberg.PrimitiveTypes.String},
			{ID: 4, Name: "port", Type: iceberg.PrimitiveTypes.Int32},
		}}},
		iceberg.NestedField{ID: 2, Name: "x", Type: iceberg.PrimitiveTypes.Int64},
	)
	rw, err := newRows(sc, nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer rw.release()
	// Per row: the struct's presence, ip, port and x ("" / 0 for null).
	type want struct {
		ep      bool
		ip      string
		port, x int64
		hasPort bool
		hasX    bool
	}
	batches := []struct {
		events []string
		want   []want
	}{
		{[]string{
			`{"src_endpoint":{"ip":"a"}}`,
			`{}`,
			`{"src_endpoint":null,"x":"not a number"}`,
			`{"src_endpoint":{"port":1}}`,
			`{"x":5}`,
			`{"src_endpoint":{"ip":"b","port":2},"x":6}`,
			`{"src_endpoint":{"ip":"c"}}`,
		}, []want{
			{ep: true, ip: "a"}, {}, {}, {ep: true, port: 1, hasPort: true}, {x: 5, hasX: true},
			{ep: true, ip: "b", port: 2, hasPort: true, x: 6, hasX: true}, {ep: true, ip: "c"},
		}},
		{[]string{`{}`, `{"src_endpoint":{"port":3}}`, `{}`}, []want{{}, {ep: true, port: 3, hasPort: true}, {}}},
	}
	for bi, batch := range batches {
		for _, ev := range batch.events {
			rec := &kgo.Record{Value: []byte(ev)}
			rw.scan(rec)
			rw.append(rec)
		}
		rec := rw.record()
		if int(rec.NumRows()) != len(batch.want) {
			t.Fatalf("batch %d: %d rows, want %d", bi, rec.NumRows(), len(batch.want))
		}
		ep := rec.Column(0).(*array.Struct)
		ips, ports := ep.Field(0).(*array.String), ep.Field(1).(*array.Int32)
		xs := rec.Column(1).(*array.Int64)
		for i, w := range batch.want {
			got := want{ep: ep.IsValid(i), hasPort: ports.IsValid(i), hasX: xs.IsValid(i)}
			if ips.IsValid(i) {
				got.ip = ips.Value(i)
			}
			if got.hasPort {
				got.port = int64(ports.Value(i))
			}
			if got.hasX {
				got.x = xs.Value(i)
			}
			if got != w {
				t.Errorf("batch %d row %d (%s): got %+v, want %+v", bi, i, batch.events[i], got, w)
			}
		}
		rec.Release()
	}
}
