// Package quota holds client quotas (KIP-546 entities: user and
// client-id, each named or the default, and ip) and enforces them the way
// Kafka does: a client that goes over its byte rate gets its response at
// once with a throttle time, and the broker stops reading from that
// connection for as long (KIP-219), so a runaway producer or a replay can
// be capped without failing it; a connection from an address over its
// connection_creation_rate is held unserved and then closed (KIP-612);
// a topic mutation over its controller_mutation_rate is refused or
// throttled (KIP-599).
package quota

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Entity component types.
const (
	User     = "user"
	ClientID = "client-id"
	IP       = "ip"
)

// Quota keys Vigil enforces.
const (
	ProducerByteRate = "producer_byte_rate"
	ConsumerByteRate = "consumer_byte_rate"
	// RequestPercentage caps the time a user/client's requests take to
	// handle, in percent of one thread (KIP-124): 100 is one core's worth.
	RequestPercentage = "request_percentage"
	// ConnectionCreationRate is the ip entity's only key: new connections
	// per second from one address (an integer, as Kafka's INT config).
	ConnectionCreationRate = "connection_creation_rate"
	// ControllerMutationRate caps the partitions a user/client creates or
	// deletes per second through CreateTopics, CreatePartitions and
	// DeleteTopics (KIP-599).
	ControllerMutationRate = "controller_mutation_rate"
)

// Anonymous is the user of a connection without authentication, as in Kafka.
const Anonymous = "ANONYMOUS"

// ErrInvalid marks a request Vigil cannot accept (INVALID_REQUEST).
var ErrInvalid = errors.New("quota: invalid")

// Component is one part of an entity: a type and a name, or the type's
// default (Name nil).
type Component struct {
	Type string
	Name *string
}

// Entity is a set of components with distinct types, in canonical order
// (client-id before user).
type Entity []Component

// NewEntity validates and orders components. An ip entity stands alone,
// as in Kafka, and names an address literal, kept in its canonical form
// (Kafka also accepts a host name and resolves it once; Vigil does not).
func NewEntity(cs []Component) (Entity, error) {
	seen := map[string]bool{}
	var e Entity
	for _, c := range cs {
		switch c.Type {
		case User, ClientID:
		case IP:
			if c.Name != nil {
				a, err := netip.ParseAddr(*c.Name)
				if err != nil || a.Zone() != "" {
					return nil, fmt.Errorf("%w: %s is not a valid IP address", ErrInvalid, *c.Name)
				}
				canon := a.Unmap().String()
				c.Name = &canon
			}
		default:
			return nil, fmt.Errorf("%w: entity type %q is not supported (user, client-id, ip)", ErrInvalid, c.Type)
		}
		if seen[c.Type] {
			return nil, fmt.Errorf("%w: entity type %q given twice", ErrInvalid, c.Type)
		}
		if c.Name != nil && *c.Name == "" {
			return nil, fmt.Errorf("%w: empty %s name (the default is a null name)", ErrInvalid, c.Type)
		}
		seen[c.Type] = true
		e = append(e, c)
	}
	if len(e) == 0 {
		return nil, fmt.Errorf("%w: empty entity", ErrInvalid)
	}
	if seen[IP] && len(e) > 1 {
		return nil, fmt.Errorf("%w: an ip entity cannot be combined with user or client-id", ErrInvalid)
	}
	sort.Slice(e, func(i, j int) bool { return e[i].Type < e[j].Type })
	return e, nil
}

// Key is the entity's canonical string, as stored: "client-id=a/user"
// (user default). Names are escaped, so any name round-trips.
func (e Entity) Key() string {
	parts := make([]string, len(e))
	for i, c := range e {
		if c.Name == nil {
			parts[i] = c.Type
		} else {
			parts[i] = c.Type + "=" + url.QueryEscape(*c.Name)
		}
	}
	return strings.Join(parts, "/")
}

func parseKey(k string) (Entity, error) {
	var e Entity
	for _, p := range strings.Split(k, "/") {
		typ, name, named := strings.Cut(p, "=")
		c := Component{Type: typ}
		if named {
			n, err := url.QueryUnescape(name)
			if err != nil {
				return nil, fmt.Errorf("quota: stored entity %q: %w", k, err)
			}
			c.Name = &n
		}
		e = append(e, c)
	}
	return NewEntity(e)
}

func (e Entity) get(typ string) (Component, bool) {
	for _, c := range e {
		if c.Type == typ {
			return c, true
		}
	}
	return Component{}, false
}

