// Package cluster runs one broker's part in a multi-broker cluster: it
// keeps the broker registered under a lease, decides which partitions
// each live broker should lead, and takes partitions over or hands them
// on through the storage engine as brokers come, go or drain.
//
// Placement is rendezvous hashing over the live brokers that are not
// draining: every broker computes the same owner for a partition from the
// same view, so no controller is needed, and adding or removing a broker
// moves only the partitions whose owner changes. Leadership itself is
// decided by the metadata store (meta.Cluster.Acquire with a leader
// epoch): hashing says who should try, the store says who won.
package cluster

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/placement"
	"github.com/vigilhq/vigil/internal/storage"
)

// gcInterval is how often departed brokers' WALs are looked at.
const gcInterval = time.Minute

// releaseTimeout bounds one hand-over in the reconcile loop.
const releaseTimeout = 30 * time.Second

// Config identifies this broker.
type Config struct {
	BrokerID  int32
	Addr      string            // advertised host:port of the first listener
	Endpoints map[string]string // advertised host:port by listener protocol
	Zone      string
	LeaseTTL  time.Duration
	// BeforeRelease, if set, runs before this broker hands a partition
	// over (the server drops an offsets partition's group coordinator
	// before the partition goes).
	BeforeRelease func(storage.Partition)
	Logger        *slog.Logger
}

// View is the cluster as this broker last saw it.
type View struct {
	Brokers []meta.BrokerInfo // live, sorted by id
	Leaders map[storage.Partition]meta.Leader
}

// Member is this broker's membership. Build it with New, then Run.
type Member struct {
	cfg    Config
	cl     meta.Cluster
	engine *storage.Engine
	log    *slog.Logger
	// onChange, if set, runs after every round that changed what this
	// broker leads.
	onChange func()

	mu   sync.RWMutex
	view View
	sess meta.Session
	// lastGC is when this broker last looked for departed brokers' WALs
	// (only the lowest live id does, about once a minute).
	lastGC time.Time
	// health is the lease's standing as watchLease last saw it.
	health Health
}

// New builds a member; onChange may be nil.
func New(cfg Config, cl meta.Cluster, engine *storage.Engine, onChange func()) *Member {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Member{cfg: cfg, cl: cl, engine: engine, log: cfg.Logger, onChange: onChange,
		view: View{Leaders: map[storage.Partition]meta.Leader{}}}
}

// View returns the last view (safe to read; do not modify).
func (m *Member) View() View {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.view
}

