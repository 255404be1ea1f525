package table_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog/hadoop"
	"github.com/apache/iceberg-go/catalog/rest"
	itable "github.com/apache/iceberg-go/table"
	_ "github.com/duckdb/duckdb-go/v2" // the independent reader: DuckDB's Parquet extension
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/meta/etcdstore/etcdtest"
	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/objstore/s3test"
	"github.com/vigilhq/vigil/internal/server"
	"github.com/vigilhq/vigil/internal/server/servertest"
	"github.com/vigilhq/vigil/internal/table"
	"github.com/vigilhq/vigil/internal/table/tablecfg"
)

// startBroker runs a broker in-process; it returns its address and its
// object store directory.
func startBroker(t *testing.T) (string, string) {
	addr, objects, _ := startBrokerAdmin(t)
	return addr, objects
}

// startBrokerAdmin is startBroker, with the admin listener's address
// too; mods change the config.
func startBrokerAdmin(t *testing.T, mods ...func(*config.Broker)) (string, string, string) {
	t.Helper()
	b := servertest.Run(t, append([]func(*config.Broker){func(c *config.Broker) {
		c.TableCommitInterval = 300 * time.Millisecond
	}}, mods...)...)
	return b.Addr, b.Config.ObjectStore, b.Admin
}

// event is an OCSF event of one of two classes on one of two days.
func event(i int) []byte {
	class := []int{3002, 4001}[i%2]
	day := time.Date(2026, 11, 30+i%3, 12, 0, 0, 0, time.UTC) // Nov 30, Dec 1, Dec 2
	return fmt.Appendf(nil, `{"class_uid":%d,"category_uid":%d,"activity_id":1,"type_uid":%d01,"severity_id":%d,"time":%d,"message":"event %d","metadata":{"product":{"name":"test"}},"src_endpoint":{"ip":"10.0.%d.%d"}}`,
		class, class/1000, class, 1+i%5, day.UnixMilli()+int64(i), i, i/256%256, i%256)
}

type row struct {
	partition int32
	offset    int64
	raw       string
}

func produce(t *testing.T, cl *kgo.Client, topic string, from, n int) {
	t.Helper()
	var rs []*kgo.Record
	for i := from; i < from+n; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: event(i)})
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// topicRows reads the topic from its start to its end, read_committed.
func topicRows(t *testing.T, addr, topic string) []row {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	var out []row
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume %s: %v", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, row{r.Partition, r.Offset, string(r.Value)})
			if r.Offset+1 >= left[r.Partition] {
				delete(left, r.Partition)
			}
		})
	}
	sortRows(out)
	return out
}

func sortRows(rs []row) {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].partition != rs[j].partition {
			return rs[i].partition < rs[j].partition
		}
		return rs[i].offset < rs[j].offset
	})
}

// waitTable waits until the table's newest snapshot covers want.
func waitTable(t *testing.T, objects, topic string, want []row) *itable.Table {
	t.Helper()
	return waitLoaded(t, func() (*itable.Table, error) { return loadHadoop(objects, topic) }, topic, want)
}

