package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/placement"
	"github.com/vigilhq/vigil/internal/table"
	"github.com/vigilhq/vigil/internal/table/tablecfg"
)

// startTables starts the lakehouse tables of topics with
// vigil.table.enabled=true (internal/table, docs/tables.md). Each table
// is kept by one broker: the rendezvous owner of the key "table/<topic>"
// among the live brokers, as partitions are placed. The maintainers read
// the topics as a client of the PLAINTEXT listener, like the in-process
// ingest; without one, no table is kept and that is logged.
func (s *Server) startTables(ctx context.Context) {
	addr := s.PlaintextAdvertised()
	if addr == "" {
		s.log.Info("lakehouse tables are not kept: they read through a PLAINTEXT listener and there is none")
		return
	}
	var owns func(string) bool
	if s.member != nil {
		owns = func(topic string) bool {
			return placement.Owner("table/"+topic, s.member.LiveBrokers(), func(b meta.BrokerInfo) bool { return !b.Draining }) == s.cfg.NodeID
		}
	}
	met, err := table.NewMetrics(s.metrics.Registerer())
	if err != nil {
		s.log.Error("lakehouse table metrics not registered", "err", err)
	}
	svc := table.NewService(table.ServiceConfig{
		Store: s.objs, Base: storeURL(s.objs, s.cfg.ObjectStore),
		Topics: func() []meta.Topic {
			ts := s.store.Topics()
			out := make([]meta.Topic, 0, len(ts))
			for _, t := range ts {
				if !strings.HasPrefix(t.Name, "__") && !strings.HasPrefix(t.Name, "_vigil") {
					out = append(out, t.Topic)
				}
			}
			return out
		},
		Owns:        owns,
		Committer:   "broker " + strconv.Itoa(int(s.cfg.NodeID)),
		RetentionMs: s.cfg.RetentionMs,
		ClientOpts:  []kgo.Opt{kgo.SeedBrokers(addr), kgo.ClientID("vigil-table")},
		Interval:    min(5*time.Second, s.cfg.TableCommitInterval), CommitInterval: s.cfg.TableCommitInterval,
		OrphanAge: s.cfg.TableOrphanAge, Metrics: met,
		Log: s.log.With("component", "table"),
	})
	tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopTables, s.tablesDone = cancel, make(chan struct{})
	go func() {
		defer close(s.tablesDone)
		svc.Run(tctx)
	}()
}

// withIcebergCatalog serves the tables' Iceberg REST catalog under
// /iceberg beside next (table.RESTHandler): any broker serves it, from
// the shared object store.
func (s *Server) withIcebergCatalog(next http.Handler) http.Handler {
	cat := table.NewCatalog(context.Background(), s.objs, storeURL(s.objs, s.cfg.ObjectStore))
	rest := cat.RESTHandler(func() []string {
		var out []string
		for _, t := range s.store.Topics() {
			if tablecfg.On(t.Configs) {
				out = append(out, t.Name)
			}
		}
		return out
	})
	mux := http.NewServeMux()
	mux.Handle(table.RESTPrefix+"/", rest)
	mux.Handle("/", next)
	return mux
}

// storeURL is the URL other engines name the store's objects by: a
// directory as file:///abs/dir, an S3 store as s3://bucket/prefix
// without the connection parameters.
func storeURL(objs objstore.Store, configured string) string {
	switch o := objs.(type) {
	case *objstore.Dir:
		return "file://" + o.Root()
	case *objstore.S3:
		return strings.TrimRight(o.Name(), "/")
	}
	u, _, _ := strings.Cut(configured, "?")
	return strings.TrimRight(u, "/")
}
