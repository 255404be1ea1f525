// Package security keeps the security boundary every broker of a cluster
// shares (ACL bindings, SCRAM credentials and the secret that makes
// unknown users indistinguishable from known ones) in the metadata store,
// and a copy of it in memory that the broker's hot paths read without
// waiting. A change made through any broker reaches the others at their
// next poll of the store's security revision (Run).
package security

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil/internal/acl"
	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/sasl"
)

// kindSecret holds the decoy secret (one record, keySecret).
const (
	kindSecret = "secret"
	keySecret  = "scram-decoy"
)

// PollInterval is how often Run checks the store for changes by other
// brokers: a new ACL or user takes effect everywhere within it.
const PollInterval = 250 * time.Millisecond

// State is the in-memory copy of the shared security records, and the way
// to change them.
type State struct {
	store meta.SecurityStore
	authz *acl.Authorizer // nil: no authorizer (ACLs are still kept)
	log   *slog.Logger

	creds   atomic.Pointer[sasl.CredentialMap]
	secret  []byte
	mu      sync.Mutex // serializes reloads
	rev     int64      // revision of the loaded copy; under mu
	version atomic.Int64
}

// Open loads the records (creating the decoy secret on first use) and
// fills authz, if not nil, with the bindings.
func Open(ctx context.Context, store meta.SecurityStore, authz *acl.Authorizer, log *slog.Logger) (*State, error) {
	s := &State{store: store, authz: authz, log: log}
	secret, err := s.loadSecret(ctx)
	if err != nil {
		return nil, err
	}
	s.secret = secret
	if err := s.reload(ctx, true); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *State) loadSecret(ctx context.Context) ([]byte, error) {
	recs, err := s.store.SecurityRecords(ctx, kindSecret)
	if err != nil {
		return nil, fmt.Errorf("security: load secret: %w", err)
	}
	if v := recs[keySecret]; len(v) >= 32 {
		return v, nil
	}
	// Two brokers starting at once may each write one; the last wins, and
	// the other's SCRAM decoys differ from the cluster's until it restarts.
	v := make([]byte, 32)
	if _, err := rand.Read(v); err != nil {
		return nil, err
	}
	if err := s.store.UpdateSecurityRecords(ctx, kindSecret, map[string][]byte{keySecret: v}, nil); err != nil {
		return nil, fmt.Errorf("security: store secret: %w", err)
	}
	return v, nil
}

// DecoySecret is the cluster-wide secret unknown SCRAM users' made-up
// salts derive from (sasl.PasswordOptions).
func (s *State) DecoySecret() []byte { return s.secret }

// Run polls the store's security revision every interval until ctx ends,
// reloading when another broker changed something.
func (s *State) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.reload(ctx, false); err != nil && ctx.Err() == nil {
				s.log.Warn("security records not reloaded; keeping the previous ones", "err", err)
			}
		}
	}
}

// Version counts the reloads that changed something (for tests and logs).
func (s *State) Version() int64 { return s.version.Load() }

// reload reads the records again if the revision moved (or force).
func (s *State) reload(ctx context.Context, force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rev, err := s.store.SecurityRevision(ctx)
	if err != nil {
		return fmt.Errorf("security: revision: %w", err)
	}
	if !force && rev == s.rev {
		return nil
	}
	bindings, err := s.ACLs(ctx)
	if err != nil {
		return err
	}
	creds, err := s.loadCredentials(ctx)
	if err != nil {
		return err
	}
	if s.authz != nil {
		s.authz.SetBindings(bindings)
	}
	s.creds.Store(&creds)
	s.rev = rev
	s.version.Add(1)
	return nil
}

