package table

import (
	"context"
	"fmt"
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
	return m.expire(ctx, tbl)
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
