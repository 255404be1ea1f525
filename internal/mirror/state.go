package mirror

// What the mirror copied, kept on Vigil.
//
// With --acls or --quotas the mirror deletes on Vigil what was deleted on
// the source, but only what it copied itself: an ACL or quota created on
// Vigil by an operator is never touched. What it copied is state that
// must outlive the process, or a deletion on the source while the mirror
// is stopped (or across a crash) is never seen and a revoked right
// survives the migration. As MirrorMaker 2 and Kafka Connect keep theirs,
// the state is a compacted topic on the destination, StateTopic, so a
// mirror restarted on another host finds it:
//
//   - one record per ACL binding or quota (entity and key) copied, keyed
//     by the source's name (the value of MirrorSourceConfig: the source's
//     cluster id, or --source-name) and the binding, JSON; two mirrors of
//     different sources into one Vigil share the topic, never a key;
//   - a tombstone when the mirror deleted it again (or found it gone);
//   - read to its end when the mirror starts, before the first ACL or
//     quota sync; until it has been read, neither runs;
//   - written before the ACL is created or the quota set, and tombstoned
//     after it is deleted or removed: a crash between the two leaves a
//     record of something absent, which the next sync creates or forgets
//     (deleting an absent ACL is a no-op). The other order could leave an
//     ACL the mirror copied but does not know of, which nothing deletes.
//
// Its value (JSON) says when the record was written and, for a quota, the
// value set: it is for a reader (kcat), the mirror needs only the key.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// StateTopic is the compacted topic on Vigil where mirrors record the
// ACLs and quotas they copied.
const StateTopic = "_vigil.mirror.state"

// stateClientID is the client.id of the state's connections: not
// ClientID, whose produces Vigil takes as mirror appends (mirror topics
// only).
const stateClientID = "vigil-mirror-state"

// stateKey is a record's key. Exactly one of ACL and Quota is set.
type stateKey struct {
	Source string    `json:"source"`
	ACL    *aclKey   `json:"acl,omitempty"`
	Quota  *quotaKey `json:"quota,omitempty"`
}

