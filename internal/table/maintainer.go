package table

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	itable "github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/ocsf/ocsfschema"
)

// OffsetProperty prefixes the snapshot summary properties that carry,
// per Kafka partition, the offset the next commit starts from:
// vigil.next-offset.<partition>. Every snapshot carries every
// partition's, so the newest alone says where the table is.
const OffsetProperty = "vigil.next-offset."

// dictOff prefixes the Iceberg table property that turns a column's
// Parquet dictionary encoding off.
const dictOff = "write.parquet.dict-encoding-enabled.column."

// TopicProperty names the topic in each snapshot summary, and
// CommitterProperty the committer (Config.Committer), when it has a name.
const (
	TopicProperty     = "vigil.topic"
	CommitterProperty = "vigil.committer"
)

// ClassesProperty is the table property listing, comma-separated, the
// OCSF class_uids whose attributes the table has columns for.
const ClassesProperty = "vigil.table.classes"

// Config is a Maintainer's.
type Config struct {
	Topic      string
	Partitions int32
	// Columns are the OCSF attributes promoted to columns
	// (tablecfg.Columns).
	Columns []string
	Catalog *Catalog
	// ClientOpts reach the brokers (seeds, TLS, SASL); the maintainer
	// adds the consumer's own.
	ClientOpts []kgo.Opt
	// A commit happens once CommitRecords are buffered or the oldest
	// buffered record has waited CommitInterval.
	CommitRecords  int
	CommitInterval time.Duration
	// Every CompactEvery commits the table's small files are rewritten
	// into files of about TargetFileBytes (defaults 20 and 128 MiB).
	CompactEvery    int
	TargetFileBytes int64
	// RetentionMs is the topic's retention.ms: snapshots older are
	// expired (the newest always stays); 0 or less keeps them all (a
	// topic with retention.ms=0 keeps nothing, but its table keeps its
	// history rather than expire every commit at once). LegalHold
	// (vigil.legal.hold) keeps them all too.
	RetentionMs int64
	LegalHold   bool
	// OrphanAge is how old a file named by no snapshot must be before
	// the sweep deletes it (default 24h): younger, it may belong to a
	// commit in flight.
	OrphanAge time.Duration
	// Committer names this committer in each snapshot's summary (the
	// broker: "broker 1"); empty leaves it out.
	Committer string
	// OnCommit, if set, is called after each commit of records with how
	// many it held (a benchmark counts them).
	OnCommit func(records int)
	// Metrics, if set, gets the table's series.
	Metrics *Metrics
	Log     *slog.Logger
}

// Maintainer keeps one topic's table: it reads the topic's committed
// records from the offsets of the table's newest snapshot and commits
// them in batches. Run it on one broker at a time per table.
type Maintainer struct {
	cfg  Config
	log  *slog.Logger
	ocsf *ocsfschema.Schema
	cols []column
	met  *topicMetrics
	// lastSweep is when the orphan sweep last ran (maintain.go).
	lastSweep time.Time
	// classes are the class_uids the table has columns for
	// (ClassesProperty).
	classes map[int]bool
}

// NewMaintainer returns the maintainer of cfg.Topic's table.
func NewMaintainer(cfg Config) *Maintainer {
	if cfg.CommitRecords <= 0 {
		cfg.CommitRecords = 100_000
	}
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = 30 * time.Second
	}
	if cfg.CompactEvery <= 0 {
		cfg.CompactEvery = 20
	}
	if cfg.TargetFileBytes <= 0 {
		cfg.TargetFileBytes = 128 << 20
	}
	if cfg.OrphanAge <= 0 {
		cfg.OrphanAge = 24 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	sc := ocsfschema.Load()
	cols := slices.Clone(baseColumns)
	for _, p := range cfg.Columns {
		cols = append(cols, promotedColumn(sc, p))
	}
	return &Maintainer{cfg: cfg, log: cfg.Log.With("topic", cfg.Topic), ocsf: sc, cols: cols, met: cfg.Metrics.For(cfg.Topic)}
}

