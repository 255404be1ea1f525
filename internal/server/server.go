// Package server assembles a broker process from its configuration: the
// metadata store, the object store, the storage engine and the Kafka
// listener, and takes them down in the right order.
package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/audit"
	"github.com/vigilhq/vigil/internal/broker"
	"github.com/vigilhq/vigil/internal/catchup"
	"github.com/vigilhq/vigil/internal/cluster"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/group"
	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/meta/boltstore"
	"github.com/vigilhq/vigil/internal/meta/etcdstore"
	"github.com/vigilhq/vigil/internal/metrics"
	"github.com/vigilhq/vigil/internal/objstore"
	"github.com/vigilhq/vigil/internal/quota"
	"github.com/vigilhq/vigil/internal/readcache"
	"github.com/vigilhq/vigil/internal/sasl"
	"github.com/vigilhq/vigil/internal/security"
	"github.com/vigilhq/vigil/internal/storage"
	"github.com/vigilhq/vigil/internal/txn"
)

// Server is one running `vigil serve`.
type Server struct {
	cfg    config.Broker
	log    *slog.Logger
	meta   meta.Store
	objs   objstore.Store
	store  *storage.Engine
	groups *group.Shards // this broker's group coordinators; see groupsMu
	broker *broker.Broker
	lns    []net.Listener // one per cfg.Listeners entry, TLS ones wrapped

	security     *security.State
	trail        *audit.Trail
	stopTrail    context.CancelFunc
	trailDone    chan struct{}
	sasl         *sasl.Registry     // nil without a SASL listener
	stopSecurity context.CancelFunc // stops the security poll and, in a cluster, the quota poll
	securityDone chan struct{}

	metrics *metrics.Metrics
	catchup *catchup.Governor // nil: --catchup-pacing=false
	adminLn net.Listener      // nil when --admin-listen is empty
	admin   *http.Server

	served chan error // the Kafka listener's Serve result

	stopCatchup context.CancelFunc
	catchupDone chan struct{}

	stopTables context.CancelFunc // nil: no lakehouse tables (tables.go)
	tablesDone chan struct{}

	// Cluster mode (--metadata etcd://...); nil for a single broker.
	member     *cluster.Member
	stopMember context.CancelFunc
	memberDone chan struct{}
	groupsMu   sync.Mutex // guards groups: coordinators move with leadership

	// The transaction coordinators (transactions.go), guarded by txnMu:
	// they move with leadership too. txnClosed: the server is stopping.
	txnMu     sync.Mutex
	txns      *txn.Shards
	txnClosed bool
}