// aclKey is an ACL binding, its enums by their Kafka names.
type aclKey struct {
	ResourceType string `json:"resource_type"`
	Name         string `json:"name"`
	Pattern      string `json:"pattern"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Operation    string `json:"operation"`
	Permission   string `json:"permission"`
}

// quotaKey is one key of one entity's quotas.
type quotaKey struct {
	Entity []quotaEntityPart `json:"entity"` // sorted by type
	Key    string            `json:"key"`
}

type quotaEntityPart struct {
	Type string  `json:"type"`
	Name *string `json:"name"` // null: the default entity of its type
}

// stateValue is a record's value.
type stateValue struct {
	Copied time.Time `json:"copied"`
	Value  *float64  `json:"value,omitempty"` // a quota's
}

func aclStateKey(source string, b aclBinding) stateKey {
	return stateKey{Source: source, ACL: &aclKey{ResourceType: b.resourceType.String(), Name: b.name, Pattern: b.pattern.String(),
		Principal: b.principal, Host: b.host, Operation: b.operation.String(), Permission: b.permission.String()}}
}

func quotaStateKey(source string, e kadm.ClientQuotaEntity, key string) stateKey {
	q := &quotaKey{Key: key}
	for _, c := range sortedEntity(e) {
		q.Entity = append(q.Entity, quotaEntityPart{Type: c.Type, Name: c.Name})
	}
	return stateKey{Source: source, Quota: q}
}

func (k *aclKey) binding() (aclBinding, error) {
	b := aclBinding{name: k.Name, principal: k.Principal, host: k.Host}
	var errs [4]error
	b.resourceType, errs[0] = kmsg.ParseACLResourceType(k.ResourceType)
	b.pattern, errs[1] = kmsg.ParseACLResourcePatternType(k.Pattern)
	b.operation, errs[2] = kmsg.ParseACLOperation(k.Operation)
	b.permission, errs[3] = kmsg.ParseACLPermissionType(k.Permission)
	return b, errors.Join(errs[:]...)
}

func (k *quotaKey) entity() kadm.ClientQuotaEntity {
	var e kadm.ClientQuotaEntity
	for _, p := range k.Entity {
		e = append(e, kadm.ClientQuotaEntityComponent{Type: p.Type, Name: p.Name})
	}
	return e
}

// sortedEntity orders an entity's components by type, so that one entity
// has one key and one String however a cluster lists it.
func sortedEntity(e kadm.ClientQuotaEntity) kadm.ClientQuotaEntity {
	return slices.SortedFunc(slices.Values(e), func(a, b kadm.ClientQuotaEntityComponent) int { return strings.Compare(a.Type, b.Type) })
}

// copiedState is what a mirror of one source copied, as read from
// StateTopic.
type copiedState struct {
	acls          map[aclBinding]bool
	quotas        map[string]map[string]float64 // by entity (its String), key: the value set
	quotaEntities map[string]kadm.ClientQuotaEntity
	live, others  int // this source's ACLs and quotas; records of other sources
}

// stateStore reads and writes StateTopic for one source.
type stateStore struct {
	cl     *kgo.Client // client.id stateClientID; produces to StateTopic
	adm    *kadm.Client
	opts   []kgo.Opt // the destination's, for the client that reads
	source string
}

func newStateStore(dst []kgo.Opt) (*stateStore, error) {
	opts := append(append([]kgo.Opt(nil), dst...), kgo.ClientID(stateClientID))
	// A record not delivered in time fails its sync (tried again next
	// interval) instead of holding every other sync up while Vigil is
	// away: kgo would retry it forever.
	cl, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(StateTopic), kgo.RecordDeliveryTimeout(30*time.Second))...)
	if err != nil {
		return nil, fmt.Errorf("state client: %w", err)
	}
	return &stateStore{cl: cl, adm: kadm.NewClient(cl), opts: opts}, nil
}

func (s *stateStore) close() { s.cl.Close() }

// ensure creates StateTopic (compacted, one partition) unless it exists,
// and refuses one that is not compacted: retention would delete records
// of ACLs still copied, which then would never be deleted.
func (s *stateStore) ensure(ctx context.Context) error {
	compact := "compact"
	resp, err := s.adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, StateTopic)
	if err == nil {
		err = resp.Err
	}
	if err == nil {
		return nil
	}
	if !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create %s: %w%s", StateTopic, err, errMessage(&resp.ErrMessage))
	}
	rcs, err := s.adm.DescribeTopicConfigs(ctx, StateTopic)
	if err != nil {
		return fmt.Errorf("describe %s: %w", StateTopic, err)
	}
	rc, err := rcs.On(StateTopic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return fmt.Errorf("describe %s: %w", StateTopic, err)
	}
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil && !slices.Contains(strings.Split(*c.Value, ","), "compact") {
			return fmt.Errorf("%s has cleanup.policy=%s: retention would delete what the mirror copied; set it to compact", StateTopic, *c.Value)
		}
	}
	return nil
}

// load reads StateTopic to its end (the high watermarks when it starts)
// and returns this source's live records. A record it cannot decode is
// an error: skipping it could forget an ACL the mirror copied.
func (s *stateStore) load(ctx context.Context) (*copiedState, error) {
	ends, err := s.adm.ListEndOffsets(ctx, StateTopic)
	if err != nil {
		return nil, fmt.Errorf("list the end offsets of %s: %w", StateTopic, err)
	}
	starts, err := s.adm.ListStartOffsets(ctx, StateTopic)
	if err != nil {
		return nil, fmt.Errorf("list the start offsets of %s: %w", StateTopic, err)
	}
	from, until := map[int32]kgo.Offset{}, map[int32]int64{}
	var lerr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			lerr = fmt.Errorf("end offset of %s/%d: %w", StateTopic, o.Partition, o.Err)
			return
		}
		if st, ok := starts.Lookup(StateTopic, o.Partition); ok && st.Err == nil && st.Offset >= o.Offset {
			return // empty
		}
		from[o.Partition], until[o.Partition] = kgo.NewOffset().AtStart(), o.Offset
	})
	if lerr != nil {
		return nil, lerr
	}
	st := &copiedState{acls: map[aclBinding]bool{}, quotas: map[string]map[string]float64{}, quotaEntities: map[string]kadm.ClientQuotaEntity{}}
	if len(from) == 0 {
		return st, nil
	}
	cl, err := kgo.NewClient(append(s.opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{StateTopic: from}))...)
	if err != nil {
		return nil, fmt.Errorf("state reader: %w", err)
	}
	defer cl.Close()
	// Every record up to the end is read: the batch holding a partition's
	// last offset is never cleaned away, as in Kafka.
	for len(until) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", StateTopic, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("read %s/%d: %w", t, p, err) })
		if ferr != nil {
			return nil, ferr
		}
		for _, r := range fs.Records() {
			end, ok := until[r.Partition]
			if !ok || r.Offset >= end {
				continue
			}
			if err := st.apply(s.source, r); err != nil {
				return nil, fmt.Errorf("%s/%d offset %d: %w", StateTopic, r.Partition, r.Offset, err)
			}
			if r.Offset+1 >= end {
				delete(until, r.Partition)
			}
		}
	}
	for _, q := range st.quotas {
		st.live += len(q)
	}
	st.live += len(st.acls)
	return st, nil
}

// apply takes one record into the state, the later of one key's records
// winning.
func (st *copiedState) apply(source string, r *kgo.Record) error {
	var k stateKey
	if err := json.Unmarshal(r.Key, &k); err != nil {
		return fmt.Errorf("key %q: %w", r.Key, err)
	}
	if k.Source != source {
		st.others++
		return nil
	}
	live := r.Value != nil
	switch {
	case k.ACL != nil:
		b, err := k.ACL.binding()
		if err != nil {
			return fmt.Errorf("key %q: %w", r.Key, err)
		}
		if live {
			st.acls[b] = true
		} else {
			delete(st.acls, b)
		}
	case k.Quota != nil:
		e := k.Quota.entity()
		es := e.String()
		if !live {
			delete(st.quotas[es], k.Quota.Key)
			if len(st.quotas[es]) == 0 {
				delete(st.quotas, es)
				delete(st.quotaEntities, es)
			}
			return nil
		}
		var v stateValue
		if err := json.Unmarshal(r.Value, &v); err != nil {
			return fmt.Errorf("value of %q: %w", r.Key, err)
		}
		if st.quotas[es] == nil {
			st.quotas[es] = map[string]float64{}
		}
		st.quotas[es][k.Quota.Key] = 0
		if v.Value != nil {
			st.quotas[es][k.Quota.Key] = *v.Value
		}
		st.quotaEntities[es] = e
	default:
		return fmt.Errorf("key %q: neither an ACL nor a quota", r.Key)
	}
	return nil
}

// stateEntry is one record to write: a copy (value set) or a tombstone.
type stateEntry struct {
	key   stateKey
	quota *float64 // a quota's value
	gone  bool     // a tombstone
}

// put writes entries, each acknowledged by Vigil before it returns.
func (s *stateStore) put(ctx context.Context, es []stateEntry) error {
	if len(es) == 0 {
		return nil
	}
	now := time.Now().UTC()
	rs := make([]*kgo.Record, 0, len(es))
	for _, e := range es {
		k, err := json.Marshal(e.key)
		if err != nil {
			return fmt.Errorf("state key: %w", err)
		}
		r := &kgo.Record{Key: k}
		if !e.gone {
			if r.Value, err = json.Marshal(stateValue{Copied: now, Value: e.quota}); err != nil {
				return fmt.Errorf("state value: %w", err)
			}
		}
		rs = append(rs, r)
	}
	if err := s.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return fmt.Errorf("write %s: %w", StateTopic, err)
	}
	return nil
}

// readState reads StateTopic, once: true when it has been read. Until
// then the ACL and quota syncs wait (a sync without it would not know
// what to delete); a failure is logged and tried again next sync.
func (m *Mirror) readState(parent context.Context) bool {
	if m.state == nil || m.stateRead {
		return m.stateRead
	}
	ctx, cancel := context.WithTimeout(parent, 30*time.Second)
	defer cancel()
	m.state.source = m.sourceName
	err := m.state.ensure(ctx)
	var st *copiedState
	if err == nil {
		st, err = m.state.load(ctx)
	}
	if err != nil {
		if parent.Err() == nil { // not stopping
			m.log.Warn("mirror: what the mirror copied not read; ACLs and quotas not synced until it is", "topic", StateTopic, "err", err)
			m.metrics.error("state")
		}
		return false
	}
	m.aclsCopied, m.quotasCopied, m.quotasCopiedEntities = st.acls, st.quotas, st.quotaEntities
	m.stateRead = true
	m.log.Info("mirror: what the mirror copied read", "topic", StateTopic, "source", m.sourceName, "acls", len(st.acls), "quotas", st.live-len(st.acls), "other_sources_records", st.others)
	return true
}
