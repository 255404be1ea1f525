// Package server assembles a broker process from its configuration: the
// metadata store, the object store, the storage engine and the Kafka
// listener, and takes them down in the right order.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/vigilhq/vigil/internal/broker"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/group"
	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/meta/boltstore"
	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/storage"
)

// Server is one running `vigil serve`.
type Server struct {
	cfg    config.Broker
	log    *slog.Logger
	meta   meta.Store
	objs   objstore.Store
	store  *storage.Engine
	groups *group.Coordinator
	broker *broker.Broker
	ln     net.Listener
}

// Start opens everything and starts listening; Serve then accepts.
func Start(ctx context.Context, cfg config.Broker, log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	s := &Server{cfg: cfg, log: log}
	var err error
	metaPath := filepath.Join(cfg.DataDir, "meta.db")
	if s.meta, err = boltstore.Open(metaPath); err != nil {
		return nil, fmt.Errorf("open metadata %s: %w", metaPath, err)
	}
	if s.objs, err = objstore.Open(ctx, cfg.ObjectStore); err != nil {
		s.meta.Close()
		return nil, fmt.Errorf("open object store: %w", err)
	}
	clusterID, err := s.meta.ClusterID(ctx)
	if err != nil {
		s.closeStores()
		return nil, fmt.Errorf("cluster id: %w", err)
	}
	s.store, err = storage.Open(ctx, s.meta, s.objs, storage.Options{
		WALDir:         filepath.Join(cfg.DataDir, "wal"),
		WALSync:        cfg.WALSync,
		UploadInterval: cfg.UploadInterval,
		SegmentBytes:   cfg.SegmentBytes,
		TailCacheBytes: cfg.TailCacheBytes,

		RetentionMs:       cfg.RetentionMs,
		RetentionBytes:    cfg.RetentionBytes,
		RetentionInterval: cfg.RetentionCheckInterval,
		ObjectDeleteDelay: cfg.ObjectDeleteDelay,
		Logger:            log,
	})
	if err != nil {
		s.closeStores()
		return nil, err
	}
	if s.groups, err = openGroups(ctx, cfg, s.store, log); err != nil {
		s.store.Close()
		s.closeStores()
		return nil, err
	}
	if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		s.groups.Close()
		s.store.Close()
		s.closeStores()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	// With port 0 (tests), advertise the port the kernel picked.
	if host, port, _ := net.SplitHostPort(cfg.Advertised); port == "0" {
		_, real, _ := net.SplitHostPort(s.ln.Addr().String())
		cfg.Advertised = net.JoinHostPort(host, real)
		s.cfg = cfg
	}
	if s.broker, err = broker.New(cfg, s.store, s.groups, clusterID, log); err != nil {
		s.ln.Close()
		s.groups.Close()
		s.store.Close()
		s.closeStores()
		return nil, err
	}
	log.Info("vigil broker listening", "listen", s.ln.Addr().String(), "advertised", cfg.Advertised,
		"data_dir", cfg.DataDir, "object_store", cfg.ObjectStore, "wal", cfg.WAL, "cluster_id", clusterID)
	return s, nil
}

// openGroups opens __consumer_offsets (creating it on first start) and
// loads the group coordinator from it. Its retention is unlimited: the
// coordinator bounds it itself with snapshots and log-start moves.
func openGroups(ctx context.Context, cfg config.Broker, store *storage.Engine, log *slog.Logger) (*group.Coordinator, error) {
	offsets, err := store.OpenInternalTopic(ctx, group.OffsetsTopic, cfg.OffsetsPartitions,
		map[string]string{"retention.ms": "-1", "retention.bytes": "-1"})
	if err != nil {
		return nil, err
	}
	g := group.New(group.Config{
		InitialRebalanceDelay: cfg.GroupInitialRebalance,
		MinSessionTimeout:     cfg.GroupMinSession,
		SnapshotMinRecords:    int(cfg.OffsetsSnapshot),
		Logger:                log,
	}, offsets, store)
	if err := g.Load(ctx); err != nil {
		g.Close()
		return nil, fmt.Errorf("load consumer groups: %w", err)
	}
	return g, nil
}

// Addr is the address the listener is bound to.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// UploadBacklog is how many bytes are durable in the WAL but not yet
// uploaded as segment objects.
func (s *Server) UploadBacklog() int64 { return s.store.UploadBacklog() }

// Serve accepts clients until Close.
func (s *Server) Serve() error { return s.broker.Serve(s.ln) }

// Close stops clients first, then flushes the WAL and uploads everything,
// then closes the stores.
func (s *Server) Close() error {
	var errs []error
	if err := s.broker.Close(); err != nil {
		errs = append(errs, err)
	}
	// Groups stop before storage: their last appends still reach the WAL.
	s.groups.Close()
	if err := s.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close storage: %w", err))
	}
	if err := s.closeStores(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s *Server) closeStores() error {
	var errs []error
	if s.objs != nil {
		errs = append(errs, s.objs.Close())
	}
	if err := s.meta.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close metadata: %w", err))
	}
	return errors.Join(errs...)
}