// TableOffsets are the per-partition next offsets of the table's newest
// snapshot that has them: where its contents end in the topic. Vigil's
// snapshots all carry them (compactions too); one another engine added
// (its own compaction, say) is passed over for its parent.
func TableOffsets(md itable.Metadata) map[int32]int64 {
	for s := md.CurrentSnapshot(); s != nil; {
		if s.Summary != nil {
			if _, ok := s.Summary.Properties[TopicProperty]; ok {
				return Offsets(s)
			}
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = md.SnapshotByID(*s.ParentSnapshotID)
	}
	return map[int32]int64{}
}

// Offsets reads the per-partition next offsets of a snapshot's summary.
func Offsets(s *itable.Snapshot) map[int32]int64 {
	out := map[int32]int64{}
	if s == nil || s.Summary == nil {
		return out
	}
	for k, v := range s.Summary.Properties {
		p, ok := strings.CutPrefix(k, OffsetProperty)
		if !ok {
			continue
		}
		pn, err1 := strconv.ParseInt(p, 10, 32)
		off, err2 := strconv.ParseInt(v, 10, 64)
		if err1 == nil && err2 == nil {
			out[int32(pn)] = off
		}
	}
	return out
}

// Open loads the topic's table, creating it if it is missing, and adds
// the columns of attributes promoted since it was last opened. A new
// table has the base and promoted columns; a class's columns are added
// when its first record arrives (Run).
func (m *Maintainer) Open(ctx context.Context) (*itable.Table, error) {
	tbl, err := m.open(ctx)
	if err != nil {
		return nil, err
	}
	m.classes = map[int]bool{}
	for _, c := range strings.Split(tbl.Properties()[ClassesProperty], ",") {
		if uid, err := strconv.Atoi(c); err == nil {
			m.classes[uid] = true
		}
	}
	return tbl, nil
}

func (m *Maintainer) open(ctx context.Context) (*itable.Table, error) {
	ident := Ident(m.cfg.Topic)
	tbl, err := m.cfg.Catalog.LoadTable(ctx, ident)
	if errors.Is(err, ErrNoTable) {
		sc := newSchema(m.cols)
		spec, err := newSpec(sc)
		if err != nil {
			return nil, fmt.Errorf("table: partition spec of %s: %w", m.cfg.Topic, err)
		}
		tbl, err = m.cfg.Catalog.Create(ctx, ident, sc, spec, tableProperties(m.cfg.Topic))
		if err != nil {
			return nil, err
		}
		m.log.Info("table created", "location", tbl.Location())
		return tbl, nil
	}
	if err != nil {
		return nil, err
	}
	// Schema evolution: a promoted attribute becomes a new nullable
	// column (Iceberg gives it a fresh field id, so files written before
	// read it as null); a column no longer promoted stays, null from now.
	var missing []column
	for _, c := range m.cols {
		if _, ok := tbl.Schema().FindFieldByName(c.name); !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return tbl, nil
	}
	tx := tbl.NewTransaction()
	us := tx.UpdateSchema(true, false)
	for _, c := range missing {
		us = us.AddColumn([]string{c.name}, c.typ, c.doc, false, nil)
	}
	if err := us.Commit(); err != nil {
		return nil, fmt.Errorf("table: add columns to %s: %w", m.cfg.Topic, err)
	}
	if tbl, err = tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("table: commit new columns of %s: %w", m.cfg.Topic, err)
	}
	m.log.Info("table schema evolved", "columns_added", len(missing))
	return tbl, nil
}

// tableProperties are a new table's.
func tableProperties(topic string) iceberg.Properties {
	return iceberg.Properties{
		itable.ParquetCompressionKey: "zstd",
		// A conflict must fail the commit, never rebase it: the
		// maintainer then restarts from the newest snapshot's offsets,
		// where a rebased append would commit records twice.
		itable.CommitNumRetriesKey: "0",
		// Columns whose values are all but unique gain nothing from a
		// dictionary, and building one the writer then abandons for
		// plain encoding cost a third of the writer's CPU.
		dictOff + "raw":             "false",
		dictOff + "kafka_offset":    "false",
		dictOff + "kafka_timestamp": "false",
		dictOff + "time":            "false",
		TopicProperty:               topic,
	}
}