// Store persists quotas (the metadata store).
type Store interface {
	ClientQuotas(ctx context.Context) (map[string]map[string]float64, error)
	SetClientQuotas(ctx context.Context, entity string, quotas map[string]float64) error
}

// Manager holds the configured quotas and the observed rates. Safe for
// concurrent use.
type Manager struct {
	store Store

	mu        sync.Mutex
	quotas    map[string]map[string]float64 // entity key -> quota key -> value
	altered   uint64                        // Alters made here; a reload read before one is stale
	sensors   map[sensorKey]*rate
	buckets   map[sensorKey]*bucket // controller_mutation_rate
	lastPrune time.Time
	// keys holds the quota keys some entity has, so that requests and
	// connections no quota can apply to skip the lock (every request is
	// metered for request_percentage).
	keys atomic.Pointer[map[string]bool]
}

// setKeys recomputes keys; called with mu held (or before sharing).
func (m *Manager) setKeys() {
	ks := map[string]bool{}
	for _, q := range m.quotas {
		for k := range q {
			ks[k] = true
		}
	}
	m.keys.Store(&ks)
}

// has reports whether some entity has a quotaKey quota.
func (m *Manager) has(quotaKey string) bool { return (*m.keys.Load())[quotaKey] }

// Enforces reports whether some entity has a quotaKey quota, so that a
// caller can skip measuring what no quota would count. Nil enforces
// nothing.
func (m *Manager) Enforces(quotaKey string) bool { return m != nil && m.has(quotaKey) }

// Open loads the quotas from the store.
func Open(ctx context.Context, store Store) (*Manager, error) {
	q, err := store.ClientQuotas(ctx)
	if err != nil {
		return nil, fmt.Errorf("quota: load: %w", err)
	}
	for k := range q {
		if _, err := parseKey(k); err != nil {
			return nil, err
		}
	}
	m := &Manager{store: store, quotas: q, sensors: map[sensorKey]*rate{}, buckets: map[sensorKey]*bucket{}}
	m.setKeys()
	return m, nil
}

// Op is one change of an entity's quota.
type Op struct {
	Key    string
	Value  float64
	Remove bool
}

// Alter applies ops to an entity and stores the result; validateOnly
// checks without storing.
func (m *Manager) Alter(ctx context.Context, e Entity, ops []Op, validateOnly bool) error {
	_, isIP := e.get(IP)
	for _, op := range ops {
		if err := validOp(isIP, op); err != nil {
			return err
		}
	}
	if validateOnly {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := e.Key()
	next := map[string]float64{}
	for k, v := range m.quotas[key] {
		next[k] = v
	}
	for _, op := range ops {
		if op.Remove {
			delete(next, op.Key)
		} else {
			next[op.Key] = op.Value
		}
	}
	// Under the lock: two alters of one entity must not interleave their
	// read-modify-write.
	if err := m.store.SetClientQuotas(ctx, key, next); err != nil {
		return fmt.Errorf("quota: store %s: %w", key, err)
	}
	if len(next) == 0 {
		delete(m.quotas, key)
	} else {
		m.quotas[key] = next
	}
	m.altered++
	m.setKeys()
	return nil
}

// PollInterval is how often Run reads the quotas again: a quota altered
// through another broker of a cluster applies here within it.
const PollInterval = time.Second

// Run reloads the quotas from the store every interval until ctx ends, so
// that a change made through another broker sharing the store applies
// here too (Alter changes the broker it reaches at once).
func (m *Manager) Run(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := m.reload(ctx); err != nil && ctx.Err() == nil {
			log.Warn("client quotas not reloaded; keeping the previous ones", "err", err)
		}
	}
}