// Start opens everything and starts serving Kafka clients; Serve waits
// until the listener stops.
func Start(ctx context.Context, cfg config.Broker, log *slog.Logger) (_ *Server, err error) {
	s := &Server{cfg: cfg, log: log, metrics: metrics.New()}
	defer func() {
		if err != nil {
			for _, ln := range s.lns {
				ln.Close()
			}
			if s.adminLn != nil {
				s.adminLn.Close()
			}
		}
	}()
	// Bind before anything is created on disk: a port in use (a second
	// broker started by mistake) must not leave a data directory behind.
	// The listeners are copied: their advertised ports may change below. A
	// config built in code rather than by config.Load may have none yet.
	if len(cfg.Listeners) == 0 {
		if cfg.Listeners, err = config.ParseListeners(cfg.Listen, cmp.Or(cfg.Advertised, cfg.Listen)); err != nil {
			return nil, err
		}
	}
	cfg.Listeners = slices.Clone(cfg.Listeners)
	for i, l := range cfg.Listeners {
		ln, err := net.Listen("tcp", l.Addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", l, err)
		}
		s.lns = append(s.lns, ln)
		// With port 0 (tests), advertise the port the kernel picked.
		if host, port, _ := net.SplitHostPort(l.Advertised); port == "0" {
			_, real, _ := net.SplitHostPort(ln.Addr().String())
			cfg.Listeners[i].Advertised = net.JoinHostPort(host, real)
		}
	}
	cfg.Advertised = cfg.Listeners[0].Advertised
	s.cfg = cfg
	if cfg.AdminListen != "" {
		if s.adminLn, err = net.Listen("tcp", cfg.AdminListen); err != nil {
			return nil, fmt.Errorf("admin listen on %s: %w", cfg.AdminListen, err)
		}
	}
	if err := s.wrapTLS(log); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if s.meta, err = openMeta(ctx, cfg); err != nil {
		return nil, err
	}
	if s.objs, err = objstore.Open(ctx, cfg.ObjectStore, objstore.Options{
		S3AccessKeyID:     cfg.S3AccessKeyID,
		S3SecretAccessKey: string(cfg.S3SecretAccessKey),
		S3CA:              cfg.S3CA,
	}); err != nil {
		s.meta.Close()
		return nil, fmt.Errorf("open object store: %w", err)
	}
	clusterID, err := s.meta.ClusterID(ctx)
	if err != nil {
		s.closeStores()
		return nil, fmt.Errorf("cluster id: %w", err)
	}
	cl, clustered := s.meta.(meta.Cluster)
	var clusterOpts *storage.ClusterOptions
	if clustered {
		// The file WAL dies with its disk: a cluster needs every broker's
		// tail readable by the others (config refuses it too).
		if cfg.WAL != "object" {
			s.closeStores()
			return nil, fmt.Errorf("--metadata %s needs --wal object (got %q)", cfg.Metadata, cfg.WAL)
		}
		clusterOpts = &storage.ClusterOptions{Cluster: cl, BrokerID: cfg.NodeID}
	}
	if cfg.CatchupPacing {
		// An object WAL's commit is a chunk Put after a flush interval, far
		// slower than an fdatasync when nothing is wrong.
		commitLimit := cfg.CatchupCommitLimit
		if commitLimit == 0 {
			commitLimit = 5 * time.Millisecond
			if cfg.WAL == "object" {
				commitLimit = max(commitLimit, 10*cfg.WALFlushInterval)
			}
		}
		s.catchup = catchup.New(catchup.Options{MinRate: float64(cfg.CatchupMinRate), MaxRate: float64(cfg.CatchupMaxRate),
			CommitLimit: commitLimit, SchedLimit: cfg.CatchupSchedLimit})
	}
	s.store, err = storage.Open(ctx, s.meta, s.objs, storage.Options{
		Cluster:        clusterOpts,
		WALDir:         filepath.Join(cfg.DataDir, "wal"),
		WALSync:        cfg.WALSync,
		UploadInterval: cfg.UploadInterval,
		SegmentBytes:   cfg.SegmentBytes,
		TailCacheBytes: cfg.TailCacheBytes,
		Observer:       walObserver{s.metrics, s.catchup},
		ReadCache: readcache.Options{CapacityBytes: cfg.ReadCacheBytes, Workers: int(cfg.ReadWorkers),
			ReadAhead: int(cfg.ReadAheadBlocks)},

		RetentionMs:        cfg.RetentionMs,
		RetentionBytes:     cfg.RetentionBytes,
		RetentionInterval:  cfg.RetentionCheckInterval,
		CompactTargetBytes: cfg.CompactTargetBytes,
		ObjectDeleteDelay:  cfg.ObjectDeleteDelay,
		Logger:             log,

		WAL:              cfg.WAL, // with "object", nothing is written under WALDir
		WALStore:         s.objs,
		BrokerID:         cfg.NodeID,
		WALFlushInterval: cfg.WALFlushInterval,
		WALFlushBytes:    cfg.WALFlushBytes,
	})
	if err != nil {
		s.closeStores()
		return nil, err
	}
	if clustered {
		// The coordinator is built once this broker leads
		// __consumer_offsets (onLeadership); the topic must exist first.
		if err := ensureOffsetsTopic(ctx, cfg, s.store); err != nil {
			s.store.Close()
			s.closeStores()
			return nil, err
		}
	} else if s.groups, err = openAllGroups(ctx, cfg, s.store, log); err != nil {
		s.store.Close()
		s.closeStores()
		return nil, err
	}
	quotas, err := quota.Open(ctx, s.meta)
	if err != nil {
		s.closeGroups()
		s.store.Close()
		s.closeStores()
		return nil, err
	}
	if s.broker, err = broker.New(cfg, s.store, s.groups, quotas, clusterID, log); err != nil {
		s.closeGroups()
		s.store.Close()
		s.closeStores()
		return nil, err
	}
	s.broker.SetObserver(s.metrics)
	s.store.OnTopicDeleted(s.forgetTopicOffsets)
	sec, err := s.openSecurity(ctx)
	if err != nil {
		s.closeGroups()
		s.store.Close()
		s.closeStores()
		return nil, err
	}
	if sec.Observer, err = s.openAudit(ctx); err != nil {
		s.closeGroups()
		s.store.Close()
		s.closeStores()
		return nil, err
	}
	if clustered {
		err = s.ensureTxnTopic(ctx) // coordinators follow leadership
	} else {
		err = s.openAllTxns(ctx)
	}
	if err != nil {
		s.closeGroups()
		s.store.Close()
		s.closeStores()
		return nil, err
	}
	s.broker.SetSecurity(sec)
	{
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s.stopSecurity, s.securityDone = cancel, make(chan struct{})
		go func() {
			defer close(s.securityDone)
			var wg sync.WaitGroup
			if clustered {
				// Quotas altered through another broker apply here too.
				wg.Go(func() { quotas.Run(sctx, quota.PollInterval, log) })
			}
			s.security.Run(sctx, security.PollInterval)
			wg.Wait()
		}()
	}
	if s.catchup != nil {
		s.broker.SetCatchup(s.catchup)
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s.stopCatchup, s.catchupDone = cancel, make(chan struct{})
		go func() {
			defer close(s.catchupDone)
			s.catchup.Run(cctx)
		}()
		s.metrics.Gauge("vigil_catchup_rate_bytes", "Bytes/s catch-up fetches (reads of segment objects) are paced to now.", s.catchup.Rate)
	}
	if clustered {
		endpoints := map[string]string{}
		for _, l := range cfg.Listeners {
			endpoints[l.Protocol] = l.Advertised
		}
		s.member = cluster.New(cluster.Config{BrokerID: cfg.NodeID, Addr: cfg.Advertised, Endpoints: endpoints, Zone: cfg.Zone,
			LeaseTTL: cfg.LeaseTTL, BeforeRelease: s.beforeRelease, Logger: log},
			cl, s.store, s.onLeadership)
		if err := s.broker.SetCluster(s.member); err != nil {
			s.closeGroups()
			s.store.Close()
			s.closeStores()
			return nil, err
		}
		if err := s.member.Join(ctx); err != nil {
			s.store.Close()
			s.closeStores()
			return nil, fmt.Errorf("join cluster: %w", err)
		}
		mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s.stopMember, s.memberDone = cancel, make(chan struct{})
		go func() {
			defer close(s.memberDone)
			s.member.Run(mctx)
		}()
	}
	s.metrics.Gauge("vigil_upload_backlog_bytes", "Bytes durable in the WAL but not yet uploaded as segment objects.",
		func() float64 { return float64(s.store.UploadBacklog()) })
	s.metrics.Gauge("vigil_wal_full", "1 while the WAL has no disk space for its next file and produce is refused with KAFKA_STORAGE_ERROR, else 0.",
		func() float64 { return float64(boolInt(s.store.WALFull())) })
	s.metrics.GroupLag(s.groupLag)
	if clustered {
		s.metrics.Counter("vigil_takeover_recovered_bytes_total", "Record bytes this broker rebuilt from other brokers' WALs when taking partitions over (zero for planned hand-overs).",
			func() float64 { return float64(s.store.RecoveredBytes()) })
		s.metrics.Gauge("vigil_partitions_led", "Partitions this broker leads now.", func() float64 { return float64(len(s.store.Led())) })
		s.registerClusterHealth() // health.go: lease metrics and the /readyz check
		zb := s.broker.ZoneBytes()
		load := func(v interface{ Load() int64 }) func() float64 { return func() float64 { return float64(v.Load()) } }
		s.metrics.LabeledCounter("vigil_zone_client_bytes_total",
			"Request and response bytes between this broker and clients that named a zone in client.id, by whether that zone is another than this broker's.",
			"cross", map[string]func() float64{"false": load(&zb.ClientSame), "true": load(&zb.ClientCross)})
		s.metrics.LabeledCounter("vigil_zone_forward_bytes_total",
			"Bytes this broker sent to and received from other brokers forwarding client requests to partition leaders, by whether the other broker is in another zone.",
			"cross", map[string]func() float64{"false": load(&zb.ForwardSame), "true": load(&zb.ForwardCross)})
	}
	s.metrics.Counter("vigil_connections_throttled_total", "Connections refused (held unserved, then closed) for being over their address's connection_creation_rate quota.",
		func() float64 { return float64(s.broker.ThrottledConnections()) })
	rs := s.broker.Recompression()
	s.metrics.Counter("vigil_recompressed_batches_total", "Produced batches rebuilt in their topic's compression.type codec.", func() float64 { return float64(rs.Batches.Load()) })
	s.metrics.Counter("vigil_recompress_in_bytes_total", "Bytes of those batches as the producers sent them.", func() float64 { return float64(rs.BytesIn.Load()) })
	s.metrics.Counter("vigil_recompress_out_bytes_total", "Bytes of those batches once recompressed.", func() float64 { return float64(rs.BytesOut.Load()) })
	rc := s.store.ReadCacheStats
	s.metrics.Counter("vigil_read_cache_hits_total", "Catch-up reads of a block found in the cache.", func() float64 { return float64(rc().Hits) })
	s.metrics.Counter("vigil_read_cache_misses_total", "Catch-up reads of a block that had to read the object store.", func() float64 { return float64(rc().Misses) })
	s.metrics.Counter("vigil_read_prefetches_total", "Blocks read ahead with idle workers.", func() float64 { return float64(rc().Prefetches) })
	s.metrics.Gauge("vigil_read_cache_bytes", "Bytes of object blocks cached now.", func() float64 { return float64(rc().Bytes) })
	s.metrics.Gauge("vigil_catchup_queue_depth", "Catch-up reads waiting for an I/O worker now.", func() float64 { return float64(rc().Waiting) })
	if s.adminLn != nil {
		token, err := readToken(cfg.AdminTokenFile)
		if err != nil {
			s.closeGroups()
			s.store.Close()
			s.closeStores()
			return nil, err
		}
		if cfg.AdminTLS {
			tc, err := s.adminTLS()
			if err != nil {
				s.closeGroups()
				s.store.Close()
				s.closeStores()
				return nil, err
			}
			s.adminLn = tls.NewListener(s.adminLn, tc)
		}
		s.admin = &http.Server{Handler: adminHandler(s.withIcebergCatalog(s.metrics.Handler()), token), ReadHeaderTimeout: 10 * time.Second}
		go s.admin.Serve(s.adminLn)
	}
	// Serve here rather than in Serve(), so that a started Server answers
	// clients at once (an in-process ingest service connects right away).
	s.served = make(chan error, len(s.lns))
	var listening []string
	for i, ln := range s.lns {
		go func() { s.served <- s.broker.Serve(ln, cfg.Listeners[i]) }()
		listening = append(listening, cfg.Listeners[i].Protocol+"://"+ln.Addr().String())
	}
	s.startTables(ctx)
	s.metrics.SetReady(true)
	log.Info("vigil broker listening", "listen", strings.Join(listening, ","), "advertised", cfg.Advertised,
		"admin", s.AdminAddr(), "data_dir", cfg.DataDir, "metadata", cmp.Or(cfg.Metadata, "embedded"), "object_store", cfg.ObjectStore, "wal", cfg.WAL, "cluster_id", clusterID)
	return s, nil
}

