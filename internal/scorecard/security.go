package scorecard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// securityProbes look at the boundary: pass means it held (plaintext
// refused, anonymous clients refused, ACLs enforced), fail that it is
// open.
var securityProbes = []namedProbe{
	{name: "plaintext listener", needs: nil, fn: probePlaintext},
	{name: "anonymous read/write", needs: []int16{0, 1, 3, 19}, fn: probeAnonymous},
	// DescribeAcls is not needed: the write settles it, and the probe
	// says when DescribeAcls failed.
	{name: "ACLs enforced", needs: []int16{0, 3, 19}, fn: probeACLEnforcement},
}

// stepTimeout bounds one attempt of a client that may never be answered
// (a plaintext client on a TLS port, an anonymous one on a SASL port):
// franz-go retries such connections until its context ends.
func (r *run) stepTimeout() time.Duration { return min(5*time.Second, r.cfg.ProbeTimeout/3) }

// probePlaintext sends ApiVersions without TLS or SASL to each seed.
func probePlaintext(ctx context.Context, r *run) (Status, string, error) {
	var answered, refused []string
	var lastErr error
	for _, seed := range r.cfg.Brokers {
		sctx, cancel := context.WithTimeout(ctx, r.stepTimeout())
		hook := &lastConnErr{}
		cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.ClientID("vigil-scorecard-plaintext"), kgo.WithHooks(hook))
		if err != nil {
			cancel()
			return Fail, "", fmt.Errorf("new client: %w", err)
		}
		_, err = kmsg.NewPtrApiVersionsRequest().RequestWith(sctx, cl)
		cl.Close()
		cancel()
		if err != nil {
			refused = append(refused, seed)
			lastErr = hook.explain(err)
			continue
		}
		answered = append(answered, seed)
	}
	if len(answered) > 0 {
		return Fail, fmt.Sprintf("ApiVersions without TLS was answered by %s: records and credentials other than SCRAM's cross the network in the clear",
			strings.Join(answered, ", ")), nil
	}
	if ctx.Err() != nil {
		return Undetermined, "", fmt.Errorf("ApiVersions without TLS: %w", lastErr)
	}
	return Pass, fmt.Sprintf("ApiVersions without TLS was not answered by %s (%v); the scorecard's %s connection was",
		strings.Join(refused, ", "), lastErr, r.cfg.Protocol), nil
}

