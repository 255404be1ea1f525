package table

import (
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	itable "github.com/apache/iceberg-go/table"
	"github.com/tidwall/gjson"
	"github.com/twmb/franz-go/pkg/kgo"
)

// column is one column of a topic's table and where its value comes
// from: the Kafka record (kafka_*), an attribute of the OCSF event in
// the record's value, or the value itself (raw).
type column struct {
	name     string
	typ      iceberg.PrimitiveType
	required bool
	doc      string
	// path is the event's attribute (a dotted path) for OCSF columns;
	// head is its first part, rest the others.
	path, head, rest string
}

// baseColumns are the columns every table has, in order: the record's
// position, then the attributes OCSF's base event gives every class
// (the class's own attributes stay in raw unless promoted with
// tablecfg.Columns), then the record's value as it was produced, so that
// nothing a column does not hold is lost.
var baseColumns = []column{
	{name: "kafka_partition", typ: iceberg.PrimitiveTypes.Int32, required: true, doc: "Kafka partition of the record"},
	{name: "kafka_offset", typ: iceberg.PrimitiveTypes.Int64, required: true, doc: "Kafka offset of the record"},
	{name: "kafka_timestamp", typ: iceberg.PrimitiveTypes.TimestampTz, required: true, doc: "Kafka timestamp of the record"},
	{name: "kafka_key", typ: iceberg.PrimitiveTypes.Binary, doc: "Kafka key of the record"},
	{name: "time", typ: iceberg.PrimitiveTypes.TimestampTz, required: true, doc: "OCSF time (event time); the Kafka timestamp where the event has none", path: "time"},
	{name: "class_uid", typ: iceberg.PrimitiveTypes.Int32, doc: "OCSF class_uid", path: "class_uid"},
	{name: "category_uid", typ: iceberg.PrimitiveTypes.Int32, doc: "OCSF category_uid", path: "category_uid"},
	{name: "activity_id", typ: iceberg.PrimitiveTypes.Int32, doc: "OCSF activity_id", path: "activity_id"},
	{name: "type_uid", typ: iceberg.PrimitiveTypes.Int64, doc: "OCSF type_uid", path: "type_uid"},
	{name: "severity_id", typ: iceberg.PrimitiveTypes.Int32, doc: "OCSF severity_id", path: "severity_id"},
	{name: "status_id", typ: iceberg.PrimitiveTypes.Int32, doc: "OCSF status_id", path: "status_id"},
	{name: "message", typ: iceberg.PrimitiveTypes.String, doc: "OCSF message", path: "message"},
	{name: "product_name", typ: iceberg.PrimitiveTypes.String, doc: "OCSF metadata.product.name", path: "metadata.product.name"},
	{name: "raw", typ: iceberg.PrimitiveTypes.String, doc: "the record's value as produced (the whole OCSF event)"},
}

// promotedColumn is the column of an attribute promoted by
// tablecfg.Columns: a nullable string named after its path.
func promotedColumn(path string) column {
	return column{name: strings.ReplaceAll(path, ".", "_"), typ: iceberg.PrimitiveTypes.String, doc: "OCSF " + path, path: path}
}

// newSchema is a new table's schema.
func newSchema(cols []column) *iceberg.Schema {
	fields := make([]iceberg.NestedField, len(cols))
	for i, c := range cols {
		fields[i] = iceberg.NestedField{ID: i + 1, Name: c.name, Type: c.typ, Required: c.required, Doc: c.doc}
	}
	return iceberg.NewSchema(0, fields...)
}

// newSpec partitions by event day and OCSF class: the two filters of
// almost every question asked of security data.
func newSpec(sc *iceberg.Schema) (iceberg.PartitionSpec, error) {
	tm, _ := sc.FindFieldByName("time")
	class, _ := sc.FindFieldByName("class_uid")
	return iceberg.NewPartitionSpecOpts(
		iceberg.AddPartitionFieldBySourceID(tm.ID, "event_day", iceberg.DayTransform{}, sc, nil),
		iceberg.AddPartitionFieldBySourceID(class.ID, "class_uid", iceberg.IdentityTransform{}, sc, nil),
	)
}

// rows builds one Arrow record batch of the table's current schema from
// Kafka records.
type rows struct {
	cols   []column
	byHead map[string][]int // top-level attribute -> the columns under it
	vals   []gjson.Result   // per column, the record's value
	b      *array.RecordBuilder
	n      int
	// hint is the rows a batch is expected to have; sized is whether
	// the builders are sized for this batch.
	hint  int
	sized bool
}

