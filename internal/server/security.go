package server

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/vigilhq/vigil/internal/acl"
	"github.com/vigilhq/vigil/internal/audit"
	"github.com/vigilhq/vigil/internal/auditchain"
	"github.com/vigilhq/vigil/internal/broker"
	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/meta"
	"github.com/vigilhq/vigil/internal/sasl"
	"github.com/vigilhq/vigil/internal/security"
)

// openSecurity loads the shared security records and builds the
// authorizer (with --authorizer acl) and the SASL mechanisms (with a SASL
// listener), and keeps the records in step with the other brokers.
func (s *Server) openSecurity(ctx context.Context) (broker.Security, error) {
	sec := s.cfg.Security
	var out broker.Security
	if sec.Authorizer == "acl" {
		a, err := acl.New(acl.Config{SuperUsers: sec.SuperUserList(), AllowEveryoneIfNoACLFound: sec.AllowEveryoneIfNoACLFound})
		if err != nil {
			return out, fmt.Errorf("authorizer: %w", err)
		}
		out.ACLs = a
	}
	state, err := security.Open(ctx, s.meta, out.ACLs, s.log)
	if err != nil {
		return out, err
	}
	out.State = state
	s.security = state
	if !hasSASL(s.cfg.Listeners) {
		return out, nil
	}
	reg, err := newSASL(sec, state, s.log.Error)
	if err != nil {
		return out, err
	}
	s.sasl = reg
	out.SASL = saslAdapter{reg}
	return out, nil
}

func hasSASL(ls []config.Listener) bool {
	for _, l := range ls {
		if l.SASL() {
			return true
		}
	}
	return false
}

// newSASL builds the enabled mechanisms, in --sasl-mechanisms order.
func newSASL(sec config.Security, creds sasl.Credentials, logError func(string, ...any)) (*sasl.Registry, error) {
	var mechs []sasl.Mechanism
	opts := sasl.PasswordOptions{}
	if st, ok := creds.(*security.State); ok {
		opts.DecoySecret = st.DecoySecret()
	}
	for _, name := range sec.Mechanisms() {
		var m sasl.Mechanism
		var err error
		switch name {
		case sasl.Plain:
			m, err = sasl.NewPlain(creds, opts)
		case sasl.ScramSHA256, sasl.ScramSHA512:
			m, err = sasl.NewScram(name, creds, opts)
		case sasl.OAuthBearer:
			oc := sasl.OAuthConfig{Issuer: sec.OAuthIssuer, SubClaim: sec.OAuthSubClaim,
				OnError: func(err error) { logError("OAUTHBEARER keys not refreshed", "err", err) }}
			if strings.HasPrefix(sec.OAuthJWKS, "https://") || strings.HasPrefix(sec.OAuthJWKS, "http://") {
				oc.JWKSURL = sec.OAuthJWKS
			} else {
				oc.JWKSFile = sec.OAuthJWKS
			}
			for _, a := range strings.Split(sec.OAuthAudience, ",") {
				if a = strings.TrimSpace(a); a != "" {
					oc.Audience = append(oc.Audience, a)
				}
			}
			m, err = sasl.NewOAuthBearer(oc)
		default:
			err = fmt.Errorf("unknown mechanism %q", name)
		}
		if err != nil {
			for _, made := range mechs {
				if c, ok := made.(interface{ Close() error }); ok {
					c.Close()
				}
			}
			return nil, fmt.Errorf("SASL %s: %w", name, err)
		}
		mechs = append(mechs, m)
	}
	return sasl.NewRegistry(mechs...)
}

// saslAdapter presents a sasl.Registry as the broker's SASL.
type saslAdapter struct{ r *sasl.Registry }

func (a saslAdapter) Mechanisms() []string { return a.r.Names() }

func (a saslAdapter) Start(name string) (broker.SASLSession, bool) {
	m := a.r.Lookup(name)
	if m == nil {
		return nil, false
	}
	return m.Start(), true
}

// openAudit opens the audit topic (held, kept for ever) and starts the
// trail that writes it.
func (s *Server) openAudit(ctx context.Context) (*audit.Trail, error) {
	var key []byte
	if f := s.cfg.Security.AuditChainKeyFile; f != "" {
		var err error
		if key, err = auditchain.LoadKey(f); err != nil {
			return nil, fmt.Errorf("--audit-chain-key-file: %w", err)
		}
	}
	it, err := s.store.OpenInternalTopic(ctx, audit.Topic, audit.Partitions, map[string]string{
		"retention.ms": "-1", "retention.bytes": "-1", "vigil.legal.hold": "true",
	})
	if err != nil {
		return nil, err
	}
	_, clustered := s.meta.(meta.Cluster)
	leads := func() []int32 {
		if !clustered {
			ps := make([]int32, it.Partitions())
			for i := range ps {
				ps[i] = int32(i)
			}
			return ps
		}
		var ps []int32
		for p := range s.store.Led() {
			if p.Topic == audit.Topic {
				ps = append(ps, p.Partition)
			}
		}
		slices.Sort(ps)
		return ps
	}
	s.trail = audit.New(audit.Config{Rate: float64(s.cfg.Security.AuditRate), Burst: int(s.cfg.Security.AuditBurst), ChainKey: key}, it, leads, s.cfg.NodeID, s.log.With("component", "audit"))
	tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopTrail, s.trailDone = cancel, make(chan struct{})
	go func() {
		defer close(s.trailDone)
		s.trail.Run(tctx)
	}()
	return s.trail, nil
}
