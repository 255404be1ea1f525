package table

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	itable "github.com/apache/iceberg-go/table"
	"github.com/tidwall/gjson"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/ocsf/ocsfschema"
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
// tablecfg.Columns, named after its path: nullable, of the OCSF type of
// the attribute where the dictionary knows it as a scalar, a string
// otherwise (an object or array as JSON).
func promotedColumn(sc *ocsfschema.Schema, path string) column {
	typ := iceberg.PrimitiveTypes.String
	if a, ok := sc.Path(path); ok && !a.Array {
		if t, ok := scalarType(a.Base()); ok {
			typ = t
		}
	}
	return column{name: strings.ReplaceAll(path, ".", "_"), typ: typ, doc: "OCSF " + path, path: path}
}

// scalarType is the column type of an OCSF scalar base type: JSON text
// for json_t.
func scalarType(base string) (iceberg.PrimitiveType, bool) {
	switch base {
	case "integer_t":
		return iceberg.PrimitiveTypes.Int32, true
	case "long_t":
		return iceberg.PrimitiveTypes.Int64, true
	case "float_t":
		return iceberg.PrimitiveTypes.Float64, true
	case "boolean_t":
		return iceberg.PrimitiveTypes.Bool, true
	case "timestamp_t": // epoch milliseconds
		return iceberg.PrimitiveTypes.TimestampTz, true
	case "string_t", "json_t":
		return iceberg.PrimitiveTypes.String, true
	}
	return nil, false
}

// maxDepth bounds the objects a class column nests as structs: a class's
// object attribute (src_endpoint) is a struct, and so is an object in it
// (src_endpoint.location); objects below are JSON strings.
const maxDepth = 2

// classFields are the top-level columns of an OCSF class's attributes,
// those every table has (the base columns) aside: scalars typed, objects
// as structs to maxDepth, arrays as JSON strings. Every attribute of the
// class is a column; inside objects only the required and recommended
// attributes are fields. What has no field is still in raw: each field
// is a Parquet column every row of the class's files fills, if only with
// a null, and optional attributes inside objects would double the fields
// (vigil bench table measured the cost; docs/tables.md).
func classFields(sc *ocsfschema.Schema, uid int) []iceberg.NestedField {
	attrs, ok := sc.Class(uid)
	if !ok {
		return nil
	}
	var out []iceberg.NestedField
	for _, a := range attrs {
		if slices.ContainsFunc(baseColumns, func(c column) bool { return c.name == a.Name }) {
			continue
		}
		ids := 0
		if t, ok := attrType(sc, a, 0, &ids); ok {
			out = append(out, iceberg.NestedField{Name: a.Name, Type: t, Doc: "OCSF " + a.Name})
		}
	}
	return out
}