// waitLoaded waits until the table load loads covers want.
func waitLoaded(t *testing.T, load func() (*itable.Table, error), topic string, want []row) *itable.Table {
	t.Helper()
	need := map[int32]int64{}
	for _, r := range want {
		need[r.partition] = max(need[r.partition], r.offset+1)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		tbl, err := load()
		if err == nil {
			got, done := table.Offsets(tbl.CurrentSnapshot()), true
			for p, off := range need {
				done = done && got[p] >= off
			}
			if done {
				return tbl
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("table of %s did not catch up with the topic (last error: %v)", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// loadHadoop opens the table with iceberg-go's own Hadoop catalog and
// local file IO: none of Vigil's catalog code reads it back.
func loadHadoop(objects, topic string) (*itable.Table, error) {
	cat, err := hadoop.NewCatalog("vigil", filepath.Join(objects, table.Warehouse), nil)
	if err != nil {
		return nil, err
	}
	defer cat.Close()
	return cat.LoadTable(context.Background(), table.Ident(topic))
}

// dataFiles are the data files of the table's current snapshot, from
// iceberg-go's scan planning (manifest list and manifests).
func dataFiles(t *testing.T, tbl *itable.Table) []string {
	t.Helper()
	tasks, err := tbl.Scan().PlanFiles(context.Background())
	if err != nil {
		t.Fatalf("plan scan: %v", err)
	}
	var out []string
	for _, task := range tasks {
		if len(task.DeleteFiles)+len(task.EqualityDeleteFiles)+len(task.DeletionVectorFiles) > 0 {
			t.Fatalf("data file %s has delete files; Vigil writes none", task.File.FilePath())
		}
		out = append(out, strings.TrimPrefix(task.File.FilePath(), "file://"))
	}
	return out
}

func openDuck(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatalf("open duckdb: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func fileList(files []string) string {
	return "['" + strings.Join(files, "','") + "']"
}

// duckRows reads the data files with DuckDB.
func duckRows(t *testing.T, db *sql.DB, files []string) []row {
	t.Helper()
	rs, err := db.Query("SELECT kafka_partition, kafka_offset, raw FROM read_parquet(" + fileList(files) + ", union_by_name=true)")
	if err != nil {
		t.Fatalf("duckdb read: %v", err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.partition, &r.offset, &r.raw); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	sortRows(out)
	return out
}

// sameRows compares record for record, and names the first difference.
func sameRows(t *testing.T, got, want []row) {
	t.Helper()
	for i := 0; i < min(len(got), len(want)); i++ {
		if got[i] != want[i] {
			t.Fatalf("row %d: table has %d/%d %q, topic has %d/%d %q", i, got[i].partition, got[i].offset, got[i].raw, want[i].partition, want[i].offset, want[i].raw)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("table has %d rows, topic %d", len(got), len(want))
	}
}

// TestTopicTable: a topic with vigil.table.enabled=true gets an Iceberg
// table that iceberg-go's Hadoop catalog and scan planning find and
// DuckDB reads back as the topic, record for record: Zstd Parquet files,
// one event day and class each; aborted transactional records left out;
// a promoted attribute evolves the schema.
func TestTopicTable(t *testing.T) {
	addr, objects, admin := startBrokerAdmin(t)
	ctx := context.Background()
	const topic = "ocsf.events"
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{tablecfg.Enabled: kadm.StringPtr("true")}, topic); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	produce(t, cl, topic, 0, 1500)
	// An aborted transaction: its records are in the log, not the table.
	tx, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("table-test"), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(t, tx, topic, 5000, 50)
	if err := tx.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	produce(t, cl, topic, 1500, 500)
	// Not an event: a row of nulls but its position, time and raw bytes.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("plain text, not an event")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	want := topicRows(t, addr, topic)
	if len(want) != 2001 {
		t.Fatalf("topic has %d committed records, want 2001", len(want))
	}
	tbl := waitTable(t, objects, topic, want)
	files := dataFiles(t, tbl)
	db := openDuck(t)
	sameRows(t, duckRows(t, db, files), want)

	restTable(t, admin, tbl)
	tableMetrics(t, admin, topic, len(want))

	var codecs string
	if err := db.QueryRow("SELECT string_agg(DISTINCT compression, ',') FROM parquet_metadata(" + fileList(files) + ")").Scan(&codecs); err != nil {
		t.Fatal(err)
	}
	if codecs != "ZSTD" {
		t.Errorf("data files' codecs: %s, want ZSTD", codecs)
	}
	for _, f := range files {
		var days, classes int
		if err := db.QueryRow("SELECT count(DISTINCT epoch(time)::BIGINT // 86400), count(DISTINCT class_uid) FROM read_parquet('"+f+"')").Scan(&days, &classes); err != nil {
			t.Fatal(err)
		}
		if days != 1 || classes > 1 {
			t.Errorf("%s holds %d event days and %d classes; partitioning gives one day and at most one class (none: null)", f, days, classes)
		}
	}

	// Evolution: promote src_endpoint.ip; new records fill the new column,
	// older files read it as null.
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: tablecfg.Columns, Value: kadm.StringPtr("src_endpoint.ip")}}, topic); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the service restarts the maintainer on its next look
	produce(t, cl, topic, 2000, 300)
	want = topicRows(t, addr, topic)
	tbl = waitTable(t, objects, topic, want)
	if _, ok := tbl.Schema().FindFieldByName("src_endpoint_ip"); !ok {
		t.Fatalf("schema has no src_endpoint_ip: %s", tbl.Schema())
	}
	files = dataFiles(t, tbl)
	t.Logf("%d records in %d data files; snapshot %d: %v", len(want), len(files), tbl.CurrentSnapshot().SnapshotID, tbl.CurrentSnapshot().Summary)
	sameRows(t, duckRows(t, db, files), want)
	var filled, null int
	if err := db.QueryRow("SELECT count(src_endpoint_ip), count(*) - count(src_endpoint_ip) FROM read_parquet("+fileList(files)+", union_by_name=true)").Scan(&filled, &null); err != nil {
		t.Fatal(err)
	}
	if filled != 300 || null != 2001 {
		t.Errorf("src_endpoint_ip: %d set, %d null; want 300 and 2001", filled, null)
	}
}

// brokerTopic starts a broker with a topic of two partitions without
// vigil.table.enabled, so that only the test's own maintainers commit
// its table; it returns the broker's address, its object store (as a
// directory and opened) and a client producing to the topic.
func brokerTopic(t *testing.T, topic string) (string, string, *kgo.Client, *objstore.Dir) {
	t.Helper()
	addr, objects := startBroker(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 2, 1, nil, topic); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	store, err := objstore.OpenDir(objects)
	if err != nil {
		t.Fatal(err)
	}
	return addr, objects, cl, store
}

var errCrash = errors.New("crash between writing files and committing")

// TestCrashBetweenFilesAndCommit stops the committer, three times,
// after it has written a commit's data files and manifests and before the
// metadata version that makes them a snapshot; each restart is a new
// maintainer over a new catalog, as after a process crash. The table
// ends up holding every record of the topic exactly once, and the
// crashed attempts' files are in the store but in no snapshot.
func TestCrashBetweenFilesAndCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("crash loop: second pass")
	}
	ctx := context.Background()
	const topic = "crashing"
	addr, objects, cl, store := brokerTopic(t, topic)
	newMaintainer := func(cat *table.Catalog) *table.Maintainer {
		return table.NewMaintainer(table.Config{Topic: topic, Partitions: 2, Catalog: cat,
			ClientOpts: []kgo.Opt{kgo.SeedBrokers(addr)}, CommitRecords: 149, CommitInterval: 100 * time.Millisecond, Log: servertest.Logger(t)})
	}
	const crashes = 3
	for i := range crashes {
		produce(t, cl, topic, i*300, 300)
		cat := table.NewCatalog(ctx, store, "file://"+objects)
		attempts := 0
		cat.BeforeCommit = func() error {
			if attempts++; attempts == 2 {
				return errCrash
			}
			return nil
		}
		if err := newMaintainer(cat).Run(ctx); !errors.Is(err, errCrash) {
			t.Fatalf("run %d ended with %v, want the crash", i, err)
		}
	}
	want := topicRows(t, addr, topic)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- newMaintainer(table.NewCatalog(rctx, store, "file://"+objects)).Run(rctx) }()
	tbl := waitTable(t, objects, topic, want)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("last run: %v", err)
	}
	files := dataFiles(t, tbl)
	sameRows(t, duckRows(t, openDuck(t), files), want)

	// The crashed attempts wrote files that no snapshot names.
	objs, err := store.List(ctx, table.Warehouse+"/"+table.Namespace+"/"+topic+"/data/")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) <= len(files) {
		t.Errorf("%d data files in the store, %d in the table: the crashes left no files behind, so they did not happen where they should", len(objs), len(files))
	}
	t.Logf("%d records; %d data files in the table, %d orphaned by %d crashes", len(want), len(files), len(objs)-len(files), crashes)

	// The sweep deletes them, and only them, once they are old enough;
	// not while younger than the orphan age, not under legal hold.
	tableDir := table.Warehouse + "/" + table.Namespace + "/" + topic
	stored := func() map[string]bool {
		t.Helper()
		objs, err := store.List(ctx, tableDir+"/")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, o := range objs {
			out[objects+"/"+o.Key] = true
		}
		return out
	}
	named := snapshotFiles(t, tbl)
	var orphans []string
	for f := range stored() {
		if strings.HasPrefix(f, objects+"/"+tableDir+"/data/") && !named[f] {
			orphans = append(orphans, f)
		}
	}
	if len(orphans) == 0 {
		t.Fatal("no data file is an orphan before the sweep")
	}
	reg := prometheus.NewRegistry()
	met, err := table.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	sweep := func(age time.Duration, hold bool) {
		t.Helper()
		m := table.NewMaintainer(table.Config{Topic: topic, Partitions: 2, Catalog: table.NewCatalog(ctx, store, "file://"+objects),
			OrphanAge: age, LegalHold: hold, Metrics: met, Log: servertest.Logger(t)})
		if err := m.Maintain(ctx); err != nil {
			t.Fatalf("maintain (orphan age %s, legal hold %v): %v", age, hold, err)
		}
	}
	keptOrphans := func(when string) {
		t.Helper()
		have := stored()
		for _, f := range orphans {
			if !have[f] {
				t.Fatalf("%s: the sweep deleted %s", when, f)
			}
		}
	}
	sweep(time.Hour, false)
	keptOrphans("younger than the orphan age")
	time.Sleep(20 * time.Millisecond)
	sweep(10*time.Millisecond, true)
	keptOrphans("under legal hold")

	before := stored()
	sweep(10*time.Millisecond, false)
	after := stored()
	if tbl, err = loadHadoop(objects, topic); err != nil {
		t.Fatalf("load the table after the sweep: %v", err)
	}
	named = snapshotFiles(t, tbl)
	for f := range named {
		if !after[f] {
			t.Errorf("the sweep deleted %s, which a snapshot names", f)
		}
	}
	var deleted, deletedData int
	for f := range before {
		if !after[f] {
			deleted++
			if strings.Contains(f, "/data/") {
				deletedData++
			}
		}
	}
	for _, f := range orphans {
		if after[f] {
			t.Errorf("the sweep left the orphan %s", f)
		}
	}
	if deletedData < len(orphans) || deleted == deletedData {
		t.Errorf("the sweep deleted %d files, %d of them data files, for %d orphaned data files and the crashed commits' manifests", deleted, deletedData, len(orphans))
	}
	sameRows(t, duckRows(t, openDuck(t), dataFiles(t, tbl)), want)
	waitLoaded(t, func() (*itable.Table, error) { return loadHadoop(objects, topic) }, topic, want)
	if got := int(metricValue(t, reg, "vigil_table_orphan_files_deleted_total", topic)); got != deleted {
		t.Errorf("vigil_table_orphan_files_deleted_total %d, files deleted %d", got, deleted)
	}
	t.Logf("sweep: %d files deleted, %d of them data files", deleted, deletedData)
}

