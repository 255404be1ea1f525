package table_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	itable "github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/server/servertest"
	"github.com/vigilhq/vigil/internal/table"
)

// classEvent is an OCSF event of Authentication (3002), Network Activity
// (4001) or Process Activity (1007), with attributes of the class's own.
func classEvent(class, i int) string {
	ms := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).UnixMilli() + int64(i)
	head := fmt.Sprintf(`"class_uid":%d,"category_uid":%d,"activity_id":1,"type_uid":%d01,"severity_id":1,"time":%d,"metadata":{"version":"1.1.0","product":{"name":"test","vendor_name":"vigil"}}`,
		class, class/1000, class, ms)
	switch class {
	case 3002:
		return fmt.Sprintf(`{%s,"user":{"name":"alice","type_id":1},"src_endpoint":{"ip":"10.0.0.%d","port":%d},"is_remote":true,"session":{"uid":"s%d"}}`, head, i%256, 40000+i, i)
	case 4001:
		return fmt.Sprintf(`{%s,"src_endpoint":{"ip":"10.1.0.%d","port":443},"dst_endpoint":{"ip":"192.0.2.1","port":8443},"traffic":{"bytes_in":%d},"connection_info":{"protocol_num":6}}`, head, i%256, 5_000_000_000+int64(i))
	case 1007:
		return fmt.Sprintf(`{%s,"process":{"pid":%d,"name":"sshd","file":{"path":"/usr/sbin/sshd"}},"actor":{"user":{"name":"root"}}}`, head, 4000+i)
	}
	panic(class)
}

// runMaintainer runs a maintainer over a new catalog, as a broker start
// does, until the table covers the topic; the table is then loaded with
// iceberg-go's Hadoop catalog.
func runMaintainer(t *testing.T, addr, objects, topic string, store objstore.Store, columns []string) *itable.Table {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m := table.NewMaintainer(table.Config{Topic: topic, Partitions: 1, Columns: columns,
		Catalog:    table.NewCatalog(ctx, store, "file://"+objects),
		ClientOpts: []kgo.Opt{kgo.SeedBrokers(addr)}, CommitRecords: 1000, CommitInterval: 100 * time.Millisecond, Log: servertest.Logger(t)})
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	tbl := waitTable(t, objects, topic, topicRows(t, addr, topic))
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("maintainer: %v", err)
	}
	tbl, err := loadHadoop(objects, topic)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

func queryInt(t *testing.T, db *sql.DB, q string) int64 {
	t.Helper()
	var n sql.NullInt64
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n.Int64
}

func queryString(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	var s sql.NullString
	if err := db.QueryRow(q).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s.String
}