// ACLs implements acl.Store: every stored binding.
func (s *State) ACLs(ctx context.Context) ([]acl.Binding, error) {
	recs, err := s.store.SecurityRecords(ctx, meta.SecurityACL)
	if err != nil {
		return nil, fmt.Errorf("security: load ACLs: %w", err)
	}
	out := make([]acl.Binding, 0, len(recs))
	for k, v := range recs {
		b, err := acl.Decode(v)
		if err != nil {
			return nil, fmt.Errorf("security: ACL record %q: %w", k, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// CreateACLs implements acl.Store; this broker's authorizer has them on
// return, the others within PollInterval.
func (s *State) CreateACLs(ctx context.Context, bs []acl.Binding) error {
	put := make(map[string][]byte, len(bs))
	for _, b := range bs {
		v, err := acl.Encode(b)
		if err != nil {
			return err
		}
		put[b.Key()] = v
	}
	if err := s.store.UpdateSecurityRecords(ctx, meta.SecurityACL, put, nil); err != nil {
		return fmt.Errorf("security: store ACLs: %w", err)
	}
	return s.reload(ctx, true)
}

// DeleteACLs implements acl.Store.
func (s *State) DeleteACLs(ctx context.Context, fs []acl.Filter) ([][]acl.Binding, error) {
	all, err := s.ACLs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([][]acl.Binding, len(fs))
	var del []string
	for i, f := range fs {
		out[i] = acl.Select(all, f)
		for _, b := range out[i] {
			del = append(del, b.Key())
		}
	}
	if len(del) > 0 {
		if err := s.store.UpdateSecurityRecords(ctx, meta.SecurityACL, nil, del); err != nil {
			return nil, fmt.Errorf("security: delete ACLs: %w", err)
		}
		if err := s.reload(ctx, true); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// scramKey is a credential's record key; mechanism names hold no "/".
func scramKey(user, mechanism string) string { return user + "/" + mechanism }

func (s *State) loadCredentials(ctx context.Context) (sasl.CredentialMap, error) {
	recs, err := s.store.SecurityRecords(ctx, meta.SecurityScram)
	if err != nil {
		return nil, fmt.Errorf("security: load SCRAM credentials: %w", err)
	}
	m := sasl.CredentialMap{}
	for k, v := range recs {
		var c sasl.ScramCredential
		if err := json.Unmarshal(v, &c); err != nil {
			return nil, fmt.Errorf("security: SCRAM record %q: %w", k, err)
		}
		i := strings.LastIndexByte(k, '/')
		if i < 0 {
			return nil, fmt.Errorf("security: SCRAM record key %q has no mechanism", k)
		}
		user := k[:i]
		if m[user] == nil {
			m[user] = map[string]sasl.ScramCredential{}
		}
		m[user][c.Mechanism] = c
	}
	return m, nil
}

// Scram implements sasl.Credentials from the in-memory copy.
func (s *State) Scram(ctx context.Context, user, mechanism string) (sasl.ScramCredential, bool, error) {
	return s.creds.Load().Scram(ctx, user, mechanism)
}

// UserCredential is one user's credential as DescribeUserScramCredentials
// shows it: never the keys.
type UserCredential struct {
	Mechanism  string
	Iterations int
}

// Users lists the users with their mechanisms, sorted by name.
func (s *State) Users() map[string][]UserCredential {
	out := map[string][]UserCredential{}
	for user, byMech := range *s.creds.Load() {
		for _, c := range byMech {
			out[user] = append(out[user], UserCredential{Mechanism: c.Mechanism, Iterations: c.Iterations})
		}
		sort.Slice(out[user], func(i, j int) bool { return out[user][i].Mechanism < out[user][j].Mechanism })
	}
	return out
}

// ErrUnknownCredential is returned when deleting a credential that does
// not exist (RESOURCE_NOT_FOUND in AlterUserScramCredentials).
var ErrUnknownCredential = errors.New("no such SCRAM credential")

// ScramChange is one upsertion (Credential set) or deletion of a user's
// credential for a mechanism.
type ScramChange struct {
	User       string
	Mechanism  string
	Credential *sasl.ScramCredential // nil: delete
}

// AlterScram applies changes in one transaction. A deletion of a
// credential that does not exist fails the whole call with
// ErrUnknownCredential, naming it.
func (s *State) AlterScram(ctx context.Context, changes []ScramChange) error {
	put := map[string][]byte{}
	var del []string
	cur := *s.creds.Load()
	for _, c := range changes {
		key := scramKey(c.User, c.Mechanism)
		if c.Credential == nil {
			if _, ok := cur[c.User][c.Mechanism]; !ok {
				return fmt.Errorf("%w: %s for user %q", ErrUnknownCredential, c.Mechanism, c.User)
			}
			del = append(del, key)
			continue
		}
		if err := c.Credential.Validate(); err != nil {
			return err
		}
		v, err := json.Marshal(c.Credential)
		if err != nil {
			return err
		}
		put[key] = v
	}
	if err := s.store.UpdateSecurityRecords(ctx, meta.SecurityScram, put, del); err != nil {
		return fmt.Errorf("security: store SCRAM credentials: %w", err)
	}
	return s.reload(ctx, true)
}