// snapshotFiles are the files every snapshot of the table names: data
// files (iceberg-go's scan planning of each), manifest lists and
// manifests, as local paths.
func snapshotFiles(t *testing.T, tbl *itable.Table) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	fsys, err := tbl.FS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, snap := range tbl.Metadata().Snapshots() {
		out[strings.TrimPrefix(snap.ManifestList, "file://")] = true
		mfs, err := snap.Manifests(fsys)
		if err != nil {
			t.Fatalf("manifests of snapshot %d: %v", snap.SnapshotID, err)
		}
		for _, mf := range mfs {
			out[strings.TrimPrefix(mf.FilePath(), "file://")] = true
		}
		tasks, err := tbl.Scan(itable.WithSnapshotID(snap.SnapshotID)).PlanFiles(context.Background())
		if err != nil {
			t.Fatalf("plan scan of snapshot %d: %v", snap.SnapshotID, err)
		}
		for _, task := range tasks {
			out[strings.TrimPrefix(task.File.FilePath(), "file://")] = true
		}
	}
	return out
}

// TestTwoCommitters: two committers of one table, as while its
// ownership moves between brokers, both reach the same version: the
// object store's conditional create lets one write it and fails the
// other (without it, the second would replace a version readers may
// have seen, and whose expiry may have deleted files the stale one
// names), which restarts from the newest snapshot. The table ends up
// holding each record once.
func TestTwoCommitters(t *testing.T) {
	if testing.Short() {
		// Under the race detector a commit of the typed class columns
		// takes seconds, and the committers' restarts many of them.
		t.Skip("two committers: second pass")
	}
	const topic = "two-committers"
	addr, objects, cl, store := brokerTopic(t, topic)
	// Both committers' first commit waits, after checking the newest
	// version and before creating the next, until the other's arrives.
	var arrived atomic.Int32
	both := make(chan struct{})
	var conflicts, lostRace atomic.Int32
	// run keeps a committer until ctx ends, restarting it after a
	// conflict as the broker's table service does (without its backoff).
	run := func(ctx context.Context, name string) chan error {
		cat := table.NewCatalog(ctx, store, "file://"+objects)
		cat.BeforeCommit = func() error {
			if arrived.Add(1) == 2 {
				close(both)
			}
			select {
			case <-both:
			case <-time.After(10 * time.Second):
			}
			return nil
		}
		m := table.NewMaintainer(table.Config{Topic: topic, Partitions: 2, Catalog: cat, Committer: name,
			ClientOpts: []kgo.Opt{kgo.SeedBrokers(addr)}, CommitRecords: 100, CommitInterval: 30 * time.Millisecond, Log: servertest.Logger(t)})
		done := make(chan error, 1)
		go func() {
			for ctx.Err() == nil {
				err := m.Run(ctx)
				if errors.Is(err, itable.ErrCommitFailed) {
					if strings.Contains(err.Error(), "another committer wrote this version") {
						lostRace.Add(1)
					}
					conflicts.Add(1)
					continue
				}
				if ctx.Err() == nil {
					done <- fmt.Errorf("%s: %w", name, err)
					return
				}
			}
			done <- nil
		}()
		return done
	}
	produce(t, cl, topic, 0, 200)
	ctxA, stopA := context.WithCancel(context.Background())
	defer stopA()
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	a, b := run(ctxA, "a"), run(ctxB, "b")
	for i := 1; i < 10; i++ {
		produce(t, cl, topic, i*200, 200)
		time.Sleep(50 * time.Millisecond)
	}
	// The overlap ends, as when the old owner of a table learns it has
	// moved: b stops, a goes on alone.
	for deadline := time.Now().Add(30 * time.Second); lostRace.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("both committers wrote the same version and neither failed (%d arrived, %d conflicts)", arrived.Load(), conflicts.Load())
		}
	}
	stopB()
	if err := <-b; err != nil {
		t.Fatal(err)
	}
	want := topicRows(t, addr, topic)
	waitTable(t, objects, topic, want)
	stopA()
	if err := <-a; err != nil {
		t.Fatal(err)
	}
	tbl, err := loadHadoop(objects, topic)
	if err != nil {
		t.Fatal(err)
	}
	sameRows(t, duckRows(t, openDuck(t), dataFiles(t, tbl)), want)
	committers := map[string]int{}
	for _, snap := range tbl.Metadata().Snapshots() {
		committers[snap.Summary.Properties[table.CommitterProperty]]++
	}
	t.Logf("%d records; %d conflicts, %d of them at creating a version; snapshots by committer %v", len(want), conflicts.Load(), lostRace.Load(), committers)
}