// openMeta opens the metadata store --metadata names: etcd, or by
// default the embedded bbolt file in the data directory.
func openMeta(ctx context.Context, cfg config.Broker) (meta.Store, error) {
	if cfg.Metadata == "" {
		path := filepath.Join(cfg.DataDir, "meta.db")
		st, err := boltstore.Open(path)
		if err != nil {
			return nil, fmt.Errorf("open metadata %s: %w", path, err)
		}
		return st, nil
	}
	endpoints, prefix, err := config.ParseEtcdURL(cfg.Metadata)
	if err != nil {
		return nil, fmt.Errorf("--metadata: %w", err)
	}
	access, err := cfg.EtcdAccess()
	if err != nil {
		return nil, err
	}
	st, err := etcdstore.Open(ctx, etcdstore.Config{Endpoints: endpoints, Prefix: prefix,
		TLS: access.TLS, Username: access.Username, Password: access.Password})
	if err != nil {
		return nil, fmt.Errorf("open metadata %s: %w", cfg.Metadata, err)
	}
	return st, nil
}

// AdminAddr is where /metrics, /healthz and /readyz are served ("" if off).
func (s *Server) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

// forgetTopicOffsets drops the committed offsets of a deleted topic from
// this broker's group coordinators, as Kafka's onPartitionsDeleted: a
// topic created again under the name starts without them.
func (s *Server) forgetTopicOffsets(ctx context.Context, name string, partitions int32) {
	s.groupsMu.Lock()
	shards := s.groups
	s.groupsMu.Unlock()
	for _, co := range shards.All() {
		n, err := co.ForgetTopic(ctx, name, partitions)
		if err != nil {
			s.log.Warn("committed offsets of a deleted topic not yet removed", "topic", name, "err", err)
		} else if n > 0 {
			s.log.Info("removed the committed offsets of a deleted topic", "topic", name, "offsets", n)
		}
	}
}