// probeAnonymous writes a record as the given credentials, then has a
// client with the same TLS and no SASL or client certificate try to
// write one and read the topic.
func probeAnonymous(ctx context.Context, r *run) (Status, string, error) {
	cl, err := r.client()
	if err != nil {
		return Fail, "", err
	}
	defer cl.Close()
	// A failed setup does not end the probe: the anonymous client still
	// tries, but a refusal then says less (the topic may not exist).
	topic, setupErr := r.createTopic(ctx, kadm.NewClient(cl), "anonymous", nil)
	if setupErr == nil {
		setupErr = r.produce(ctx, cl, &kgo.Record{Topic: topic, Value: []byte("written by the scorecard's own client")})
	}

	wctx, cancel := context.WithTimeout(ctx, r.stepTimeout())
	whook := &lastConnErr{}
	anon, err := r.clientWith(r.cfg.AnonymousOpts, kgo.WithHooks(whook))
	if err != nil {
		cancel()
		return Fail, "", err
	}
	werr := whook.explain(r.produce(wctx, anon, &kgo.Record{Topic: topic, Value: []byte("written by an anonymous client")}))
	anon.Close()
	cancel()

	rctx, cancel := context.WithTimeout(ctx, r.stepTimeout())
	defer cancel()
	rhook := &lastConnErr{}
	opts := append(append([]kgo.Opt{}, r.cfg.AnonymousOpts...), kgo.WithHooks(rhook),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	reader, err := r.clientWith(opts)
	if err != nil {
		return Fail, "", err
	}
	got, rerr := poll(rctx, reader, atLeast(1))
	rerr = rhook.explain(rerr)
	reader.Close()

	wrote, read := werr == nil, rerr == nil && len(got) > 0
	var parts []string
	if setupErr != nil {
		parts = append(parts, fmt.Sprintf("the scorecard's own client could not set up %s (%v)", topic, setupErr))
	}
	if wrote {
		parts = append(parts, "an anonymous client (no SASL, no client certificate) wrote a record to "+topic)
	} else {
		parts = append(parts, fmt.Sprintf("an anonymous write to %s was refused or unanswered (%v)", topic, werr))
	}
	if read {
		parts = append(parts, fmt.Sprintf("it read %d records back", len(got)))
	} else {
		parts = append(parts, fmt.Sprintf("an anonymous read got nothing (%v)", rerr))
	}
	if r.cfg.Principal == anonymousPrincipal {
		parts = append(parts, "the scorecard's own client is anonymous too")
	}
	if !wrote && !read && whook.refusedAll() && rhook.refusedAll() {
		parts = append(parts, "the listener answered no anonymous request beyond ApiVersions and SASL")
	}
	detail := strings.Join(parts, "; ")
	switch {
	case wrote || read:
		return Fail, detail, nil
	case whook.refusedAll() && rhook.refusedAll():
		// Refused before any question about a topic: the probe topic's
		// setup does not matter.
		return Pass, detail, nil
	case setupErr != nil:
		return Undetermined, detail, errors.New("without a probe topic, an anonymous client's failure need not be a refusal")
	case ctx.Err() != nil:
		return Undetermined, detail, ctx.Err()
	}
	return Pass, detail, nil
}

// anonymousPrincipal is Kafka's name for a client that did not
// authenticate.
const anonymousPrincipal = "User:ANONYMOUS"

// probeACLEnforcement asks whether the authorizer refuses the given
// credentials a write to a topic no ACL names. Only a refusal settles it;
// an accepted write settles it only when the cluster says it has no
// authorizer (SECURITY_DISABLED), since a super user or
// allow.everyone.if.no.acl.found is accepted everywhere too.
func probeACLEnforcement(ctx context.Context, r *run) (Status, string, error) {
	acls, aclErr := r.describeACLs(ctx)
	disabled := aclErr == nil && acls.ErrorCode == kerr.SecurityDisabled.Code
	cl, err := r.client()
	if err != nil {
		return Fail, "", err
	}
	defer cl.Close()
	topic, createErr := r.createTopic(ctx, kadm.NewClient(cl), "acl", nil)
	werr := r.produce(ctx, cl, &kgo.Record{Topic: topic, Value: []byte("ACL probe")})

	var created string
	if createErr != nil {
		created = fmt.Sprintf("CreateTopics %s was refused (%v)", topic, createErr)
	} else {
		created = "CreateTopics " + topic + " succeeded"
	}
	switch {
	case werr != nil && isAuthz(werr):
		return Pass, fmt.Sprintf("%s; a write by %s to it, which no ACL names, was refused: %v", created, r.cfg.Principal, werr), nil
	case werr != nil:
		return Undetermined, fmt.Sprintf("%s; the write failed without an authorization error", created), werr
	case disabled:
		return Fail, fmt.Sprintf("the cluster has no authorizer (DescribeAcls: SECURITY_DISABLED); %s and a write to it by %s was accepted", created, r.cfg.Principal), nil
	}
	why := "DescribeAcls answered, so an authorizer may be running"
	switch {
	case aclErr != nil:
		why = fmt.Sprintf("DescribeAcls failed (%v)", aclErr)
	case acls.ErrorCode != 0:
		why = fmt.Sprintf("DescribeAcls answered %v", kerr.ErrorForCode(acls.ErrorCode))
	default:
		if covering := coveringACLs(acls, topic); len(covering) > 0 {
			why += "; ACLs that cover the topic: " + strings.Join(covering, ", ")
		} else {
			why += " (no ACL covers the topic)"
		}
	}
	return Undetermined, fmt.Sprintf("%s; a write by %s to it was accepted: %s, but %s may be a super user, or the cluster allows everyone when no ACL is found; give a non-super user's credentials to settle it",
		created, r.cfg.Principal, why, r.cfg.Principal), nil
}

// isAuthz reports an authorization refusal.
func isAuthz(err error) bool {
	return errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed) || errors.Is(err, kerr.SaslAuthenticationFailed)
}