// TestCompactionAndRetention: small files are compacted into larger ones
// with the table's contents unchanged; snapshots past the topic's
// retention are expired with the files only they named, unless the
// topic is under legal hold.
func TestCompactionAndRetention(t *testing.T) {
	if testing.Short() {
		t.Skip("compaction and retention: second pass")
	}
	addr, objects := startBroker(t)
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	store, err := objstore.OpenDir(objects)
	if err != nil {
		t.Fatal(err)
	}
	db := openDuck(t)
	type outcome struct{ snapshots, written, stored, live int }
	run := func(topic string, hold bool) outcome {
		if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatalf("create topic: %v", err)
		}
		produce(t, cl, topic, 0, 600)
		want := topicRows(t, addr, topic)
		m := table.NewMaintainer(table.Config{Topic: topic, Partitions: 1, Catalog: table.NewCatalog(ctx, store, "file://"+objects),
			ClientOpts: []kgo.Opt{kgo.SeedBrokers(addr)}, CommitRecords: 100, CommitInterval: 100 * time.Millisecond,
			CompactEvery: 3, TargetFileBytes: 1 << 20, RetentionMs: 1, LegalHold: hold, Log: servertest.Logger(t)})
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- m.Run(rctx) }()
		waitTable(t, objects, topic, want)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("run: %v", err)
		}
		if err := m.Maintain(ctx); err != nil {
			t.Fatalf("maintain: %v", err)
		}
		tbl, err := loadHadoop(objects, topic)
		if err != nil {
			t.Fatal(err)
		}
		files := dataFiles(t, tbl)
		sameRows(t, duckRows(t, db, files), want)
		var o outcome
		o.snapshots, o.live = len(tbl.Metadata().Snapshots()), len(files)
		for _, s := range tbl.Metadata().Snapshots() {
			var n int
			fmt.Sscan(s.Summary.Properties["added-data-files"], &n)
			o.written += n
		}
		objs, err := store.List(ctx, table.Warehouse+"/"+table.Namespace+"/"+topic+"/data/")
		if err != nil {
			t.Fatal(err)
		}
		o.stored = len(objs)
		t.Logf("%s (hold %v): %d snapshots, %d data files written by them, %d in the store, %d live", topic, hold, o.snapshots, o.written, o.stored, o.live)
		return o
	}
	held := run("held", true)
	// 600 records in commits of 100 with six partitions each: 36 files
	// written before compaction; compaction leaves one per partition.
	if held.live != 6 {
		t.Errorf("held: %d live data files after compaction, want 6 (one per event day and class)", held.live)
	}
	// The store may hold more than the snapshots name: a compaction the
	// test's cancel interrupted leaves its outputs, as a crash would.
	if held.stored < held.written || held.snapshots < 7 {
		t.Errorf("held: %d snapshots, %d files written, %d stored: under legal hold nothing is expired or deleted", held.snapshots, held.written, held.stored)
	}
	expired := run("expired", false)
	if expired.live != 6 || expired.snapshots != 1 || expired.stored >= held.stored/2 {
		t.Errorf("retention.ms=1: %d snapshots, %d files stored (%d under hold), %d live; want 1 snapshot, and the files of the expired ones deleted", expired.snapshots, expired.stored, held.stored, expired.live)
	}
}