// groupLag is every committed offset's distance to its partition's high
// watermark, computed at scrape time.
func (s *Server) groupLag() []metrics.Lag {
	var out []metrics.Lag
	s.groupsMu.Lock()
	shards := s.groups
	s.groupsMu.Unlock()
	for _, co := range shards.All() {
		out = append(out, s.coordinatorLag(co)...)
	}
	return out
}

func (s *Server) coordinatorLag(co *group.Coordinator) []metrics.Lag {
	var out []metrics.Lag
	for _, g := range co.List(nil) {
		offs, code := co.FetchOffsets(g.Group, nil, true)
		if code != 0 {
			continue
		}
		for _, o := range offs {
			t := s.store.Topic(o.Topic)
			if t == nil || o.Offset < 0 || o.Partition < 0 || int(o.Partition) >= len(t.Logs) {
				continue
			}
			l := t.Logs[o.Partition]
			_, hw := l.Offsets()
			out = append(out, metrics.Lag{Group: g.Group, Topic: o.Topic, Partition: o.Partition,
				Lag: max(0, hw-o.Offset), Stable: max(0, l.LSO()-o.Offset)})
		}
	}
	return out
}

// openGroups opens __consumer_offsets (creating it on first start) and
// loads a group coordinator of its partitions parts (nil: all) from it.
// Its retention is unlimited: the coordinator bounds it itself with
// snapshots and log-start moves.
func openGroups(ctx context.Context, cfg config.Broker, store *storage.Engine, log *slog.Logger, parts []int32) (*group.Coordinator, error) {
	offsets, err := store.OpenInternalTopic(ctx, group.OffsetsTopic, cfg.OffsetsPartitions,
		map[string]string{"retention.ms": "-1", "retention.bytes": "-1"})
	if err != nil {
		return nil, err
	}
	g := group.New(group.Config{
		InitialRebalanceDelay: cfg.GroupInitialRebalance,
		MinSessionTimeout:     cfg.GroupMinSession,
		SnapshotMinRecords:    int(cfg.OffsetsSnapshot),
		OffsetsRetention:      cfg.OffsetsRetention,
		OffsetsRetentionCheck: cfg.OffsetsRetentionCheck,
		Partitions:            parts,
		Logger:                log,

		ConsumerSessionTimeout:    cfg.GroupConsumerSession,
		ConsumerHeartbeatInterval: cfg.GroupConsumerHeartbeat,
	}, offsets, store)
	if err := g.Load(ctx); err != nil {
		g.Close()
		return nil, fmt.Errorf("load consumer groups: %w", err)
	}
	return g, nil
}