// coveringACLs lists the topic bindings whose pattern matches topic.
func coveringACLs(resp *kmsg.DescribeACLsResponse, topic string) []string {
	var out []string
	for _, res := range resp.Resources {
		if res.ResourceType != kmsg.ACLResourceTypeTopic {
			continue
		}
		match := res.ResourceName == "*" ||
			(res.ResourcePatternType == kmsg.ACLResourcePatternTypeLiteral && res.ResourceName == topic) ||
			(res.ResourcePatternType == kmsg.ACLResourcePatternTypePrefixed && strings.HasPrefix(topic, res.ResourceName))
		if !match {
			continue
		}
		for _, a := range res.ACLs {
			out = append(out, fmt.Sprintf("%s %s %s on %s", a.Principal, a.PermissionType, a.Operation, res.ResourceName))
		}
	}
	return out
}

// cleanup deletes what the probes created, within what is left of the
// overall limit.
func (r *run) cleanup(ctx context.Context) []Probe {
	var out []Probe
	if len(r.topics)+len(r.groups) == 0 && len(r.txnIDs) == 0 {
		return nil
	}
	cl, err := r.client()
	if err != nil {
		return []Probe{{Name: "cleanup", Status: Fail, Error: err.Error()}}
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if len(r.groups) > 0 {
		start := time.Now()
		resps, err := adm.DeleteGroups(ctx, r.groups...)
		for _, g := range r.groups {
			p := Probe{Name: "delete group " + g, Status: Pass, Detail: "deleted"}
			e := err
			if e == nil {
				e = resps[g].Err
			}
			if e != nil && !errors.Is(e, kerr.GroupIDNotFound) {
				p.Status, p.Detail, p.Error = Fail, "left on the cluster", e.Error()
			}
			p.Duration = time.Since(start)
			out = append(out, p)
		}
	}
	if len(r.topics) > 0 {
		start := time.Now()
		resps, err := adm.DeleteTopics(ctx, r.topics...)
		for _, t := range r.topics {
			p := Probe{Name: "delete topic " + t, Status: Pass, Detail: "deleted"}
			e := err
			if e == nil {
				if dr, ok := resps[t]; ok {
					e = dr.Err
				}
			}
			switch {
			case errors.Is(e, kerr.UnknownTopicOrPartition):
				p.Detail = "never created"
			case e != nil:
				p.Status, p.Detail, p.Error = Fail, "left on the cluster", e.Error()
			}
			p.Duration = time.Since(start)
			out = append(out, p)
		}
	}
	for _, id := range r.txnIDs {
		out = append(out, Probe{Name: "transactional id " + id, Status: Undetermined,
			Detail: "left: the protocol has no request to delete a transactional id; the cluster expires it (transactional.id.expiration.ms)"})
	}
	return out
}

// lastConnErr remembers a client's last failed connect, write or read, so
// a probe whose client only timed out can say what the broker did (closed
// the connection, failed the TLS handshake), and counts the requests
// answered beyond the connection's setup. franz-go calls hooks from its
// own goroutines.
type lastConnErr struct {
	mu       sync.Mutex
	err      error
	answered int
}

func (h *lastConnErr) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	h.set(err)
}

func (h *lastConnErr) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if err := e2e.Err(); err != nil {
		h.set(fmt.Errorf("%s: %w", kmsg.NameForKey(key), err))
		return
	}
	switch key {
	case 17, 18, 36: // SaslHandshake, ApiVersions, SaslAuthenticate: before authentication
	default:
		h.mu.Lock()
		h.answered++
		h.mu.Unlock()
	}
}

func (h *lastConnErr) set(err error) {
	if err == nil {
		return
	}
	h.mu.Lock()
	h.err = err
	h.mu.Unlock()
}

// refusedAll reports that no request beyond the connection's setup was
// answered and the connection failed: the listener refused the client
// before any question about a topic.
func (h *lastConnErr) refusedAll() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.answered == 0 && h.err != nil
}

// explain adds the last connection error to err.
func (h *lastConnErr) explain(err error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil || h.err == nil {
		return err
	}
	return fmt.Errorf("%w; the connection's last error: %v", err, h.err)
}