// restTable checks that iceberg-go's REST catalog client, pointed at the
// admin listener, lists the table and loads the same version of it.
func restTable(t *testing.T, admin string, want *itable.Table) {
	t.Helper()
	ctx := context.Background()
	cat, err := rest.NewCatalog(ctx, "vigil", "http://"+admin+table.RESTPrefix)
	if err != nil {
		t.Fatalf("REST catalog: %v", err)
	}
	var names []string
	for id, err := range cat.ListTables(ctx, itable.Identifier{table.Namespace}) {
		if err != nil {
			t.Fatalf("REST list tables: %v", err)
		}
		names = append(names, strings.Join(id, "."))
	}
	if wantName := strings.Join(want.Identifier(), "."); len(names) != 1 || names[0] != wantName {
		t.Errorf("REST catalog lists %v, want [%s]", names, wantName)
	}
	got, err := cat.LoadTable(ctx, want.Identifier())
	if err != nil {
		t.Fatalf("REST load table: %v", err)
	}
	if strings.TrimPrefix(got.MetadataLocation(), "file://") != want.MetadataLocation() || got.CurrentSnapshot().SnapshotID != want.CurrentSnapshot().SnapshotID {
		t.Errorf("REST catalog loads %s snapshot %d; the Hadoop catalog %s snapshot %d",
			got.MetadataLocation(), got.CurrentSnapshot().SnapshotID, want.MetadataLocation(), want.CurrentSnapshot().SnapshotID)
	}
	if n, m := len(dataFiles(t, got)), len(dataFiles(t, want)); n != m {
		t.Errorf("REST-loaded table plans %d data files, Hadoop-loaded %d", n, m)
	}
	if err := cat.DropTable(ctx, want.Identifier()); err == nil {
		t.Errorf("REST catalog dropped a table; it is read-only")
	}
}

