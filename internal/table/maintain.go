package table

import (
	"context"
	"fmt"
	"strings"
	"time"

	itable "github.com/apache/iceberg-go/table"
	"github.com/apache/iceberg-go/table/compaction"
)

// Maintain compacts the table and expires its snapshots now, as Run does
// every CompactEvery commits.
func (m *Maintainer) Maintain(ctx context.Context) error {
	tbl, err := m.Open(ctx)
	if err != nil {
		return err
	}
	_, err = m.maintain(ctx, tbl)
	return err
}

// maintain compacts the table's small files and expires its snapshots
// past the topic's retention. It runs in the committer's goroutine,
// between commits, so it never races an append.
func (m *Maintainer) maintain(ctx context.Context, tbl *itable.Table) (*itable.Table, error) {
	tbl, err := m.compact(ctx, tbl)
	if err != nil {
		return nil, err
	}
	if tbl, err = m.expire(ctx, tbl); err != nil {
		return nil, err
	}
	if time.Since(m.lastSweep) >= min(m.cfg.OrphanAge/4, time.Hour) {
		if err := m.sweep(ctx, tbl); err != nil {
			return nil, err
		}
		m.lastSweep = time.Now()
	}
	return tbl, nil
}

// sweep deletes the files of failed commits: data files and manifests
// under the table's directory that no snapshot of the current metadata
// names (iceberg-go's orphan planner), once older than OrphanAge. A crash
// between writing a batch's files and its metadata version leaves them,
// as does a committer that lost a race for a version; the records are
// committed again by the next commit, so the files only cost storage.
// Metadata versions are left to the catalog's pruning, and the sweep
// only acts on the newest version: if another committer wrote a newer
// one, this committer's next commit fails anyway. Under legal hold
// nothing is deleted.
func (m *Maintainer) sweep(ctx context.Context, tbl *itable.Table) error {
	if m.cfg.LegalHold {
		return nil
	}
	cur, err := m.cfg.Catalog.LoadTable(ctx, tbl.Identifier())
	if err != nil {
		return fmt.Errorf("table: reload %s before the orphan sweep: %w", m.cfg.Topic, err)
	}
	if cur.MetadataLocation() != tbl.MetadataLocation() {
		m.log.Warn("orphan sweep skipped: another committer wrote a newer version", "newest", cur.MetadataLocation())
		return nil
	}
	plan, err := tbl.PlanOrphanFiles(ctx, itable.WithFilesOlderThan(m.cfg.OrphanAge))
	if err != nil {
		return fmt.Errorf("table: plan the orphan sweep of %s: %w", m.cfg.Topic, err)
	}
	loc := strings.TrimRight(tbl.Location(), "/")
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return fmt.Errorf("table: file system of %s: %w", m.cfg.Topic, err)
	}
	var files int
	var bytes int64
	for _, f := range plan.OrphanFiles() {
		data := strings.HasPrefix(f.Path, loc+"/data/")
		manifest := strings.HasPrefix(f.Path, loc+"/metadata/") && strings.HasSuffix(f.Path, ".avro")
		if !data && !manifest {
			continue
		}
		if err := fsys.Remove(f.Path); err != nil {
			return fmt.Errorf("table: delete orphan %s: %w", f.Path, err)
		}
		files++
		bytes += f.SizeBytes
	}
	if files > 0 {
		m.log.Info("table orphan files deleted", "files", files, "bytes", bytes, "older_than", m.cfg.OrphanAge)
		m.met.swept(files)
	}
	return nil
}

// compact rewrites, in each partition (event day and class) with at
// least five files under 75% of TargetFileBytes, those files into files
// of about TargetFileBytes: a commit every CommitInterval writes one
// small file per partition it touches, and readers pay per file. The
// rewrite is a snapshot of its own that carries the offsets of the one
// before, so resuming is unaffected; the files it replaces stay in the
// older snapshots until those expire.
func (m *Maintainer) compact(ctx context.Context, tbl *itable.Table) (*itable.Table, error) {
	if tbl.CurrentSnapshot() == nil {
		return tbl, nil
	}
	cfg := compaction.DefaultConfig()
	cfg.TargetFileSizeBytes = m.cfg.TargetFileBytes
	cfg.MinFileSizeBytes = m.cfg.TargetFileBytes * 3 / 4
	cfg.MaxFileSizeBytes = m.cfg.TargetFileBytes * 9 / 5
	plan, err := compaction.Analyze(ctx, tbl, cfg)
	if err != nil {
		return nil, fmt.Errorf("table: plan compaction of %s: %w", m.cfg.Topic, err)
	}
	if len(plan.Groups) == 0 {
		return tbl, nil
	}
	groups := make([]itable.CompactionTaskGroup, len(plan.Groups))
	for i, g := range plan.Groups {
		groups[i] = itable.CompactionTaskGroup{PartitionKey: g.PartitionKey, Tasks: g.Tasks, TotalSizeBytes: g.TotalSizeBytes}
	}
	tx := tbl.NewTransaction()
	res, err := tx.RewriteDataFiles(ctx, groups, itable.RewriteDataFilesOptions{
		SnapshotProps: m.props(TableOffsets(tbl.Metadata())),
		GroupOptions:  []itable.CompactionGroupOption{itable.WithCompactionTargetFileSize(m.cfg.TargetFileBytes)},
	})
	if err != nil {
		return nil, fmt.Errorf("table: compact %s: %w", m.cfg.Topic, err)
	}
	out, err := tx.Commit(ctx)
	if err != nil {
		return nil, fmt.Errorf("table: commit compaction of %s: %w", m.cfg.Topic, err)
	}
	m.log.Info("table compacted", "groups", res.RewrittenGroups, "files_before", plan.TotalInputFiles, "bytes", plan.TotalInputBytes)
	return out, nil
}

// expire drops the snapshots older than the topic's retention, and the
// files only they named (the inputs of past compactions), as the topic
// drops its old segments: time travel reaches as far back as the topic
// does. Under legal hold nothing is expired.
func (m *Maintainer) expire(ctx context.Context, tbl *itable.Table) (*itable.Table, error) {
	if m.cfg.LegalHold || m.cfg.RetentionMs <= 0 || len(tbl.Metadata().Snapshots()) < 2 {
		return tbl, nil
	}
	before := len(tbl.Metadata().Snapshots())
	tx := tbl.NewTransaction()
	if err := tx.ExpireSnapshots(itable.WithOlderThan(time.Duration(m.cfg.RetentionMs)*time.Millisecond), itable.WithRetainLast(1)); err != nil {
		return nil, fmt.Errorf("table: expire snapshots of %s: %w", m.cfg.Topic, err)
	}
	out, err := tx.Commit(ctx)
	if err != nil {
		return nil, fmt.Errorf("table: commit snapshot expiry of %s: %w", m.cfg.Topic, err)
	}
	if n := before - len(out.Metadata().Snapshots()); n > 0 {
		m.log.Info("table snapshots expired", "snapshots", n, "retention_ms", m.cfg.RetentionMs)
	}
	return out, nil
}