// newRows prepares a batch for the table's schema; cols says where each
// of its columns comes from (columns the schema has and cols does not,
// say dropped from tablecfg.Columns, are left null).
func newRows(sc *iceberg.Schema, cols []column, hint int) (*rows, error) {
	as, err := itable.SchemaToArrowSchema(sc, nil, true, false)
	if err != nil {
		return nil, fmt.Errorf("table: arrow schema: %w", err)
	}
	byName := map[string]column{}
	for _, c := range cols {
		byName[c.name] = c
	}
	r := &rows{b: array.NewRecordBuilder(memory.DefaultAllocator, as), byHead: map[string][]int{}, hint: hint}
	for i, f := range as.Fields() {
		c := byName[f.Name] // a column absent from cols has no path: null
		c.name = f.Name
		if c.path != "" {
			c.head, c.rest, _ = strings.Cut(c.path, ".")
			r.byHead[c.head] = append(r.byHead[c.head], i)
		}
		r.cols = append(r.cols, c)
	}
	r.vals = make([]gjson.Result, len(r.cols))
	return r, nil
}

func (r *rows) add(rec *kgo.Record) {
	if !r.sized {
		// The first batch: guess its string bytes from its first record.
		r.b.Reserve(r.hint)
		for i := range r.cols {
			if sb, ok := r.b.Field(i).(*array.StringBuilder); ok && r.cols[i].name == "raw" {
				sb.ReserveData(r.hint * len(rec.Value))
			}
		}
		r.sized = true
	}
	// One pass over the event's top-level attributes finds every column's
	// (gjson.Get per column would scan the event once per column).
	clear(r.vals)
	if len(rec.Value) > 0 && rec.Value[0] == '{' {
		gjson.ParseBytes(rec.Value).ForEach(func(k, v gjson.Result) bool {
			for _, i := range r.byHead[k.Str] {
				if r.cols[i].rest == "" {
					r.vals[i] = v
				} else {
					r.vals[i] = v.Get(r.cols[i].rest)
				}
			}
			return true
		})
	}
	for i, c := range r.cols {
		fb := r.b.Field(i)
		switch c.name {
		case "kafka_partition":
			fb.(*array.Int32Builder).Append(rec.Partition)
			continue
		case "kafka_offset":
			fb.(*array.Int64Builder).Append(rec.Offset)
			continue
		case "kafka_timestamp":
			fb.(*array.TimestampBuilder).Append(arrow.Timestamp(rec.Timestamp.UnixMicro()))
			continue
		case "kafka_key":
			if rec.Key == nil {
				fb.AppendNull()
			} else {
				fb.(*array.BinaryBuilder).Append(rec.Key)
			}
			continue
		case "time":
			// OCSF time is epoch milliseconds.
			t := rec.Timestamp
			if v := r.vals[i]; v.Type == gjson.Number {
				t = time.UnixMilli(v.Int())
			}
			fb.(*array.TimestampBuilder).Append(arrow.Timestamp(t.UnixMicro()))
			continue
		case "raw":
			fb.(*array.StringBuilder).BinaryBuilder.Append(rec.Value)
			continue
		}
		v := r.vals[i]
		if !v.Exists() || v.Type == gjson.Null {
			fb.AppendNull()
			continue
		}
		switch b := fb.(type) {
		case *array.Int32Builder:
			if v.Type != gjson.Number {
				b.AppendNull()
				continue
			}
			b.Append(int32(v.Int()))
		case *array.Int64Builder:
			if v.Type != gjson.Number {
				b.AppendNull()
				continue
			}
			b.Append(v.Int())
		case *array.StringBuilder:
			if v.Type == gjson.String {
				b.Append(v.Str)
			} else {
				b.Append(v.Raw) // an object or array keeps its JSON
			}
		default:
			fb.AppendNull()
		}
	}
	r.n++
}

// record returns the batch built so far and starts a new one, its
// builders sized for as many rows as this one had: grown by doubling,
// they would copy and zero each buffer several times per batch.
func (r *rows) record() arrow.RecordBatch {
	n := r.n
	var strBytes []int
	for i := range r.cols {
		if sb, ok := r.b.Field(i).(*array.StringBuilder); ok {
			strBytes = append(strBytes, sb.DataLen())
		}
	}
	rec := r.b.NewRecordBatch()
	r.n = 0
	r.sized = true
	r.b.Reserve(n)
	j := 0
	for i := range r.cols {
		if sb, ok := r.b.Field(i).(*array.StringBuilder); ok {
			sb.ReserveData(strBytes[j])
			j++
		}
	}
	return rec
}

func (r *rows) release() { r.b.Release() }