// TestCatalogPrunesOldVersions: a commit deletes the metadata versions
// beyond write.metadata.previous-versions-max, and the table still loads
// at its newest.
func TestCatalogPrunesOldVersions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := objstore.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	cat := table.NewCatalog(ctx, store, "file://"+dir)
	sc := iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "x", Type: iceberg.PrimitiveTypes.Int64})
	tbl, err := cat.Create(ctx, table.Ident("t"), sc, *iceberg.UnpartitionedSpec, iceberg.Properties{itable.MetadataPreviousVersionsMaxKey: "2"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		tx := tbl.NewTransaction()
		if err := tx.SetProperties(iceberg.Properties{"n": fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		if tbl, err = tx.Commit(ctx); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	objs, err := store.List(ctx, table.Warehouse+"/"+table.Namespace+"/t/metadata/v")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		if strings.HasSuffix(o.Key, ".metadata.json") {
			names = append(names, o.Key[strings.LastIndexByte(o.Key, '/')+1:])
		}
	}
	if strings.Join(names, ",") != "v4.metadata.json,v5.metadata.json,v6.metadata.json" {
		t.Errorf("metadata versions left: %v; want v4 to v6 (the newest and two before)", names)
	}
	got, err := loadHadoop(dir, "t")
	if err != nil {
		t.Fatal(err)
	}
	if got.Properties()["n"] != "4" {
		t.Errorf("newest version has n=%q, want 4", got.Properties()["n"])
	}
}

// TestTopicTableS3: on a broker whose object store is S3 (versitygw), the
// table is written through the S3 API under the store's prefix, with
// s3:// locations; Vigil's catalog over S3 plans it, and DuckDB reads the
// data files from the gateway's disk, record for record as the topic.
func TestTopicTableS3(t *testing.T) {
	s3 := s3test.Start(t)
	bucket := s3.Bucket("lake")
	const prefix = "cluster-a"
	addr, _, _ := startBrokerAdmin(t, func(c *config.Broker) {
		c.ObjectStore = s3.URL(bucket, prefix)
		c.S3AccessKeyID = s3test.AccessKey
		c.S3SecretAccessKey = config.Secret(s3test.SecretKey)
	})
	ctx := context.Background()
	const topic = "ocsf.s3"
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, map[string]*string{tablecfg.Enabled: kadm.StringPtr("true")}, topic); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	produce(t, cl, topic, 0, 600)
	want := topicRows(t, addr, topic)
	base := "s3://" + bucket + "/" + prefix
	cat := table.NewCatalog(ctx, s3.Open(t, bucket, prefix), base)
	tbl := waitLoaded(t, func() (*itable.Table, error) { return cat.LoadTable(ctx, table.Ident(topic)) }, topic, want)
	if loc := tbl.Location(); loc != base+"/tables/vigil/"+topic {
		t.Errorf("table location %s, want %s/tables/vigil/%s", loc, base, topic)
	}
	var files []string
	for _, f := range dataFiles(t, tbl) {
		rest, ok := strings.CutPrefix(f, "s3://"+bucket+"/")
		if !ok {
			t.Fatalf("data file %s is not in s3://%s", f, bucket)
		}
		files = append(files, filepath.Join(s3.Root(), bucket, rest))
	}
	sameRows(t, duckRows(t, openDuck(t), files), want)
}

// brokerEnv makes the test binary a broker (TestMain): its value is the
// data directory, and brokerAddrEnv the listener's address.
const (
	brokerEnv     = "VIGIL_TABLE_TEST_BROKER"
	brokerAddrEnv = "VIGIL_TABLE_TEST_ADDR"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(brokerEnv); dir != "" {
		os.Exit(runBroker(dir, os.Getenv(brokerAddrEnv)))
	}
	os.Exit(m.Run())
}

// runBroker serves until killed: the broker process TestBrokerKilled
// kills.
func runBroker(dir, addr string) int {
	cfg := config.Default()
	cfg.Listen, cfg.Advertised, cfg.AdminListen = addr, addr, ""
	cfg.DataDir, cfg.ObjectStore = dir, filepath.Join(dir, "objects")
	cfg.WAL, cfg.WALSync = "file", false
	cfg.TableCommitInterval = 50 * time.Millisecond
	srv, err := server.Start(context.Background(), cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv.Serve()
	return 0
}

// TestBrokerKilled SIGKILLs the broker that keeps a table, three times,
// while a producer writes and the table commits every 50 ms, so that
// kills land anywhere in the committer's cycle; after each restart the
// table resumes from its newest snapshot. At the end it holds the topic
// record for record.
func TestBrokerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a broker process: second pass")
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var child *exec.Cmd
	start := func() {
		child = exec.Command(os.Args[0], "-test.run=^$")
		child.Env = append(os.Environ(), brokerEnv+"="+dir, brokerAddrEnv+"="+addr)
		child.Stderr = servertest.Writer(t)
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("broker not listening after a restart: %v", err)
			}
		}
	}
	kill := func() {
		child.Process.Kill()
		child.Wait()
	}
	start()
	t.Cleanup(kill)
	ctx := context.Background()
	const topic = "killed"
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.RetryTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{tablecfg.Enabled: kadm.StringPtr("true")}, topic)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("create topic: %v", err)
		}
	}
	// A producer writes all along, through the kills: what the broker
	// acknowledged is in the topic, and the table must hold exactly the
	// topic, whatever the producer saw.
	pctx, stopProducing := context.WithCancel(ctx)
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 0; pctx.Err() == nil; i += 50 {
			var rs []*kgo.Record
			for j := range 50 {
				rs = append(rs, &kgo.Record{Topic: topic, Value: event(i + j)})
			}
			cl.ProduceSync(pctx, rs...)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	const kills = 3
	for i := range kills {
		time.Sleep(time.Duration(250+i*70) * time.Millisecond)
		kill()
		start()
	}
	time.Sleep(300 * time.Millisecond)
	stopProducing()
	<-produced
	want := topicRows(t, addr, topic)
	tbl := waitTable(t, filepath.Join(dir, "objects"), topic, want)
	files := dataFiles(t, tbl)
	sameRows(t, duckRows(t, openDuck(t), files), want)
	objs, err := os.ReadDir(filepath.Join(dir, "objects", table.Warehouse, table.Namespace, topic, "metadata"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d records after %d kills; %d snapshots, %d data files; %d metadata objects", len(want), kills, len(tbl.Metadata().Snapshots()), len(files), len(objs))
}

// TestClusterTables runs two brokers on one etcd and one object store
// with three table-enabled topics: each table has one committer (the
// rendezvous owner of its key), and when a broker leaves, the other takes
// its tables over from their newest snapshots. Each table holds its
// topic record for record before and after.
func TestClusterTables(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster on etcd: second pass")
	}
	endpoint := etcdtest.Start(t)
	objects := filepath.Join(t.TempDir(), "objects")
	// A failed commit means two committers met on a table.
	failed := &countingWriter{w: servertest.Writer(t), match: "table maintainer failed"}
	log := slog.New(slog.NewTextHandler(failed, &slog.HandlerOptions{Level: slog.LevelWarn}))
	type broker struct {
		addr  string
		close func()
	}
	var brokers []broker
	for id := int32(1); id <= 2; id++ {
		dir := t.TempDir()
		cfg := config.Default()
		cfg.Listen, cfg.Advertised, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0", ""
		cfg.DataDir, cfg.ObjectStore = dir, objects
		cfg.Metadata = "etcd://" + endpoint + "/vigil/cluster"
		cfg.WAL, cfg.NodeID, cfg.LeaseTTL = "object", id, 2*time.Second
		cfg.TableCommitInterval = 200 * time.Millisecond
		srv, err := server.Start(context.Background(), cfg, log)
		if err != nil {
			t.Fatalf("start broker %d: %v", id, err)
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve() }()
		closed := false
		closeFn := func() {
			if !closed {
				closed = true
				if err := srv.Close(); err != nil {
					t.Errorf("close broker: %v", err)
				}
				<-served
			}
		}
		t.Cleanup(closeFn)
		brokers = append(brokers, broker{srv.Addr().String(), closeFn})
	}
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers[0].addr, brokers[1].addr), kgo.RetryTimeout(60*time.Second), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Both brokers see both before the tables exist (until then each
	// takes itself for every table's owner): partitions of a first topic
	// are led by both.
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 8, 1, nil, "warm-up"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		md, err := adm.Metadata(ctx, "warm-up")
		led := map[int32]bool{}
		if err == nil {
			for _, p := range md.Topics["warm-up"].Partitions {
				led[p.Leader] = true
			}
		}
		if led[1] && led[2] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions of warm-up never led by both brokers: %v (%v)", led, err)
		}
	}
	time.Sleep(500 * time.Millisecond) // and each has looked at the topics since
	topics := []string{"t.one", "t.two", "t.three"}
	if _, err := adm.CreateTopics(ctx, 2, 1, map[string]*string{tablecfg.Enabled: kadm.StringPtr("true")}, topics...); err != nil {
		t.Fatal(err)
	}
	db := openDuck(t)
	// check compares each table with its topic and returns the brokers
	// that committed each table's snapshots, in order, repeats dropped.
	check := func(from int, addr string) map[string][]string {
		for _, topic := range topics {
			produce(t, cl, topic, from, 200)
		}
		committers := map[string][]string{}
		for _, topic := range topics {
			want := topicRows(t, addr, topic)
			tbl := waitTable(t, objects, topic, want)
			sameRows(t, duckRows(t, db, dataFiles(t, tbl)), want)
			for _, s := range tbl.Metadata().Snapshots() {
				c := s.Summary.Properties[table.CommitterProperty]
				if cs := committers[topic]; len(cs) == 0 || cs[len(cs)-1] != c {
					committers[topic] = append(cs, c)
				}
			}
		}
		return committers
	}
	before := check(0, brokers[1].addr)
	for topic, cs := range before {
		if len(cs) != 1 {
			t.Errorf("%s was committed by %v in turn: one committer per table", topic, cs)
		}
	}
	t.Logf("committers with both brokers up: %v", before)
	brokers[0].close()
	after := check(200, brokers[1].addr)
	for topic, cs := range after {
		if last := cs[len(cs)-1]; last != "broker 2" {
			t.Errorf("%s: last committed by %q after broker 1 left, want broker 2 (%v)", topic, last, cs)
		}
	}
	t.Logf("committers after broker 1 left: %v", after)
	if n := failed.n.Load(); n > 0 {
		t.Errorf("%d table commits failed: more than one committer per table", n)
	}
}