// Run keeps the table until ctx ends or an error: records buffered and
// not committed then are read again by the next Run, from the offsets of
// the newest snapshot, which is what makes a crash at any point neither
// duplicate nor skip a record.
func (m *Maintainer) Run(ctx context.Context) error {
	tbl, err := m.Open(ctx)
	if err != nil {
		return err
	}
	if tbl, err = m.maintain(ctx, tbl); err != nil {
		return err
	}
	next := TableOffsets(tbl.Metadata())
	start := map[int32]kgo.Offset{}
	for p := range m.cfg.Partitions {
		if off, ok := next[p]; ok {
			start[p] = kgo.NewOffset().At(off)
		} else {
			start[p] = kgo.NewOffset().AtStart()
		}
	}
	cl, err := kgo.NewClient(append(slices.Clone(m.cfg.ClientOpts),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{m.cfg.Topic: start}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)...)
	if err != nil {
		return fmt.Errorf("table: client for %s: %w", m.cfg.Topic, err)
	}
	defer cl.Close()

	rw, err := newParts(tbl.Schema(), m.cols, m.ocsf)
	if err != nil {
		return err
	}
	defer func() {
		if rw != nil {
			rw.release()
		}
	}()
	var oldest time.Time // of the first buffered record
	commits := 0
	lag := newLagTracker(next)
	// flush commits the buffered rows; an evolving commit (of the rows
	// before a new class's first record) is not counted towards
	// CompactEvery, so that a class's arrival does not shift when the
	// table compacts.
	flush := func(evolving bool) error {
		n := rw.n
		if tbl, err = m.commit(ctx, tbl, rw.records(), next); err != nil {
			return err
		}
		m.log.Debug("table commit", "records", n, "snapshot", tbl.CurrentSnapshot().SnapshotID)
		m.met.committed(n)
		m.met.setLag(lag.committed(next))
		if m.cfg.OnCommit != nil {
			m.cfg.OnCommit(n)
		}
		if evolving {
			return nil
		}
		if commits++; commits%m.cfg.CompactEvery == 0 {
			if tbl, err = m.maintain(ctx, tbl); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		wait := m.cfg.CommitInterval
		if rw.n > 0 {
			wait = max(time.Until(oldest.Add(m.cfg.CommitInterval)), time.Millisecond)
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		fs := cl.PollRecords(pctx, m.cfg.CommitRecords-rw.n)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
				continue
			}
			return fmt.Errorf("table: read %s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
		}
		m.met.setLag(lag.fetched(fs))
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			if class, ok := rw.scan(r); ok && !m.classes[class] {
				if _, known := m.ocsf.Class(class); known {
					// Rows already buffered are committed with the schema
					// they were built for, then the class's columns added.
					if rw.n > 0 {
						if err := flush(true); err != nil {
							return err
						}
					}
					if tbl, err = m.addClass(ctx, tbl, class); err != nil {
						return err
					}
					rw.release()
					if rw, err = newParts(tbl.Schema(), m.cols, m.ocsf); err != nil {
						return err
					}
					rw.scan(r)
				}
			}
			if rw.n == 0 {
				oldest = time.Now()
			}
			rw.append(r)
			next[r.Partition] = r.Offset + 1
		}
		if rw.n == 0 || rw.n < m.cfg.CommitRecords && time.Since(oldest) < m.cfg.CommitInterval {
			continue
		}
		if err := flush(false); err != nil {
			return err
		}
	}
}

// props is a snapshot summary's Vigil part.
func (m *Maintainer) props(next map[int32]int64) iceberg.Properties {
	props := iceberg.Properties{TopicProperty: m.cfg.Topic}
	if m.cfg.Committer != "" {
		props[CommitterProperty] = m.cfg.Committer
	}
	for p, off := range next {
		props[OffsetProperty+strconv.Itoa(int(p))] = strconv.FormatInt(off, 10)
	}
	return props
}

// commit appends the batches of one commit (one per partition) as a
// snapshot whose summary carries next. Data files are written first; the
// snapshot exists once the catalog has written the metadata version
// naming it, and a failure before leaves files no snapshot names (the
// next Run writes the records again).
func (m *Maintainer) commit(ctx context.Context, tbl *itable.Table, recs []arrow.RecordBatch, next map[int32]int64) (*itable.Table, error) {
	tx, err := appendBatches(ctx, m.cfg.Catalog, tbl, recs, m.props(next))
	if err != nil {
		return nil, fmt.Errorf("table: write %s: %w", m.cfg.Topic, err)
	}
	out, err := tx.Commit(ctx)
	if err != nil {
		return nil, fmt.Errorf("table: commit %s: %w", m.cfg.Topic, err)
	}
	return out, nil
}

// addClass evolves the table's schema with the columns of an OCSF class
// it has none for: new nullable top-level fields with fresh ids, so that
// files written before read them as null and nothing is rewritten. A
// column whose name the table has already (another class's, of the same
// OCSF object since the dictionary gives a name one type; or a promoted
// single-attribute path) is kept as it is. The class joins
// ClassesProperty in the same metadata version, so a restart does not
// evolve again.
func (m *Maintainer) addClass(ctx context.Context, tbl *itable.Table, class int) (*itable.Table, error) {
	tx := tbl.NewTransaction()
	us := tx.UpdateSchema(true, false)
	var added []string
	for _, f := range classFields(m.ocsf, class) {
		if _, ok := tbl.Schema().FindFieldByName(f.Name); ok {
			continue
		}
		us = us.AddColumn([]string{f.Name}, f.Type, f.Doc, false, nil)
		added = append(added, f.Name)
	}
	if len(added) > 0 {
		if err := us.Commit(); err != nil {
			return nil, fmt.Errorf("table: add class %d columns to %s: %w", class, m.cfg.Topic, err)
		}
	}
	m.classes[class] = true
	uids := slices.Sorted(maps.Keys(m.classes))
	list := make([]string, len(uids))
	for i, u := range uids {
		list[i] = strconv.Itoa(u)
	}
	if err := tx.SetProperties(iceberg.Properties{ClassesProperty: strings.Join(list, ",")}); err != nil {
		delete(m.classes, class)
		return nil, fmt.Errorf("table: record class %d of %s: %w", class, m.cfg.Topic, err)
	}
	out, err := tx.Commit(ctx)
	if err != nil {
		delete(m.classes, class)
		return nil, fmt.Errorf("table: commit class %d columns of %s: %w", class, m.cfg.Topic, err)
	}
	m.log.Info("table schema evolved", "class_uid", class, "columns_added", len(added))
	return out, nil
}