// TestClassColumns: events of three classes, a record that is not JSON
// and values of the wrong JSON type in one topic. The table, created
// before classes had columns (a promoted path as a string column), gains
// each class's typed columns when its first record arrives; DuckDB reads
// them as typed struct fields; a mismatched value is null with raw
// intact; a class appearing later adds columns without rewriting the
// files written before; a restart adds nothing.
func TestClassColumns(t *testing.T) {
	addr, objects := startBroker(t)
	ctx := context.Background()
	const topic = "ocsf.mixed"
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	store, err := objstore.OpenDir(objects)
	if err != nil {
		t.Fatal(err)
	}
	send := func(values ...string) {
		t.Helper()
		var rs []*kgo.Record
		for _, v := range values {
			rs = append(rs, &kgo.Record{Value: []byte(v)})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	// A table as Vigil made it before class columns: base columns (some
	// of them; Open adds the rest) and src_endpoint.port promoted as a
	// string.
	old := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "kafka_partition", Type: iceberg.PrimitiveTypes.Int32, Required: true},
		iceberg.NestedField{ID: 2, Name: "kafka_offset", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 3, Name: "kafka_timestamp", Type: iceberg.PrimitiveTypes.TimestampTz, Required: true},
		iceberg.NestedField{ID: 4, Name: "time", Type: iceberg.PrimitiveTypes.TimestampTz, Required: true},
		iceberg.NestedField{ID: 5, Name: "class_uid", Type: iceberg.PrimitiveTypes.Int32},
		iceberg.NestedField{ID: 6, Name: "raw", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 7, Name: "src_endpoint_port", Type: iceberg.PrimitiveTypes.String},
	)
	spec, err := iceberg.NewPartitionSpecOpts(
		iceberg.AddPartitionFieldBySourceID(4, "event_day", iceberg.DayTransform{}, old, nil),
		iceberg.AddPartitionFieldBySourceID(5, "class_uid", iceberg.IdentityTransform{}, old, nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := table.NewCatalog(ctx, store, "file://"+objects).Create(ctx, table.Ident(topic), old, spec,
		iceberg.Properties{itable.CommitNumRetriesKey: "0", table.TopicProperty: topic}); err != nil {
		t.Fatal(err)
	}
	// Promoted: a string column already (kept), a long attribute (typed),
	// and session, a whole object (a JSON string column, which
	// Authentication's session struct then does not replace).
	columns := []string{"src_endpoint.port", "traffic.bytes_in", "session"}

	var auth, net []string
	for i := range 20 {
		auth = append(auth, classEvent(3002, i))
		net = append(net, classEvent(4001, i))
	}
	send(auth[:10]...)
	send("not json at all")
	send(net[:10]...)
	// Wrong JSON types: a string and a fraction where OCSF says integer, a
	// number where it says object.
	mismatched := `{"class_uid":3002,"time":1764590400000,"user":{"name":"mallory","type_id":"admin"},"src_endpoint":{"ip":"10.9.9.9","port":22.5},"logon_type_id":"2","service":7}`
	send(mismatched)
	send(auth[10:]...)
	send(net[10:]...)
	tbl := runMaintainer(t, addr, objects, topic, store, columns)

	sc := tbl.Schema()
	typeOf := func(sc *iceberg.Schema, name string) string {
		f, ok := sc.FindFieldByName(name)
		if !ok {
			return "missing"
		}
		return f.Type.String()
	}
	for name, want := range map[string]string{
		"user.name":                    "string",
		"user.type_id":                 "int",
		"src_endpoint.ip":              "string",
		"src_endpoint.port":            "int",
		"dst_endpoint.port":            "int",
		"traffic.bytes_in":             "long",
		"connection_info.protocol_num": "int",
		"is_remote":                    "boolean",
		"logon_type_id":                "int",
		"metadata.product.vendor_name": "string",
		"metadata.labels":              "missing", // optional in an object
		"observables":                  "string",  // an array, as JSON
		"src_endpoint_port":            "string",  // promoted before: kept
		"traffic_bytes_in":             "long",    // promoted now: typed
		"session":                      "string",  // promoted whole object first: kept
		"process":                      "missing",
		"message":                      "string",
		"kafka_key":                    "binary",  // a base column the old table lacked
		"actor.user.name":              "string",  // the host profile's actor, in every class
		"actor.process.file":           "string",  // an object at the third level: JSON
		"src_endpoint.location":        "missing", // optional in an object
		"actor.user.domain":            "missing", // optional, two objects down
	} {
		if got := typeOf(sc, name); got != want {
			t.Errorf("after Authentication and Network Activity: %s is %s, want %s", name, got, want)
		}
	}
	if got := tbl.Properties()[table.ClassesProperty]; got != "3002,4001" {
		t.Errorf("%s = %q, want 3002,4001", table.ClassesProperty, got)
	}
	firstFiles := dataFiles(t, tbl)
	fields := len(sc.Fields())
	t.Logf("after two classes: %d top-level columns, %d fields in all, %d data files", fields, sc.HighestFieldID(), len(firstFiles))

	// Process Activity arrives later: its columns are added, the files
	// written before stay as they are.
	var proc []string
	for i := range 10 {
		proc = append(proc, classEvent(1007, i))
	}
	send(proc...)
	tbl = runMaintainer(t, addr, objects, topic, store, columns)
	sc = tbl.Schema()
	if got := typeOf(sc, "process.pid"); got != "int" {
		t.Errorf("after Process Activity: process.pid is %s, want int", got)
	}
	if got := typeOf(sc, "process.file.path"); got != "string" {
		t.Errorf("after Process Activity: process.file.path is %s, want string", got)
	}
	if got := tbl.Properties()[table.ClassesProperty]; got != "1007,3002,4001" {
		t.Errorf("%s = %q, want 1007,3002,4001", table.ClassesProperty, got)
	}
	files := dataFiles(t, tbl)
	for _, f := range firstFiles {
		if !slices.Contains(files, f) {
			t.Errorf("%s, written before Process Activity, is no longer in the table", f)
		}
	}
	db := openDuck(t)
	for _, f := range firstFiles {
		// exit_code: a column of Process Activity's alone.
		if n := queryInt(t, db, "SELECT count(*) FROM parquet_schema('"+f+"') WHERE name = 'exit_code'"); n != 0 {
			t.Errorf("%s has Process Activity's exit_code column: rewritten after the schema changed", f)
		}
	}

	if n := queryInt(t, db, "SELECT count(*) FROM parquet_schema("+fileList(files)+") WHERE name = 'exit_code'"); n == 0 {
		t.Error("no data file has Process Activity's exit_code column")
	}

	// A restart with nothing new evolves nothing: no new schema, no new
	// metadata property value.
	schemas := len(tbl.Metadata().Schemas())
	send(classEvent(3002, 99), classEvent(1007, 99))
	tbl = runMaintainer(t, addr, objects, topic, store, columns)
	if n := len(tbl.Metadata().Schemas()); n != schemas {
		t.Errorf("a restart added schemas: %d, was %d", n, schemas)
	}

	// DuckDB reads every row, typed.
	files = dataFiles(t, tbl)
	want := topicRows(t, addr, topic)
	sameRows(t, duckRows(t, db, files), want)
	from := " FROM read_parquet(" + fileList(files) + ", union_by_name=true) "
	for q, wantN := range map[string]int64{
		"SELECT count(*) FROM t WHERE src_endpoint.port = 443":                                                20, // an int compared as an int
		"SELECT count(*) FROM t WHERE src_endpoint.port > 40000":                                              20,
		"SELECT count(*) FROM t WHERE user.name = 'alice' AND is_remote":                                      21,
		"SELECT count(*) FROM t WHERE traffic.bytes_in >= 5000000000 AND traffic_bytes_in = traffic.bytes_in": 20,
		"SELECT count(*) FROM t WHERE process.pid BETWEEN 4000 AND 4099 AND actor.user.name = 'root'":         11,
		"SELECT count(*) FROM t WHERE process.file.path = '/usr/sbin/sshd'":                                   11,
		"SELECT count(*) FROM t WHERE class_uid IS NULL AND raw = 'not json at all'":                          1,
		"SELECT count(*) FROM t WHERE dst_endpoint.ip = '192.0.2.1' AND dst_endpoint.port = 8443":             20,
		"SELECT count(*) FROM t WHERE session LIKE '{\"uid\":\"s%'":                                           21,
		"SELECT count(*) FROM t WHERE src_endpoint_port = '443'":                                              20, // the string column kept
	} {
		if got := queryInt(t, db, strings.Replace(q, " FROM t ", from, 1)); got != wantN {
			t.Errorf("%s = %d, want %d", q, got, wantN)
		}
	}
	if got := queryString(t, db, "SELECT typeof(src_endpoint.port) || ',' || typeof(traffic.bytes_in) || ',' || typeof(is_remote) || ',' || typeof(time)"+from+" LIMIT 1"); got != "INTEGER,BIGINT,BOOLEAN,TIMESTAMP WITH TIME ZONE" {
		t.Errorf("DuckDB types: %s", got)
	}
	// The mismatched event: its wrong-typed values are null, the rest of
	// it typed, and raw holds it as produced.
	row := "SELECT %s" + from + " WHERE user.name = 'mallory'"
	if got := queryString(t, db, fmt.Sprintf(row, "raw")); got != mismatched {
		t.Errorf("mismatched event's raw: %s", got)
	}
	if got := queryString(t, db, fmt.Sprintf(row, "concat_ws(',', user.type_id IS NULL, src_endpoint.port IS NULL, logon_type_id IS NULL, service IS NULL, src_endpoint.ip)")); got != "true,true,true,true,10.9.9.9" {
		t.Errorf("mismatched event: type_id, port, logon_type_id, service null and ip = %s; want true,true,true,true,10.9.9.9", got)
	}

	// iceberg-go's own scan reads the table across the schema change:
	// files written before Process Activity read process as null.
	at, err := tbl.Scan(itable.WithSelectedFields("kafka_offset", "class_uid", "process")).ToArrowTable(ctx)
	if err != nil {
		t.Fatalf("iceberg-go scan: %v", err)
	}
	defer at.Release()
	if at.NumRows() != int64(len(want)) {
		t.Errorf("iceberg-go scan: %d rows, topic has %d", at.NumRows(), len(want))
	}
	idx := at.Schema().FieldIndices("process")
	if len(idx) != 1 {
		t.Fatalf("iceberg-go scan schema: %s", at.Schema())
	}
	var procRows int64
	for _, c := range at.Column(idx[0]).Data().Chunks() {
		s := c.(*array.Struct)
		procRows += int64(s.Len() - s.NullN())
	}
	if procRows != 11 {
		t.Errorf("iceberg-go scan: %d rows with process, want 11", procRows)
	}
	if !strings.Contains(tbl.Schema().String(), "process") {
		t.Error("no process in the schema")
	}
}