// countingWriter counts the lines holding match.
type countingWriter struct {
	w     io.Writer
	match string
	n     atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.match) {
		c.n.Add(1)
	}
	return c.w.Write(p)
}

// metricValue reads a counter or gauge of topic from reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name, topic string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "topic" && l.GetValue() == topic {
					if c := m.GetCounter(); c != nil {
						return c.GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{topic=%q}", name, topic)
	return 0
}

// tableMetrics checks the broker's table series on /metrics once the
// table holds records records and nothing else was produced: every one
// counted, and the lag at most a transaction marker per partition (the
// table's offsets stop at the last record, the topic's end is past the
// marker).
func tableMetrics(t *testing.T, admin, topic string, records int) {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string) float64 {
		t.Helper()
		prefix := name + `{topic="` + topic + `"} `
		for line := range strings.Lines(string(body)) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				return f
			}
		}
		t.Fatalf("/metrics has no %s{topic=%q}", name, topic)
		return 0
	}
	if got := value("vigil_table_records_total"); int(got) != records {
		t.Errorf("vigil_table_records_total %v, want %d", got, records)
	}
	if got := value("vigil_table_commits_total"); got < 1 {
		t.Errorf("vigil_table_commits_total %v", got)
	}
	if got := value("vigil_table_last_commit_timestamp_seconds"); time.Since(time.Unix(int64(got), 0)) > time.Minute {
		t.Errorf("vigil_table_last_commit_timestamp_seconds %v: not a recent commit", got)
	}
	if got := value("vigil_table_lag_records"); got < 0 || got > 3 {
		t.Errorf("vigil_table_lag_records %v after the table caught up", got)
	}
	if got := value("vigil_table_failures_total"); got != 0 {
		t.Errorf("vigil_table_failures_total %v", got)
	}
}