// reload replaces the quotas with the store's. The store is read without
// the lock, which every metered request takes; a read that an Alter here
// overtook is dropped (the next one has it), so a reload never undoes a
// change this broker has just answered for.
func (m *Manager) reload(ctx context.Context) error {
	m.mu.Lock()
	gen := m.altered
	m.mu.Unlock()
	q, err := m.store.ClientQuotas(ctx)
	if err != nil {
		return fmt.Errorf("quota: reload: %w", err)
	}
	for k := range q {
		if _, err := parseKey(k); err != nil {
			return fmt.Errorf("quota: reload: %w", err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.altered == gen {
		m.quotas = q
		m.setKeys()
	}
	return nil
}

// validOp checks a key against the keys of the entity's kind and its
// value as Kafka's controller does: positive, and integral for an INT key.
func validOp(isIP bool, op Op) error {
	if isIP {
		if op.Key != ConnectionCreationRate {
			return fmt.Errorf("%w: quota %q is not valid for an ip entity (%s)", ErrInvalid, op.Key, ConnectionCreationRate)
		}
	} else {
		switch op.Key {
		case ProducerByteRate, ConsumerByteRate, RequestPercentage, ControllerMutationRate:
		default:
			return fmt.Errorf("%w: quota %q is not supported for user and client-id entities (%s, %s, %s, %s)", ErrInvalid, op.Key, ProducerByteRate, ConsumerByteRate, RequestPercentage, ControllerMutationRate)
		}
	}
	if op.Remove {
		return nil
	}
	if !(op.Value > 0) {
		return fmt.Errorf("%w: %s must be positive, got %v", ErrInvalid, op.Key, op.Value)
	}
	if op.Key == ConnectionCreationRate {
		if op.Value > math.MaxInt32 {
			return fmt.Errorf("%w: %s %v is too large for an INT", ErrInvalid, op.Key, op.Value)
		}
		if math.Abs(math.Mod(op.Value, 1)) > 1e-6 {
			return fmt.Errorf("%w: %s cannot be a fractional value, got %v", ErrInvalid, op.Key, op.Value)
		}
	}
	return nil
}

// Filter is one DescribeClientQuotas component filter.
type Filter struct {
	Type string
	// Match: "exact" (Name), "default", or "any".
	Match string
	Name  string
}

// Described is one entity with its quotas.
type Described struct {
	Entity Entity
	Values map[string]float64
}

// Describe returns the entities matching every filter; with strict, only
// entities with no components beyond the filtered types.
func (m *Manager) Describe(filters []Filter, strict bool) ([]Described, error) {
	for i, f := range filters {
		if f.Type == IP && f.Match == "exact" {
			// Stored names are canonical addresses.
			if a, err := netip.ParseAddr(f.Name); err == nil {
				filters[i].Name = a.Unmap().String()
			}
		}
		if f.Type != User && f.Type != ClientID && f.Type != IP {
			return nil, fmt.Errorf("%w: entity type %q is not supported (user, client-id, ip)", ErrInvalid, f.Type)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Described
	keys := make([]string, 0, len(m.quotas))
	for k := range m.quotas {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e, _ := parseKey(k)
		if !matches(e, filters, strict) {
			continue
		}
		vals := map[string]float64{}
		for q, v := range m.quotas[k] {
			vals[q] = v
		}
		out = append(out, Described{Entity: e, Values: vals})
	}
	return out, nil
}

func matches(e Entity, filters []Filter, strict bool) bool {
	types := map[string]bool{}
	for _, f := range filters {
		types[f.Type] = true
		c, ok := e.get(f.Type)
		if !ok {
			return false
		}
		switch f.Match {
		case "exact":
			if c.Name == nil || *c.Name != f.Name {
				return false
			}
		case "default":
			if c.Name != nil {
				return false
			}
		}
	}
	if strict {
		for _, c := range e {
			if !types[c.Type] {
				return false
			}
		}
	}
	return true
}

// sensorKey identifies whose bytes a rate counts: the quota kind and the
// concrete user/client the matched entity names (a default entity still
// meters each client separately, as in Kafka).
type sensorKey struct {
	quota, entity, user, client string
}

// Record counts bytes of one request of user and clientID against the
// quota (ProducerByteRate or ConsumerByteRate) that applies to them, and
// returns how long the client must be throttled (zero if within quota or
// if no quota applies).
func (m *Manager) Record(quotaKey, user, clientID string, bytes int, now time.Time) time.Duration {
	return m.record(quotaKey, user, clientID, float64(bytes), now)
}

// RecordRequestTime counts d, the time one request of user and clientID
// took to handle, against their request_percentage, and returns how long
// to throttle them. As in Kafka, the throttle is at most one quota sample
// (a second): a request quota smooths CPU use, it does not lock out.
func (m *Manager) RecordRequestTime(user, clientID string, d time.Duration, now time.Time) time.Duration {
	// In percent of one thread over a second, Kafka's unit.
	return min(m.record(RequestPercentage, user, clientID, d.Seconds()*100, now), sampleSpan)
}

func (m *Manager) record(quotaKey, user, clientID string, value float64, now time.Time) time.Duration {
	if !m.has(quotaKey) {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	entity, byUser, byClient, limit := m.resolve(quotaKey, user, clientID)
	if limit <= 0 {
		return 0
	}
	k := sensorKey{quota: quotaKey, entity: entity}
	if byUser {
		k.user = user
	}
	if byClient {
		k.client = clientID
	}
	return m.sensor(k, now).record(value, limit, now)
}

// connThrottleMax bounds how long an over-rate connection is held: Kafka
// bounds it by its quota window's sample size (one second).
const connThrottleMax = sampleSpan

// AdmitConnection meters a new connection from addr against the
// connection_creation_rate of its ip entity (the address's own, else the
// default ip's). It returns zero if the connection may be served, else
// how long to hold it unserved before closing it. As in Kafka, a refused
// connection is not counted, so an agent reconnecting in a loop is slowed
// to the rate, not locked out.
func (m *Manager) AdmitConnection(addr netip.Addr, now time.Time) time.Duration {
	if !m.has(ConnectionCreationRate) {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ip := addr.Unmap().String()
	limit, ok := m.quotas[IP+"="+url.QueryEscape(ip)][ConnectionCreationRate]
	if !ok {
		limit, ok = m.quotas[IP][ConnectionCreationRate]
	}
	if !ok {
		return 0
	}
	r := m.sensor(sensorKey{quota: ConnectionCreationRate, entity: ip}, now)
	d := r.record(1, limit, now)
	if d <= 0 {
		return 0
	}
	r.bytes[r.cur]--
	return max(min(d, connThrottleMax), time.Millisecond)
}

// sensor returns k's meter, making it. Meters idle for a whole window
// measure nothing any more; they are dropped once a minute, so clients
// and addresses that come and go (a connection storm from many
// addresses) do not accumulate.
func (m *Manager) sensor(k sensorKey, now time.Time) *rate {
	m.prune(now)
	r := m.sensors[k]
	if r == nil {
		r = &rate{}
		m.sensors[k] = r
	}
	return r
}

// prune drops, once a minute, the meters that measure nothing any more;
// called with mu held.
func (m *Manager) prune(now time.Time) {
	if now.Sub(m.lastPrune) > time.Minute {
		m.lastPrune = now
		for sk, r := range m.sensors {
			if now.Sub(r.starts[r.cur]) >= samples*sampleSpan {
				delete(m.sensors, sk)
			}
		}
		for sk, b := range m.buckets {
			// Full again: a new bucket would be the same.
			if b.refill(b.limit, now) >= b.limit*samples*sampleSpan.Seconds() {
				delete(m.buckets, sk)
			}
		}
	}
}

// resolve finds the quota that applies, in Kafka's order of precedence:
// user+client, user+default client, user, default user+client, default
// user+default client, default user, client, default client. It also says
// which components the matched entity has: those are metered per
// concrete user or client.
func (m *Manager) resolve(quotaKey, user, clientID string) (key string, byUser, byClient bool, limit float64) {
	u, c := url.QueryEscape(user), url.QueryEscape(clientID)
	for _, cand := range []struct {
		key              string
		byUser, byClient bool
	}{
		{"client-id=" + c + "/user=" + u, true, true},
		{"client-id/user=" + u, true, true},
		{"user=" + u, true, false},
		{"client-id=" + c + "/user", true, true},
		{"client-id/user", true, true},
		{"user", true, false},
		{"client-id=" + c, false, true},
		{"client-id", false, true},
	} {
		if v, ok := m.quotas[cand.key][quotaKey]; ok {
			return cand.key, cand.byUser, cand.byClient, v
		}
	}
	return "", false, false, 0
}

// The rate is measured as Kafka does by default: samples of one second,
// the last eleven kept (quota.window.num, quota.window.size.seconds).
const (
	sampleSpan  = time.Second
	samples     = 11
	maxThrottle = 30 * time.Second
)

type rate struct {
	starts [samples]time.Time
	bytes  [samples]float64
	cur    int
}

func (r *rate) record(n, limit float64, now time.Time) time.Duration {
	if now.Sub(r.starts[r.cur]) >= sampleSpan {
		r.cur = (r.cur + 1) % samples
		r.starts[r.cur], r.bytes[r.cur] = now, 0
	}
	r.bytes[r.cur] += n
	var total float64
	oldest := now
	for i := range samples {
		if r.starts[i].IsZero() || now.Sub(r.starts[i]) >= samples*sampleSpan {
			continue
		}
		total += r.bytes[i]
		if r.starts[i].Before(oldest) {
			oldest = r.starts[i]
		}
	}
	// Like Kafka, measure over at least the full window less one sample,
	// so the first bytes of a new client do not look like a huge rate.
	window := max(now.Sub(oldest), (samples-1)*sampleSpan)
	observed := total / window.Seconds()
	if observed <= limit {
		return 0
	}
	// Kafka's throttle: how long until the window's average is back at the
	// limit.
	d := time.Duration((observed - limit) / limit * float64(window))
	return min(d, maxThrottle)
}

// Meter is one rate meter on its own, for a limit that is no client
// quota (the broker-wide max.connection.creation.rate). Safe for
// concurrent use.
type Meter struct {
	mu    sync.Mutex
	limit float64
	r     rate
}

// NewMeter meters against limit per second.
func NewMeter(limit float64) *Meter { return &Meter{limit: limit} }

// Record counts n and returns how long to wait for the rate to be back
// at the limit, at most one sample (a second) as Kafka bounds its
// connection rate throttle.
func (m *Meter) Record(n float64, now time.Time) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return min(m.r.record(n, m.limit, now), sampleSpan)
}

// Unrecord takes back n recorded in the current sample.
func (m *Meter) Unrecord(n float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.r.bytes[m.r.cur] -= n
}

// Mutation is one request's controller_mutation_rate (KIP-599) for its
// user and client: each topic it creates, extends or deletes is counted
// through Record, in partitions, and the response carries Throttle.
// Not safe for concurrent use (one request's handler). A nil Mutation
// (no quotas) accepts everything.
type Mutation struct {
	m            *Manager
	user, client string
	strict       bool
	throttle     time.Duration
	at           time.Time
}

// Mutation starts metering one request. strict is Kafka's
// StrictControllerMutationQuota, for the versions whose clients know
// THROTTLING_QUOTA_EXCEEDED (CreateTopics v6+, CreatePartitions v3+,
// DeleteTopics v5+): a mutation is refused while the client is over its
// quota. Older versions get the permissive one: every mutation is
// accepted, and the client is throttled once over.
func (m *Manager) Mutation(user, clientID string, strict bool) *Mutation {
	return &Mutation{m: m, user: user, client: clientID, strict: strict}
}

// Record counts n partitions created or deleted at now. It returns false
// if the mutation is refused (strict, and the quota already exhausted);
// the mutation must then not be made.
func (q *Mutation) Record(n int, now time.Time) bool {
	if q == nil || !q.m.has(ControllerMutationRate) {
		return true
	}
	m := q.m
	m.mu.Lock()
	defer m.mu.Unlock()
	entity, byUser, byClient, limit := m.resolve(ControllerMutationRate, q.user, q.client)
	if limit <= 0 {
		return true
	}
	k := sensorKey{quota: ControllerMutationRate, entity: entity}
	if byUser {
		k.user = q.user
	}
	if byClient {
		k.client = q.client
	}
	b := m.buckets[k]
	if b == nil {
		m.prune(now)
		// Kafka's bucket starts full.
		b = &bucket{tokens: limit * samples * sampleSpan.Seconds(), last: now}
		m.buckets[k] = b
	}
	tokens := b.refill(limit, now)
	// As Kafka: the strict quota checks before it records, so a mutation
	// is accepted (and not throttled) while any credit is left, however
	// many partitions it takes; the permissive one records, then checks.
	if q.strict && tokens < 0 {
		q.over(tokens, limit, now)
		return false
	}
	b.tokens -= float64(n)
	if !q.strict && b.tokens < 0 {
		q.over(b.tokens, limit, now)
	}
	return true
}

// over notes the throttle: the time for the bucket to refill to zero.
func (q *Mutation) over(tokens, limit float64, now time.Time) {
	q.throttle = time.Duration(-tokens / limit * float64(time.Second))
	q.at = now
}

// Throttle is the throttle time of the request's last refused or
// over-quota mutation less the time since (the response may be answered
// later), as Kafka's ControllerMutationQuota.throttleTime.
func (q *Mutation) Throttle(now time.Time) time.Duration {
	if q == nil || q.throttle <= 0 {
		return 0
	}
	return max(0, q.throttle-now.Sub(q.at))
}

// bucket is Kafka's TokenBucket, which its controller_mutation_rate uses
// instead of the sampled rate, so that a burst is allowed up to the
// window's worth (samples x sample span x limit) and then refills at the
// limit: credit in tokens (partitions), negative when over.
type bucket struct {
	tokens float64
	limit  float64
	last   time.Time
}

func (b *bucket) refill(limit float64, now time.Time) float64 {
	b.limit = limit
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(limit*samples*sampleSpan.Seconds(), b.tokens+limit*d.Seconds())
		b.last = now
	}
	return b.tokens
}