// Join registers the broker, waiting while an earlier run of the same id
// is still registered (its lease has not expired yet).
func (m *Member) Join(ctx context.Context) error {
	info := meta.BrokerInfo{ID: m.cfg.BrokerID, Addr: m.cfg.Addr, Endpoints: m.cfg.Endpoints, Zone: m.cfg.Zone}
	var last error
	for {
		s, err := m.cl.Join(ctx, info, m.cfg.LeaseTTL)
		if err == nil {
			m.mu.Lock()
			m.sess = s
			m.health.LeaseConfirmed, m.health.UnconfirmedSince = true, time.Time{}
			m.mu.Unlock()
			m.engine.SetSession(s)
			m.log.Info("joined the cluster", "broker", m.cfg.BrokerID, "zone", m.cfg.Zone, "lease_ttl", m.cfg.LeaseTTL)
			return nil
		}
		if last == nil || err.Error() != last.Error() {
			m.log.Warn("cannot join the cluster yet; retrying", "broker", m.cfg.BrokerID, "err", err)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Run keeps the broker's leadership in line with the placement until ctx
// ends, rejoining when the lease is lost. Join must have succeeded.
func (m *Member) Run(ctx context.Context) {
	go m.watchLease(ctx)
	watch := m.cl.Watch(ctx)
	tick := time.NewTicker(m.cfg.LeaseTTL / 2)
	defer tick.Stop()
	for {
		m.mu.RLock()
		sess := m.sess
		m.mu.RUnlock()
		m.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-watch:
		case <-tick.C:
		case <-sess.Done():
			m.log.Error("cluster lease lost: every partition is fenced and will be led elsewhere; rejoining", "broker", m.cfg.BrokerID)
			m.engine.LoseAll()
			if m.onChange != nil {
				m.onChange()
			}
			if err := m.Join(ctx); err != nil {
				return
			}
		}
	}
}

// Close hands every led partition over (uploading their tails) and
// revokes the lease: a planned shutdown moves leadership at once instead
// of after the lease TTL.
func (m *Member) Close(ctx context.Context) error {
	for p := range m.engine.Led() {
		if m.cfg.BeforeRelease != nil {
			m.cfg.BeforeRelease(p)
		}
		if err := m.engine.Release(ctx, p); err != nil {
			m.log.Warn("hand-over at shutdown failed; the next leader recovers from the WAL", "topic", p.Topic, "partition", p.Partition, "err", err)
		}
	}
	m.mu.RLock()
	sess := m.sess
	m.mu.RUnlock()
	if sess == nil {
		return nil
	}
	return sess.Close()
}

// reconcile runs one round: refresh, compute placement, release what
// belongs elsewhere, acquire what belongs here and is free.
func (m *Member) reconcile(ctx context.Context) {
	if err := m.engine.Refresh(ctx); err != nil && ctx.Err() == nil {
		m.log.Warn("cannot refresh topics", "err", err)
	}
	brokers, err := m.cl.Brokers(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("cannot read cluster brokers", "err", err)
		}
		return
	}
	leaders, err := m.cl.Leaders(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("cannot read partition leaders", "err", err)
		}
		return
	}
	m.setView(brokers, leaders)
	m.engine.Reconciled(leaders)

	live := map[int32]bool{}
	for _, b := range brokers {
		live[b.ID] = true
	}
	if len(brokers) > 0 && brokers[0].ID == m.cfg.BrokerID && time.Since(m.lastGC) >= gcInterval {
		m.lastGC = time.Now()
		if _, err := m.engine.CollectDeadWALs(ctx, live, leaders); err != nil && ctx.Err() == nil {
			m.log.Warn("cannot collect the WALs of departed brokers", "err", err)
		}
	}
	cur := m.View().Leaders
	led := m.engine.Led()
	changed := false
	var acquire []storage.Partition
	for _, t := range m.engine.Topics() {
		for p := range t.Logs {
			tp := storage.Partition{Topic: t.Name, Partition: int32(p)}
			owner := m.owner(tp, brokers)
			ld, has := cur[tp]
			_, mine := led[tp]
			switch {
			case mine && owner != m.cfg.BrokerID && live[owner]:
				if m.cfg.BeforeRelease != nil {
					m.cfg.BeforeRelease(tp)
				}
				// Bounded: with the object store down the tail cannot be
				// uploaded; the partition then stays fenced here, its key
				// is given back next round, and the next leader rebuilds
				// the tail from this broker's WAL.
				rctx, cancel := context.WithTimeout(ctx, releaseTimeout)
				if err := m.engine.Release(rctx, tp); err != nil {
					m.log.Warn("hand-over failed", "topic", tp.Topic, "partition", tp.Partition, "err", err)
				}
				cancel()
				changed = true
			case !mine && owner == m.cfg.BrokerID && !has:
				acquire = append(acquire, tp)
			case !mine && has && ld.Broker == m.cfg.BrokerID:
				// A leader key of ours that the engine does not serve
				// (a takeover that failed half-way): give it back.
				m.cl.Release(ctx, m.cfg.BrokerID, tp.Topic, tp.Partition, ld.Epoch)
			}
		}
	}
	if len(acquire) > 0 {
		if got := m.engine.Acquire(ctx, acquire); len(got) > 0 {
			changed = true
		}
	}
	if changed {
		if leaders, err := m.cl.Leaders(ctx); err == nil {
			m.setView(brokers, leaders)
		}
		if m.onChange != nil {
			m.onChange()
		}
	}
}

func (m *Member) setView(brokers []meta.BrokerInfo, leaders []meta.Leader) {
	v := View{Brokers: brokers, Leaders: make(map[storage.Partition]meta.Leader, len(leaders))}
	for _, l := range leaders {
		v.Leaders[storage.Partition{Topic: l.Topic, Partition: l.Partition}] = l
	}
	m.mu.Lock()
	m.view = v
	m.mu.Unlock()
}

// owner is the broker a partition should live on: the highest rendezvous
// score among live brokers that are not draining (or among all live ones
// if every broker drains).
func (m *Member) owner(tp storage.Partition, brokers []meta.BrokerInfo) int32 {
	key := placement.PartitionKey(tp.Topic, tp.Partition)
	drainingOnly := !slices.ContainsFunc(brokers, func(b meta.BrokerInfo) bool { return !b.Draining })
	return placement.Owner(key, brokers, func(b meta.BrokerInfo) bool { return !b.Draining || drainingOnly })
}

// LiveBrokers implements broker.ClusterView.
func (m *Member) LiveBrokers() []meta.BrokerInfo { return m.View().Brokers }

// LeaderOf implements broker.ClusterView.
func (m *Member) LeaderOf(topic string, partition int32) (meta.Leader, bool) {
	l, ok := m.View().Leaders[storage.Partition{Topic: topic, Partition: partition}]
	return l, ok
}

// SetDraining implements broker.ClusterView.
func (m *Member) SetDraining(ctx context.Context, id int32, draining bool) error {
	return m.cl.SetDraining(ctx, id, draining)
}

// LeadersList returns the view's leaders as a list.
func (v View) LeadersList() []meta.Leader {
	out := make([]meta.Leader, 0, len(v.Leaders))
	for _, l := range v.Leaders {
		out = append(out, l)
	}
	return out
}