// openAllGroups loads a single broker's coordinators: one per offsets
// partition, as a cluster spreads them, so that a group's appends wait
// only behind those of the groups sharing its partition.
func openAllGroups(ctx context.Context, cfg config.Broker, store *storage.Engine, log *slog.Logger) (*group.Shards, error) {
	if err := ensureOffsetsTopic(ctx, cfg, store); err != nil {
		return nil, err
	}
	start := time.Now()
	n := int32(len(store.Topic(group.OffsetsTopic).Logs))
	byPart := make(map[int32]*group.Coordinator, n)
	groups := 0
	for p := range n {
		g, err := openGroups(ctx, cfg, store, log, []int32{p})
		if err != nil {
			for _, g := range byPart {
				g.Close()
			}
			return nil, err
		}
		byPart[p] = g
		groups += len(g.List(nil))
	}
	log.Info("consumer groups loaded", "offsets_partitions", n, "groups", groups, "took", time.Since(start))
	return group.NewShards(n, byPart), nil
}

// ensureOffsetsTopic creates __consumer_offsets if no broker has yet.
func ensureOffsetsTopic(ctx context.Context, cfg config.Broker, store *storage.Engine) error {
	_, err := store.OpenInternalTopic(ctx, group.OffsetsTopic, cfg.OffsetsPartitions,
		map[string]string{"retention.ms": "-1", "retention.bytes": "-1"})
	return err
}

