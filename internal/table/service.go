package table

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/internal/table/tablecfg"
)

// ServiceConfig is a Service's.
type ServiceConfig struct {
	Store objstore.Store
	// Base is the store's URL (see NewCatalog).
	Base string
	// Topics lists the topics with their configs.
	Topics func() []meta.Topic
	// Committer names this broker in the snapshots it commits.
	Committer string
	// Owns reports whether this broker keeps the topic's table; nil: all.
	Owns       func(topic string) bool
	ClientOpts []kgo.Opt
	// RetentionMs is the broker's default retention.ms, for topics that
	// do not set their own.
	RetentionMs int64
	// Interval is how often topics are looked at (default 5s).
	Interval       time.Duration
	CommitRecords  int
	CommitInterval time.Duration
	// OrphanAge is Config.OrphanAge of every table.
	OrphanAge time.Duration
	// Metrics, if set, gets every table's series.
	Metrics *Metrics
	Log     *slog.Logger
}

// Service runs a Maintainer for each table-enabled topic this broker
// owns, starting and stopping them as configs and ownership change, and
// restarting one that fails after a backoff.
type Service struct {
	cfg     ServiceConfig
	log     *slog.Logger
	running map[string]*runner
}

type runner struct {
	sig    string // what the maintainer was built from; a change restarts it
	cancel context.CancelFunc
	done   chan struct{}
}

// NewService returns a service; Run starts it.
func NewService(cfg ServiceConfig) *Service {
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, log: cfg.Log, running: map[string]*runner{}}
}

// Run reconciles until ctx ends, then stops every maintainer.
func (s *Service) Run(ctx context.Context) {
	cat := NewCatalog(ctx, s.cfg.Store, s.cfg.Base)
	switch err := cat.CheckCreate(ctx); {
	case errors.Is(err, ErrCreateNotAtomic):
		s.log.Error("the object store's conditional create does not hold: while a table's ownership moves between brokers, two committers could write the same version", "err", err)
	case err != nil:
		s.log.Warn("the object store's conditional create could not be probed; commits rely on it all the same", "err", err)
	}
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		s.reconcile(ctx, cat)
		select {
		case <-ctx.Done():
			s.stopAll()
			return
		case <-t.C:
		}
	}
}

func (s *Service) reconcile(ctx context.Context, cat *Catalog) {
	want := map[string]meta.Topic{}
	for _, t := range s.cfg.Topics() {
		if tablecfg.On(t.Configs) && (s.cfg.Owns == nil || s.cfg.Owns(t.Name)) {
			want[t.Name] = t
		}
	}
	for name, r := range s.running {
		if t, ok := want[name]; !ok || s.signature(t) != r.sig {
			r.cancel()
			<-r.done
			delete(s.running, name)
			s.cfg.Metrics.forget(name)
		}
	}
	for name, t := range want {
		if _, ok := s.running[name]; ok {
			continue
		}
		cols, err := tablecfg.ParseColumns(t.Configs[tablecfg.Columns])
		if err != nil { // validated when set; an older value may not be
			s.log.Error("table not kept: bad config", "topic", name, "err", err)
			continue
		}
		m := NewMaintainer(Config{Topic: name, Partitions: t.Partitions, Columns: cols, Catalog: cat,
			ClientOpts: s.cfg.ClientOpts, CommitRecords: s.cfg.CommitRecords, CommitInterval: s.cfg.CommitInterval,
			RetentionMs: s.retention(t), LegalHold: storage.LegalHold(t), OrphanAge: s.cfg.OrphanAge,
			Committer: s.cfg.Committer, Metrics: s.cfg.Metrics, Log: s.log})
		rctx, cancel := context.WithCancel(ctx)
		r := &runner{sig: s.signature(t), cancel: cancel, done: make(chan struct{})}
		s.running[name] = r
		go s.keep(rctx, m, r.done)
	}
}

// retention is the topic's effective retention.ms.
func (s *Service) retention(t meta.Topic) int64 {
	if v, err := strconv.ParseInt(t.Configs["retention.ms"], 10, 64); err == nil {
		return v
	}
	return s.cfg.RetentionMs
}

// signature is what a maintainer depends on in a topic: a change
// restarts it, from the table's newest snapshot.
func (s *Service) signature(t meta.Topic) string {
	return fmt.Sprintf("%d|%s|%d|%v", t.Partitions, strings.TrimSpace(t.Configs[tablecfg.Columns]), s.retention(t), storage.LegalHold(t))
}

// keep runs m until ctx ends, again after each failure.
func (s *Service) keep(ctx context.Context, m *Maintainer, done chan struct{}) {
	defer close(done)
	backoff := time.Second
	for {
		start := time.Now()
		err := m.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		m.met.failed()
		s.log.Error("table maintainer failed; restarting from the table's newest snapshot", "topic", m.cfg.Topic, "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (s *Service) stopAll() {
	for name, r := range s.running {
		r.cancel()
		<-r.done
		delete(s.running, name)
		s.cfg.Metrics.forget(name)
	}
}