// attrType is the type of an attribute's field at depth (0 for a class's
// own attributes), or false where the attribute is left to raw.
// ids numbers the nested fields uniquely, as a schema needs before
// UpdateSchema.AddColumn assigns the table's fresh ids.
func attrType(sc *ocsfschema.Schema, a ocsfschema.Attr, depth int, ids *int) (iceberg.Type, bool) {
	if depth > 0 && a.Requirement < ocsfschema.Recommended {
		return nil, false
	}
	if a.Array {
		// JSON text, as OCSF has it: a list column would null a whole
		// array for one element of the wrong type, and engines read JSON
		// arrays directly (DuckDB: col->>'$[0]', json_array_length).
		return iceberg.PrimitiveTypes.String, true
	}
	if b := a.Base(); b != "" {
		return scalarType(b)
	}
	attrs, def := sc.Object(a.Type)
	if !def || depth == maxDepth {
		return iceberg.PrimitiveTypes.String, true // the object as JSON
	}
	st := &iceberg.StructType{}
	for _, c := range attrs {
		if t, ok := attrType(sc, c, depth+1, ids); ok {
			*ids++
			st.FieldList = append(st.FieldList, iceberg.NestedField{ID: *ids, Name: c.Name, Type: t})
		}
	}
	return st, true
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

// source is where a column's values come from.
type source int8

const (
	fromEvent source = iota // the event's attribute at the column's path, or none
	kafkaPartition
	kafkaOffset
	kafkaTimestamp
	kafkaKey
	eventTime
	rawValue
)

var sources = map[string]source{
	"kafka_partition": kafkaPartition,
	"kafka_offset":    kafkaOffset,
	"kafka_timestamp": kafkaTimestamp,
	"kafka_key":       kafkaKey,
	"time":            eventTime,
	"raw":             rawValue,
}

// scanner reads the attributes of a record's OCSF event that the columns
// of a table's schema take.
type scanner struct {
	cols   []column
	kinds  []source         // per column
	byHead map[string][]int // top-level attribute -> the columns under it
	vals   []gjson.Result   // per column, the record's value
	class  int              // the class_uid column, or -1
	time   int              // the time column, or -1
}

// newScanner prepares the columns of the Arrow schema as of sc (see
// newRows).
func newScanner(as *arrow.Schema, cols []column) *scanner {
	byName := map[string]column{}
	for _, c := range cols {
		byName[c.name] = c
	}
	s := &scanner{byHead: map[string][]int{}, class: -1, time: -1}
	for i, f := range as.Fields() {
		c, ok := byName[f.Name]
		if !ok {
			c = column{name: f.Name, path: f.Name}
		}
		if c.path != "" {
			c.head, c.rest, _ = strings.Cut(c.path, ".")
			s.byHead[c.head] = append(s.byHead[c.head], i)
		}
		switch c.name {
		case "class_uid":
			s.class = i
		case "time":
			s.time = i
		}
		s.cols = append(s.cols, c)
		s.kinds = append(s.kinds, sources[c.name])
	}
	s.vals = make([]gjson.Result, len(s.cols))
	return s
}

// scan reads a record's top-level attributes for its columns and returns
// its class_uid, if it is an OCSF event with one; append then adds it.
func (s *scanner) scan(rec *kgo.Record) (class int, ok bool) {
	// One pass over the event's top-level attributes finds every column's
	// (gjson.Get per column would scan the event once per column).
	clear(s.vals)
	if len(rec.Value) > 0 && rec.Value[0] == '{' {
		// The values read point into rec.Value, which nothing changes
		// while they are in use: gjson.ParseBytes would copy it first.
		gjson.Parse(unsafe.String(unsafe.SliceData(rec.Value), len(rec.Value))).ForEach(func(k, v gjson.Result) bool {
			for _, i := range s.byHead[k.Str] {
				if s.cols[i].rest == "" {
					s.vals[i] = v
				} else {
					s.vals[i] = v.Get(s.cols[i].rest)
				}
			}
			return true
		})
	}
	return s.classOf()
}

// classOf is the class_uid scan read, if it is one.
func (s *scanner) classOf() (int, bool) {
	if s.class < 0 {
		return 0, false
	}
	v := s.vals[s.class]
	if v.Type != gjson.Number || float64(int32(v.Int())) != v.Num {
		return 0, false
	}
	return int(v.Int()), true
}

// timeOf is the time column's value for the record scan read, in
// microseconds: OCSF time is epoch milliseconds; the Kafka timestamp where
// the event has none.
func (s *scanner) timeOf(rec *kgo.Record) int64 {
	if s.time >= 0 {
		if v := s.vals[s.time]; v.Type == gjson.Number {
			return time.UnixMilli(v.Int()).UnixMicro()
		}
	}
	return rec.Timestamp.UnixMicro()
}

// rows builds one Arrow record batch of the table's current schema from
// Kafka records.
type rows struct {
	*scanner
	fields []*field // per column, how a JSON value fills it
	b      *array.RecordBuilder
	n      int
	// hint is the rows a batch is expected to have; sized is whether
	// the builders are sized for this batch.
	hint  int
	sized bool
}

// newRows prepares a batch for the table's schema; cols says where the
// base and promoted columns come from. Every other column is an OCSF
// attribute of the same name at the event's top level (a class's
// columns), so that the schema alone says how an event fills a row: a
// column dropped from tablecfg.Columns (src_endpoint_ip) names no
// attribute and stays null.
func newRows(sc *iceberg.Schema, cols []column, hint int) (*rows, error) {
	as, err := arrowSchema(sc)
	if err != nil {
		return nil, err
	}
	return newRowsOf(as, newScanner(as, cols), hint), nil
}

func arrowSchema(sc *iceberg.Schema) (*arrow.Schema, error) {
	as, err := itable.SchemaToArrowSchema(sc, nil, true, false)
	if err != nil {
		return nil, fmt.Errorf("table: arrow schema: %w", err)
	}
	return as, nil
}

// newRowsOf builds batches of as with the values s scans; a hint of 0
// leaves the builders to grow.
func newRowsOf(as *arrow.Schema, s *scanner, hint int) *rows {
	r := &rows{scanner: s, b: array.NewRecordBuilder(memory.DefaultAllocator, as), hint: hint, sized: hint == 0}
	for _, f := range as.Fields() {
		r.fields = append(r.fields, newField(f.Type))
	}
	return r
}

// append adds the record scan read last.
func (r *rows) append(rec *kgo.Record) {
	if !r.sized {
		// The first batch: guess its string bytes from its first record.
		r.reserve(r.hint)
		for i := range r.cols {
			if sb, ok := r.b.Field(i).(*array.StringBuilder); ok && r.cols[i].name == "raw" {
				sb.ReserveData(r.hint * len(rec.Value))
			}
		}
		r.sized = true
	}
	for i, k := range r.kinds {
		fb := r.b.Field(i)
		switch k {
		case fromEvent:
			r.fields[i].append(fb, r.vals[i])
		case kafkaPartition:
			fb.(*array.Int32Builder).Append(rec.Partition)
		case kafkaOffset:
			fb.(*array.Int64Builder).Append(rec.Offset)
		case kafkaTimestamp:
			fb.(*array.TimestampBuilder).Append(arrow.Timestamp(rec.Timestamp.UnixMicro()))
		case kafkaKey:
			if rec.Key == nil {
				fb.AppendNull()
			} else {
				fb.(*array.BinaryBuilder).Append(rec.Key)
			}
		case eventTime:
			fb.(*array.TimestampBuilder).Append(arrow.Timestamp(r.timeOf(rec)))
		case rawValue:
			fb.(*array.StringBuilder).BinaryBuilder.Append(rec.Value)
		}
	}
	r.n++
}

// field fills one column or struct field from a JSON value. A value of
// the wrong JSON type for the field (a string where OCSF says integer, a
// fraction in an integer, an array where it says object) is null there:
// raw keeps it, and an event's content never fails a commit.
//
// Nulls are appended lazily, in runs: most of a union schema's fields
// are null in most rows (an Authentication event has no process), and
// one AppendNulls per run costs a fraction of a null per row and field.
type field struct {
	kind arrow.Type
	// A struct's fields, by the attribute names they hold, and the
	// values of one object being appended.
	sub    []*field
	byName map[string]int
	vals   []gjson.Result
	// pending nulls are owed to the builder, after the rows it has.
	pending int
}

func newField(t arrow.DataType) *field {
	f := &field{kind: t.ID()}
	if st, ok := t.(*arrow.StructType); ok {
		f.byName = map[string]int{}
		for i, sf := range st.Fields() {
			f.sub = append(f.sub, newField(sf.Type))
			f.byName[sf.Name] = i
		}
		f.vals = make([]gjson.Result, len(f.sub))
	}
	return f
}

func (f *field) append(b array.Builder, v gjson.Result) {
	if !v.Exists() || v.Type == gjson.Null {
		f.pending++
		return
	}
	f.flush(b)
	switch f.kind {
	case arrow.STRING:
		if v.Type == gjson.String {
			b.(*array.StringBuilder).Append(v.Str)
		} else {
			b.(*array.StringBuilder).Append(v.Raw) // an object or array keeps its JSON
		}
		return
	case arrow.STRUCT:
		if !v.IsObject() {
			break
		}
		sb := b.(*array.StructBuilder)
		clear(f.vals)
		v.ForEach(func(k, x gjson.Result) bool {
			if i, ok := f.byName[k.Str]; ok {
				f.vals[i] = x
			}
			return true
		})
		sb.Append(true)
		for i, s := range f.sub {
			s.append(sb.FieldBuilder(i), f.vals[i])
		}
		return
	case arrow.BOOL:
		if v.Type == gjson.True || v.Type == gjson.False {
			b.(*array.BooleanBuilder).Append(v.Type == gjson.True)
			return
		}
	}
	if v.Type != gjson.Number {
		b.AppendNull()
		return
	}
	switch f.kind {
	case arrow.INT32:
		if n := v.Int(); n >= math.MinInt32 && n <= math.MaxInt32 && float64(n) == v.Num {
			b.(*array.Int32Builder).Append(int32(n))
			return
		}
	case arrow.INT64:
		if n := v.Int(); float64(n) == v.Num {
			b.(*array.Int64Builder).Append(n)
			return
		}
	case arrow.FLOAT64:
		b.(*array.Float64Builder).Append(v.Num)
		return
	case arrow.TIMESTAMP: // OCSF timestamp_t: epoch milliseconds
		b.(*array.TimestampBuilder).Append(arrow.Timestamp(time.UnixMilli(v.Int()).UnixMicro()))
		return
	}
	b.AppendNull()
}

// reset forgets the nulls owed to a builder left out of a batch.
func (f *field) reset() {
	f.pending = 0
	for _, s := range f.sub {
		s.reset()
	}
}

// flush appends the nulls owed to b, before a value. A struct's fields
// owe theirs apart (rows where the struct has a value without them) and
// pay them before their own next value, or at the batch's end
// (flushAll): between two values of a field its nulls are nulls, whether
// the struct's or its own, so the order in which they are appended does
// not matter, only that they are before the next value.
func (f *field) flush(b array.Builder) {
	if f.pending > 0 {
		b.AppendNulls(f.pending)
		f.pending = 0
	}
}

// flushAll appends the nulls owed to b and, for a struct, to its fields,
// so that the struct and each of its fields are as long as the batch.
func (f *field) flushAll(b array.Builder) {
	if f.sub != nil {
		sb := b.(*array.StructBuilder)
		for i, s := range f.sub {
			s.flushAll(sb.FieldBuilder(i))
		}
	}
	f.flush(b)
}

// record returns the batch built so far, with every column of the
// schema, and starts a new one (see recordOf).
func (r *rows) record() arrow.RecordBatch { return r.recordOf(nil) }

// recordOf returns the batch built so far with the columns keep says
// (all where keep is nil), and starts a new one. A column left out must
// be null in every row: its builder never had a value (filled reports
// which did).
//
// The next batch's builders are sized for as many rows as this one had,
// those of columns that had values: grown by doubling, they would copy
// and zero each buffer several times per batch. The others stay empty
// until a value comes.
func (r *rows) recordOf(keep []bool) arrow.RecordBatch {
	n := r.n
	as := r.b.Schema()
	fields := make([]arrow.Field, 0, len(r.fields))
	cols := make([]arrow.Array, 0, len(r.fields))
	var sized []int // builders to size, and their string bytes
	var strBytes []int
	for i, f := range r.fields {
		fb := r.b.Field(i)
		if keep != nil && !keep[i] {
			if fb.Len() > 0 {
				panic(fmt.Sprintf("table: column %s left out of a batch it has values in", as.Field(i).Name))
			}
			f.reset()
			continue
		}
		if fb.Len() > 0 {
			sized = append(sized, i)
			sb, ok := fb.(*array.StringBuilder)
			if ok {
				strBytes = append(strBytes, sb.DataLen())
			} else {
				strBytes = append(strBytes, 0)
			}
		}
		f.flushAll(fb)
		fields = append(fields, as.Field(i))
		cols = append(cols, fb.NewArray())
	}
	md := as.Metadata()
	rec := array.NewRecordBatch(arrow.NewSchema(fields, &md), cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	r.n = 0
	r.sized = true
	for j, i := range sized {
		r.b.Field(i).Reserve(n)
		if strBytes[j] > 0 {
			r.b.Field(i).(*array.StringBuilder).ReserveData(strBytes[j])
		}
	}
	return rec
}

// filled reports whether column i has had a value (a null appended for
// a value of the wrong type counts) since the batch began.
func (r *rows) filled(i int) bool { return r.b.Field(i).Len() > 0 }

func (r *rows) reserve(n int) { r.b.Reserve(n) }

func (r *rows) release() { r.b.Release() }