// onLeadership moves the transaction coordinators with
// __transaction_state (transactions.go) and the group coordinators with
// __consumer_offsets: this broker runs one coordinator per partition it
// leads, loaded when it takes the partition over and dropped as soon as
// it leads it no more, so groups and transactional ids spread over the
// brokers as in Kafka and a broker's loss moves only its share of them.
func (s *Server) onLeadership() {
	s.moveTxnCoordinators()
	t := s.store.Topic(group.OffsetsTopic)
	if t == nil {
		return
	}
	led := s.store.Led()
	s.groupsMu.Lock()
	defer s.groupsMu.Unlock()
	cur := s.groups.Map()
	next := make(map[int32]*group.Coordinator, len(cur))
	var closing []*group.Coordinator
	changed := false
	for p := range t.Logs {
		p := int32(p)
		_, leads := led[storage.Partition{Topic: group.OffsetsTopic, Partition: p}]
		co := cur[p]
		switch {
		case leads && co != nil:
			next[p] = co
		case leads:
			g, err := openGroups(context.Background(), s.cfg, s.store, s.log, []int32{p})
			if err != nil {
				s.log.Error("cannot load consumer groups after taking a __consumer_offsets partition over", "partition", p, "err", err)
				continue
			}
			next[p] = g
			changed = true
			s.log.Info("this broker now coordinates the consumer groups of an offsets partition", "partition", p)
		case co != nil:
			closing = append(closing, co)
			changed = true
			s.log.Info("this broker no longer coordinates the consumer groups of an offsets partition", "partition", p)
		}
	}
	if changed {
		// Routed away first: the groups being closed answer
		// NOT_COORDINATOR from the router, not from a closing coordinator.
		s.publishGroupsLocked(int32(len(t.Logs)), next)
	}
	for _, co := range closing {
		co.Close()
	}
}

// beforeRelease drops a state or offsets partition's coordinator before
// the partition is handed over, so no write of it races the hand-over.
func (s *Server) beforeRelease(p storage.Partition) {
	if p.Topic == txn.StateTopic {
		s.releaseTxn(p.Partition)
		return
	}
	if p.Topic != group.OffsetsTopic {
		return
	}
	s.groupsMu.Lock()
	defer s.groupsMu.Unlock()
	cur := s.groups.Map()
	co := cur[p.Partition]
	if co == nil {
		return
	}
	delete(cur, p.Partition)
	s.publishGroupsLocked(s.offsetsPartitions(), cur) // no request reaches co while it closes
	co.Close()
	s.log.Info("this broker no longer coordinates the consumer groups of an offsets partition", "partition", p.Partition)
}

// offsetsPartitions is the partition count of __consumer_offsets (0
// before it exists).
func (s *Server) offsetsPartitions() int32 {
	if t := s.store.Topic(group.OffsetsTopic); t != nil {
		return int32(len(t.Logs))
	}
	return 0
}

