// Package table keeps lakehouse tables of topics: for a topic with
// vigil.table.enabled=true (package tablecfg), an Apache Iceberg table in
// the broker's object store that other engines (Spark, Trino, DuckDB,
// PyIceberg) read without going through Kafka. apache/iceberg-go writes
// the formats (metadata, manifest lists and manifests in Avro, data files
// in Parquet through arrow-go); this package adds the catalog over
// Vigil's object store, the mapping of records to rows, and the
// committer that keeps the table in step with the topic.
//
// # Layout
//
// A Hadoop-style file catalog (Catalog): the table of topic T is the
// directory tables/vigil/T of the object store, with
// metadata/v<N>.metadata.json per version, metadata/version-hint.text
// naming the newest, and data/ holding Zstd Parquet files partitioned by
// event day (day(time)) and OCSF class (class_uid). Any engine with a
// Hadoop catalog or a "static table" reader opens it by path.
//
// # Rows and schema
//
// One row per committed record: its Kafka partition, offset, timestamp
// and key; the OCSF base event's attributes every class has (time,
// class_uid, category_uid, activity_id, type_uid, severity_id,
// status_id, message, metadata.product.name); raw, the value as
// produced, so that an attribute without a column of its own is still in
// the table; the attributes promoted with vigil.table.columns, typed as
// OCSF types them; and the typed columns of every OCSF class the topic
// has carried (package ocsfschema: objects as structs two levels deep,
// inside them the required and recommended attributes, arrays as JSON).
// Schema evolution is Iceberg's: a class's first record, or a newly
// promoted attribute, adds nullable columns with fresh field ids; files
// written before read them as null, and nothing is rewritten. Rows
// buffered before a class's columns are added are committed first, so
// that each file's rows are built with its schema; the table property
// vigil.table.classes records the classes with columns.
//
// A commit builds one Arrow batch per partition (event day and class),
// and writes each as a file of the base and promoted columns, its
// class's columns and any other column its rows fill: a column a file
// lacks reads as null, as in files written before it was added, and
// each column a file has costs the Parquet writer per row, nulls
// included. iceberg-go writes a file with every column of the table's
// current schema, so each batch is written through a projection of the
// table's metadata (writeFiles), and the files of all the batches are
// added in one snapshot.
//
// # Exactly once
//
// Each snapshot's summary carries, for every partition of the topic, the
// offset after the last record the table holds (vigil.next-offset.<p>).
// A maintainer starts from the offsets of the newest snapshot, reads the
// topic read_committed from there, writes a batch's data files and
// manifests, and commits by writing the next metadata version. A crash
// before that version is written leaves files no snapshot names (never
// read, and the next start writes the records again); a crash after it
// leaves a snapshot whose offsets the next start resumes from. Either
// way no offset range is committed twice or skipped. Compaction
// snapshots carry the offsets of the snapshot they rewrite.
//
// # One committer per table
//
// Each table has one committer: in a cluster, the rendezvous owner of
// "table/<topic>" among the live brokers (internal/placement, as
// partitions are placed). While ownership moves, the old owner, not yet
// aware, and the new one may both commit; what keeps that safe is the
// object store's conditional create (objstore.Store.Create: If-None-Match
// on S3, a link on a filesystem), the atomic step Iceberg's Hadoop
// catalog takes from a rename. A commit re-reads the newest version,
// checks iceberg-go's requirements against it (the branch's snapshot is
// still the one the append started from) and creates the next version,
// which fails if the other committer created it first; a conflict fails
// the commit rather than rebasing it (commit.retry.num-retries=0), and
// the maintainer restarts from the newest snapshot. The loser's data
// files are orphans. A store that ignores the condition is found by a
// probe when the service starts (Catalog.CheckCreate) and logged.
//
// # Maintenance
//
// Between commits, every CompactEvery of them, the committer rewrites a
// partition's small files into files of about TargetFileBytes
// (iceberg-go's bin-pack planner), and expires snapshots older than the
// topic's retention.ms together with the files only they named, so that
// time travel reaches as far back as the topic does; under legal hold
// (vigil.legal.hold) nothing is expired. Rows are not deleted by
// retention: the table is the long-horizon copy of the topic.
//
// Files of commits that failed (a crash between the data files and the
// metadata version, a committer that lost a race) belong to no snapshot.
// Once they are older than OrphanAge, a sweep deletes every file under
// data/ and every manifest under metadata/ that no snapshot of the
// current metadata names. The age is what keeps it from deleting the
// files of a commit in flight, its own or another committer's; it runs
// at most once per OrphanAge/4 (at most hourly), not under legal hold.
package table