// publishGroupsLocked installs byPart as the broker's coordinators.
func (s *Server) publishGroupsLocked(partitions int32, byPart map[int32]*group.Coordinator) {
	s.groups = nil
	if len(byPart) > 0 {
		s.groups = group.NewShards(partitions, byPart)
	}
	s.broker.SetGroups(s.groups)
}

// closeGroups closes every coordinator: their last appends still reach
// the WAL, so they stop before storage.
func (s *Server) closeGroups() {
	s.groupsMu.Lock()
	defer s.groupsMu.Unlock()
	for _, co := range s.groups.All() {
		co.Close()
	}
	s.groups = nil
}

// Addr is the address the listener is bound to.
func (s *Server) Addr() net.Addr { return s.lns[0].Addr() }

// ListenerAddr is the bound address of the listener of a security
// protocol, or nil if there is none.
func (s *Server) ListenerAddr(protocol string) net.Addr {
	for i, l := range s.cfg.Listeners {
		if l.Protocol == protocol {
			return s.lns[i].Addr()
		}
	}
	return nil
}

// ReadCacheStats are the catch-up read counters.
func (s *Server) ReadCacheStats() readcache.Stats { return s.store.ReadCacheStats() }

// UploadBacklog is how many bytes are durable in the WAL but not yet
// uploaded as segment objects.
func (s *Server) UploadBacklog() int64 { return s.store.UploadBacklog() }

// Serve accepts clients until Close.
func (s *Server) Serve() error { return <-s.served }

// Recompression returns the broker's counters of batches recompressed to
// their topic's compression.type (benchmarks).
func (s *Server) Recompression() *broker.RecompressionStats { return s.broker.Recompression() }

// Metrics is the process's metric set, served on the admin listener.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// Advertised is the address clients are told to use (with the real port
// when the configured one was 0).
func (s *Server) Advertised() string { return s.cfg.Advertised }

// PlaintextAdvertised is the advertised address of the PLAINTEXT listener,
// "" if there is none (in-process services produce through it).
func (s *Server) PlaintextAdvertised() string {
	for _, l := range s.cfg.Listeners {
		if l.Protocol == config.Plaintext {
			return l.Advertised
		}
	}
	return ""
}

// Close stops clients first, then flushes the WAL and uploads everything,
// then closes the stores.
func (s *Server) Close() error {
	s.metrics.SetReady(false)
	var errs []error
	if s.stopTables != nil { // before the broker they read from
		s.stopTables()
		<-s.tablesDone
	}
	if err := s.broker.Close(); err != nil {
		errs = append(errs, err)
	}
	if s.member != nil {
		s.stopMember()
		<-s.memberDone
	}
	if s.stopCatchup != nil {
		s.stopCatchup()
		<-s.catchupDone
	}
	if s.stopSecurity != nil {
		s.stopSecurity()
		<-s.securityDone
	}
	// After the broker (no new events), before storage (the last ones
	// still reach the WAL).
	if s.stopTrail != nil {
		s.stopTrail()
		<-s.trailDone
	}
	if s.sasl != nil {
		s.sasl.Close()
	}
	// Transactions, then groups, stop before storage: their last appends
	// still reach the WAL, and a transaction's markers the groups.
	s.closeTxns()
	s.closeGroups()
	if s.member != nil {
		// Hand every partition over now rather than after the lease.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := s.member.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("leave cluster: %w", err))
		}
		cancel()
	}
	if err := s.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close storage: %w", err))
	}
	if err := s.closeStores(); err != nil {
		errs = append(errs, err)
	}
	// Last, so /healthz answers (and /readyz says no) while shutting down.
	if s.admin != nil {
		s.admin.Close()
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

// walObserver passes WAL commits to the catch-up governor too, whose
// measure of the tail path's health they are.
type walObserver struct {
	*metrics.Metrics
	catchup *catchup.Governor
}

func (o walObserver) WALSync(d time.Duration, bytes int64) {
	o.Metrics.WALSync(d, bytes)
	if o.catchup != nil {
		o.catchup.Commit(d)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
